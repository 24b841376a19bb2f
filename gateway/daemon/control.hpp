// The running gateway's control socket, spool/control (a Unix stream socket,
// 0600 inside the 0700 spool directory, so only the gateway's own user can
// use it), as Postfix's postqueue talks to its queue manager. One command
// line per connection, one reply line: "flush", "flush ID" -> "ok";
// "tlsrpt DAY" -> a summary; "reload" -> "ok" or the policy's errors. Each
// command is recorded with the peer's Unix credentials. It can only ask the queue to try again and the
// TLS reports to go out; it never carries message data.
#pragma once
#include <boost/asio/awaitable.hpp>
#include <chrono>
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
  // "tlsrpt YYYY-MM-DD": sends that day's TLS reports; the reply is run's
  // one-line summary. Unset: "error unknown command".
  void on_tlsrpt(std::function<boost::asio::awaitable<std::string>(std::string)> run);
  // "reload": reloads the policy now (`sealgate policy reload`); reload(actor)
  // returns "ok" or the errors in one line. Unset: "error unknown command".
  void on_reload(std::function<std::string(const std::string& actor)> reload);
  // Called for every command carried out, with who asked: the peer's
  // credentials (SO_PEERCRED), "uid N (name)". For the audit log.
  void on_action(std::function<void(const std::string& command, const std::string& actor)> record);
  // Call once the io_context no longer runs.
  void stop();

  struct state;

 private:
  std::shared_ptr<state> state_;
};

// Client side, for the CLI: sends one command, returns the reply line.
// Empty when no gateway is listening.
std::string control_request(const std::filesystem::path& spool_dir, const std::string& command,
                            std::chrono::seconds timeout = std::chrono::seconds(5));
// Whether a gateway listens on spool_dir/control (it accepts a connection),
// whether or not it would answer: `queue export` must not touch a live spool.
bool control_listening(const std::filesystem::path& spool_dir);

}  // namespace sealgate::gateway
