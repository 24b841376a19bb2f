// What every store backend shares: the names of entry states, and what a
// store keeps of a session token. Holds no state of its own.
#include "portal/store/store.hpp"

namespace sealgate::portal {

std::string_view to_string(entry_state s) {
  switch (s) {
    case entry_state::active: return "active";
    case entry_state::retracted: return "retracted";
    case entry_state::expired: return "expired";
  }
  return "unknown";
}

std::string session_key(std::string_view session_token) { return hex(sha256(session_token)); }

}  // namespace sealgate::portal
