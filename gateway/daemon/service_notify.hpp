// Tells the service manager where the gateway is (sd_notify(3) through
// libsystemd): READY=1 once the spool is recovered and every listener is
// bound, RELOADING=1 and READY=1 around a policy reload, STOPPING=1 at
// shutdown, STATUS= lines for `systemctl status`. Without NOTIFY_SOCKET
// (not under systemd, tests) every call does nothing.
#pragma once
#include <string_view>

namespace sealgate::gateway {

void notify_ready(std::string_view status);
void notify_reloading();
void notify_stopping();
void notify_status(std::string_view status);

}  // namespace sealgate::gateway
