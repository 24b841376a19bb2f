// The `portal:` section of the configuration (docs/configuration.md), read by
// the gateway (deposit, notification, outbox) and by `sealgate portal run`
// (the HTTPS process). Absent section: the portal is not configured, and the
// policy never chooses it.
#pragma once
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "common/ip_network.hpp"
#include "portal/store/store.hpp"

namespace sealgate::portal {

struct notice_template {
  std::string subject;
  // Placeholders in braces ({{ and }} for braces); the notification knows
  // sender sender_name recipient link expires organisation, the code mail
  // code minutes organisation recipient.
  std::string text;
};

struct portal_config {
  bool configured = false;
  // A SQLite file, default portal.db beside the record's; or a PostgreSQL
  // connection string (default: the record's database, schema "portal").
  sql::location store;
  std::string base_url;                 // https://portal.example.org (links are base_url + "/m/" + token)
  std::string listen_address = "127.0.0.1";
  uint16_t listen_port = 8443;
  std::filesystem::path certificate, private_key;  // default: tls.certificate, tls.private_key
  std::string from;                     // envelope sender and From address of notifications and codes
  std::string organisation = "Secure mail";
  std::filesystem::path logo;           // PNG shown on the pages and in the notification; optional
  std::chrono::seconds expire{30 * 86400};  // for rules without their own portal.expire
  std::filesystem::path master_key;     // optional: 32 bytes, base64 (reissue of lost links)
  std::filesystem::path outbox_key;     // the gateway's X25519 key for the outbox; default spool/portal-outbox.key
  notice_template notification{
      "{sender_name} sent you a secure message",
      "{sender_name} <{sender}> sent you a message through {organisation}'s secure mail.\n"
      "\n"
      "To read it, open this link:\n"
      "\n"
      "{link}\n"
      "\n"
      "You will be asked for a code, which we send to this address. The message can be read until {expires}.\n"
      "To answer, reply to this email or use the reply form on the page.\n"};
  notice_template code{"Your code for {organisation} secure mail",
                       "Your code is: {code}\n\nIt is valid for {minutes} minutes. If you did not ask for it, ignore this email.\n"};
  code_rules codes;
  std::chrono::seconds session_lifetime{900};
  uint64_t reply_max_size = 10 * 1024 * 1024;
  unsigned requests_per_minute = 60;  // per client address, on POSTs and pages of a message
  unsigned threads = 2;
  // Peers whose X-Forwarded-For names the client (a load balancer in http
  // mode); empty: the TCP peer is the client, whatever the header says.
  std::vector<ip_network> trusted_proxies;
};

}  // namespace sealgate::portal
