// The method seam (gateway/methods/): every choice the policy can make has a
// registered method, and each acts as its file says.
#include <gtest/gtest.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_future.hpp>

#include "gateway/methods/method.hpp"

using namespace sealgate::gateway;
namespace policy = sealgate::policy;
namespace asio = boost::asio;

namespace {

method_action run(policy::method m, method_request request) {
  asio::io_context io;
  auto f = asio::co_spawn(io, method_for(m).act(std::move(request)), asio::use_future);
  io.run();
  return f.get();
}

}  // namespace

TEST(MethodRegistry, EveryPolicyMethodHasOne) {
  for (auto m : {policy::method::pgp, policy::method::smime, policy::method::tls, policy::method::plain,
                 policy::method::portal, policy::method::reject, policy::method::hold, policy::method::defer})
    EXPECT_EQ(method_for(m).id(), m) << policy::to_string(m);
}

TEST(MethodRegistry, TlsAndPlainSendTheMessageAsItIs) {
  policy::decision d;
  auto content = message_content::in_memory("Subject: x\r\n\r\nbody\r\n");
  for (auto m : {policy::method::tls, policy::method::plain}) {
    auto a = run(m, {"Q", "a@b.example", &d, content, nullptr, nullptr, ""});
    EXPECT_EQ(a.next, method_action::step::send);
    EXPECT_EQ(a.content, content);
    EXPECT_FALSE(a.own_transfer);
  }
}

TEST(MethodRegistry, RejectBouncesWithTheRulesText) {
  policy::decision d;
  d.rule = "restricted";
  auto a = run(policy::method::reject, {"Q", "a@b.example", &d, nullptr, nullptr, nullptr, ""});
  EXPECT_EQ(a.next, method_action::step::bounce);
  EXPECT_EQ(a.result.enhanced, "5.7.1");
  EXPECT_EQ(a.result.reason, "refused by policy rule restricted");
  d.reject_text = "no mail to this address";
  EXPECT_EQ(run(policy::method::reject, {"Q", "a@b.example", &d, nullptr, nullptr, nullptr, ""}).result.public_text,
            "no mail to this address");
}

TEST(MethodRegistry, EncryptionWithoutAnEngineIsAMethodFailureNeverTheClearMessage) {
  policy::decision d;
  encrypt_function none;
  auto a = run(policy::method::pgp, {"Q", "a@b.example", &d, message_content::in_memory("x\r\n"), &none, nullptr, ""});
  EXPECT_EQ(a.next, method_action::step::method_failed);
  EXPECT_EQ(a.content, nullptr);
  EXPECT_EQ(a.result.reason, "no encryption engine is configured");
}

TEST(MethodRegistry, HoldDeferAndRejectNeedNoContent) {
  for (auto m : {policy::method::hold, policy::method::defer, policy::method::reject})
    EXPECT_FALSE(method_for(m).reads_content()) << policy::to_string(m);
  EXPECT_TRUE(method_for(policy::method::portal).reads_content());
  policy::decision d;
  EXPECT_EQ(run(policy::method::hold, {"Q", "a@b.example", &d, nullptr, nullptr, nullptr, ""}).next, method_action::step::hold);
  EXPECT_EQ(run(policy::method::defer, {"Q", "a@b.example", &d, nullptr, nullptr, nullptr, ""}).next, method_action::step::defer);
  EXPECT_EQ(run(policy::method::portal, {"Q", "a@b.example", &d, nullptr, nullptr, nullptr, ""}).next,
            method_action::step::method_failed);
}

// The portal deposits through the function it is given and hands the queue
// the notification; a failed deposit is a method failure (the rule decides),
// never a delivery.
TEST(MethodRegistry, PortalDepositsAndReturnsTheNotification) {
  policy::decision d;
  d.portal_expire = 1234;
  portal_deposit_request seen;
  deposit_function deposit = [&seen](portal_deposit_request r,
                                     std::string*) -> boost::asio::awaitable<std::optional<portal_deposit_result>> {
    seen = r;
    co_return portal_deposit_result{7, "notification text"};
  };
  auto content = message_content::in_memory("Subject: x\r\n\r\nbody\r\n");
  auto a = run(policy::method::portal, {"Q", "a@b.example", &d, content, nullptr, &deposit, "s@ours.example"});
  EXPECT_EQ(a.next, method_action::step::deposited);
  EXPECT_TRUE(a.result.delivered());
  EXPECT_EQ(a.notification, "notification text");
  EXPECT_EQ(a.portal_entry, 7);
  EXPECT_EQ(seen.expire, 1234);
  EXPECT_EQ(seen.sender, "s@ours.example");
  EXPECT_EQ(seen.recipient, "a@b.example");

  deposit_function failing = [](portal_deposit_request,
                                std::string* why) -> boost::asio::awaitable<std::optional<portal_deposit_result>> {
    *why = "disk full";
    co_return std::nullopt;
  };
  a = run(policy::method::portal, {"Q", "a@b.example", &d, content, nullptr, &failing, "s@ours.example"});
  EXPECT_EQ(a.next, method_action::step::method_failed);
  EXPECT_NE(a.result.reason.find("disk full"), std::string::npos);
}
