// The compliance report as JSON and as a printable HTML page; see
// compliance_report.hpp. The page must never reference anything outside
// itself (it is mailed, archived and printed years later) and never show
// anything the summary does not hold: no address, no subject.
#include "gateway/cli/compliance_report.hpp"

#include <algorithm>
#include <cmath>
#include <iomanip>
#include <sstream>
#include <string_view>
#include <vector>

#include "common/text.hpp"

namespace sealgate::gateway {

namespace {

// The totals, in the order both spellings list them.
struct total_field {
  std::string_view name, label;
  int64_t compliance_summary::*value;
};
constexpr total_field total_fields[] = {
    {"messages", "Messages", &compliance_summary::messages},
    {"recipients", "Recipients", &compliance_summary::recipients},
    {"delivered", "Delivered", &compliance_summary::delivered},
    {"secured", "Delivered protected", &compliance_summary::secured},
    {"in_clear", "Delivered in clear", &compliance_summary::in_clear},
    {"portal", "Through the portal", &compliance_summary::portal},
    {"waiting", "Still waiting", &compliance_summary::waiting},
    {"deferrals", "Deferrals", &compliance_summary::deferrals},
    {"bounced", "Bounced or expired", &compliance_summary::bounced},
    {"expired", "Of them expired", &compliance_summary::expired},
    {"deleted", "Deleted by an operator", &compliance_summary::deleted},
};

struct portal_field {
  std::string_view name, label;
  int64_t portal::deposit_counts::*value;
};
constexpr portal_field portal_fields[] = {
    {"deposits", "Deposits", &portal::deposit_counts::deposits},
    {"opened", "Opened", &portal::deposit_counts::opened},
    {"downloads", "Downloads", &portal::deposit_counts::downloads},
    {"replies", "Replies", &portal::deposit_counts::replies},
};

// A key the report names people would rather read (the JSON keeps the key).
struct key_text {
  std::string_view key, label, colour;
};
// Greens for protection, blue for the portal, amber and red for what an
// auditor asks about; every key is named in a legend too, so the page reads
// in black and white.
constexpr key_text known_keys[] = {
    {"pgp", "OpenPGP", "#14532d"},
    {"smime", "S/MIME", "#166534"},
    {"portal", "Portal", "#1d4ed8"},
    {"tls", "TLS", "#22c55e"},
    {"plain", "Plain SMTP", "#dc2626"},
    {"reject", "Rejected", "#7c2d12"},
    {"hold", "Held", "#ca8a04"},
    {"defer", "Deferred by policy", "#ea580c"},
    {"-", "No method yet", "#9ca3af"},
    {"TLSv1.3", "TLS 1.3", "#15803d"},
    {"TLSv1.2", "TLS 1.2", "#4ade80"},
    {"TLSv1.1", "TLS 1.1", "#facc15"},
    {"TLSv1", "TLS 1.0", "#f97316"},
    {"dane", "DANE", "#14532d"},
    {"mta-sts", "MTA-STS", "#15803d"},
    {"verified", "Verified", "#4ade80"},
    {"unverified", "Unverified", "#eab308"},
    {"none", "None (no TLS)", "#dc2626"},
    {"deferrals", "Deferrals", "#f59e0b"},
    {"bounced", "Bounced or expired", "#b91c1c"},
};
constexpr std::string_view other_colours[] = {"#6b7280", "#8b5cf6", "#0891b2", "#be185d"};

const key_text* known(std::string_view key) {
  auto it = std::find_if(std::begin(known_keys), std::end(known_keys), [&](const key_text& k) { return k.key == key; });
  return it == std::end(known_keys) ? nullptr : it;
}

std::string label_of(std::string_view key) { return std::string(known(key) ? known(key)->label : key); }

// position: the key's place in its list, so that two unknown keys differ.
std::string colour_of(std::string_view key, size_t position) {
  return std::string(known(key) ? known(key)->colour : other_colours[position % std::size(other_colours)]);
}

std::vector<std::string> keys_of(const std::vector<keyed_count>& counts) {
  std::vector<std::string> out;
  for (const auto& c : counts) out.push_back(c.key);
  return out;
}

// ---------------------------------------------------------------- JSON

// A reference token of a JSON pointer (RFC 6901 section 3).
std::string pointer_token(std::string_view key) {
  std::string out;
  for (char c : key) out += c == '~' ? "~0" : c == '/' ? "~1" : std::string(1, c);
  return out;
}

std::string json_counts(const std::vector<std::string>& keys, const std::vector<int64_t>& values) {
  std::string out = "{";
  for (size_t i = 0; i < keys.size(); ++i)
    out += (i ? ", " : "") + json_string(keys[i]) + ": " + std::to_string(values[i]);
  return out + "}";
}

std::string json_counts(const std::vector<keyed_count>& counts) {
  std::vector<int64_t> values;
  for (const auto& c : counts) values.push_back(c.count);
  return json_counts(keys_of(counts), values);
}

std::string json_domains(const std::vector<keyed_count>& domains) {
  std::string out = "[";
  for (size_t i = 0; i < domains.size(); ++i)
    out += (i ? ", " : "") + std::string("{\"domain\": ") + json_string(domains[i].key) +
           ", \"recipients\": " + std::to_string(domains[i].count) + "}";
  return out + "]";
}

// ---------------------------------------------------------------- HTML pieces

const std::string root = "/compliance/";

// A number as the page shows it, tagged with where the JSON holds it.
std::string number(std::string_view tag, const std::string& pointer, const std::string& text,
                   std::string_view css_class = {}) {
  std::string t(tag);
  std::string attributes = css_class.empty() ? "" : " class=\"" + std::string(css_class) + "\"";
  return "<" + t + attributes + " data-json=\"" + html_escape(root + pointer) + "\">" + text + "</" + t + ">";
}
std::string number(std::string_view tag, const std::string& pointer, int64_t n, std::string_view css_class = {}) {
  return number(tag, pointer, std::to_string(n), css_class);
}

// The card a section leads with: a share, in per cent.
std::string percent_card(const std::string& pointer, const std::string& percent, std::string_view label) {
  return "<div class=\"card key\"><span class=\"value\">" + number("span", pointer, percent) +
         "<small>%</small></span><span class=\"label\">" + html_escape(label) + "</span></div>";
}

std::string fixed1(double v) {
  std::ostringstream s;
  s << std::fixed << std::setprecision(1) << v;
  return s.str();
}

std::string swatch(const std::string& colour) {
  return "<svg class=\"swatch\" width=\"12\" height=\"12\" aria-hidden=\"true\"><rect width=\"12\" height=\"12\" rx=\"2\""
         " fill=\"" + colour + "\"/></svg>";
}

std::string legend(const std::vector<std::string>& keys) {
  std::string out = "<ul class=\"legend\">";
  for (size_t i = 0; i < keys.size(); ++i)
    out += "<li>" + swatch(colour_of(keys[i], i)) + html_escape(label_of(keys[i])) + "</li>";
  return out + "</ul>";
}

// About four gridlines at round numbers.
int64_t tick_step(int64_t max) {
  if (max <= 4) return 1;
  double raw = static_cast<double>(max) / 4.0;
  double magnitude = std::pow(10.0, std::floor(std::log10(raw)));
  for (double m : {1.0, 2.0, 5.0, 10.0})
    if (m * magnitude >= raw) return static_cast<int64_t>(m * magnitude);
  return static_cast<int64_t>(10 * magnitude);
}

// One stacked bar per day; values[day][k] belongs to keys[k]. Each segment
// has a <title> (a tooltip on screen); the table below has the numbers.
std::string stacked_bars(const std::string& caption, const std::vector<std::string>& days,
                         const std::vector<std::string>& keys, const std::vector<std::vector<int64_t>>& values) {
  constexpr double width = 760, height = 250, left = 48, right = 10, top = 10, bottom = 34;
  const double plot_w = width - left - right, plot_h = height - top - bottom;
  int64_t max = 1;
  for (const auto& v : values) {
    int64_t sum = 0;
    for (int64_t n : v) sum += n;
    max = std::max(max, sum);
  }
  int64_t step = tick_step(max);
  int64_t axis_top = (max + step - 1) / step * step;
  auto y_of = [&](double n) { return top + plot_h - plot_h * n / static_cast<double>(axis_top); };
  std::ostringstream o;
  o << "<svg class=\"chart\" viewBox=\"0 0 " << width << " " << height << "\" role=\"img\" aria-label=\""
    << html_escape(caption) << "\">";
  for (int64_t t = 0; t <= axis_top; t += step) {
    double y = y_of(static_cast<double>(t));
    o << "<line class=\"grid\" x1=\"" << left << "\" x2=\"" << width - right << "\" y1=\"" << fixed1(y) << "\" y2=\""
      << fixed1(y) << "\"/><text class=\"tick\" x=\"" << left - 6 << "\" y=\"" << fixed1(y + 3.5)
      << "\" text-anchor=\"end\">" << t << "</text>";
  }
  const double slot = plot_w / static_cast<double>(days.size());
  const double bar = std::clamp(slot * 0.72, 0.6, 56.0);  // a few days do not make slabs
  const size_t label_every = (days.size() + 11) / 12;  // at most twelve dates under the axis
  for (size_t d = 0; d < days.size(); ++d) {
    double x = left + slot * static_cast<double>(d) + (slot - bar) / 2;
    double base = 0;
    for (size_t k = 0; k < keys.size(); ++k) {
      int64_t n = values[d][k];
      if (n == 0) continue;
      double y = y_of(base + static_cast<double>(n));
      o << "<rect x=\"" << fixed1(x) << "\" y=\"" << fixed1(y) << "\" width=\"" << fixed1(bar) << "\" height=\""
        << fixed1(y_of(base) - y) << "\" fill=\"" << colour_of(keys[k], k) << "\"><title>" << html_escape(days[d])
        << " " << html_escape(label_of(keys[k])) << ": " << n << "</title></rect>";
      base += static_cast<double>(n);
    }
    if (d % label_every == 0)
      o << "<text class=\"tick\" x=\"" << fixed1(left + slot * (static_cast<double>(d) + 0.5)) << "\" y=\""
        << height - bottom + 16 << "\" text-anchor=\"middle\">" << html_escape(days[d].substr(5)) << "</text>";
  }
  o << "<line class=\"axis\" x1=\"" << left << "\" x2=\"" << width - right << "\" y1=\"" << top + plot_h << "\" y2=\""
    << top + plot_h << "\"/></svg>";
  return o.str();
}

// One horizontal bar per key, with its count at the end.
std::string horizontal_bars(const std::string& caption, const std::vector<keyed_count>& counts) {
  constexpr double width = 760, row = 30, label_w = 150, value_w = 60;
  const double height = row * static_cast<double>(counts.size()) + 8;
  int64_t max = 1;
  for (const auto& c : counts) max = std::max(max, c.count);
  std::ostringstream o;
  o << "<svg class=\"chart\" viewBox=\"0 0 " << width << " " << height << "\" role=\"img\" aria-label=\""
    << html_escape(caption) << "\">";
  for (size_t i = 0; i < counts.size(); ++i) {
    double y = 4 + row * static_cast<double>(i);
    double w = (width - label_w - value_w) * static_cast<double>(counts[i].count) / static_cast<double>(max);
    o << "<text class=\"label\" x=\"" << label_w - 10 << "\" y=\"" << y + 19 << "\" text-anchor=\"end\">"
      << html_escape(label_of(counts[i].key)) << "</text><rect class=\"track\" x=\"" << label_w << "\" y=\"" << y + 5
      << "\" width=\"" << width - label_w - value_w << "\" height=\"20\" rx=\"3\"/>";
    if (counts[i].count > 0)
      o << "<rect x=\"" << label_w << "\" y=\"" << y + 5 << "\" width=\"" << fixed1(std::max(w, 2.0))
        << "\" height=\"20\" rx=\"3\" fill=\"" << colour_of(counts[i].key, i) << "\"/>";
    o << "<text class=\"value\" x=\"" << width - value_w + 8 << "\" y=\"" << y + 19 << "\">" << counts[i].count
      << "</text>";
  }
  return o.str() + "</svg>";
}

// A table of counts per day: a column per key, the day's total, and a
// footer of the period's totals.
struct day_table {
  std::string caption;
  std::string member;  // "methods": days[i].methods, and the period's counts of that name
  const std::vector<keyed_count>& totals;
  std::vector<int64_t> compliance_day::*values;
  std::string total_name, total_heading;  // "recipients": days[i].recipients, and totals/recipients
  int64_t compliance_day::*day_total;
  int64_t compliance_summary::*total;
};

std::string day_rows(const day_table& t, const compliance_summary& s) {
  std::ostringstream o;
  o << "<table><caption>" << html_escape(t.caption) << "</caption><thead><tr><th scope=\"col\">Day (UTC)</th>";
  for (const auto& c : t.totals) o << "<th scope=\"col\" class=\"num\">" << html_escape(label_of(c.key)) << "</th>";
  o << "<th scope=\"col\" class=\"num\">" << html_escape(t.total_heading) << "</th></tr></thead><tbody>";
  for (size_t d = 0; d < s.days.size(); ++d) {
    const auto& day = s.days[d];
    std::string at = "days/" + std::to_string(d) + "/";
    o << "<tr><th scope=\"row\">" << html_escape(day.day) << "</th>";
    for (size_t k = 0; k < t.totals.size(); ++k)
      o << number("td", at + t.member + "/" + pointer_token(t.totals[k].key), (day.*t.values)[k]);
    o << number("td", at + t.total_name, day.*t.day_total) << "</tr>";
  }
  o << "</tbody><tfoot><tr><th scope=\"row\">Total</th>";
  for (const auto& c : t.totals) o << number("td", t.member + "/" + pointer_token(c.key), c.count);
  o << number("td", "totals/" + t.total_name, s.*t.total) << "</tr></tfoot></table>";
  return o.str();
}

std::string domain_table(const std::string& caption, const std::string& member,
                         const std::vector<keyed_count>& domains, const std::string& count_heading,
                         const std::string& none_text) {
  if (domains.empty()) return "<p class=\"quiet\">" + html_escape(none_text) + "</p>";
  std::ostringstream o;
  o << "<table><caption>" << html_escape(caption) << "</caption><thead><tr><th scope=\"col\">Recipient domain</th>"
    << "<th scope=\"col\" class=\"num\">" << html_escape(count_heading) << "</th></tr></thead><tbody>";
  for (size_t i = 0; i < domains.size(); ++i)
    o << "<tr><td class=\"domain\">" << html_escape(domains[i].key) << "</td>"
      << number("td", member + "/" + std::to_string(i) + "/recipients", domains[i].count) << "</tr>";
  return o.str() + "</tbody></table>";
}

std::string period_text(const compliance_summary& s) {
  std::string from = s.since > 0 ? utc_time(s.since, readable_utc) : "the first message recorded";
  return from + " to " + utc_time(s.until, readable_utc);
}

constexpr std::string_view style = R"(
:root { --ink: #111827; --muted: #4b5563; --line: #d1d5db; --soft: #f3f4f6; --accent: #166534; }
* { box-sizing: border-box; }
body { margin: 0; color: var(--ink); background: #fff;
  font: 15px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif; }
main { max-width: 980px; margin: 0 auto; padding: 32px 28px 48px; }
header.report { border-bottom: 3px solid var(--accent); padding-bottom: 16px; margin-bottom: 24px; }
.kicker { margin: 0; color: var(--accent); font-weight: 600; letter-spacing: .06em; text-transform: uppercase;
  font-size: 12px; }
h1 { margin: 4px 0 12px; font-size: 28px; line-height: 1.2; }
h2 { margin: 36px 0 6px; font-size: 20px; border-bottom: 1px solid var(--line); padding-bottom: 4px; }
p.lead { margin: 0 0 12px; color: var(--muted); }
dl.meta { display: grid; grid-template-columns: max-content 1fr; gap: 2px 16px; margin: 0; }
dl.meta dt { color: var(--muted); }
dl.meta dd { margin: 0; font-weight: 500; }
.cards { display: grid; grid-template-columns: repeat(auto-fill, minmax(170px, 1fr)); gap: 10px; margin: 8px 0; }
.card { border: 1px solid var(--line); border-radius: 8px; padding: 10px 12px; }
.card .value { display: block; font-size: 26px; font-weight: 650; font-variant-numeric: tabular-nums; }
.card .label { color: var(--muted); font-size: 13px; }
.card.key { border-color: var(--accent); border-width: 2px; }
.card .value small { font-size: 16px; font-weight: 500; margin-left: 2px; }
.card.warn .value { color: #b91c1c; }
svg.chart { display: block; width: 100%; height: auto; margin: 8px 0 4px; }
svg.chart text { font-size: 11px; fill: var(--muted); font-family: inherit; }
svg.chart text.label, svg.chart text.value { font-size: 13px; fill: var(--ink); }
svg.chart .grid { stroke: #e5e7eb; stroke-width: 1; }
svg.chart .axis { stroke: #6b7280; stroke-width: 1; }
svg.chart .track { fill: var(--soft); }
ul.legend { list-style: none; display: flex; flex-wrap: wrap; gap: 4px 16px; padding: 0; margin: 4px 0 12px;
  font-size: 13px; }
ul.legend li { display: flex; align-items: center; gap: 6px; }
table { border-collapse: collapse; width: 100%; margin: 10px 0 4px; font-size: 13px;
  font-variant-numeric: tabular-nums; }
caption { text-align: left; font-weight: 600; padding: 4px 0; }
th, td { border-bottom: 1px solid var(--line); padding: 4px 8px; text-align: left; }
td, th.num { text-align: right; }
td.domain { text-align: left; word-break: break-all; }
thead th { border-bottom: 2px solid var(--ink); }
tfoot th, tfoot td { border-top: 2px solid var(--ink); font-weight: 650; }
.quiet, .empty { color: var(--muted); }
.empty { font-size: 18px; padding: 24px; border: 1px dashed var(--line); border-radius: 8px; text-align: center; }
footer { margin-top: 40px; padding-top: 12px; border-top: 1px solid var(--line); color: var(--muted); font-size: 12px; }
footer dt { font-weight: 600; color: var(--ink); }
footer dd { margin: 0 0 6px; }
@page { size: A4; margin: 14mm 12mm; }
@media print {
  body { font-size: 11pt; }
  main { max-width: none; padding: 0; }
  h2 { break-after: avoid; }
  section { break-inside: avoid-page; }
  section.long { break-inside: auto; }
  table { break-inside: auto; }
  tr, .card, svg.chart { break-inside: avoid; }
  thead { display: table-header-group; }
  tfoot { display: table-footer-group; }
  .card, .empty { border-color: #9ca3af; }
  svg.chart { max-height: 90mm; }
  svg, .swatch { print-color-adjust: exact; -webkit-print-color-adjust: exact; }
}
)";

}  // namespace

std::string compliance_json(const compliance_summary& s, const compliance_heading& h) {
  std::ostringstream o;
  o << "{\"organisation\": " << json_string(h.organisation) << ", \"version\": " << json_string(h.version)
    << ", \"generated_at\": " << json_string(utc_time(h.generated_at, iso_utc))
    << ", \"since\": " << json_string(s.since > 0 ? utc_time(s.since, iso_utc) : "")
    << ", \"until\": " << json_string(utc_time(s.until, iso_utc)) << ", \"totals\": {";
  for (const auto& f : total_fields) o << (&f == total_fields ? "" : ", ") << json_string(f.name) << ": " << s.*f.value;
  o << ", \"secured_percent\": " << percent_text(s.secured, s.delivered) << "}"
    << ", \"methods\": " << json_counts(s.methods) << ", \"tls_versions\": " << json_counts(s.tls_versions)
    << ", \"certificates\": " << json_counts(s.certificates) << ", \"days\": [";
  for (size_t d = 0; d < s.days.size(); ++d) {
    const auto& day = s.days[d];
    o << (d ? ", " : "") << "{\"day\": " << json_string(day.day) << ", \"recipients\": " << day.recipients
      << ", \"delivered\": " << day.delivered
      << ", \"methods\": " << json_counts(keys_of(s.methods), day.methods)
      << ", \"tls_versions\": " << json_counts(keys_of(s.tls_versions), day.tls_versions)
      << ", \"deferrals\": " << day.deferrals << ", \"bounced\": " << day.bounced << "}";
  }
  o << "], \"portal_domains\": " << json_domains(s.portal_domains)
    << ", \"clear_domains\": " << json_domains(s.clear_domains) << ", \"trouble_domains\": [";
  for (size_t i = 0; i < s.trouble_domains.size(); ++i) {
    const auto& t = s.trouble_domains[i];
    o << (i ? ", " : "") << "{\"domain\": " << json_string(t.domain) << ", \"deferrals\": " << t.deferrals
      << ", \"bounced\": " << t.bounced << "}";
  }
  o << "], \"portal\": ";
  if (s.portal_deposits) {
    const auto& p = *s.portal_deposits;
    o << "{";
    for (const auto& f : portal_fields) o << (&f == portal_fields ? "" : ", ") << json_string(f.name) << ": " << p.*f.value;
    o << ", \"opened_percent\": " << percent_text(p.opened, p.deposits) << "}";
  } else {
    o << "null";
  }
  o << "}";
  return o.str();
}

std::string compliance_html(const compliance_summary& s, const compliance_heading& h) {
  std::ostringstream o;
  std::string title = "Outbound mail compliance report: " + h.organisation;
  o << "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
    << "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
    << "<title>" << html_escape(title) << "</title><style>" << style << "</style></head><body><main>";

  o << "<header class=\"report\"><p class=\"kicker\">sealgate compliance report</p>"
    << "<h1>Outbound mail: how it was protected</h1><dl class=\"meta\">"
    << "<dt>Organisation</dt><dd>" << html_escape(h.organisation) << "</dd>"
    << "<dt>Period</dt><dd>" << html_escape(period_text(s)) << "</dd>"
    << "<dt>Generated</dt><dd>" << html_escape(utc_time(h.generated_at, readable_utc)) << "</dd>"
    << "<dt>Software</dt><dd>sealgate " << html_escape(h.version) << "</dd></dl></header>";

  o << "<section><h2>Summary</h2><p class=\"lead\">Recipients of the messages received in the period.</p>"
    << "<div class=\"cards\">" << percent_card("totals/secured_percent", percent_text(s.secured, s.delivered),
                                                "of deliveries protected");
  for (const auto& f : total_fields) {
    bool warn = (f.name == "in_clear" || f.name == "bounced") && s.*f.value > 0;
    o << "<div class=\"card" << (warn ? " warn" : "") << "\">"
      << number("span", "totals/" + std::string(f.name), s.*f.value, "value") << "<span class=\"label\">"
      << html_escape(f.label) << "</span></div>";
  }
  o << "</div></section>";

  if (s.recipients == 0) {
    o << "<p class=\"empty\">No mail in this period.</p>";
  } else {
    std::vector<std::string> day_names;
    for (const auto& d : s.days) day_names.push_back(d.day);

    auto methods = keys_of(s.methods);
    std::vector<std::vector<int64_t>> by_method;
    for (const auto& d : s.days) by_method.push_back(d.methods);
    o << "<section class=\"long\"><h2>Recipients by method, per day</h2>"
      << "<p class=\"lead\">How each recipient was to be protected, by the day its message arrived.</p>"
      << stacked_bars("Recipients by method per day", day_names, methods, by_method) << legend(methods)
      << day_rows({"Recipients by method", "methods", s.methods, &compliance_day::methods, "recipients", "Recipients",
                   &compliance_day::recipients, &compliance_summary::recipients},
                  s)
      << "</section>";

    auto versions = keys_of(s.tls_versions);
    std::vector<std::vector<int64_t>> by_version;
    for (const auto& d : s.days) by_version.push_back(d.tls_versions);
    o << "<section class=\"long\"><h2>TLS versions of delivered mail, per day</h2>"
      << "<p class=\"lead\">The connection each delivered recipient's mail left on; 'None' travelled without "
         "TLS.</p>"
      << stacked_bars("TLS versions per day", day_names, versions, by_version) << legend(versions)
      << day_rows({"Delivered recipients by TLS version", "tls_versions", s.tls_versions,
                   &compliance_day::tls_versions, "delivered", "Delivered", &compliance_day::delivered,
                   &compliance_summary::delivered},
                  s)
      << "</section>";

    o << "<section><h2>Certificate judgements</h2>"
      << "<p class=\"lead\">How the receiving server's certificate was judged for each delivered recipient.</p>"
      << horizontal_bars("Certificate judgements of delivered recipients", s.certificates)
      << "<table><caption>Delivered recipients by certificate judgement</caption><thead><tr>"
      << "<th scope=\"col\">Judgement</th><th scope=\"col\" class=\"num\">Recipients</th></tr></thead><tbody>";
    for (const auto& c : s.certificates)
      o << "<tr><th scope=\"row\">" << html_escape(label_of(c.key)) << "</th>"
        << number("td", "certificates/" + pointer_token(c.key), c.count) << "</tr>";
    o << "</tbody><tfoot><tr><th scope=\"row\">Total</th>" << number("td", "totals/delivered", s.delivered)
      << "</tr></tfoot></table></section>";

    o << "<section class=\"long\"><h2>Domains that needed the portal or got mail in clear</h2>"
      << domain_table("Recipients delivered through the portal", "portal_domains", s.portal_domains, "Recipients",
                      "No recipient needed the portal.")
      << domain_table("Recipients delivered in clear (no TLS, no end-to-end encryption)", "clear_domains",
                      s.clear_domains, "Recipients", "No recipient got mail in clear.")
      << "</section>";

    std::vector<std::vector<int64_t>> trouble;
    for (const auto& d : s.days) trouble.push_back({d.deferrals, d.bounced});
    o << "<section class=\"long\"><h2>Deferrals and bounces</h2>"
      << "<p class=\"lead\">Deferrals are delivery attempts put off (the receiver or a method asked to try again "
         "later); bounces are recipients whose mail was returned or expired.</p>"
      << stacked_bars("Deferrals and bounces per day", day_names, {"deferrals", "bounced"}, trouble)
      << legend({"deferrals", "bounced"})
      << "<table><caption>Deferrals and bounces per day</caption><thead><tr><th scope=\"col\">Day (UTC)</th>"
      << "<th scope=\"col\" class=\"num\">Deferrals</th><th scope=\"col\" class=\"num\">Bounced or expired</th>"
      << "</tr></thead><tbody>";
    for (size_t d = 0; d < s.days.size(); ++d) {
      std::string at = "days/" + std::to_string(d) + "/";
      o << "<tr><th scope=\"row\">" << html_escape(s.days[d].day) << "</th>"
        << number("td", at + "deferrals", s.days[d].deferrals) << number("td", at + "bounced", s.days[d].bounced)
        << "</tr>";
    }
    o << "</tbody><tfoot><tr><th scope=\"row\">Total</th>" << number("td", "totals/deferrals", s.deferrals)
      << number("td", "totals/bounced", s.bounced) << "</tr></tfoot></table>";
    if (s.trouble_domains.empty()) {
      o << "<p class=\"quiet\">No domain had deferrals or bounces.</p>";
    } else {
      o << "<table><caption>Domains with deferrals or bounces</caption><thead><tr>"
        << "<th scope=\"col\">Recipient domain</th><th scope=\"col\" class=\"num\">Deferrals</th>"
        << "<th scope=\"col\" class=\"num\">Bounced or expired</th></tr></thead><tbody>";
      for (size_t i = 0; i < s.trouble_domains.size(); ++i) {
        const auto& t = s.trouble_domains[i];
        std::string at = "trouble_domains/" + std::to_string(i) + "/";
        o << "<tr><td class=\"domain\">" << html_escape(t.domain) << "</td>" << number("td", at + "deferrals", t.deferrals)
          << number("td", at + "bounced", t.bounced) << "</tr>";
      }
      o << "</tbody></table>";
    }
    o << "</section>";
  }

  o << "<section><h2>Portal</h2>";
  if (s.portal_deposits) {
    const auto& p = *s.portal_deposits;
    o << "<p class=\"lead\">Messages deposited in the secure portal in the period, and what their recipients did."
      << "</p><div class=\"cards\">"
      << percent_card("portal/opened_percent", percent_text(p.opened, p.deposits), "of deposits opened");
    for (const auto& f : portal_fields)
      o << "<div class=\"card\">" << number("span", "portal/" + std::string(f.name), p.*f.value, "value")
        << "<span class=\"label\">" << html_escape(f.label) << "</span></div>";
    o << "</div>";
  } else {
    o << "<p class=\"quiet\">The portal is not configured on this gateway.</p>";
  }
  o << "</section>";

  o << "<footer><dl>"
    << "<dt>Counted</dt><dd>Recipients of the messages the gateway accepted in the period; days are the UTC days "
       "the messages arrived. A recipient is counted once, in its current state.</dd>"
    << "<dt>Protected</dt><dd>Delivered end to end encrypted (OpenPGP, S/MIME), through the portal, or over TLS. "
       "Delivered otherwise is <em>in clear</em>.</dd>"
    << "<dt>Certificate judgements</dt><dd>DANE: matched the domain's signed TLSA records (RFC 7672). MTA-STS: "
       "met the domain's published policy (RFC 8461). Verified: a trusted certificate for the server's name. "
       "Unverified: encrypted, but the certificate was not checked or not trusted. None: no TLS.</dd>"
    << "<dt>Source</dt><dd>The gateway's delivery record; the same numbers are in <code>sealgate report --format "
       "json</code> under \"compliance\". No addresses or message contents are shown.</dd>"
    << "</dl></footer></main></body></html>\n";
  return o.str();
}

}  // namespace sealgate::gateway
