// `sealgate policy check` and `sealgate policy explain`. Explain decides on live facts (the domain probe and the key
// sources, as the gateway would) or on facts given on the command line
// (--offline); it never guesses a fact.
#include "gateway/cli/policy_cli.hpp"

#include "common/text.hpp"

#include <fstream>
#include <iostream>
#include <map>
#include <optional>
#include <sstream>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/thread_pool.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "crypto/service.hpp"
#include "dns/resolver.hpp"
#include "gateway/cli/cli_text.hpp"
#include "gateway/cli/bootstrap.hpp"
#include "gateway/daemon/control.hpp"
#include "gateway/record/report.hpp"
#include "gateway/cli/cli_args.hpp"
#include "gateway/config/config.hpp"
#include "gateway/facts/probe.hpp"
#include "policy/classify.hpp"
#include "policy/decide.hpp"
#include "policy/message_facts.hpp"

namespace sealgate::gateway {
namespace {
namespace pol = sealgate::policy;

constexpr const char* policy_usage =
    "usage: sealgate policy check --config FILE [POLICY_FILE]\n"
    "       sealgate policy show --config FILE --hash SHA256\n"
    "       sealgate policy reload --config FILE\n"
    "       sealgate policy explain --config FILE --from ADDR --to ADDR [--to ADDR ...]\n"
    "                               [--message FILE.eml] [--json] [--offline FACTS]\n"
    "\n"
    "check validates the policy (POLICY_FILE, else the config's policy_file).\n"
    "reload has the running gateway load the policy file again now (as SIGHUP does, with who asked\n"
    "recorded in the audit log); errors go to the gateway's log and the old policy stays.\n"
    "show prints, byte for byte, a policy the gateway loaded at some time, by its hash (as reports and\n"
    "`queue show` name it; 8 hex digits or more of it suffice), from the record's policy history.\n"
    "explain shows, for each recipient, the classes, the rule, every method considered and the decision,\n"
    "on live facts (each recipient domain is probed as the gateway would) or, with --offline, on the\n"
    "facts given below.\n"
    "\n"
    "explain options:\n"
    "  --listener NAME           listener the message arrived on (default: the config's first listener)\n"
    "  --auth-user USER          authenticated user (default: none)\n"
    "  --failed METHOD           a method that already failed at delivery (repeatable)\n"
    "offline facts (the same for every recipient; defaults in brackets):\n"
    "  --starttls yes|no|unknown          the MX offers STARTTLS [no]\n"
    "  --tls-version 1.0|1.1|1.2|1.3      best TLS version the MX offers [1.2]\n"
    "  --verified yes|no|unknown          the MX certificate verifies (chain and host name) [no]\n"
    "  --dane none|secure|mismatch|unknown  usable TLSA records, and whether the MX matched them [none]\n"
    "  --mta-sts none|testing|enforce|unknown  the domain's MTA-STS policy mode [none]\n"
    "  --pgp-key yes|no|unknown           a usable PGP key for the recipient [no]\n"
    "  --smime-cert yes|no|unknown        a usable S/MIME certificate for the recipient [no]\n"
    "  --portal yes|no                    the portal is configured [no]\n"
    "(unknown stands for a lookup that failed temporarily)\n";

int usage(const std::string& problem) {
  return usage_exit("policy: " + problem, policy_usage);
}

struct usage_error {
  std::string problem;
};

std::optional<pol::policy> load_checked(const std::filesystem::path& file) {
  try {
    return pol::load_policy(file);
  } catch (const pol::policy_error& e) {
    std::cerr << e.what() << "\n";
    return std::nullopt;
  }
}

int cmd_check(const std::vector<std::string>& args) {
  cli_args o;
  try {
    o = parse_cli(args, 0, {});
  } catch (const cli_usage_error& e) {
    return usage(e.what());
  }
  const std::string config_file = o.value("--config");
  const auto& positional = o.positional;
  if (positional.size() > 1) return usage("check takes at most one POLICY_FILE");
  auto loaded = load_config_or_report(config_file);
  if (!loaded) return exit_failure;
  config& cfg = *loaded;
  std::filesystem::path file = positional.empty() ? cfg.policy_file : std::filesystem::path(positional[0]);
  if (file.empty()) {
    std::cerr << "sealgate: " << config_file << ": policy_file is not set and no POLICY_FILE was given\n";
    return 1;
  }
  auto p = load_checked(file);
  if (!p) return 1;
  std::cout << file.string() << ": ok: " << policy::summary(*p) << "\n";
  return 0;
}

pol::fact parse_fact(const std::string& flag, const std::string& v) {
  if (v == "yes") return pol::fact::found;
  if (v == "no") return pol::fact::absent;
  if (v == "unknown") return pol::fact::tempfail;
  throw usage_error{flag + " takes yes, no or unknown, not '" + v + "'"};
}

struct explain_options {
  std::string config_file, from, message_file, listener, auth_user;
  bool listener_given = false;
  std::vector<std::string> to;
  bool json = false, offline = false, facts_given = false;
  pol::domain_facts domain;
  pol::key_facts keys;
  bool portal = false;
  std::vector<pol::method> failed;
};

// One offline fact option a with its value v.
void parse_fact_option(explain_options& o, const std::string& a, const std::string& v) {
  if (a == "--starttls") o.domain.starttls = parse_fact(a, v);
  else if (a == "--verified") o.domain.cert_verified = parse_fact(a, v);
  else if (a == "--pgp-key") o.keys.pgp = parse_fact(a, v);
  else if (a == "--smime-cert") o.keys.smime = parse_fact(a, v);
  else if (a == "--tls-version") {
    auto version = pol::parse_tls_version(v);
    if (!version) throw usage_error{"--tls-version takes 1.0, 1.1, 1.2 or 1.3, not '" + v + "'"};
    o.domain.tls_version = *version;
  } else if (a == "--dane") {
    static const std::map<std::string, pol::dane_state> states{{"none", pol::dane_state::none},
                                                               {"secure", pol::dane_state::secure},
                                                               {"mismatch", pol::dane_state::mismatch},
                                                               {"unknown", pol::dane_state::unknown}};
    auto it = states.find(v);
    if (it == states.end()) throw usage_error{"--dane takes none, secure, mismatch or unknown, not '" + v + "'"};
    o.domain.dane = it->second;
  } else if (a == "--mta-sts") {
    static const std::map<std::string, pol::mta_sts_state> states{{"none", pol::mta_sts_state::none},
                                                                  {"testing", pol::mta_sts_state::testing},
                                                                  {"enforce", pol::mta_sts_state::enforce},
                                                                  {"unknown", pol::mta_sts_state::unknown}};
    auto it = states.find(v);
    if (it == states.end()) throw usage_error{"--mta-sts takes none, testing, enforce or unknown, not '" + v + "'"};
    o.domain.mta_sts = it->second;
  } else if (a == "--portal") {
    if (v != "yes" && v != "no") throw usage_error{"--portal takes yes or no, not '" + v + "'"};
    o.portal = v == "yes";
  }
}

explain_options parse_explain(const std::vector<std::string>& args) {
  explain_options o;
  o.domain.tls_version = pol::tls_floor;
  static const std::vector<std::string> fact_options = {"--starttls", "--verified", "--pgp-key", "--smime-cert",
                                                         "--tls-version", "--dane", "--mta-sts", "--portal"};
  cli_spec spec{.values = {"--from", "--to", "--message", "--listener", "--auth-user", "--failed"},
                .flags = {"--json", "--offline"},
                .config_required = false};
  spec.values.insert(spec.values.end(), fact_options.begin(), fact_options.end());
  cli_args a;
  try {
    a = parse_cli(args, 0, spec);
  } catch (const cli_usage_error& e) {
    throw usage_error{e.what()};
  }
  if (!a.positional.empty()) throw usage_error{"explain takes no argument '" + a.positional[0] + "'"};
  o.config_file = a.value("--config");
  o.from = a.value("--from");
  o.to = a.all("--to");
  o.message_file = a.value("--message");
  o.listener_given = a.has("--listener");
  o.listener = a.value("--listener", o.listener);
  o.auth_user = a.value("--auth-user");
  o.json = a.has("--json");
  o.offline = a.has("--offline");
  for (const auto& name : fact_options)
    for (const auto& v : a.all(name)) {
      o.facts_given = true;
      parse_fact_option(o, name, v);
    }
  for (const auto& v : a.all("--failed")) {
    auto m = pol::parse_method(v);
    if (!m) throw usage_error{"--failed takes a method (pgp, smime, tls, portal, plain), not '" + v + "'"};
    o.failed.push_back(*m);
  }
  if (o.config_file.empty()) throw usage_error{"--config FILE is required"};
  if (o.to.empty()) throw usage_error{"--to ADDR is required (at least one)"};
  if (o.facts_given && !o.offline) throw usage_error{"fact options (--starttls, --pgp-key, ...) need --offline"};
  return o;
}

std::string fact_word(pol::fact f) {
  return f == pol::fact::found ? "yes" : f == pol::fact::absent ? "no" : "unknown";
}

std::string facts_line(const pol::domain_facts& d, const pol::key_facts& k, bool portal) {
  return "starttls=" + fact_word(d.starttls) + " tls-version=" + std::string(pol::to_string(d.tls_version)) +
         " verified=" + fact_word(d.cert_verified) + " dane=" + std::string(pol::to_string(d.dane)) +
         " mta-sts=" + std::string(pol::to_string(d.mta_sts)) + " pgp-key=" + fact_word(k.pgp) +
         " smime-cert=" + fact_word(k.smime) + " portal=" + (portal ? "yes" : "no");
}

// What a live probe found for one domain, in the policy's terms.
struct live_facts {
  pol::domain_facts domain;
  std::string note;  // "null MX", "no such domain", or the probe's summary
};

// Key facts for every recipient from the configured key sources.
boost::asio::awaitable<void> look_up_keys(crypto::crypto_service* c, std::vector<std::string> addresses,
                                          std::map<std::string, pol::key_facts>* out) {
  for (const auto& a : addresses) (*out)[a] = co_await c->key_facts(a);
}

// Probes every domain as the gateway would (a named coroutine taking its
// inputs by value: DESIGN.md 2).
boost::asio::awaitable<void> probe_domains(prober* p, std::vector<std::string> domains,
                                           std::map<std::string, live_facts>* out) {
  for (const auto& d : domains) {
    auto r = co_await p->probe_domain(d);
    live_facts f;
    f.domain = to_domain_facts(r);
    const auto& s = r.summary;
    if (r.mx_status == dns::mx_outcome::null_mx) f.note = "null MX: the domain takes no mail";
    else if (r.mx_status == dns::mx_outcome::no_such_domain) f.note = "no such domain";
    else if (!r.ran()) f.note = "the MX lookup failed: " + r.mx_error;
    else
      f.note = std::to_string(r.mx.size()) + " MX probed; DANE " + s.dane + (s.dane_match.empty() ? "" : " (" + s.dane_match + ")") +
               ", MTA-STS " + s.mta_sts;
    (*out)[d] = f;
  }
}

std::string decision_line(const pol::decision& d) {
  std::string s(pol::to_string(d.chosen));
  if (d.chosen == pol::method::defer || d.chosen == pol::method::hold) return s;
  if (d.chosen == pol::method::reject) return s + " with \"" + d.reject_text + "\"";
  s += ", transport " + std::string(pol::to_string(d.transport));
  if (d.min_tls_version != pol::tls_version::unknown) s += " (TLS >= " + std::string(pol::to_string(d.min_tls_version)) + ")";
  return s + ", on delivery failure: " + std::string(pol::to_string(d.on_failure));
}

int cmd_explain(const std::vector<std::string>& args) {
  explain_options o;
  try {
    o = parse_explain(args);
  } catch (const usage_error& e) {
    return usage(e.problem);
  }
  auto loaded = load_config_or_report(o.config_file);
  if (!loaded) return exit_failure;
  config& cfg = *loaded;
  if (cfg.policy_file.empty()) {
    std::cerr << "sealgate: " << o.config_file << ": policy_file is not set\n";
    return 1;
  }
  auto p = load_checked(cfg.policy_file);
  if (!p) return 1;
  if (!o.listener_given && !cfg.listeners.empty()) o.listener = cfg.listeners.front().name;

  pol::message_facts msg;
  if (!o.message_file.empty()) {
    std::ifstream in(o.message_file, std::ios::binary);
    if (!in) {
      std::cerr << "sealgate: " << o.message_file << ": cannot read file\n";
      return 1;
    }
    std::ostringstream ss;
    ss << in.rdbuf();
    msg = pol::read_message(ss.str());
  }

  // Live facts: each distinct recipient domain probed once, and each
  // recipient's keys looked up, as the gateway would.
  std::map<std::string, live_facts> live;
  std::map<std::string, pol::key_facts> live_keys;
  if (!o.offline) {
    std::vector<std::string> domains;
    for (const auto& t : o.to)
      if (std::find(domains.begin(), domains.end(), domain_of(t)) == domains.end()) domains.push_back(domain_of(t));
    try {
      boost::asio::io_context io;
      dns::resolver res(io.get_executor(), cfg.dns);
      prober probe(io.get_executor(), res, cfg.delivery);
      boost::asio::thread_pool pool(1);
      crypto::crypto_service keys(cfg.crypto, &res, pool);
      auto rethrow = [](std::exception_ptr e) {
        if (e) std::rethrow_exception(e);
      };
      boost::asio::co_spawn(io, probe_domains(&probe, domains, &live), rethrow);
      boost::asio::co_spawn(io, look_up_keys(&keys, o.to, &live_keys), rethrow);
      io.run();
    } catch (const std::exception& e) {
      std::cerr << "sealgate: policy explain: " << e.what() << "\n";
      return 1;
    }
  }

  std::ostringstream out;
  if (o.json) {
    out << "{\"policy\": " << json_string(cfg.policy_file.string()) << ", \"sha256\": " << json_string(p->sha256)
        << ", \"recipients\": [";
  } else {
    out << "policy: " << cfg.policy_file.filename().string() << "\n";
    out << "message: "
        << (o.message_file.empty() ? std::string("none (envelope only)")
                                   : std::filesystem::path(o.message_file).filename().string() + " (" +
                                         std::to_string(msg.size) + " bytes, " +
                                         "attachments: " + std::to_string(msg.attachment_names.size()) + ")")
        << "\n";
    out << "sender: " << (o.from.empty() ? "<>" : o.from) << ", listener: " << o.listener
        << ", authenticated user: " << (o.auth_user.empty() ? "none" : o.auth_user) << "\n";
    if (o.offline) out << "facts (offline, for every recipient): " << facts_line(o.domain, o.keys, o.portal) << "\n";
  }
  for (size_t i = 0; i < o.to.size(); ++i) {
    pol::decide_input in;
    in.envelope = {o.from, o.to[i], o.listener, o.auth_user};
    in.classes = pol::classify(*p, msg, in.envelope);
    const live_facts* lf = o.offline ? nullptr : &live[domain_of(o.to[i])];
    in.domain = lf ? lf->domain : o.domain;
    in.keys = o.offline ? o.keys : live_keys[o.to[i]];
    // Live: the configuration's portal section (its store's writability is
    // the running gateway's to find out).
    in.portal_configured = o.offline ? o.portal : cfg.portal.configured;
    in.failed = o.failed;
    auto d = pol::decide(*p, in);
    if (o.json) {
      out << (i ? ", " : "") << "{\"recipient\": " << json_string(o.to[i]) << ", \"facts_source\": "
          << json_string(lf ? "probe" : "offline") << ", \"facts\": "
          << json_string(facts_line(in.domain, in.keys, in.portal_configured));
      if (lf) out << ", \"probe\": " << json_string(lf->note);
      out << ", \"classes\": [";
      for (size_t j = 0; j < in.classes.size(); ++j)
        out << (j ? ", " : "") << "{\"name\": " << json_string(in.classes[j].name)
            << ", \"reason\": " << json_string(in.classes[j].reason) << "}";
      out << "], \"rule\": " << json_string(d.rule) << ", \"rule_line\": " << d.rule_line << ", \"considered\": [";
      for (size_t j = 0; j < d.considered.size(); ++j)
        out << (j ? ", " : "") << "{\"method\": " << json_string(pol::to_string(d.considered[j].m))
            << ", \"state\": " << json_string(pol::to_string(d.considered[j].state))
            << ", \"why\": " << json_string(d.considered[j].why) << "}";
      out << "], \"method\": " << json_string(pol::to_string(d.chosen))
          << ", \"transport\": " << json_string(pol::to_string(d.transport)) << ", \"min_tls_version\": "
          << (d.min_tls_version != pol::tls_version::unknown ? json_string(pol::to_string(d.min_tls_version)) : std::string("null"))
          << ", \"on_failure\": " << json_string(pol::to_string(d.on_failure))
          << ", \"reject_text\": " << json_string(d.reject_text) << ", \"strip_subject_tags\": [";
      for (size_t j = 0; j < d.strip_subject_tags.size(); ++j) out << (j ? ", " : "") << json_string(d.strip_subject_tags[j]);
      out << "], \"reasons\": [";
      for (size_t j = 0; j < d.reasons.size(); ++j) out << (j ? ", " : "") << json_string(d.reasons[j]);
      out << "]}";
    } else {
      out << "\nrecipient: " << o.to[i] << "\n";
      if (lf)
        out << "  facts (live probe of " << domain_of(o.to[i]) << "): " << facts_line(in.domain, in.keys, false) << "\n"
            << "    " << lf->note << "; keys from the configured key sources (sealgate keys lookup)\n";
      out << "  classes:";
      if (in.classes.empty()) out << " none";
      out << "\n";
      for (const auto& c : in.classes) out << "    " << c.name << ": " << c.reason << "\n";
      if (d.rule.empty()) out << "  rule: none\n";
      else out << "  rule: " << d.rule << " (line " << d.rule_line << ")\n";
      out << "  methods:\n";
      for (const auto& v : d.considered)
        out << "    " << pol::to_string(v.m) << ": " << pol::to_string(v.state) << ": " << v.why << "\n";
      out << "  decision: " << decision_line(d) << "\n";
      if (!d.strip_subject_tags.empty()) {
        out << "  subject tags removed before sending:";
        for (const auto& t : d.strip_subject_tags) out << " " << t;
        out << "\n";
      }
      out << "  reasons:\n";
      for (const auto& r : d.reasons) out << "    " << r << "\n";
    }
  }
  if (o.json) out << "]}\n";
  std::cout << out.str();
  return 0;
}

int cmd_reload(const std::vector<std::string>& args) {
  cli_args a;
  try {
    a = parse_cli(args, 0, {.values = {}, .flags = {}});
  } catch (const cli_usage_error& e) {
    return usage(e.what());
  }
  if (!a.positional.empty()) return usage("reload takes no argument '" + a.positional[0] + "'");
  auto cfg = load_config_or_report(a.value("--config"));
  if (!cfg) return exit_failure;
  std::string reply = control_request(cfg->spool, "reload");
  if (reply.empty()) {
    std::cerr << "sealgate: policy reload: no gateway answers on " << (cfg->spool / "control").string() << "\n";
    return exit_failure;
  }
  if (reply != "ok") {
    std::cerr << "sealgate: policy reload: " << reply << "\n";
    return exit_failure;
  }
  std::cout << "reload requested (the gateway's log says whether the policy took effect)\n";
  return exit_ok;
}

int cmd_show(const std::vector<std::string>& args) {
  cli_args a;
  try {
    a = parse_cli(args, 0, {.values = {"--hash"}, .flags = {}});
  } catch (const cli_usage_error& e) {
    return usage(e.what());
  }
  if (!a.positional.empty()) return usage("show takes no argument '" + a.positional[0] + "'");
  std::string hash = lower_ascii(a.value("--hash"));
  if (hash.size() < 8 || hash.size() > 64 || hash.find_first_not_of("0123456789abcdef") != std::string::npos)
    return usage("--hash takes a SHA-256 in hex, 8 to 64 digits of it");
  auto cfg = load_config_or_report(a.value("--config"));
  if (!cfg) return exit_failure;
  try {
    auto v = read_policy_version(cfg->database, hash);
    if (!v) {
      std::cerr << "sealgate: policy show: no policy with hash " << hash << " was ever loaded by this gateway\n";
      return exit_failure;
    }
    // The history is tamper-evident by construction: the text must hash to its name.
    if (sealgate::sha256_hex(v->text) != v->sha256) {
      std::cerr << "sealgate: policy show: the stored text of " << v->sha256 << " does not match its hash: it was altered\n";
      return exit_failure;
    }
    std::cout << v->text;
    return exit_ok;
  } catch (const std::exception& e) {
    std::cerr << "sealgate: policy show: " << e.what() << "\n";
    return exit_failure;
  }
}

}  // namespace

int run_policy_command(const std::vector<std::string>& args) {
  if (args.empty()) return usage("check or explain?");
  std::vector<std::string> rest(args.begin() + 1, args.end());
  if (args[0] == "check") return cmd_check(rest);
  if (args[0] == "explain") return cmd_explain(rest);
  if (args[0] == "show") return cmd_show(rest);
  if (args[0] == "reload") return cmd_reload(rest);
  if (args[0] == "help" || args[0] == "--help") {
    std::cout << policy_usage;
    return 0;
  }
  return usage("unknown policy command " + args[0]);
}

}  // namespace sealgate::gateway
