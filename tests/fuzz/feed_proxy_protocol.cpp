// fuzz_proxy_protocol: the PROXY protocol v2 header a load balancer sends
// before a client's bytes (common/proxy_protocol), read as the SMTP listener
// reads it: the 16-byte fixed part, then exactly the length it announces.
// Input: the bytes on the wire (the whole input is parsed too, as a header
// cut short or followed by the client's bytes).
#include <span>

#include "common/proxy_protocol.hpp"
#include "tests/fuzz/fuzz_input.hpp"
#include "tests/fuzz/fuzz_parsers.hpp"

namespace sealgate::fuzz {
namespace {

// What the listener may act on: an address of the family the header named,
// and a refusal that can go into a log line as it is.
void check(const proxy_protocol::header& h, std::span<const uint8_t> wire, parse_counts& counts) {
  using kind = proxy_protocol::header::kind;
  switch (h.what) {
    case kind::refused:
      SEALGATE_FUZZ_CHECK(!h.reason.empty() && !has_control(h.reason) && h.reason.size() < 200);
      ++counts.proxy_refused;
      break;
    case kind::local:
      ++counts.proxy_local;
      break;
    case kind::proxied:
      SEALGATE_FUZZ_CHECK(wire.size() >= proxy_protocol::fixed_size);
      SEALGATE_FUZZ_CHECK(h.source.address.is_v4() == (wire[13] == 0x11));
      SEALGATE_FUZZ_CHECK(h.destination.address.is_v4() == h.source.address.is_v4());
      ++counts.proxy_proxied;
      break;
  }
  if (h.what != kind::refused) {
    // Only ever a whole header, as the fixed part announced it.
    auto fixed = proxy_protocol::read_fixed_part(wire);
    SEALGATE_FUZZ_CHECK(fixed.ok() && fixed.rest <= proxy_protocol::max_rest_size &&
                        wire.size() == proxy_protocol::fixed_size + fixed.rest);
  }
}

}  // namespace

void feed_proxy_protocol(const uint8_t* data, size_t size, parse_counts& counts) {
  std::span<const uint8_t> wire(data, size);
  check(proxy_protocol::parse(wire), wire, counts);
  if (size < proxy_protocol::fixed_size) return;
  auto fixed = proxy_protocol::read_fixed_part(wire.first(proxy_protocol::fixed_size));
  if (!fixed.ok()) {
    SEALGATE_FUZZ_CHECK(!has_control(fixed.refusal));
    return;
  }
  SEALGATE_FUZZ_CHECK(fixed.rest <= proxy_protocol::max_rest_size);
  if (size < proxy_protocol::fixed_size + fixed.rest) return;  // the listener would time out waiting
  auto header = wire.first(proxy_protocol::fixed_size + fixed.rest);
  check(proxy_protocol::parse(header), header, counts);
}

}  // namespace sealgate::fuzz
