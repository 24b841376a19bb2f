// CIDR parsing and matching; see ip_network.hpp.
#include "common/ip_network.hpp"

#include <algorithm>
#include <charconv>

namespace sealgate {
namespace ip = boost::asio::ip;

namespace {
template <size_t N>
bool prefix_match(const std::array<unsigned char, N>& a, const std::array<unsigned char, N>& b, unsigned prefix) {
  for (size_t i = 0; i < N && prefix > 0; ++i) {
    unsigned bits = prefix >= 8 ? 8 : prefix;
    unsigned char mask = static_cast<unsigned char>(0xFF << (8 - bits));
    if ((a[i] & mask) != (b[i] & mask)) return false;
    prefix -= bits;
  }
  return true;
}
ip::address unmap(const ip::address& a) {
  if (a.is_v6() && a.to_v6().is_v4_mapped()) return ip::make_address_v4(ip::v4_mapped, a.to_v6());
  return a;
}
}  // namespace

std::optional<ip_network> ip_network::parse(std::string_view text, std::string* why) {
  auto fail = [&](const char* w) -> std::optional<ip_network> {
    if (why) *why = w;
    return std::nullopt;
  };
  auto slash = text.find('/');
  boost::system::error_code ec;
  auto addr = ip::make_address(std::string(text.substr(0, slash)), ec);
  if (ec) return fail("not an IP address");
  ip_network n;
  n.base_ = addr;
  unsigned max = addr.is_v4() ? 32 : 128;
  n.prefix_ = max;
  if (slash != std::string_view::npos) {
    auto p = text.substr(slash + 1);
    auto [ptr, e] = std::from_chars(p.data(), p.data() + p.size(), n.prefix_);
    if (p.empty() || e != std::errc{} || ptr != p.data() + p.size() || n.prefix_ > max) return fail("bad prefix length");
  }
  // Host bits set below the prefix usually mean a typo ("10.1.2.3/8").
  if (addr.is_v4()) {
    auto bytes = addr.to_v4().to_bytes();
    for (unsigned i = n.prefix_; i < 32; ++i) bytes[i / 8] &= static_cast<unsigned char>(~(0x80 >> (i % 8)));
    if (ip::address_v4(bytes) != addr.to_v4()) return fail("host bits set below the prefix length");
  } else {
    auto bytes = addr.to_v6().to_bytes();
    for (unsigned i = n.prefix_; i < 128; ++i) bytes[i / 8] &= static_cast<unsigned char>(~(0x80 >> (i % 8)));
    if (ip::address_v6(bytes) != addr.to_v6()) return fail("host bits set below the prefix length");
  }
  return n;
}

bool ip_network::contains(const ip::address& raw) const {
  ip::address a = unmap(raw);
  if (a.is_v4() != base_.is_v4()) return false;
  if (a.is_v4()) return prefix_match(a.to_v4().to_bytes(), base_.to_v4().to_bytes(), prefix_);
  return prefix_match(a.to_v6().to_bytes(), base_.to_v6().to_bytes(), prefix_);
}

std::string ip_network::to_string() const { return base_.to_string() + "/" + std::to_string(prefix_); }

bool in_any(const std::vector<ip_network>& networks, const ip::address& a) {
  return std::any_of(networks.begin(), networks.end(), [&](const ip_network& n) { return n.contains(a); });
}

}  // namespace sealgate
