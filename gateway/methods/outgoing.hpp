// The last change to a message before the transport carries it, after the
// method's (encryption, the Subject rewrite): the Sealgate-Loop trace stamp,
// the tenant's DKIM signatures that the changes broke taken out, and the
// gateway's own DKIM signatures over exactly what leaves. Blocking (it hashes
// the whole content and signs): the queue runs it on a worker.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "crypto/loop_stamp.hpp"
#include "gateway/config/intake_options.hpp"
#include "gateway/mail/message_content.hpp"

namespace sealgate::gateway {

// The domain DKIM signs a message for: the From address's domain mapped by
// dkim.domains, else the domain itself or its nearest parent that has a key
// (relaxed DMARC alignment). "" when no key fits.
std::string signing_domain(const dkim_options& o, std::string_view from_domain);

// The domain of the (first) address of a From field's value, lower case; ""
// when there is none.
std::string from_domain(std::string_view from_value);

class outgoing_finisher {
 public:
  outgoing_finisher(dkim_options dkim, std::string loop_secret, std::string hostname);
  bool does_anything() const { return !dkim_.keys.empty() || !secret_.empty(); }

  struct result {
    std::shared_ptr<const message_content> content;
    std::string signed_by;           // "d=example.org s=sel a=rsa-sha256, ..." for the log; "" unsigned
    unsigned signatures_removed = 0;  // existing DKIM-Signature fields taken out
  };
  // `original` is the message as it arrived (its header block tells which
  // existing signatures the changes broke); `content` is what will leave.
  // Throws std::runtime_error when the content cannot be read.
  result finish(const std::shared_ptr<const message_content>& original,
                const std::shared_ptr<const message_content>& content, int64_t now) const;

 private:
  dkim_options dkim_;
  std::string secret_, hostname_;
};

}  // namespace sealgate::gateway
