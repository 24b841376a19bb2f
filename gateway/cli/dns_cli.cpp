// `sealgate dns lookup --config FILE TYPE NAME [--json]`; see dns_cli.hpp.
// Prints what the gateway would believe: outcome, TTL, secure or not. Never
// changes anything.
#include "gateway/cli/dns_cli.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <iostream>
#include <sstream>

#include "dns/resolver.hpp"
#include "gateway/cli/bootstrap.hpp"
#include "gateway/cli/cli_args.hpp"
#include "gateway/cli/cli_text.hpp"
#include "gateway/config/config.hpp"
#include "common/text.hpp"

namespace sealgate::gateway {

const char* const dns_usage_line =
    "  dns lookup --config FILE TYPE NAME [--json]\n"
    "                               look NAME up (TYPE: A AAAA MX TXT TLSA SMIMEA OPENPGPKEY, or MXHOSTS for\n"
    "                               the MX rules); exit 0 found or absent, 1 temporary failure\n";

namespace {
namespace asio = boost::asio;

int usage(const std::string& problem) {
  return usage_exit(problem, "usage: sealgate COMMAND ...\n", dns_usage_line);
}

std::string base64(const std::vector<uint8_t>& data) {
  return sealgate::base64_encode(std::string_view(reinterpret_cast<const char*>(data.data()), data.size()));
}

// TXT data is arbitrary octets: escaped so that a record can't forge output lines.
std::string printable(const std::string& s) {
  std::string out;
  for (unsigned char c : s) {
    if (c == '\\' || c == '"' || c < 0x20 || c >= 0x7f) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\%03u", c);
      out += buf;
    } else {
      out += static_cast<char>(c);
    }
  }
  return out;
}

std::string fqdn(const std::string& name) { return name.empty() ? "." : name + "."; }

std::string text_of(const boost::asio::ip::address_v4& a) { return a.to_string(); }
std::string text_of(const boost::asio::ip::address_v6& a) { return a.to_string(); }
std::string text_of(const dns::mx_record& mx) { return std::to_string(mx.preference) + " " + fqdn(mx.exchange); }
std::string text_of(const dns::tlsa_record& t) {
  return std::to_string(t.usage) + " " + std::to_string(t.selector) + " " + std::to_string(t.matching_type) + " " +
         hex(t.data);
}
std::string text_of(const std::vector<uint8_t>& key) { return base64(key); }

struct report {
  std::string status, absent, error;
  uint32_t ttl = 0;
  bool secure = false;
  bool implicit = false;
  bool mx_hosts = false;
  std::vector<std::string> records;
  int exit_code = 1;
};

template <typename T>
report report_of(const dns::lookup_result<T>& r) {
  report out;
  out.status = std::string(dns::to_string(r.status));
  out.absent = std::string(dns::to_string(r.why_absent));
  out.error = r.error;
  out.ttl = r.ttl;
  out.secure = r.secure;
  for (auto& rec : r.records) {
    if constexpr (std::is_same_v<T, std::string>) out.records.push_back(rec);  // escaped when printed
    else out.records.push_back(text_of(rec));
  }
  out.exit_code = r.status == dns::outcome::temporary_failure ? 1 : 0;
  return out;
}

report report_of(const dns::mx_set& s) {
  report out;
  out.mx_hosts = true;
  out.status = std::string(dns::to_string(s.status));
  out.error = s.status == dns::mx_outcome::hosts ? "" : s.error;
  out.ttl = s.ttl;
  out.secure = s.secure;
  out.implicit = s.implicit;
  for (auto& h : s.hosts) out.records.push_back(std::to_string(h.preference) + " " + fqdn(h.name));
  out.exit_code = s.status == dns::mx_outcome::temporary_failure ? 1 : 0;
  return out;
}

void print(const report& r, const std::string& name, const std::string& type, bool json, bool is_txt) {
  if (json) {
    std::ostringstream o;
    o << "{\"name\": " << json_string(name) << ", \"type\": " << json_string(type)
      << ", \"status\": " << json_string(r.status);
    if (!r.absent.empty()) o << ", \"absent\": " << json_string(r.absent);
    o << ", \"ttl\": " << r.ttl << ", \"secure\": " << (r.secure ? "true" : "false");
    if (r.mx_hosts) o << ", \"implicit\": " << (r.implicit ? "true" : "false");
    o << ", \"records\": [";
    for (size_t i = 0; i < r.records.size(); ++i) o << (i ? ", " : "") << json_string(r.records[i]);
    o << "]";
    if (!r.error.empty()) o << ", \"error\": " << json_string(r.error);
    std::cout << o.str() << "}\n";
    return;
  }
  std::cout << name << " " << type << " " << r.status;
  if (!r.absent.empty()) std::cout << " (" << r.absent << ")";
  if (!r.error.empty()) std::cout << ": " << r.error;
  if (r.status != "temporary failure")
    std::cout << " ttl=" << r.ttl << " " << (r.secure ? "secure" : "insecure") << (r.implicit ? " implicit" : "");
  std::cout << "\n";
  for (auto& rec : r.records) std::cout << (is_txt ? "\"" + printable(rec) + "\"" : rec) << "\n";
}

// A named coroutine taking its inputs by value (DESIGN.md 2: no capturing
// coroutine lambdas with g++ 12).
asio::awaitable<void> lookup(dns::resolver& res, std::string type, std::string name, bool json, int* exit_code) {
  report r;
  if (type == "MXHOSTS") {
    r = report_of(co_await res.mx_hosts(name));
  } else {
    switch (*dns::parse_rr_type(type)) {
      case dns::rr_type::a: r = report_of(co_await res.resolve_a(name)); break;
      case dns::rr_type::aaaa: r = report_of(co_await res.resolve_aaaa(name)); break;
      case dns::rr_type::mx: r = report_of(co_await res.resolve_mx(name)); break;
      case dns::rr_type::txt: r = report_of(co_await res.resolve_txt(name)); break;
      case dns::rr_type::tlsa: r = report_of(co_await res.resolve_tlsa(name)); break;
      case dns::rr_type::smimea: r = report_of(co_await res.resolve_smimea(name)); break;
      case dns::rr_type::openpgpkey: r = report_of(co_await res.resolve_openpgpkey(name)); break;
      default: break;
    }
  }
  print(r, name, type, json, type == "TXT");
  *exit_code = r.exit_code;
}

}  // namespace

