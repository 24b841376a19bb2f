// What became of one recipient on one attempt, or why no attempt was made:
// one value from the transport (or a method, or the queue's own checks) to the
// log, the record and the DSN, as maddy's exterrors.SMTPError. Built only by
// the factories below, so that its kind, code and enhanced status agree.
// Never holds message content.
#pragma once
#include <string>

namespace sealgate::gateway {

struct outcome {
  enum class kind { delivered, deferred, bounced };
  kind result = kind::deferred;
  int code = 451;              // the server's reply code, or the one the gateway stands for (451, 554)
  std::string enhanced = "4.0.0";  // RFC 3463: "2.0.0", "4.4.1", "5.7.10"
  // For the sender (a DSN's Diagnostic-Code) and an SMTP client: the server's
  // reply as received ("550 5.1.1 <a@b>: user unknown"), or the gateway's own
  // words. Must be safe to show outside.
  std::string public_text;
  // For logs and the record: the same, or more (host names, resolver errors).
  std::string reason;

  bool delivered() const { return result == kind::delivered; }
  bool temporary() const { return result == kind::deferred; }  // Postfix: defer; maddy: Temporary()
  bool permanent() const { return result == kind::bounced; }
};

// The gateway's own verdicts. enhanced must start with 4 or 5 to match.
outcome temporary_outcome(std::string enhanced, std::string text);
outcome permanent_outcome(std::string enhanced, std::string text);

// A server's reply: 2xx delivered, 4xx deferred, 5xx bounced; the enhanced
// status it sent, else the class default (2.0.0, 4.0.0, 5.0.0). text is the
// reply as received (remote_reply::text()).
outcome reply_outcome(int code, const std::string& enhanced, std::string text);

// The same verdict with other words (expiry: "delivery time expired; last
// problem: ...").
outcome reworded(outcome o, std::string enhanced, std::string text);

}  // namespace sealgate::gateway
