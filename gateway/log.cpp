// Logging to stderr with one write per line, so that lines from the io threads
// never interleave.
#include "gateway/log.hpp"

#include <unistd.h>

#include <atomic>
#include <chrono>
#include <ctime>
#include <string>

namespace sealgate::gateway {
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
  std::tm tm{};
  gmtime_r(&t, &tm);
  char stamp[40];
  size_t n = std::strftime(stamp, sizeof stamp, "%Y-%m-%dT%H:%M:%S", &tm);
  std::snprintf(stamp + n, sizeof stamp - n, ".%03dZ", static_cast<int>(ms));
  std::string line;
  line.reserve(64 + text.size());
  line += stamp;
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

}  // namespace sealgate::gateway
