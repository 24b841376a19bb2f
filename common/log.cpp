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
constexpr const char* names[] = {"debug", "info", "warning", "error"};
}  // namespace

void set_log_level(log_level level) { threshold = level; }

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

}  // namespace sealgate
