// Loads relay.classes, relay.client_ca, loop: and dkim: (intake_options.hpp).
// Key files and ranges files are read here, so that a bad one stops the start
// with FILE:LINE:COL of the key that names it, never the first message.
#include "gateway/config/intake_config.hpp"

#include <algorithm>
#include <set>
#include <sstream>

#include "common/file_io.hpp"
#include "common/text.hpp"
#include "dns/domain_name.hpp"

namespace sealgate::gateway {
namespace {

// The first line a ranges file starts with when its networks send for many
// organisations (conf/ranges/): such a class must pin a tenant or domains.
constexpr std::string_view shared_marker = "# sealgate-ranges: shared-infrastructure";

// A key that must be there and not be empty; yaml-cpp throws on a missing
// key's node, so presence is asked first.
bool required(yaml_reader& r, const YAML::Node& parent, const char* name, const std::string& path, std::string& out) {
  if (auto n = parent[name]) return r.nonempty(n, path + "." + name, out);
  r.error(parent.Mark(), path + "." + name, "is needed");
  return false;
}

void read_ranges_file(yaml_reader& r, const YAML::Node& n, const std::string& key, relay_class& c) {
  auto text = read_file(c.networks_file);
  if (!text) {
    r.error(n.Mark(), key, "cannot read " + c.networks_file.string());
    return;
  }
  std::istringstream in(*text);
  std::string line;
  size_t number = 0;
  bool bad_line = false;
  while (std::getline(in, line)) {
    ++number;
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (number == 1 && line == shared_marker) c.shared_infrastructure = true;
    std::string_view v = line;
    v = v.substr(0, v.find('#'));
    while (!v.empty() && (v.back() == ' ' || v.back() == '\t')) v.remove_suffix(1);
    while (!v.empty() && (v.front() == ' ' || v.front() == '\t')) v.remove_prefix(1);
    if (v.empty()) continue;
    std::string why;
    if (auto net = ip_network::parse(v, &why)) c.networks.push_back(*net);
    else {
      bad_line = true;
      r.error(n.Mark(), key, c.networks_file.filename().string() + " line " + std::to_string(number) + ": '" +
                                 std::string(v) + "' is not a CIDR network: " + why);
    }
  }
  if (c.networks.empty() && !bad_line) r.error(n.Mark(), key, c.networks_file.string() + " holds no network");
}

void load_class(yaml_reader& r, const YAML::Node& n, const std::string& path, relay_class& c) {
  if (!r.check_map(n, path, {"name", "networks", "networks_file", "certificate", "users", "tenant_ids",
                             "sender_domains"}))
    return;
  required(r, n, "name", path, c.name);
  if (auto nets = n["networks"]) {
    c.match_network = true;
    std::vector<std::pair<std::string, YAML::Mark>> items;
    if (r.strings(nets, path + ".networks", items)) {
      for (const auto& [v, mark] : items) {
        std::string why;
        if (auto net = ip_network::parse(v, &why)) c.networks.push_back(*net);
        else r.error(mark, path + ".networks", "'" + v + "' is not a CIDR network: " + why);
      }
    }
  }
  if (auto f = n["networks_file"]) {
    c.match_network = true;
    std::string v;
    if (r.nonempty(f, path + ".networks_file", v)) {
      c.networks_file = r.resolve(v);
      read_ranges_file(r, f, path + ".networks_file", c);
    }
  }
  if (auto cert = n["certificate"]) {
    c.match_certificate = true;
    if (r.check_map(cert, path + ".certificate", {"issuer", "subject", "san"})) {
      r.string_value(cert, "issuer", path + ".certificate", c.certificate.issuer);
      r.string_value(cert, "subject", path + ".certificate", c.certificate.subject);
      r.string_value(cert, "san", path + ".certificate", c.certificate.san);
      c.certificate.san = lower_ascii(c.certificate.san);
      if (c.certificate.issuer.empty() && c.certificate.subject.empty() && c.certificate.san.empty())
        r.error(cert.Mark(), path + ".certificate", "needs issuer, subject or san");
    }
  }
  auto list = [&](const char* name, std::vector<std::string>& out) {
    if (auto v = n[name]) {
      std::vector<std::pair<std::string, YAML::Mark>> items;
      if (r.strings(v, path + "." + name, items))
        for (auto& [s, mark] : items) out.push_back(s);
    }
  };
  list("users", c.users);
  if (auto v = n["sender_domains"]) {
    std::vector<std::pair<std::string, YAML::Mark>> items;
    if (r.strings(v, path + ".sender_domains", items)) {
      for (const auto& [s, mark] : items) {
        auto ascii = dns::to_ascii_domain(s);
        if (ascii) c.sender_domains.push_back(*ascii);
        else r.error(mark, path + ".sender_domains", "'" + s + "' is not a domain name");
      }
    }
  }
  if (auto v = n["tenant_ids"]) {
    std::vector<std::pair<std::string, YAML::Mark>> items;
    if (r.strings(v, path + ".tenant_ids", items)) {
      for (const auto& [s, mark] : items) {
        // A GUID as Microsoft writes it: 8-4-4-4-12 hexadecimal digits.
        bool ok = s.size() == 36;
        for (size_t i = 0; ok && i < s.size(); ++i)
          ok = (i == 8 || i == 13 || i == 18 || i == 23) ? s[i] == '-' : std::isxdigit(static_cast<unsigned char>(s[i]));
        if (ok) c.tenant_ids.push_back(lower_ascii(s));
        else r.error(mark, path + ".tenant_ids", "'" + s + "' is not a tenant ID (a GUID such as 72f988bf-86f1-41af-91ab-2d7cd011db47)");
      }
    }
  }
  if (!c.match_network && !c.match_certificate && c.users.empty())
    r.error(n.Mark(), path, "names no client: give networks, networks_file, certificate or users");
  // Microsoft's and Google's servers send for every tenant: their addresses
  // (and certificates) alone would let any tenant in the world relay.
  if (c.shared_infrastructure && c.tenant_ids.empty() && c.sender_domains.empty())
    r.error(n.Mark(), path, c.networks_file.filename().string() +
                                " lists servers shared by every tenant: pin tenant_ids or sender_domains");
}

}  // namespace

void load_relay_classes(yaml_reader& r, const YAML::Node& relay, config& c) {
  r.path_value(relay, "client_ca", "relay", c.relay_client_ca);
  auto classes = relay["classes"];
  if (!classes) return;
  if (!classes.IsSequence()) {
    r.error(classes.Mark(), "relay.classes", "must be a list of client classes");
    return;
  }
  std::set<std::string> names;
  for (size_t i = 0; i < classes.size(); ++i) {
    std::string path = "relay.classes[" + std::to_string(i) + "]";
    relay_class cls;
    load_class(r, classes[i], path, cls);
    if (!cls.name.empty() && !names.insert(cls.name).second)
      r.error(classes[i].Mark(), path + ".name", "duplicate class name '" + cls.name + "'");
    if (cls.match_certificate && c.relay_client_ca.empty())
      r.error(classes[i].Mark(), path + ".certificate", "needs relay.client_ca (the CAs client certificates are verified against)");
    c.relay_classes.push_back(std::move(cls));
  }
}

void load_loop(yaml_reader& r, const YAML::Node& n, config& c) {
  if (!r.check_map(n, "loop", {"secret", "secret_file", "max_passes", "max_age"})) return;
  r.string_value(n, "secret", "loop", c.loop.secret);
  if (auto s = n["secret"]; s && s.IsScalar() && s.Scalar().size() < 16)
    r.error(s.Mark(), "loop.secret", "must be at least 16 characters");
  r.path_value(n, "secret_file", "loop", c.loop.secret_file);
  if (n["secret"] && n["secret_file"]) r.error(n.Mark(), "loop", "give secret or secret_file, not both");
  r.integer_value(n, "max_passes", "loop", c.loop.max_passes, 1, 100);
  r.duration_value(n, "max_age", "loop", c.loop.max_age, 60);
}

void load_dkim(yaml_reader& r, const YAML::Node& n, config& c) {
  if (!r.check_map(n, "dkim", {"keys", "domains", "existing_signatures", "headers"})) return;
  r.enum_value(n, "existing_signatures", "dkim", c.dkim.existing,
               {{"keep", existing_signatures::keep},
                {"remove-broken", existing_signatures::remove_broken},
                {"remove", existing_signatures::remove}});
  if (auto keys = n["keys"]) {
    if (!keys.IsSequence() || keys.size() == 0) {
      r.error(keys.Mark(), "dkim.keys", "must be a non-empty list of {domain, selector, private_key}");
    } else {
      std::set<std::pair<std::string, std::string>> seen;
      for (size_t i = 0; i < keys.size(); ++i) {
        std::string path = "dkim.keys[" + std::to_string(i) + "]";
        if (!r.check_map(keys[i], path, {"domain", "selector", "private_key"})) continue;
        dkim_signing_key k;
        std::string domain, file;
        bool ok = required(r, keys[i], "domain", path, domain) & required(r, keys[i], "selector", path, k.selector) &
                  required(r, keys[i], "private_key", path, file);
        if (!ok) continue;
        auto ascii = dns::to_ascii_domain(domain);
        if (!ascii) {
          r.error(keys[i]["domain"].Mark(), path + ".domain", "'" + domain + "' is not a domain name");
          continue;
        }
        k.domain = *ascii;
        k.selector = lower_ascii(k.selector);
        // A selector is a dot-atom of DNS labels (RFC 6376 3.1).
        if (!dns::to_ascii_domain(k.selector)) {
          r.error(keys[i]["selector"].Mark(), path + ".selector", "'" + k.selector + "' is not a selector (DNS labels)");
          continue;
        }
        if (!seen.insert({k.domain, k.selector}).second)
          r.error(keys[i].Mark(), path, "a second key for selector " + k.selector + " of " + k.domain);
        k.private_key = r.resolve(file);
        std::string why;
        auto key = crypto::dkim_private_key::load(k.private_key, &why);
        if (!key) {
          r.error(keys[i]["private_key"].Mark(), path + ".private_key", why);
          continue;
        }
        k.key = std::make_shared<const crypto::dkim_private_key>(std::move(*key));
        c.dkim.keys.push_back(std::move(k));
      }
    }
  }
  if (auto d = n["domains"]) {
    if (!d.IsMap()) {
      r.error(d.Mark(), "dkim.domains", "must map From domains to signing domains");
    } else {
      for (auto it = d.begin(); it != d.end(); ++it) {
        std::string from = it->first.Scalar(), to;
        std::string key = "dkim.domains." + from;
        if (!r.nonempty(it->second, key, to)) continue;
        auto a = dns::to_ascii_domain(from), b = dns::to_ascii_domain(to);
        if (!a || !b) {
          r.error(it->first.Mark(), key, "both sides must be domain names");
          continue;
        }
        bool has_key = std::any_of(c.dkim.keys.begin(), c.dkim.keys.end(),
                                   [&](const dkim_signing_key& k) { return k.domain == *b; });
        if (!has_key) r.error(it->second.Mark(), key, "no key in dkim.keys signs for " + *b);
        c.dkim.domains[*a] = *b;
      }
    }
  }
  if (auto h = n["headers"]) {
    std::vector<std::pair<std::string, YAML::Mark>> items;
    if (r.strings(h, "dkim.headers", items)) {
      c.dkim.headers.clear();
      for (const auto& [s, mark] : items) c.dkim.headers.push_back(lower_ascii(s));
      // RFC 6376 5.4: From must be signed.
      if (std::find(c.dkim.headers.begin(), c.dkim.headers.end(), "from") == c.dkim.headers.end())
        r.error(h.Mark(), "dkim.headers", "must include from (RFC 6376 5.4)");
    }
  }
}

}  // namespace sealgate::gateway
