#include "gateway/mail/outcome.hpp"

namespace sealgate::gateway {
namespace {

outcome make(outcome::kind k, int code, std::string enhanced, std::string text) {
  outcome o;
  o.result = k;
  o.code = code;
  o.enhanced = std::move(enhanced);
  o.public_text = text;
  o.reason = std::move(text);
  return o;
}

}  // namespace

// 451 and 554 are what Postfix's smtpd answers for "try again" and "refused"
// when it stands in for a next hop; an RFC 3463 code carries the detail.
outcome temporary_outcome(std::string enhanced, std::string text) {
  return make(outcome::kind::deferred, 451, std::move(enhanced), std::move(text));
}

outcome permanent_outcome(std::string enhanced, std::string text) {
  return make(outcome::kind::bounced, 554, std::move(enhanced), std::move(text));
}

outcome reply_outcome(int code, const std::string& enhanced, std::string text) {
  auto k = code >= 200 && code < 300 ? outcome::kind::delivered
           : code >= 500             ? outcome::kind::bounced
                                     : outcome::kind::deferred;
  std::string status = !enhanced.empty()                  ? enhanced
                       : k == outcome::kind::delivered ? "2.0.0"
                       : k == outcome::kind::bounced   ? "5.0.0"
                                                       : "4.0.0";
  return make(k, code, std::move(status), std::move(text));
}

outcome reworded(outcome o, std::string enhanced, std::string text) {
  o.enhanced = std::move(enhanced);
  o.public_text = text;
  o.reason = std::move(text);
  return o;
}

}  // namespace sealgate::gateway
