// The running gateway's control socket, spool/control (a Unix stream socket,
// 0600 inside the 0700 spool directory, so only the gateway's own user can
// use it), as Postfix's postqueue talks to its queue manager. One command
// line per connection, one reply line: "flush", "flush ID" -> "ok". It can
// only ask the queue to try again; it never carries message data.
#pragma once
#include <boost/asio/any_io_executor.hpp>
#include <filesystem>
#include <functional>
#include <memory>
#include <string>

namespace sealgate::gateway {

class control_socket {
 public:
  // Binds spool_dir/control (replacing a stale socket) and serves commands,
  // calling flush(id) ("" for all). Throws std::system_error when it cannot bind.
  control_socket(boost::asio::any_io_executor executor, const std::filesystem::path& spool_dir,
                 std::function<void(const std::string&)> flush);
  ~control_socket();
  // Call once the io_context no longer runs.
  void stop();

  struct state;

 private:
  std::shared_ptr<state> state_;
};

// Client side, for the CLI: sends one command, returns the reply line.
// Empty when no gateway is listening.
std::string control_request(const std::filesystem::path& spool_dir, const std::string& command);

}  // namespace sealgate::gateway
