// Intake from cloud tenants (issue 15): the relay classes and their pins, the
// loop checks, the configuration of both and of dkim:, and the outgoing
// finisher (stamp, broken signatures out, ours in). End to end with real
// clients and dkimpy: tests/integration/intake_test.py.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "common/text.hpp"
#include "crypto/dkim.hpp"
#include "crypto/loop_stamp.hpp"
#include "gateway/config/config.hpp"
#include "gateway/inbound/relay_access.hpp"
#include "gateway/methods/outgoing.hpp"

using namespace sealgate::gateway;
namespace fs = std::filesystem;
namespace asio = boost::asio;

namespace {

const fs::path dkim_data = fs::path(SEALGATE_SOURCE_DIR) / "tests/unit/data/dkim";
const char* tenant = "72f988bf-0000-4000-8000-00000000c0de";

class IntakeConfig : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/sealgate-intake-XXXXXX";
    dir_ = mkdtemp(tmpl);
  }
  void TearDown() override { fs::remove_all(dir_); }
  fs::path write(const std::string& name, const std::string& text) {
    auto p = dir_ / name;
    std::ofstream(p) << text;
    return p;
  }
  config load(const std::string& text) { return load_config(write("sealgate.yaml", base + text)); }
  std::string error_of(const std::string& text) {
    try {
      load(text);
    } catch (const config_error& e) {
      // Positions name the file relative to nothing: drop the directory.
      std::string text = e.what(), prefix = dir_.string() + "/";
      for (size_t at; (at = text.find(prefix)) != std::string::npos;) text.erase(at, prefix.size());
      return text;
    }
    return "no error";
  }
  const std::string base = "listeners:\n  - {name: a, tls: none, auth: none}\n";
  fs::path dir_;
};

relay_class m365_class() {
  relay_class c;
  c.name = "m365";
  c.match_network = true;
  c.networks.push_back(*sealgate::ip_network::parse("40.92.0.0/15"));
  c.tenant_ids = {tenant};
  return c;
}

}  // namespace

TEST_F(IntakeConfig, ClassesLoadWithRangesFilesAndPins) {
  write("ranges.txt", "# sealgate-ranges: shared-infrastructure\n# source: test\n40.92.0.0/15  # EOP\n\n2a01:111:f400::/48\n");
  write("ca.pem", "");
  auto c = load(
      "relay:\n  client_ca: ca.pem\n  classes:\n"
      "    - {name: m365, networks_file: ranges.txt, tenant_ids: [72F988BF-0000-4000-8000-00000000C0DE]}\n"
      "    - name: apps\n      networks: [10.1.0.0/16]\n      certificate: {san: App.Example.org}\n"
      "      users: [billing]\n      sender_domains: [B\xC3\xBC" "cher.example]\n");
  ASSERT_EQ(c.relay_classes.size(), 2u);
  EXPECT_TRUE(c.relay_classes[0].shared_infrastructure);
  EXPECT_EQ(c.relay_classes[0].networks.size(), 2u);
  EXPECT_EQ(c.relay_classes[0].tenant_ids, std::vector<std::string>{tenant});
  EXPECT_EQ(c.relay_classes[1].certificate.san, "app.example.org");
  EXPECT_EQ(c.relay_classes[1].sender_domains, std::vector<std::string>{"xn--bcher-kva.example"});
  EXPECT_EQ(c.relay_client_ca, dir_ / "ca.pem");
  EXPECT_EQ(c.limits.received_headers, 50u);
  EXPECT_EQ(c.loop.secret_file, c.spool / "loop.key");
}

TEST_F(IntakeConfig, SharedRangesWithoutAPinAreRefused) {
  write("ranges.txt", "# sealgate-ranges: shared-infrastructure\n40.92.0.0/15\n");
  EXPECT_EQ(error_of("relay:\n  classes:\n    - {name: m365, networks_file: ranges.txt}\n"),
            "sealgate.yaml:5:7: relay.classes[0]: ranges.txt lists servers shared by every tenant: pin tenant_ids or "
            "sender_domains");
  write("bad.txt", "40.92.0.1/15\n");
  EXPECT_EQ(error_of("relay:\n  classes:\n    - {name: x, networks_file: bad.txt}\n"),
            "sealgate.yaml:5:32: relay.classes[0].networks_file: bad.txt line 1: '40.92.0.1/15' is not a CIDR network: "
            "host bits set below the prefix length");
  EXPECT_EQ(error_of("relay:\n  classes:\n    - {name: x, tenant_ids: [not-a-guid]}\n"),
            "sealgate.yaml:5:30: relay.classes[0].tenant_ids: 'not-a-guid' is not a tenant ID (a GUID such as "
            "72f988bf-86f1-41af-91ab-2d7cd011db47)\n"
            "sealgate.yaml:5:7: relay.classes[0]: names no client: give networks, networks_file, certificate or users");
  EXPECT_EQ(error_of("relay:\n  classes:\n    - {name: x, certificate: {san: a.example}}\n"),
            "sealgate.yaml:5:7: relay.classes[0].certificate: needs relay.client_ca (the CAs client certificates are "
            "verified against)");
}

