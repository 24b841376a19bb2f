// Runs blocking work (GPGME, which starts gpg; OpenSSL CMS on large messages;
// the portal store) on a worker pool and resumes the caller on its own executor. The
// io threads must never run such work: a 1 MiB encryption stalls every session.
#pragma once
#include <boost/asio/awaitable.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/thread_pool.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <functional>

namespace sealgate {

namespace detail {
// A named coroutine taking its function by value: g++ 12 miscompiles capturing
// coroutine lambdas (DESIGN.md 2). The function itself is an ordinary lambda.
template <typename T>
boost::asio::awaitable<T> call(std::function<T()> work) {
  co_return work();
}
}  // namespace detail

// std::function<T()> work = [..] { return blocking(); };
// T result = co_await on_pool<T>(pool, work);   exceptions propagate.
// Never write the lambda inside the co_await expression: g++ 12 destroys such
// a temporary closure twice (a double free that ASan shows at once).
template <typename T>
[[gnu::noinline]] boost::asio::awaitable<T> on_pool(boost::asio::thread_pool& pool, std::function<T()> work) {
  co_return co_await boost::asio::co_spawn(pool, detail::call<T>(std::move(work)), boost::asio::use_awaitable);
}

}  // namespace sealgate
