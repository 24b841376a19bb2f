// fuzz_intake: what the intake checks and the outgoing finisher read of a
// message a client sent (issue 15): the header block split into fields, the
// loop and tenant checks after DATA (gateway/inbound/relay_access), DKIM's
// canonicalisations (crypto/dkim) and the finisher judging the signatures a
// message arrived with (gateway/methods/outgoing). Input: a switch byte (the
// body cut point, whether the body is changed), then a message.
#include <string>
#include <string_view>

#include "common/text.hpp"
#include "crypto/dkim.hpp"
#include "crypto/loop_stamp.hpp"
#include "gateway/inbound/relay_access.hpp"
#include "gateway/methods/outgoing.hpp"
#include "tests/fuzz/fuzz_input.hpp"
#include "tests/fuzz/fuzz_parsers.hpp"

namespace sealgate::fuzz {
namespace {

const std::string secret = "fuzz loop secret, 16+ characters";

const gateway::outgoing_finisher& finisher() {
  static const gateway::outgoing_finisher f = [] {
    gateway::dkim_options o;
    // Ed25519: signing costs little, so the finisher's parsing gets the runs.
    auto key = crypto::dkim_private_key::generate(crypto::dkim_algorithm::ed25519_sha256);
    o.keys.push_back({"example.org", "fz", {}, std::make_shared<const crypto::dkim_private_key>(std::move(key))});
    return gateway::outgoing_finisher(o, secret, "gw.fuzz.test");
  }();
  return f;
}

}  // namespace

void feed_intake(const uint8_t* data, size_t size, parse_counts& counts) {
  input_cursor in(data, size);
  const uint8_t cut = in.byte();
  const bool change_body = in.byte() & 1;
  std::string message = with_crlf(in.rest());
  // The header block as the finisher reads it: none when the content starts
  // with the empty line, all of it when there is no empty line.
  size_t end = message.find("\r\n\r\n");
  size_t body_at = std::string::npos;
  std::string block;
  if (message.rfind("\r\n", 0) == 0) {
    body_at = 2;
  } else if (end != std::string::npos) {
    block = message.substr(0, end + 2);
    body_at = end + 4;
  } else {
    block = message;
  }

  // The fields are the block, cut at field boundaries, nothing lost or added.
  auto fields = crypto::split_header_fields(block);
  std::string joined;
  for (const auto& f : fields) {
    joined += f.raw;
    // RFC 6376 3.4.2: one line; in the value, no WSP run and none at either end.
    std::string canon = crypto::dkim_relaxed_header(f.raw, true);
    SEALGATE_FUZZ_CHECK(canon.find_first_of("\r\n") == std::string::npos);
    std::string_view value = std::string_view(canon).substr(canon.find(':') + 1);
    SEALGATE_FUZZ_CHECK(value.find("  ") == std::string::npos && value.find('\t') == std::string::npos);
    SEALGATE_FUZZ_CHECK(value.empty() || (value.back() != ' ' && value.front() != ' '));
  }
  SEALGATE_FUZZ_CHECK(block.compare(0, joined.size(), joined) == 0);

  // The body hash does not depend on how the body arrives in pieces.
  std::string_view body = body_at == std::string::npos ? std::string_view() : std::string_view(message).substr(body_at);
  for (bool relaxed : {true, false}) {
    crypto::dkim_body_hash whole(relaxed), pieces(relaxed);
    whole.update(body);
    size_t at = body.empty() ? 0 : cut % (body.size() + 1);
    pieces.update(body.substr(0, at));
    pieces.update(body.substr(at));
    SEALGATE_FUZZ_CHECK(whole.finish() == pieces.finish());
  }

  gateway::relay_class cls;
  cls.name = "m365";
  cls.tenant_ids = {"72f988bf-0000-4000-8000-00000000c0de"};
  gateway::intake_checks checks;
  checks.cls = (cut & 1) ? &cls : nullptr;
  checks.loop_secret = secret;
  checks.now = 1'800'000'000;
  if (auto refusal = gateway::check_content(block, checks)) {
    SEALGATE_FUZZ_CHECK((refusal->code == 554 && refusal->status == "5.4.6") ||
                        (refusal->code == 550 && refusal->status == "5.7.1"));
    SEALGATE_FUZZ_CHECK(refusal->text.find_first_of("\r\n") == std::string::npos);
    ++counts.intake_refused;
  } else {
    ++counts.intake_accepted;
  }
  std::string id = gateway::crosstenant_id(block);
  SEALGATE_FUZZ_CHECK(id.find_first_of(" \t\r\n") == std::string::npos);

  // The finisher: the body leaves as it came, the header block stays a
  // header block, and only DKIM-Signature fields are taken out.
  std::string outgoing = message;
  if (change_body && body_at != std::string::npos) outgoing += "changed\r\n";
  auto original = gateway::message_content::in_memory(message);
  auto result = finisher().finish(original, gateway::message_content::in_memory(outgoing), 1'800'000'000);
  std::string out;
  SEALGATE_FUZZ_CHECK(result.content->read_all(out));
  size_t signatures = 0;
  for (const auto& f : fields) signatures += iequals_ascii(f.name, "DKIM-Signature");
  SEALGATE_FUZZ_CHECK(result.signatures_removed <= signatures);
  // Only the header block is replaced: everything after it leaves as it was.
  std::string_view rest = std::string_view(outgoing).substr(block.size());
  SEALGATE_FUZZ_CHECK(out.size() >= rest.size() && std::string_view(out).substr(out.size() - rest.size()) == rest);
  SEALGATE_FUZZ_CHECK(out.rfind(std::string(crypto::loop_header) + ": v=1; h=gw.fuzz.test; t=1800000000; m=", 0) == 0 ||
                      out.rfind("DKIM-Signature: ", 0) == 0);
  if (!result.signed_by.empty()) ++counts.intake_signed;
}

}  // namespace sealgate::fuzz
