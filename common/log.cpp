// Logging to stderr with one write per line, so that lines from the io threads
// never interleave.
#include "common/log.hpp"

#include <unistd.h>

#include <atomic>
#include <chrono>
#include <ctime>
#include <string>

namespace sealgate {
namespace {
std::atomic<log_level> threshold{log_level::info};
std::atomic<log_format> format{log_format::text};

// A JSON string body: quotes, backslashes and control characters escaped, so
// that no input can end the string or the line; bytes that are not UTF-8 (a
// hostile HELO) become U+FFFD, since JSON text must be UTF-8 (RFC 8259 8.1).
void append_json(std::string& out, std::string_view s) {
  static constexpr char hex[] = "0123456789abcdef";
  for (size_t i = 0; i < s.size();) {
    unsigned char u = static_cast<unsigned char>(s[i]);
    if (u < 0x80) {
      if (u == '"' || u == '\\') {
        out += '\\';
        out += static_cast<char>(u);
      } else if (u < 0x20 || u == 0x7f) {
        out += "\\u00";
        out += hex[u >> 4];
        out += hex[u & 15];
      } else {
        out += static_cast<char>(u);
      }
      ++i;
      continue;
    }
    // A well-formed sequence (RFC 3629 4): lead byte, then its continuation bytes.
    size_t n = u >= 0xC2 && u <= 0xDF ? 2 : u >= 0xE0 && u <= 0xEF ? 3 : u >= 0xF0 && u <= 0xF4 ? 4 : 0;
    bool ok = n != 0 && i + n <= s.size();
    for (size_t k = 1; ok && k < n; ++k) ok = (static_cast<unsigned char>(s[i + k]) & 0xC0) == 0x80;
    if (ok && n == 3) {
      unsigned char b = static_cast<unsigned char>(s[i + 1]);
      ok = !(u == 0xE0 && b < 0xA0) && !(u == 0xED && b > 0x9F);  // overlong, surrogates
    } else if (ok && n == 4) {
      unsigned char b = static_cast<unsigned char>(s[i + 1]);
      ok = !(u == 0xF0 && b < 0x90) && !(u == 0xF4 && b > 0x8F);  // overlong, past U+10FFFF
    }
    if (ok) {
      out.append(s.substr(i, n));
      i += n;
    } else {
      out += "\\ufffd";
      ++i;
    }
  }
}

constexpr const char* names[] = {"debug", "info", "warning", "error"};
}  // namespace

void set_log_level(log_level level) { threshold = level; }
void set_log_format(log_format f) { format = f; }

void log(log_level level, std::string_view queue_id, std::string_view text) {
  if (level < threshold.load(std::memory_order_relaxed)) return;
  auto now = std::chrono::system_clock::now();
  std::time_t t = std::chrono::system_clock::to_time_t(now);
  auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()).count() % 1000;
  // The date and time change once a second: formatted once per second and
  // thread, not for each of the several lines a message makes.
  thread_local std::time_t stamp_second = -1;
  thread_local char stamp[32];
  thread_local size_t stamp_len = 0;
  if (t != stamp_second) {
    std::tm tm{};
    gmtime_r(&t, &tm);
    stamp_len = std::strftime(stamp, sizeof stamp, "%Y-%m-%dT%H:%M:%S", &tm);
    stamp_second = t;
  }
  const char millis[] = {'.', static_cast<char>('0' + ms / 100), static_cast<char>('0' + ms / 10 % 10),
                         static_cast<char>('0' + ms % 10), 'Z'};
  std::string line;
  line.reserve(64 + text.size());
  if (format.load(std::memory_order_relaxed) == log_format::json) {
    static const std::string pid = std::to_string(::getpid());
    line += "{\"time\":\"";
    line.append(stamp, stamp_len);
    line.append(millis, sizeof millis);
    line += "\",\"level\":\"";
    line += names[static_cast<int>(level)];
    line += "\",\"pid\":";
    line += pid;
    if (!queue_id.empty()) {
      line += ",\"queue_id\":\"";
      append_json(line, queue_id);
      line += '"';
    }
    line += ",\"msg\":\"";
    append_json(line, text);
    line += "\"}\n";
    ssize_t ignored = ::write(STDERR_FILENO, line.data(), line.size());
    (void)ignored;
    return;
  }
  line.append(stamp, stamp_len);
  line.append(millis, sizeof millis);
  static const std::string tag = " sealgate[" + std::to_string(::getpid()) + "]: ";
  line += tag;
  line += names[static_cast<int>(level)];
  line += ": ";
  if (!queue_id.empty()) {
    line += queue_id;
    line += ": ";
  }
  // Control characters from the network (a hostile HELO, say) must not forge log lines.
  for (char c : text) line += (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) ? '?' : c;
  line += '\n';
  ssize_t ignored = ::write(STDERR_FILENO, line.data(), line.size());
  (void)ignored;
}

void log_failure(std::string_view what, std::exception_ptr e) {
  if (!e) return;
  try {
    std::rethrow_exception(e);
  } catch (const std::exception& x) {
    log_error(std::string(what) + ": " + x.what());
  } catch (...) {
    log_error(std::string(what) + ": an unknown exception");
  }
}

void rate_limited_warning::operator()(const std::string& message) {
  std::lock_guard lock(mutex_);
  auto now = std::chrono::steady_clock::now();
  ++unlogged_;
  if (now - last_ < std::chrono::seconds(10)) return;
  log_warning(message + (unlogged_ > 1 ? " (" + std::to_string(unlogged_) + " times since the last report)" : ""));
  last_ = now;
  unlogged_ = 0;
}

}  // namespace sealgate
