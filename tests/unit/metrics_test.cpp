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