TEST_F(IntakeConfig, DkimKeysAreCheckedAtLoad) {
  fs::copy_file(dkim_data / "rfc8463-ed25519.pem", dir_ / "ed.pem");
  auto c = load("dkim:\n  keys:\n    - {domain: Example.ORG, selector: S1, private_key: ed.pem}\n"
                "  domains: {mail.example.net: example.org}\n  existing_signatures: keep\n");
  ASSERT_EQ(c.dkim.keys.size(), 1u);
  EXPECT_EQ(c.dkim.keys[0].domain, "example.org");
  EXPECT_EQ(c.dkim.keys[0].selector, "s1");
  EXPECT_EQ(c.dkim.keys[0].key->algorithm(), sealgate::crypto::dkim_algorithm::ed25519_sha256);
  EXPECT_EQ(c.dkim.domains.at("mail.example.net"), "example.org");
  EXPECT_EQ(c.dkim.existing, existing_signatures::keep);

  write("cert.pem", "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n");
  EXPECT_EQ(error_of("dkim:\n  keys:\n    - {domain: example.org, selector: s1, private_key: cert.pem}\n"),
            "sealgate.yaml:5:56: dkim.keys[0].private_key: cert.pem: not a PEM private key");
  fs::copy_file(dkim_data / "ec-p256.pem", dir_ / "ec.pem");
  EXPECT_EQ(error_of("dkim:\n  keys:\n    - {domain: example.org, selector: s1, private_key: ec.pem}\n"),
            "sealgate.yaml:5:56: dkim.keys[0].private_key: ec.pem: neither an RSA nor an Ed25519 key (DKIM has no other algorithm)");
  EXPECT_EQ(error_of("dkim:\n  keys:\n    - {domain: example.org, selector: s1, private_key: ed.pem}\n"
                     "  domains: {a.example: b.example}\n"),
            "sealgate.yaml:6:24: dkim.domains.a.example: no key in dkim.keys signs for b.example");
  EXPECT_EQ(error_of("loop: {secret: short}\n"), "sealgate.yaml:3:16: loop.secret: must be at least 16 characters");
  // Missing keys are reported, not thrown (found by fuzz_config).
  EXPECT_EQ(error_of("dkim:\n  keys:\n    - {domain: example.org, selector: s1}\n"),
            "sealgate.yaml:5:7: dkim.keys[0].private_key: is needed");
  EXPECT_EQ(error_of("relay:\n  classes:\n    - {networks: [10.0.0.0/8]}\n"),
            "sealgate.yaml:5:7: relay.classes[0].name: is needed");
}

TEST(RelayAccess, ClassesDecideInOrderThenNetworksThenAuth) {
  std::vector<relay_class> classes{m365_class()};
  relay_client eop{asio::ip::make_address("40.92.1.2"), false, nullptr, "", "a@contoso.test"};
  auto m = match_relay(classes, eop);
  ASSERT_TRUE(m);
  EXPECT_EQ(m->name, "m365");
  EXPECT_EQ(m->cls, &classes[0]);
  relay_client stranger{asio::ip::make_address("192.0.2.1"), false, nullptr, "", "a@contoso.test"};
  EXPECT_FALSE(match_relay(classes, stranger));
  stranger.in_relay_networks = true;
  EXPECT_EQ(match_relay(classes, stranger)->name, "networks");
  stranger.in_relay_networks = false;
  stranger.auth_user = "app";
  EXPECT_EQ(match_relay(classes, stranger)->name, "auth");

  // sender_domains: at RCPT; the null sender only where a tenant pin proves it.
  classes[0].sender_domains = {"contoso.test"};
  EXPECT_TRUE(match_relay(classes, eop));
  eop.sender = "a@fabrikam.test";
  EXPECT_FALSE(match_relay(classes, eop));
  eop.sender = "";
  EXPECT_TRUE(match_relay(classes, eop));
  classes[0].tenant_ids.clear();
  EXPECT_FALSE(match_relay(classes, eop));
}

