// The Sealgate-Loop trace stamp the gateway puts on what it sends, and the
// check inbound makes of the stamps on what arrives: a message that comes back
// carrying too many of the gateway's own is a loop (554 5.4.6). HMAC-SHA256.
#pragma once
#include <cstdint>
#include <string>
#include <string_view>

namespace sealgate::crypto {

inline constexpr std::string_view loop_header = "Sealgate-Loop";

// "v=1; h=HOST; t=UNIX; m=MAC", MAC the first 128 bits of
// HMAC-SHA256(secret, "v=1; h=HOST; t=UNIX"), base64url. Bound to nothing of
// the message: a stamp copied onto another message can only get that message
// refused, which whoever copied it could do anyway.
std::string loop_stamp(std::string_view secret, std::string_view host, int64_t now);

// True for a stamp this secret made at most max_age seconds ago (and not more
// than five minutes ahead of now). A forged or stale stamp is ignored.
bool loop_stamp_valid(std::string_view secret, std::string_view value, int64_t now, int64_t max_age);

}  // namespace sealgate::crypto