int run_dns_command(const std::vector<std::string>& args) {
  if (args.empty() || args[0] != "lookup") return usage("dns: expected 'lookup'");
  cli_args o;
  try {
    o = parse_cli(args, 1, {.values = {}, .flags = {"--json"}});
  } catch (const cli_usage_error& e) {
    return usage(e.what());
  }
  const std::string config_file = o.value("--config");
  const bool json = o.has("--json");
  const auto& positional = o.positional;
  if (positional.size() != 2) return usage("dns lookup takes TYPE and NAME");
  std::string type;
  for (char c : positional[0]) type += static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  if (type != "MXHOSTS" && !dns::parse_rr_type(type)) return usage("unknown type " + positional[0]);
  std::string name = dns::canonical_name(positional[1]);
  if (name.empty() || dns::build_query(name, dns::rr_type::a, 0).empty()) return usage("invalid name " + positional[1]);

  auto loaded = load_config_or_report(config_file);
  if (!loaded) return exit_failure;
  const config& cfg = *loaded;
  int exit_code = 1;
  try {
    asio::io_context io;
    dns::resolver res(io.get_executor(), cfg.dns);
    asio::co_spawn(io, lookup(res, type, name, json, &exit_code), [](std::exception_ptr e) {
      if (e) std::rethrow_exception(e);
    });
    io.run();
  } catch (const std::exception& e) {
    std::cerr << "sealgate: dns: " << e.what() << "\n";
    return 1;
  }
  return exit_code;
}

}  // namespace sealgate::gateway
