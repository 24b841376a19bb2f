// See control.hpp. Each connection gets one line (at most 256 octets) and 5
// seconds; anything else is refused and closed.
#include "gateway/daemon/control.hpp"

#include "common/unique_fd.hpp"

#include <pwd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/local/stream_protocol.hpp>
#include <boost/asio/read_until.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/streambuf.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <cerrno>
#include <cstring>
#include <system_error>

#include "common/log.hpp"

namespace sealgate::gateway {
namespace asio = boost::asio;
using local = asio::local::stream_protocol;

struct control_socket::state {
  state(asio::any_io_executor ex, std::filesystem::path p, std::function<void(const std::string&)> f)
      : acceptor(ex), path(std::move(p)), flush(std::move(f)) {}
  local::acceptor acceptor;
  std::filesystem::path path;
  std::function<void(const std::string&)> flush;
  std::function<asio::awaitable<std::string>(std::string)> tlsrpt;
  std::function<std::string(const std::string&)> reload;
  std::function<void(const std::string&, const std::string&)> record;
};

namespace {

bool queue_id_like(const std::string& s) {
  if (s.size() != 16) return false;
  for (char c : s)
    if (!std::isxdigit(static_cast<unsigned char>(c))) return false;
  return true;
}

std::string answer(control_socket::state& s, const std::string& line) {
  if (line == "flush") {
    s.flush("");
    return "ok";
  }
  if (line.rfind("flush ", 0) == 0 && queue_id_like(line.substr(6))) {
    s.flush(line.substr(6));
    return "ok";
  }
  return "error unknown command";
}

// Who is on the other end: the kernel's word (SO_PEERCRED), not the client's.
std::string peer_of(local::socket& sock) {
  ucred cred{};
  socklen_t len = sizeof cred;
  if (::getsockopt(sock.native_handle(), SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0) return "unknown peer";
  std::string who = "uid " + std::to_string(cred.uid);
  if (passwd* pw = ::getpwuid(cred.uid)) who += " (" + std::string(pw->pw_name) + ")";
  return who + " pid " + std::to_string(cred.pid);
}

asio::awaitable<void> serve(std::shared_ptr<control_socket::state> s, local::socket sock) {
  using namespace asio::experimental::awaitable_operators;
  asio::streambuf buf(256);
  asio::steady_timer deadline(sock.get_executor(), std::chrono::seconds(5));
  auto result = co_await (asio::async_read_until(sock, buf, '\n', asio::as_tuple(asio::use_awaitable)) ||
                          deadline.async_wait(asio::as_tuple(asio::use_awaitable)));
  if (result.index() != 0) co_return;
  auto [ec, n] = std::get<0>(result);
  if (ec) co_return;
  std::string line(asio::buffers_begin(buf.data()), asio::buffers_begin(buf.data()) + static_cast<std::ptrdiff_t>(n - 1));
  std::string reply;
  const std::string actor = peer_of(sock);
  if (line.rfind("tlsrpt ", 0) == 0 && s->tlsrpt)
    reply = co_await s->tlsrpt(line.substr(7)) + "\n";  // the day is checked by the run
  else if (line == "reload" && s->reload)
    reply = s->reload(actor) + "\n";
  else
    reply = answer(*s, line) + "\n";
  if (s->record && reply.rfind("error unknown command", 0) != 0) s->record(line, actor);
  co_await asio::async_write(sock, asio::buffer(reply), asio::as_tuple(asio::use_awaitable));
}

void log_failure(std::exception_ptr e) {
  if (!e) return;
  try {
    std::rethrow_exception(e);
  } catch (const std::exception& x) {
    log_error(std::string("control socket: ") + x.what());
  }
}

asio::awaitable<void> accept_loop(std::shared_ptr<control_socket::state> s) {
  for (;;) {
    auto [ec, sock] = co_await s->acceptor.async_accept(asio::as_tuple(asio::use_awaitable));
    if (ec == asio::error::operation_aborted || !s->acceptor.is_open()) co_return;
    if (ec) continue;
    asio::co_spawn(s->acceptor.get_executor(), serve(s, std::move(sock)), log_failure);
  }
}

}  // namespace

control_socket::control_socket(asio::any_io_executor executor, const std::filesystem::path& spool_dir,
                               std::function<void(const std::string&)> flush)
    : state_(std::make_shared<state>(executor, spool_dir / "control", std::move(flush))) {
  std::error_code ignored;
  std::filesystem::remove(state_->path, ignored);  // a stale socket of a gateway that died
  // Created 0600 from the start: umask during bind, as the socket file takes
  // its mode from it.
  mode_t old = ::umask(0177);
  boost::system::error_code ec;
  state_->acceptor.open(local(), ec);
  if (!ec) state_->acceptor.bind(local::endpoint(state_->path.string()), ec);
  ::umask(old);
  if (!ec) state_->acceptor.listen(16, ec);
  if (ec) throw std::system_error(ec.value(), std::generic_category(), state_->path.string());
  asio::co_spawn(executor, accept_loop(state_), log_failure);
}

void control_socket::stop() {
  boost::system::error_code ignored;
  state_->acceptor.close(ignored);
  std::error_code ec;
  std::filesystem::remove(state_->path, ec);
}

control_socket::~control_socket() = default;

void control_socket::on_reload(std::function<std::string(const std::string&)> reload) {
  state_->reload = std::move(reload);
}

void control_socket::on_action(std::function<void(const std::string&, const std::string&)> record) {
  state_->record = std::move(record);
}

void control_socket::on_tlsrpt(std::function<asio::awaitable<std::string>(std::string)> run) {
  state_->tlsrpt = std::move(run);
}

namespace {
// A connection to spool_dir/control; none when nothing listens there (no
// socket file, or the one a killed gateway left: ECONNREFUSED).
unique_fd connect_control(const std::filesystem::path& spool_dir, std::chrono::seconds timeout) {
  unique_fd socket(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!socket) return socket;
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::string path = (spool_dir / "control").string();
  if (path.size() >= sizeof addr.sun_path) return unique_fd();
  std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
  timeval tv{static_cast<time_t>(timeout.count()), 0};
  ::setsockopt(socket.get(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  if (::connect(socket.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) return unique_fd();
  return socket;
}
}  // namespace

bool control_listening(const std::filesystem::path& spool_dir) {
  return static_cast<bool>(connect_control(spool_dir, std::chrono::seconds(1)));
}

std::string control_request(const std::filesystem::path& spool_dir, const std::string& command,
                            std::chrono::seconds timeout) {
  unique_fd socket = connect_control(spool_dir, timeout);
  if (!socket) return "";
  int fd = socket.get();
  std::string line = command + "\n";
  if (::write(fd, line.data(), line.size()) != static_cast<ssize_t>(line.size())) return "";
  std::string reply;
  char c;
  while (reply.size() < 256 && ::read(fd, &c, 1) == 1 && c != '\n') reply += c;
  return reply;
}

}  // namespace sealgate::gateway
