// One-line logs on stderr, Postfix style: time, level, queue id when there is
// one, then key=value facts. Never log message content, headers or passwords.
#pragma once
#include <chrono>
#include <cstddef>
#include <exception>
#include <mutex>
#include <string>
#include <string_view>

namespace sealgate {

enum class log_level { debug, info, warning, error };
void set_log_level(log_level level);
// text: the line above; json: one JSON object per line for log shippers,
// {"time","level","pid","queue_id","msg"} (queue_id only when there is one),
// with the same control-character rule inside the strings.
enum class log_format { text, json };
void set_log_format(log_format format);
void log(log_level level, std::string_view queue_id, std::string_view text);
inline void log_info(std::string_view text) { log(log_level::info, {}, text); }
inline void log_warning(std::string_view text) { log(log_level::warning, {}, text); }
inline void log_error(std::string_view text) { log(log_level::error, {}, text); }
// For a coroutine's completion handler: "what: the exception's text" as an
// error, nothing when e is null.
void log_failure(std::string_view what, std::exception_ptr e);

// A warning that clients can cause (a flood of refused connections, headers
// from a misconfigured proxy): logged at most once per 10 s, with a count of
// the occurrences since, so that they cannot fill the disk. Thread-safe.
class rate_limited_warning {
 public:
  void operator()(const std::string& message);

 private:
  std::mutex mutex_;
  std::chrono::steady_clock::time_point last_{};
  size_t unlogged_ = 0;
};

}  // namespace sealgate
