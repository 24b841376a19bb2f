// See service_notify.hpp.
#include "gateway/daemon/service_notify.hpp"

#include <systemd/sd-daemon.h>

#include <string>

namespace sealgate::gateway {
namespace {

void send(const std::string& state) {
  // 0: keep NOTIFY_SOCKET in the environment, for the reload and stop
  // messages that follow. A failure is not the gateway's to act on.
  (void)sd_notify(0, state.c_str());
}

// Status text is one line: a CR or LF would start another assignment.
std::string one_line(std::string_view s) {
  std::string out;
  for (char c : s) out += (c == '\n' || c == '\r') ? ' ' : c;
  return out;
}

}  // namespace

void notify_ready(std::string_view status) { send("READY=1\nSTATUS=" + one_line(status)); }
void notify_reloading() { send("RELOADING=1"); }
void notify_stopping() { send("STOPPING=1"); }
void notify_status(std::string_view status) { send("STATUS=" + one_line(status)); }

}  // namespace sealgate::gateway
