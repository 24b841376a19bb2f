// Every delivery method, registered once: the policy's choice to the type
// that acts on it (method.hpp). One line per method.
#include <array>
#include <stdexcept>

#include "gateway/methods/defer.hpp"
#include "gateway/methods/encryption.hpp"
#include "gateway/methods/hold.hpp"
#include "gateway/methods/portal.hpp"
#include "gateway/methods/reject.hpp"
#include "gateway/methods/smtp.hpp"

namespace sealgate::gateway {
namespace {

const smtp_method tls{policy::method::tls};
const smtp_method plain{policy::method::plain};
const encryption_method pgp{policy::method::pgp};
const encryption_method smime{policy::method::smime};
const portal_method portal;
const reject_method reject;
const hold_method hold;
const defer_method defer;

const std::array<const delivery_method*, 8> registered{&tls, &plain, &pgp, &smime, &portal, &reject, &hold, &defer};

}  // namespace

const delivery_method& method_for(policy::method m) {
  for (const auto* method : registered)
    if (method->id() == m) return *method;
  // policy::method and this table are kept in step by MethodRegistry.EveryPolicyMethodHasOne.
  throw std::logic_error("no delivery method registered for " + std::string(policy::to_string(m)));
}

}  // namespace sealgate::gateway
