// A TTL cache that coalesces concurrent computations of one key: the first
// caller computes (the leader), later callers wait for its result instead of
// repeating the work, so a burst of probes of one MX costs one probe.
// Thread-safe; never holds its lock across a suspension point.
#pragma once
#include <boost/asio/any_completion_handler.hpp>
#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/associated_executor.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <chrono>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

namespace sealgate::gateway {

template <class Value>
class coalescing_cache {
 public:
  using clock = std::chrono::steady_clock;

  struct ticket {
    std::optional<Value> value;  // the cached or coalesced value; empty for the leader
    bool leader = false;         // the caller must compute and publish() (always, even on failure)
    bool shared = false;         // the value came from the cache or another caller's computation
  };

  explicit coalescing_cache(std::function<clock::time_point()> now = [] { return clock::now(); })
      : now_(std::move(now)) {}

  boost::asio::awaitable<ticket> acquire(std::string key) {
    {
      std::lock_guard lock(mutex_);
      entry& e = entries_[key];
      if (e.value && now_() < e.expires) co_return ticket{e.value, false, true};
      if (!e.in_flight) {
        e.in_flight = true;
        ++computations_;
        co_return ticket{std::nullopt, true, false};
      }
    }
    // The initiation holds only pointers: g++ 12 destroys some non-trivial
    // temporaries of a co_await expression twice (a std::string here did).
    co_await boost::asio::async_initiate<const boost::asio::use_awaitable_t<>, void()>(wait_for{this, &key},
                                                                                      boost::asio::use_awaitable);
    std::lock_guard lock(mutex_);
    co_return ticket{entries_[key].value, false, true};
  }

  // The leader's result: cached for ttl (zero: given to the waiters only) and
  // handed to everyone who waited.
  void publish(const std::string& key, Value value, std::chrono::seconds ttl) {
    std::vector<waiter> waiters;
    {
      std::lock_guard lock(mutex_);
      entry& e = entries_[key];
      e.value = std::move(value);
      e.expires = now_() + ttl;
      e.in_flight = false;
      waiters.swap(e.waiters);
      if (entries_.size() > max_entries) prune();
    }
    // Each waiter resumes on its own executor, never inside publish().
    for (auto& w : waiters)
      boost::asio::post(w.executor, [h = std::move(w.handler)]() mutable { std::move(h)(); });
  }

  size_t computations() const {
    std::lock_guard lock(mutex_);
    return computations_;
  }

  static constexpr size_t max_entries = 10000;

 private:
  struct waiter {
    boost::asio::any_io_executor executor;
    boost::asio::any_completion_handler<void()> handler;
  };
  struct entry {
    std::optional<Value> value;
    clock::time_point expires{};
    bool in_flight = false;
    std::vector<waiter> waiters;
  };

  struct wait_for {
    coalescing_cache* self;
    const std::string* key;  // the waiting coroutine's own, alive while it waits
    template <class Handler>
    void operator()(Handler&& handler) {
      std::unique_lock lock(self->mutex_);
      entry& e = self->entries_[*key];
      // The leader may have published between acquire's check and now.
      if (!e.in_flight) {
        lock.unlock();
        boost::asio::post(std::forward<Handler>(handler));
        return;
      }
      boost::asio::any_io_executor ex = boost::asio::get_associated_executor(handler);
      e.waiters.push_back(waiter{std::move(ex), boost::asio::any_completion_handler<void()>(std::forward<Handler>(handler))});
    }
  };

  void prune() {
    auto now = now_();
    for (auto it = entries_.begin(); it != entries_.end();)
      it = (!it->second.in_flight && it->second.expires <= now) ? entries_.erase(it) : std::next(it);
  }

  std::function<clock::time_point()> now_;
  mutable std::mutex mutex_;
  std::map<std::string, entry> entries_;
  size_t computations_ = 0;
};

}  // namespace sealgate::gateway
