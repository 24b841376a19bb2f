// Helpers for the crypto unit tests: run one coroutine to completion on an
// io_context and hand back its result. Test code only.
#pragma once
#include <boost/asio/awaitable.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <exception>
#include <utility>

namespace sealgate::crypto::test_util {

template <typename T>
T run_to_end(boost::asio::io_context& io, boost::asio::awaitable<T> a) {
  T out{};
  boost::asio::co_spawn(io, std::move(a), [&](std::exception_ptr e, T r) {
    if (e) std::rethrow_exception(e);
    out = std::move(r);
  });
  io.restart();
  io.run();
  return out;
}

}  // namespace sealgate::crypto::test_util
