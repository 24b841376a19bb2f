// One message's evidence; see evidence.hpp.
#include "gateway/cli/evidence.hpp"

#include <algorithm>
#include <ctime>
#include <iomanip>
#include <iostream>
#include <limits>
#include <optional>
#include <sstream>
#include <vector>

#include "common/text.hpp"
#include "gateway/cli/cli_text.hpp"
#include "gateway/record/audit_log.hpp"
#include "gateway/record/report.hpp"

namespace sealgate::gateway {

std::string state_text(const rcpt_status& s) {
  if (s.state == rcpt_state::pending) {
    if (s.next_try == std::numeric_limits<int64_t>::max()) return "held";
    return s.attempts == 0 ? "queued" : "deferred";
  }
  return std::string(to_string(s.state));
}

// The portal store, read-only, when the portal is configured and its file
// exists; null otherwise (no deposits: a report never creates the store).
// Throws portal::store_error when the file cannot be read.
std::unique_ptr<portal::store> open_portal_store_for_report(const config& cfg) {
  if (!cfg.portal.configured || !cfg.portal.store.present()) return nullptr;
  return portal::open_store(cfg.portal.store, portal::store_access::read_only);
}

// One deposit of a message and its events, for the story. Events of no
// deposit the store lists (entry 0: about no one entry) form a group of
// their own per recipient, with no entry.
namespace {

struct deposit_story {
  std::optional<portal::entry> deposit;
  std::string recipient;
  std::vector<portal::event> events;  // in the order they happened
};

std::vector<deposit_story> read_portal_story(portal::store& store, const std::string& id) {
  portal::list_filter f;
  f.queue_id = id;
  f.limit = std::numeric_limits<size_t>::max();
  auto deposits = store.list(f);
  std::vector<deposit_story> out;
  for (auto it = deposits.rbegin(); it != deposits.rend(); ++it)  // oldest first: the envelope's order
    out.push_back({*it, it->recipient, {}});
  for (auto& e : store.events(id)) {
    auto group = std::find_if(out.begin(), out.end(), [&](const deposit_story& d) {
      return d.deposit ? d.deposit->id == e.entry_id : e.entry_id == 0 && d.recipient == e.recipient;
    });
    if (group == out.end()) group = out.insert(out.end(), {std::nullopt, e.recipient, {}});
    group->events.push_back(std::move(e));
  }
  return out;
}

// Whether the message's audit entries are intact, and which signed
// checkpoint covers them (report --message).
struct chain_proof {
  bool checked = false;
  std::string not_checked;  // why, when not checked
  audit::verify_report report;
};

// Everything known about one message, gathered once for every format.
struct evidence {
  std::string id;
  std::optional<queued_message> queued;
  message_story story;
  std::vector<deposit_story> deposits;
  std::vector<audit_entry_record> entries;
  chain_proof proof;
};

void audit_text(std::ostringstream& o, const evidence& ev, bool json) {
  const auto& p = ev.proof;
  const auto* signed_by = p.report.last_signed ? &*p.report.last_signed : nullptr;
  bool covered = signed_by && !ev.entries.empty() && signed_by->seq >= ev.entries.back().seq;
  if (json) {
    o << ", \"audit\": {\"entries\": [";
    for (size_t i = 0; i < ev.entries.size(); ++i) {
      const auto& e = ev.entries[i];
      o << (i ? ", " : "") << "{\"seq\": " << e.seq << ", \"at\": " << json_string(time_text(e.at))
        << ", \"kind\": " << json_string(e.kind) << ", \"hash\": " << json_string(e.hash) << "}";
    }
    o << "], \"checked\": " << (p.checked ? "true" : "false");
    if (!p.checked) o << ", \"not_checked\": " << json_string(p.not_checked);
    if (p.checked) {
      o << ", \"intact\": " << (p.report.intact() ? "true" : "false") << ", \"problems\": [";
      for (size_t i = 0; i < p.report.problems.size(); ++i)
        o << (i ? ", " : "") << json_string("entry " + std::to_string(p.report.problems[i].seq) + ": " + p.report.problems[i].what);
      o << "], \"signed\": " << (covered ? "true" : "false");
      if (covered)
        o << ", \"checkpoint\": {\"seq\": " << signed_by->seq << ", \"at\": " << json_string(time_text(signed_by->at))
          << ", \"head\": " << json_string(signed_by->head) << ", \"key_id\": " << json_string(signed_by->key_id) << "}";
    }
    o << "}";
    return;
  }
  if (ev.entries.empty()) return;
  o << "audit chain:\n";
  for (const auto& e : ev.entries)
    o << "  entry " << e.seq << "  " << time_text(e.at) << "  " << e.kind << "  " << e.hash.substr(0, 16) << "...\n";
  if (!p.checked) {
    o << "  not checked: " << p.not_checked << "\n";
  } else if (!p.report.intact()) {
    for (const auto& f : p.report.problems) o << "  NOT INTACT: entry " << f.seq << ": " << f.what << "\n";
  } else if (covered) {
    o << "  intact, and covered by the checkpoint signed " << time_text(signed_by->at) << " at entry " << signed_by->seq
      << " (key " << signed_by->key_id.substr(0, 16) << "...)\n";
  } else {
    o << "  intact; chained but not yet signed (the next checkpoint covers them)\n";
  }
}

// One message's story: from the spool when it is still there, from the
// record for everything that happened to it, and from the portal store for
// what happened to its deposits (metadata only: the store holds nothing else).
std::string story_text(const evidence& ev, bool json) {
  const auto& id = ev.id;
  const auto& m = ev.queued;
  const auto& story = ev.story;
  const auto& deposits = ev.deposits;
  std::ostringstream o;
  auto field = [&](const char* name, const std::string& value, bool last = false) {
    if (json) o << json_string(name) << ": " << json_string(value) << (last ? "" : ", ");
    else if (!value.empty()) o << std::left << std::setw(16) << (std::string(name) + ":") << value << "\n";
  };
  if (json) o << "{";
  field("id", id);
  field("in_queue", m ? "yes" : "no");
  if (const auto& r = story.message) {
    field("received", time_text(r->received_at));
    field("listener", r->listener);
    field("client", r->client_address);
    field("helo", r->helo);
    field("auth_user", r->auth_user);
    field("relay_class", r->relay_class);
    field("tls", r->tls_protocol.empty() ? "" : r->tls_protocol + " " + r->tls_cipher);
    field("sender", r->sender);
    field("size", std::to_string(r->size));
    field("message_id", r->message_id);
  } else if (m) {
    field("received", time_text(m->envelope.received));
    field("sender", m->envelope.sender);
  }
  if (json) o << "\"recipients\": [";
  else o << "recipients:\n";
  for (size_t i = 0; i < story.recipients.size(); ++i) {
    const auto& r = story.recipients[i];
    // The spool knows better while the recipient waits (held, next try).
    std::string status = r.status;
    if (m && r.index < m->status.size() && !is_final(m->status[r.index].state)) status = state_text(m->status[r.index]);
    if (json) {
      o << (i ? ", " : "") << "{\"address\": " << json_string(r.address) << ", \"status\": " << json_string(status)
        << ", \"method\": " << json_string(r.method) << ", \"rule\": " << json_string(r.rule)
        << ", \"policy_sha256\": " << json_string(r.policy_sha256) << ", \"mx_host\": " << json_string(r.mx_host)
        << ", \"mx_address\": " << json_string(r.mx_address) << ", \"tls_protocol\": " << json_string(r.tls_protocol)
        << ", \"tls_cipher\": " << json_string(r.tls_cipher) << ", \"certificate\": " << json_string(r.certificate)
        << ", \"classes\": " << json_string(r.classes) << ", \"key_fingerprint\": " << json_string(r.key_fingerprint)
        << ", \"attempts\": " << r.attempts << ", \"reply\": " << json_string(r.reply)
        << ", \"final_at\": " << json_string(r.final_at ? time_text(*r.final_at) : "") << "}";
    } else {
      o << "  <" << r.address << "> " << status;
      if (!r.method.empty()) o << " method=" << r.method;
      if (!r.rule.empty()) o << " rule=" << r.rule;
      if (!r.mx_host.empty()) o << " relay=" << r.mx_host << "[" << r.mx_address << "]";
      if (!r.tls_protocol.empty()) o << " tls=" << r.tls_protocol << " cipher=" << r.tls_cipher;
      if (!r.certificate.empty()) o << " certificate=" << r.certificate;
      if (!r.key_fingerprint.empty()) o << " key=" << r.key_fingerprint;
      if (!r.classes.empty()) o << " classes=" << r.classes;
      if (!r.policy_sha256.empty()) o << " policy=" << r.policy_sha256.substr(0, 12);
      if (!r.reply.empty()) o << " (" << r.reply << ")";
      o << "\n";
    }
  }
  if (json) o << "], \"attempts\": [";
  else if (!story.attempts.empty()) o << "attempts:\n";
  for (size_t i = 0; i < story.attempts.size(); ++i) {
    const auto& a = story.attempts[i];
    // Rows are in index order from 0, so the index finds the address (as
    // before; a gap in the rows would print no address rather than a wrong one).
    std::string address = a.index < story.recipients.size() ? story.recipients[a.index].address : "";
    if (json) {
      std::string at = time_text(a.at);
      const std::pair<const char*, const std::string*> columns[] = {
          {"at", &at},
          {"outcome", &a.outcome},
          {"method", &a.method},
          {"rule", &a.rule},
          {"policy_sha256", &a.policy_sha256},
          {"mx_host", &a.mx_host},
          {"mx_address", &a.mx_address},
          {"tls_protocol", &a.tls_protocol},
          {"tls_cipher", &a.tls_cipher},
          {"certificate", &a.certificate},
          {"reply", &a.reply},
          {"classes", &a.classes},
          {"key_fingerprint", &a.key_fingerprint}};
      o << (i ? ", " : "") << "{\"recipient\": " << json_string(address);
      for (const auto& [name, value] : columns) o << ", " << json_string(name) << ": " << json_string(*value);
      o << "}";
    } else {
      o << "  " << time_text(a.at) << " <" << address << "> " << a.outcome;
      if (!a.method.empty()) o << " method=" << a.method;
      if (!a.mx_host.empty()) o << " relay=" << a.mx_host << "[" << a.mx_address << "]";
      if (!a.tls_protocol.empty()) o << " tls=" << a.tls_protocol;
      if (!a.certificate.empty()) o << " certificate=" << a.certificate;
      if (!a.reply.empty()) o << " (" << a.reply << ")";
      o << "\n";
    }
  }
  if (json) o << "], \"portal\": [";
  else if (!deposits.empty()) o << "portal:\n";
  for (size_t i = 0; i < deposits.size(); ++i) {
    const auto& d = deposits[i];
    const portal::entry* e = d.deposit ? &*d.deposit : nullptr;
    std::string state = e ? std::string(portal::to_string(e->state)) : "";
    if (json) {
      o << (i ? ", " : "") << "{\"recipient\": " << json_string(d.recipient) << ", \"entry\": " << (e ? e->id : 0)
        << ", \"state\": " << json_string(state) << ", \"created\": " << json_string(e ? time_text(e->created) : "")
        << ", \"expires\": " << json_string(e ? time_text(e->expires) : "")
        << ", \"notification\": " << json_string(e ? e->notice_queue_id : "") << ", \"events\": [";
      for (size_t k = 0; k < d.events.size(); ++k) {
        const auto& v = d.events[k];
        o << (k ? ", " : "") << "{\"at\": " << json_string(time_text(v.at)) << ", \"kind\": " << json_string(v.kind)
          << ", \"detail\": " << json_string(v.detail) << "}";
      }
      o << "]}";
    } else {
      o << "  <" << d.recipient << ">";
      if (e) {
        o << " entry " << e->id << " " << state << " created=" << time_text(e->created)
          << " expires=" << time_text(e->expires);
        if (!e->notice_queue_id.empty()) o << " notification=" << e->notice_queue_id;
      } else {
        o << " (no deposit)";
      }
      o << "\n";
      for (const auto& v : d.events) {
        o << "    " << time_text(v.at) << " " << v.kind;
        if (!v.detail.empty()) o << " " << v.detail;
        o << "\n";
      }
    }
  }
  if (json) o << "]";
  audit_text(o, ev, json);
  if (json) o << "}\n";
  return o.str();
}


// The same evidence as one page for an auditor: self-contained (no script,
// no remote resource), everything escaped, prints on paper.
std::string story_html(const evidence& ev, const std::string& hostname) {
  std::ostringstream o;
  auto h = [](const std::string& s) { return html_escape(s); };
  auto row = [&](const char* name, const std::string& value) {
    if (!value.empty()) o << "<tr><th>" << name << "</th><td>" << h(value) << "</td></tr>\n";
  };
  o << "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\n"
    << "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'\">\n"
    << "<title>Message " << h(ev.id) << ": delivery evidence</title>\n<style>\n"
    << "body{font-family:'DejaVu Sans',Arial,sans-serif;margin:2em;color:#1b1f24;font-size:14px}"
    << "h1{font-size:1.5em;margin-bottom:.2em}h2{font-size:1.15em;margin-top:1.6em;border-bottom:2px solid #2f5d8a;padding-bottom:.2em}"
    << "table{border-collapse:collapse;margin:.5em 0;width:100%}th,td{border:1px solid #c9d1d9;padding:.3em .5em;"
    << "text-align:left;vertical-align:top}th{background:#eef3f8;font-weight:600}td.mono,span.mono{font-family:'DejaVu Sans Mono',monospace;"
    << "font-size:.9em;word-break:break-all}.ok{color:#14642c;font-weight:600}.bad{color:#a40e26;font-weight:600}"
    << ".muted{color:#57606a}table.kv th{width:14em}"
    << "@media print{body{margin:0;font-size:11px}h2{break-after:avoid}tr{break-inside:avoid}}\n"
    << "</style></head><body>\n";
  o << "<h1>Delivery evidence for message <span class=\"mono\">" << h(ev.id) << "</span></h1>\n";
  o << "<p class=\"muted\">From the record of " << h(hostname) << ", generated "
    << h(time_text(static_cast<int64_t>(std::time(nullptr)))) << ". No message content is held or shown.</p>\n";
  o << "<h2>Message</h2>\n<table class=\"kv\">\n";
  if (const auto& r = ev.story.message) {
    row("Received", time_text(r->received_at));
    row("Message-ID", r->message_id);
    row("Sender", r->sender.empty() ? "<> (null sender)" : r->sender);
    row("Listener", r->listener);
    row("Client", r->client_address + " (HELO " + r->helo + ")");
    row("Authenticated as", r->auth_user);
    row("Admitted by", r->relay_class);
    row("Inbound TLS", r->tls_protocol.empty() ? "none" : r->tls_protocol + " " + r->tls_cipher);
    row("Size", std::to_string(r->size) + " bytes");
  }
  row("Still queued", ev.queued ? "yes" : "no");
  o << "</table>\n<h2>Recipients</h2>\n<table>\n<tr><th>Recipient</th><th>Status</th><th>Method</th><th>Rule and policy</th>"
    << "<th>Classes</th><th>Destination</th><th>TLS</th><th>Certificate</th><th>Key</th><th>Last reply</th></tr>\n";
  for (const auto& r : ev.story.recipients) {
    o << "<tr><td>" << h(r.address) << "</td><td>" << h(r.status) << "</td><td>" << h(r.method) << "</td><td>" << h(r.rule)
      << "<br><span class=\"mono\">" << h(r.policy_sha256) << "</span></td><td>" << h(r.classes) << "</td><td>"
      << h(r.mx_host) << (r.mx_address.empty() ? "" : " [" + h(r.mx_address) + "]") << "</td><td>" << h(r.tls_protocol)
      << "<br>" << h(r.tls_cipher) << "</td><td>" << h(r.certificate) << "</td><td class=\"mono\">" << h(r.key_fingerprint)
      << "</td><td>" << h(r.reply) << "</td></tr>\n";
  }
  o << "</table>\n<h2>Attempts</h2>\n<table>\n<tr><th>Time</th><th>Recipient</th><th>Outcome</th><th>Method</th>"
    << "<th>Destination</th><th>TLS</th><th>Certificate</th><th>Reply</th></tr>\n";
  for (const auto& a : ev.story.attempts) {
    std::string address = a.index < ev.story.recipients.size() ? ev.story.recipients[a.index].address : "";
    o << "<tr><td>" << h(time_text(a.at)) << "</td><td>" << h(address) << "</td><td>" << h(a.outcome) << "</td><td>"
      << h(a.method) << "</td><td>" << h(a.mx_host) << (a.mx_address.empty() ? "" : " [" + h(a.mx_address) + "]")
      << "</td><td>" << h(a.tls_protocol) << "</td><td>" << h(a.certificate) << "</td><td>" << h(a.reply) << "</td></tr>\n";
  }
  o << "</table>\n";
  if (!ev.deposits.empty()) {
    o << "<h2>Secure portal</h2>\n<table>\n<tr><th>Recipient</th><th>Time</th><th>Event</th><th>Detail</th></tr>\n";
    for (const auto& d : ev.deposits)
      for (const auto& v : d.events)
        o << "<tr><td>" << h(d.recipient) << "</td><td>" << h(time_text(v.at)) << "</td><td>" << h(v.kind) << "</td><td>"
          << h(v.detail) << "</td></tr>\n";
    o << "</table>\n";
  }
  o << "<h2>Integrity</h2>\n";
  const auto& p = ev.proof;
  const auto* cp = p.report.last_signed ? &*p.report.last_signed : nullptr;
  bool covered = cp && !ev.entries.empty() && cp->seq >= ev.entries.back().seq;
  if (!p.checked)
    o << "<p class=\"bad\">Not checked: " << h(p.not_checked) << "</p>\n";
  else if (!p.report.intact())
    for (const auto& f : p.report.problems)
      o << "<p class=\"bad\">NOT INTACT: entry " << f.seq << ": " << h(f.what) << "</p>\n";
  else if (covered)
    o << "<p class=\"ok\">Intact: these entries are part of the hash chain, which verifies up to the checkpoint signed "
      << h(time_text(cp->at)) << " at entry " << cp->seq << ".</p>\n<p>Signed head <span class=\"mono\">" << h(cp->head)
      << "</span>, key <span class=\"mono\">" << h(cp->key_id) << "</span>.</p>\n";
  else
    o << "<p class=\"ok\">Intact: these entries are part of the hash chain; the next hourly checkpoint will sign them.</p>\n";
  o << "<table>\n<tr><th>Entry</th><th>Time</th><th>Event</th><th>Hash</th></tr>\n";
  for (const auto& e : ev.entries)
    o << "<tr><td>" << e.seq << "</td><td>" << h(time_text(e.at)) << "</td><td>" << h(e.kind) << "</td><td class=\"mono\">"
      << h(e.hash) << "</td></tr>\n";
  o << "</table>\n<p class=\"muted\">Check it independently: docs/audit.md (sqlite3 and openssl).</p>\n</body></html>\n";
  return o.str();
}

}  // namespace

int show_message(const config& cfg, const std::string& id, std::string_view format, bool with_proof) {
  evidence ev;
  ev.id = id;
  if (auto q = load_queued(cfg.spool, id)) ev.queued = std::move(*q);
  bool have_record = cfg.database.present();
  if (have_record) {
    ev.story = read_message_story(cfg.database, id);
    ev.entries = read_audit_entries(cfg.database, id);
  }
  std::string portal_problem;  // the story is told without its deposits, and the command fails
  try {
    if (auto store = open_portal_store_for_report(cfg)) ev.deposits = read_portal_story(*store, id);
  } catch (const portal::store_error& e) {
    portal_problem = e.what();
  }
  if (!ev.queued && !ev.story.message && ev.deposits.empty()) {
    if (!portal_problem.empty()) std::cerr << "sealgate: " << portal_problem << "\n";
    std::cerr << "sealgate: " << id << ": no such message in the queue or the record\n";
    return 1;
  }
  if (!with_proof) {
    ev.proof.not_checked = "use sealgate report --message for the proof";
  } else if (ev.entries.empty()) {
    ev.proof.not_checked = "the audit log holds no entry of this message";
  } else if (!std::filesystem::exists(cfg.audit.public_key)) {
    ev.proof.not_checked = "no public key at " + cfg.audit.public_key.string();
  } else {
    audit::verify_options o;
    o.from_seq = ev.entries.front().seq;
    o.to_seq = ev.entries.back().seq;
    o.queue_id = id;  // and its rows against its entries
    ev.proof.report = audit::verify_chain(cfg.database, audit::ed25519_key::load(cfg.audit.public_key), o);
    ev.proof.checked = true;
  }
  if (format == "html") std::cout << story_html(ev, cfg.hostname);
  else std::cout << story_text(ev, format == "json");
  if (!portal_problem.empty()) {
    std::cerr << "sealgate: " << portal_problem << " (the message's portal deposits are not shown)\n";
    return 1;
  }
  return ev.proof.checked && !ev.proof.report.intact() ? 1 : 0;
}

}  // namespace sealgate::gateway
