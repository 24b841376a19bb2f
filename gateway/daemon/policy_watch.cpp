// Policy reload on file change (inotify) and the reload logging shared with
// SIGHUP. Watches on the io_context; the reload itself runs on an executor of
// its own, so that a slow or hostile policy file never stalls the listeners.
#include "gateway/daemon/policy_watch.hpp"

#include "common/unique_fd.hpp"

#include <sys/inotify.h>
#include <unistd.h>

#include <array>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <cerrno>
#include <cstring>
#include <mutex>

#include "common/log.hpp"

namespace sealgate::gateway {
namespace asio = boost::asio;

namespace {
// Errors of the last failed reload, so that every save of an edit in progress
// does not log the same lines again.
std::mutex last_errors_mutex;
std::string last_errors;

void log_failure(std::exception_ptr e) {
  if (!e) return;
  try {
    std::rethrow_exception(e);
  } catch (const std::exception& x) {
    log_error(std::string("policy watcher: ") + x.what());
  }
}

void log_errors(const std::string& errors) {
  for (size_t pos = 0; pos < errors.size();) {
    size_t nl = errors.find('\n', pos);
    if (nl == std::string::npos) nl = errors.size();
    if (nl > pos) log_error(errors.substr(pos, nl - pos));
    pos = nl + 1;
  }
}
}  // namespace

void reload_policy(current_policy& policy, std::string_view trigger, bool only_if_changed) {
  std::string before = policy.get()->sha256;
  std::string errors = policy.reload();
  std::string label(trigger);
  if (errors.empty()) {
    {
      std::lock_guard lock(last_errors_mutex);
      last_errors.clear();
    }
    auto now = policy.get();
    if (only_if_changed && now->sha256 == before) return;
    log_info(label + ": policy reloaded: " + policy::summary(*now));
    try {
      policy.loaded(label);
    } catch (const std::exception& e) {
      log_error(label + ": the policy history was not written: " + e.what());
    }
    return;
  }
  {
    std::lock_guard lock(last_errors_mutex);
    if (only_if_changed && errors == last_errors) return;
    last_errors = errors;
  }
  log_error(label + ": policy not reloaded, the previous one stays in force");
  log_errors(errors);
}

struct policy_watcher::state {
  state(asio::any_io_executor ex, asio::any_io_executor reload, current_policy& p, std::chrono::milliseconds quiet)
      : reload_executor(std::move(reload)), policy(p), events(ex), quiet_timer(ex), quiet_period(quiet) {}
  asio::any_io_executor reload_executor;
  current_policy& policy;
  asio::posix::stream_descriptor events;
  asio::steady_timer quiet_timer;
  std::chrono::milliseconds quiet_period;
  std::string file_name;
  bool stopped = false;
};

namespace {

// The file counts as changed when an event names it, or names the `..data`
// link that Kubernetes swaps under a mounted ConfigMap.
bool concerns(const std::string& file_name, const char* name) {
  return file_name == name || std::strcmp(name, "..data") == 0;
}

// Whether a batch of inotify events read from the descriptor concerns the
// policy file. Each header is copied out, never read in place: the buffer
// lives in a coroutine frame, where g++ 12 does not keep alignas.
bool batch_concerns(const char* data, size_t n, const std::string& file_name) {
  bool relevant = false;
  for (size_t off = 0; off + sizeof(inotify_event) <= n;) {
    inotify_event ev;
    std::memcpy(&ev, data + off, sizeof ev);
    if (off + sizeof ev + ev.len > n) break;
    if (ev.mask & IN_Q_OVERFLOW) relevant = true;  // events were lost: check anyway
    const char* name = data + off + sizeof ev;     // NUL-padded to ev.len octets
    if (ev.len > 0 && concerns(file_name, std::string(name, strnlen(name, ev.len)).c_str())) relevant = true;
    off += sizeof ev + ev.len;
  }
  return relevant;
}

asio::awaitable<void> reload_after_quiet(std::shared_ptr<policy_watcher::state> s) {
  // A save is often several events (truncate, write, close, rename); the timer
  // restarts with each, so the file is read once, after it is complete.
  s->quiet_timer.expires_after(s->quiet_period);
  auto [ec] = co_await s->quiet_timer.async_wait(asio::as_tuple(asio::use_awaitable));
  if (ec || s->stopped) co_return;
  asio::post(s->reload_executor, [s] { reload_policy(s->policy, "policy file changed", true); });
}

asio::awaitable<void> watch(std::shared_ptr<policy_watcher::state> s) {
  std::array<char, 8192> buffer;
  for (;;) {
    auto [ec, n] = co_await s->events.async_read_some(asio::buffer(buffer), asio::as_tuple(asio::use_awaitable));
    if (ec || s->stopped) co_return;
    if (batch_concerns(buffer.data(), n, s->file_name)) {
      s->quiet_timer.cancel();
      asio::co_spawn(s->events.get_executor(), reload_after_quiet(s), log_failure);
    }
  }
}

}  // namespace

policy_watcher::policy_watcher(asio::any_io_executor executor, asio::any_io_executor reload_executor,
                               current_policy& policy, std::chrono::milliseconds quiet_period)
    : state_(std::make_shared<state>(executor, std::move(reload_executor), policy, quiet_period)) {
  const auto& file = policy.file();
  state_->file_name = file.filename().string();
  std::string dir = file.parent_path().empty() ? "." : file.parent_path().string();
  unique_fd fd(::inotify_init1(IN_NONBLOCK | IN_CLOEXEC));
  if (!fd) {
    log_warning(std::string("policy watcher: inotify: ") + std::strerror(errno) + "; reload with SIGHUP");
    return;
  }
  if (::inotify_add_watch(fd.get(), dir.c_str(), IN_CLOSE_WRITE | IN_MOVED_TO | IN_CREATE | IN_DELETE | IN_ATTRIB) < 0) {
    log_warning("policy watcher: cannot watch " + dir + ": " + std::strerror(errno) + "; reload with SIGHUP");
    return;
  }
  state_->events.assign(fd.release());
  asio::co_spawn(executor, watch(state_), log_failure);
}

void policy_watcher::stop() {
  state_->stopped = true;
  state_->quiet_timer.cancel();
  boost::system::error_code ignored;
  state_->events.close(ignored);
}

policy_watcher::~policy_watcher() = default;

}  // namespace sealgate::gateway