TEST(RelayAccess, CertificateClassNeedsAVerifiedMatchingCertificate) {
  relay_class c;
  c.name = "partner";
  c.match_certificate = true;
  c.certificate = {"CN=Test CA,O=Sealgate Tests", "CN=relay.partner.test", "relay.partner.test"};
  std::vector<relay_class> classes{c};
  sealgate::crypto::client_certificate cert{true, true, "CN=Test CA,O=Sealgate Tests", "CN=relay.partner.test",
                                            {"relay.partner.test"}};
  relay_client client{asio::ip::make_address("127.0.0.9"), false, &cert, "", "a@partner.test"};
  EXPECT_TRUE(match_relay(classes, client));
  cert.subject = "CN=other.partner.test";  // the right issuer, another subject
  EXPECT_FALSE(match_relay(classes, client));
  cert.subject = "CN=relay.partner.test";
  cert.verified = false;
  EXPECT_FALSE(match_relay(classes, client));
  cert.verified = true;
  cert.dns_names = {"other.partner.test"};
  EXPECT_FALSE(match_relay(classes, client));
  client.certificate = nullptr;
  EXPECT_FALSE(match_relay(classes, client));
}

TEST(RelayAccess, TenantPinAndLoopChecks) {
  relay_class c = m365_class();
  intake_checks checks;
  checks.cls = &c;
  checks.now = 1'800'000'000;
  std::string ok = std::string("X-MS-Exchange-CrossTenant-id: ") + tenant + "\r\nFrom: a@contoso.test\r\n";
  EXPECT_FALSE(check_content(ok, checks));
  auto other = check_content("X-MS-Exchange-CrossTenant-Id: 11111111-2222-3333-4444-555555555555\r\n", checks);
  ASSERT_TRUE(other);
  EXPECT_EQ(other->code, 550);
  EXPECT_EQ(other->status, "5.7.1");
  EXPECT_EQ(other->text, "Relay access denied: tenant 11111111-2222-3333-4444-555555555555 may not relay through class m365");
  EXPECT_EQ(check_content("From: a@contoso.test\r\n", checks)->text,
            "Relay access denied: class m365 needs the X-MS-Exchange-CrossTenant-Id of an allowed tenant");
  // A second, different value (one written by the sender, one stamped by
  // Exchange) is refused rather than guessed at.
  EXPECT_EQ(check_content(ok + "X-MS-Exchange-CrossTenant-Id: 11111111-2222-3333-4444-555555555555\r\n", checks)->text,
            "Relay access denied: conflicting X-MS-Exchange-CrossTenant-Id fields");

  checks.cls = nullptr;
  std::string received;
  for (int i = 0; i < 50; ++i) received += "Received: from a by b; Mon, 1 Jan 2026 00:00:00 +0000\r\n";
  EXPECT_FALSE(check_content(received, checks));
  auto loop = check_content(received + "Received: x\r\n", checks);
  ASSERT_TRUE(loop);
  EXPECT_EQ(loop->code, 554);
  EXPECT_EQ(loop->status, "5.4.6");

  const std::string secret = "0123456789abcdef0123456789abcdef";
  checks.loop_secret = secret;
  checks.loop_max_passes = 2;
  std::string stamp = "Sealgate-Loop: " + sealgate::crypto::loop_stamp(secret, "gw.test", checks.now - 60) + "\r\n";
  EXPECT_FALSE(check_content(stamp + stamp, checks));
  auto looped = check_content(stamp + stamp + stamp, checks);
  ASSERT_TRUE(looped);
  EXPECT_EQ(looped->text, "Mail loop: this message has passed this gateway 3 times already");
  // Forged (another secret), altered, or stale stamps do not count.
  std::string forged = "Sealgate-Loop: " + sealgate::crypto::loop_stamp("another secret, 16+", "gw.test", checks.now) + "\r\n";
  EXPECT_FALSE(check_content(stamp + stamp + forged, checks));
  std::string altered = stamp;
  altered.replace(altered.find("gw.test"), 7, "gx.test");
  EXPECT_FALSE(check_content(stamp + stamp + altered, checks));
  std::string stale = "Sealgate-Loop: " + sealgate::crypto::loop_stamp(secret, "gw.test", checks.now - 8 * 86400) + "\r\n";
  EXPECT_FALSE(check_content(stamp + stamp + stale, checks));
}

