// common/metrics: the series exist from the start with their closed label
// sets, unknown values land in "other", and the text is what Prometheus reads.
#include "common/metrics.hpp"

#include <gtest/gtest.h>

using sealgate::metrics::registry;

namespace {
bool has_line(const std::string& text, const std::string& line) {
  return text.find("\n" + line + "\n") != std::string::npos;
}
}  // namespace

TEST(Metrics, SeriesExistBeforeAnythingHappens) {
  registry r({"smarthost"});
  std::string t = r.text();
  EXPECT_TRUE(has_line(t, "sealgate_messages_accepted_total{listener=\"smarthost\"} 0")) << t;
  EXPECT_TRUE(has_line(t, "sealgate_messages_refused_total{listener=\"smarthost\",reason=\"tenant_pin\"} 0"));
  EXPECT_TRUE(has_line(t, "sealgate_recipients_total{method=\"pgp\",status=\"deferred\"} 0"));
  EXPECT_TRUE(has_line(t, "sealgate_outbound_transfers_total{certificate=\"dane\",result=\"delivered\",tls_version=\"1.3\"} 0"));
  EXPECT_NE(t.find("# TYPE sealgate_delivery_latency_seconds histogram"), std::string::npos);
}

TEST(Metrics, CountsGoToTheirSeriesAndUnknownValuesToOther) {
  registry r({"smarthost"});
  r.accepted("smarthost");
  r.accepted("dsn");  // the gateway's own mail: not a configured listener
  r.refused("smarthost", sealgate::metrics::refusal::loop);
  r.recipient("smime", sealgate::metrics::recipient_status::delivered);
  r.recipient("carrier-pigeon", sealgate::metrics::recipient_status::bounced);
  r.transfer("TLSv1.3", "dane", "delivered");
  r.transfer("SSLv3", "mystery", "eaten");
  r.transfer("", "", "deferred");
  r.connection_opened("smarthost");
  std::string t = r.text();
  EXPECT_TRUE(has_line(t, "sealgate_messages_accepted_total{listener=\"smarthost\"} 1")) << t;
  EXPECT_TRUE(has_line(t, "sealgate_messages_accepted_total{listener=\"other\"} 1"));
  EXPECT_TRUE(has_line(t, "sealgate_messages_refused_total{listener=\"smarthost\",reason=\"loop\"} 1"));
  EXPECT_TRUE(has_line(t, "sealgate_recipients_total{method=\"smime\",status=\"delivered\"} 1"));
  EXPECT_TRUE(has_line(t, "sealgate_recipients_total{method=\"none\",status=\"bounced\"} 1"));
  EXPECT_TRUE(has_line(t, "sealgate_outbound_transfers_total{certificate=\"dane\",result=\"delivered\",tls_version=\"1.3\"} 1"));
  EXPECT_TRUE(has_line(t, "sealgate_outbound_transfers_total{certificate=\"other\",result=\"other\",tls_version=\"other\"} 1"));
  EXPECT_TRUE(has_line(t, "sealgate_outbound_transfers_total{certificate=\"none\",result=\"deferred\",tls_version=\"none\"} 1"));
  EXPECT_TRUE(has_line(t, "sealgate_connections_open{listener=\"smarthost\"} 1"));
}

TEST(Metrics, TlsSessionsKeyLookupsPortalAndTheQueueAtScrape) {
  registry r({});
  r.tls_session("tlsa", "success");
  r.tls_session("sts", "certificate-host-mismatch");
  r.tls_session("smoke-signals", "eaten");  // neither is RFC 8460's: no-policy-found, other
  r.probe_cache(true);
  r.probe_cache(false);
  r.probe_cache(false);
  r.key_lookup("wkd", "found");
  r.key_lookup("cache", "tempfail");
  r.key_lookup("carrier-pigeon", "maybe");
  r.portal_event("deposited");
  r.encryption("pgp", std::chrono::milliseconds(3));
  int scrapes = 0;
  r.on_scrape([&] {
    ++scrapes;
    r.queue_state("deferred", 4, 3600);
    r.queue_state("limbo", 9, 9);  // not a state: ignored
  });
  std::string t = r.text();
  EXPECT_EQ(scrapes, 1);
  EXPECT_TRUE(has_line(t, "sealgate_outbound_tls_sessions_total{policy_type=\"tlsa\",result=\"success\"} 1")) << t;
  EXPECT_TRUE(has_line(t, "sealgate_outbound_tls_sessions_total{policy_type=\"sts\",result=\"certificate-host-mismatch\"} 1"));
  EXPECT_TRUE(has_line(t, "sealgate_outbound_tls_sessions_total{policy_type=\"no-policy-found\",result=\"other\"} 1"));
  EXPECT_TRUE(has_line(t, "sealgate_probe_cache_total{result=\"hit\"} 1"));
  EXPECT_TRUE(has_line(t, "sealgate_probe_cache_total{result=\"miss\"} 2"));
  EXPECT_TRUE(has_line(t, "sealgate_key_lookups_total{result=\"found\",source=\"wkd\"} 1"));
  EXPECT_TRUE(has_line(t, "sealgate_key_lookups_total{result=\"tempfail\",source=\"cache\"} 1"));
  EXPECT_TRUE(has_line(t, "sealgate_key_lookups_total{result=\"other\",source=\"other\"} 1"));
  EXPECT_TRUE(has_line(t, "sealgate_portal_events_total{event=\"deposited\"} 1"));
  EXPECT_TRUE(has_line(t, "sealgate_encryption_seconds_count{method=\"pgp\"} 1"));
  EXPECT_TRUE(has_line(t, "sealgate_queue_messages{state=\"deferred\"} 4"));
  EXPECT_TRUE(has_line(t, "sealgate_queue_oldest_message_age_seconds{state=\"deferred\"} 3600"));
  EXPECT_TRUE(has_line(t, "sealgate_queue_messages{state=\"held\"} 0"));
  EXPECT_EQ(t.find("limbo"), std::string::npos);
  r.on_scrape({});
  r.text();
  EXPECT_EQ(scrapes, 1);
}
