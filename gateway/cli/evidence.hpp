// One message's story as evidence: `sealgate queue show ID` and `sealgate
// report --message ID`. From the spool while the message waits, from the
// record for everything that happened to it (envelope, inbound TLS, per
// recipient its classes, rule, policy, method, MX, TLS, certificate
// judgement, key, every attempt), from the portal store for its deposits,
// and from the audit chain: the message's entries and the proof that they
// are intact (their links, and the signed checkpoint that covers them).
// Text for people, JSON for machines, one self-contained HTML page to hand
// to an auditor.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "gateway/config/config.hpp"
#include "gateway/spool/queue_state.hpp"
#include "portal/store/store.hpp"

namespace sealgate::gateway {

// The portal store, read-only, when the portal is configured and its file
// exists; null otherwise (no deposits: a report never creates the store).
// Throws portal::store_error when the file cannot be read.
std::unique_ptr<portal::store> open_portal_store_for_report(const config& cfg);

// format: "text" (or "table"), "json" or "html". Exit status: 0, or 1 when
// the message is unknown, the portal store cannot be read, or (with_proof)
// its audit entries do not verify.
int show_message(const config& cfg, const std::string& id, std::string_view format, bool with_proof);

// A waiting recipient's state as `queue list` names it: queued, held, deferred.
std::string state_text(const rcpt_status& s);

}  // namespace sealgate::gateway