TEST(Outgoing, SigningDomainFromTheFromField) {
  dkim_options o;
  auto key = std::make_shared<const sealgate::crypto::dkim_private_key>(
      *sealgate::crypto::dkim_private_key::load(dkim_data / "rfc8463-ed25519.pem", nullptr));
  o.keys.push_back({"example.org", "s1", {}, key});
  o.domains["example.net"] = "example.org";
  EXPECT_EQ(from_domain("\"Doe, Jane\" <jane@Billing.Example.ORG>"), "billing.example.org");
  EXPECT_EQ(from_domain("jane@example.org (Jane)"), "example.org");
  EXPECT_EQ(from_domain("undisclosed"), "");
  EXPECT_EQ(signing_domain(o, "billing.example.org"), "example.org");
  EXPECT_EQ(signing_domain(o, "example.net"), "example.org");
  EXPECT_EQ(signing_domain(o, "other.example"), "");
  EXPECT_EQ(signing_domain(o, "org"), "");
}

// What the finisher changes, checked with our own canonicalisation; dkimpy
// verifies real deliveries in the integration test.
TEST(Outgoing, StampsSignsAndRemovesWhatTheChangeBroke) {
  dkim_options o;
  auto key = std::make_shared<const sealgate::crypto::dkim_private_key>(
      *sealgate::crypto::dkim_private_key::load(dkim_data / "rfc8463-rsa.pem", nullptr));
  o.keys.push_back({"football.example.com", "test", {}, key});
  outgoing_finisher f(o, "0123456789abcdef0123456789abcdef", "gw.test");
  std::string signed_msg;
  {
    std::ifstream in(dkim_data / "rfc8463-signed.eml", std::ios::binary);
    signed_msg.assign(std::istreambuf_iterator<char>(in), {});
  }
  auto original = message_content::in_memory(signed_msg);
  // Unchanged: the tenant's two signatures stay, ours goes on top.
  auto same = f.finish(original, original, 1'800'000'000);
  std::string out;
  ASSERT_TRUE(same.content->read_all(out));
  EXPECT_EQ(same.signatures_removed, 0u);
  EXPECT_EQ(same.signed_by, "d=football.example.com s=test a=rsa-sha256");
  EXPECT_EQ(out.rfind("DKIM-Signature: v=1; a=rsa-sha256; c=relaxed/relaxed;", 0), 0u) << out;
  EXPECT_NE(out.find("\r\nSealgate-Loop: v=1; h=gw.test; t=1800000000; m="), std::string::npos);
  EXPECT_NE(out.find("b=/gCrinpcQOoIfuHNQIbq4pgh9kyIK3AQUdt9OdqQehSwhEIug4D11Bus"), std::string::npos);
  EXPECT_EQ(out.substr(out.find("\r\n\r\n")), signed_msg.substr(signed_msg.find("\r\n\r\n")));

  // A changed body breaks both: they go, ours covers the new body.
  std::string changed = signed_msg;
  changed.replace(changed.find("We lost"), 7, "We won ");
  auto after_body = f.finish(original, message_content::in_memory(changed), 1'800'000'000);
  EXPECT_EQ(after_body.signatures_removed, 2u);
  ASSERT_TRUE(after_body.content->read_all(out));
  EXPECT_EQ(out.find("b=/gCrinpc"), std::string::npos);
  // A changed signed header (the Subject tag stripped) breaks them too.
  std::string subject = signed_msg;
  subject.replace(subject.find("Is dinner"), 2, "IS");
  EXPECT_EQ(f.finish(original, message_content::in_memory(subject), 1'800'000'000).signatures_removed, 2u);
  // An unsigned header added (as the stamp is) breaks nothing.
  std::string added = signed_msg;
  added.insert(added.find("From:"), "X-Note: 1\r\n");
  EXPECT_EQ(f.finish(original, message_content::in_memory(added), 1'800'000'000).signatures_removed, 0u);

  // No empty line in the first MiB of a larger message: left as it came.
  auto huge = message_content::in_memory("From: a@football.example.com\r\nX: " + std::string(1536 * 1024, 'a'));
  EXPECT_EQ(f.finish(huge, huge, 1).content, huge);
  // ...but a message that is only the empty line is no such message: it is
  // stamped like any other (the fuzzer found the old test mixing them up).
  auto bare = message_content::in_memory("\r\n");
  std::string bare_out;
  ASSERT_TRUE(f.finish(bare, bare, 1).content->read_all(bare_out));
  EXPECT_EQ(bare_out.rfind("Sealgate-Loop: ", 0), 0u) << bare_out;

  // keep: left alone however broken; remove: always gone.
  o.existing = existing_signatures::keep;
  EXPECT_EQ(outgoing_finisher(o, "", "gw.test").finish(original, message_content::in_memory(changed), 1).signatures_removed, 0u);
  o.existing = existing_signatures::remove;
  EXPECT_EQ(outgoing_finisher(o, "", "gw.test").finish(original, original, 1).signatures_removed, 2u);
}
