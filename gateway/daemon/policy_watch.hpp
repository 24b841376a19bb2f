// Reloads the delivery policy when its file changes, as SIGHUP does. Watches
// the file's directory with inotify, because editors and configuration tools
// replace a file by renaming a new one over it (and Kubernetes swaps a
// `..data` symlink), which a watch on the file itself would miss. Never leaves
// the gateway without a policy: a file that does not validate is logged and
// the previous policy stays in force.
#pragma once
#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/steady_timer.hpp>
#include <chrono>
#include <memory>
#include <string>

#include "gateway/daemon/current_policy.hpp"

namespace sealgate::gateway {

// Reloads `policy`, logging the outcome under `trigger` ("SIGHUP", "policy
// file changed"). With only_if_changed, a policy whose content hash equals the
// current one is not announced again, and the same errors are logged once,
// not on every save of an unfinished edit.
void reload_policy(current_policy& policy, std::string_view trigger, bool only_if_changed = false);

class policy_watcher {
 public:
  // Starts watching at once. When inotify is not available the gateway runs
  // on, reloading on SIGHUP only, and says so in the log.
  // The reload itself (reading, parsing, compiling the regexes) runs on
  // reload_executor, never on the event loop that accepts connections.
  policy_watcher(boost::asio::any_io_executor executor, boost::asio::any_io_executor reload_executor,
                 current_policy& policy, std::chrono::milliseconds quiet_period = std::chrono::milliseconds(300));
  ~policy_watcher();
  policy_watcher(const policy_watcher&) = delete;
  policy_watcher& operator=(const policy_watcher&) = delete;
  // Call once the io_context no longer runs (the descriptor and timer belong
  // to its threads while it does).
  void stop();

  struct state;

 private:
  std::shared_ptr<state> state_;
};

}  // namespace sealgate::gateway
