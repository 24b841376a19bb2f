// One-line logs on stderr, Postfix style: time, level, queue id when there is
// one, then key=value facts. Never log message content, headers or passwords.
#pragma once
#include <string_view>

namespace sealgate {

enum class log_level { debug, info, warning, error };
void set_log_level(log_level level);
void log(log_level level, std::string_view queue_id, std::string_view text);
inline void log_info(std::string_view text) { log(log_level::info, {}, text); }
inline void log_warning(std::string_view text) { log(log_level::warning, {}, text); }
inline void log_error(std::string_view text) { log(log_level::error, {}, text); }

}  // namespace sealgate
