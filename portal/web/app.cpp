// The portal's request handling; see app.hpp. Nothing of a message, no code
// and no token is ever logged: log lines name the entry id only.
#include "portal/web/app.hpp"

#include <boost/beast/http/field.hpp>
#include <boost/beast/http/status.hpp>
#include <boost/beast/http/verb.hpp>

#include <charconv>
#include <ctime>

#include "common/file_io.hpp"
#include "common/log.hpp"
#include "common/text.hpp"
#include "portal/store/vault.hpp"
#include "portal/web/forms.hpp"
#include "portal/web/forwarded.hpp"
#include "portal/web/html.hpp"
#include "portal/web/message_view.hpp"
#include "portal/web/reply.hpp"

namespace sealgate::portal {
namespace http = boost::beast::http;
using field = http::field;
using status = http::status;

namespace {

constexpr std::string_view cookie_name = "__Host-sg";

// Mobile first, no inline style (the CSP allows 'self' style sheets only),
// visible focus for keyboard users.
constexpr std::string_view style_sheet = R"css(
*{box-sizing:border-box}
body{margin:0;font:16px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,"DejaVu Sans",sans-serif;color:#1b1b1b;background:#f4f5f7}
header{background:#123;color:#fff;padding:.75rem 1rem;display:flex;align-items:center;gap:.75rem}
header img{max-height:2.5rem;max-width:8rem}
header span{font-weight:600}
main{max-width:46rem;margin:0 auto;padding:1rem}
h1{font-size:1.4rem;margin:.5rem 0 1rem}
h2{font-size:1.1rem;margin:1.5rem 0 .5rem}
.card{background:#fff;border:1px solid #d6d9de;border-radius:6px;padding:1rem;margin:0 0 1rem}
dl{display:grid;grid-template-columns:max-content 1fr;gap:.25rem .75rem;margin:0}
dt{font-weight:600}
dd{margin:0;overflow-wrap:anywhere}
pre{white-space:pre-wrap;overflow-wrap:anywhere;font:inherit;margin:0}
label{display:block;font-weight:600;margin:.75rem 0 .25rem}
input[type=text],textarea{width:100%;font:inherit;padding:.5rem;border:1px solid #8a8f98;border-radius:4px}
input[name=code]{font-size:1.4rem;letter-spacing:.3rem;max-width:12rem}
textarea{min-height:8rem}
button{display:block;font:inherit;font-weight:600;padding:.6rem 1.2rem;margin-top:1rem;border:0;border-radius:4px;background:#0b5cad;color:#fff;cursor:pointer}
a:focus,button:focus,input:focus,textarea:focus{outline:3px solid #f5a623;outline-offset:2px}
.note{color:#444}
.error{color:#a00;font-weight:600}
ul.files{padding-left:1.2rem}
)css";

std::string html_page(const portal_config& config, bool logo, std::string_view title, const std::string& body) {
  std::string org = html_escape(config.organisation);
  std::string out =
      "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
      "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
      "<meta name=\"robots\" content=\"noindex, nofollow\">"
      "<title>" + html_escape(title) + " - " + org + "</title>"
      "<link rel=\"stylesheet\" href=\"/style.css\"></head><body>"
      "<header>";
  if (logo) out += "<img src=\"/logo\" alt=\"" + org + "\">";
  out += "<span>" + org + " secure mail</span></header><main><h1>" + html_escape(title) + "</h1>" + body +
         "</main></body></html>\n";
  return out;
}

std::string format_size(uint64_t n) {
  if (n < 1024) return std::to_string(n) + " bytes";
  if (n < 1024 * 1024) return std::to_string((n + 512) / 1024) + " KB";
  return std::to_string(n / (1024 * 1024)) + "." + std::to_string((n % (1024 * 1024)) * 10 / (1024 * 1024)) + " MB";
}

}  // namespace

void add_security_headers(http_response& r) {
  r.set(field::strict_transport_security, "max-age=31536000");
  r.set("Content-Security-Policy",
        "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; "
        "base-uri 'none'");
  r.set(field::x_frame_options, "DENY");
  r.set("X-Content-Type-Options", "nosniff");
  r.set("Referrer-Policy", "no-referrer");
  r.set(field::cache_control, "no-store");
  r.set("Cross-Origin-Opener-Policy", "same-origin");
  r.set("Cross-Origin-Resource-Policy", "same-origin");
  r.set("Permissions-Policy", "camera=(), microphone=(), geolocation=(), interest-cohort=()");
}

bool rate_limiter::allow(const std::string& client, int64_t now) {
  int64_t minute = now / 60;
  std::lock_guard lock(mutex_);
  if (windows_.size() > 100000) {  // a flood of addresses: forget the old minutes
    for (auto it = windows_.begin(); it != windows_.end();)
      it = it->second.first < minute ? windows_.erase(it) : std::next(it);
  }
  auto& w = windows_[client];
  if (w.first != minute) w = {minute, 0};
  return ++w.second <= per_minute_;
}

// One request in progress.
struct portal_app::context {
  context(const http_request& r, std::string c, int64_t t) : request(r), client(std::move(c)), now(t) {}
  const http_request& request;
  std::string client;
  int64_t now = 0;
  std::string token;            // from the path
  std::string lookup;           // lookup_key(token)
  std::optional<entry> found;   // the entry, any state
  std::string browser;          // the __Host-sg cookie (empty: none yet)
  bool new_browser = false;     // set the cookie in the answer
  std::string notice;           // a line for the page ("Your reply was sent.")
};

portal_app::portal_app(portal_config config, std::unique_ptr<store> s)
    : config_(std::move(config)), store_(std::move(s)), limiter_(config_.requests_per_minute) {
  if (!config_.logo.empty()) {
    auto bytes = read_file(config_.logo);
    if (!bytes) throw std::runtime_error(config_.logo.string() + ": cannot read the logo");
    logo_ = std::move(*bytes);
  }
}

uint64_t portal_app::body_limit(std::string_view target) const {
  // A reply's attachments arrive base64-free but inside multipart framing.
  if (target.size() > 6 && target.substr(target.size() - 6) == "/reply") return config_.reply_max_size + 64 * 1024;
  return 16 * 1024;
}

namespace {

http_response answer(const http_request& req, status s, std::string body, std::string_view type) {
  http_response r{s, req.version()};
  r.set(field::server, "sealgate-portal");
  r.set(field::content_type, type);
  add_security_headers(r);
  r.body() = std::move(body);
  r.keep_alive(req.keep_alive());
  r.prepare_payload();
  if (req.method() == http::verb::head) r.body().clear();  // Content-Length stays that of GET
  return r;
}

http_response redirect(const http_request& req, const std::string& to) {
  http_response r = answer(req, status::see_other, "", "text/plain; charset=utf-8");
  r.set(field::location, to);
  return r;
}

std::string csrf_for(const std::string& browser, const std::string& lookup) {
  return base64url_encode(hmac_sha256(browser, "sealgate portal csrf v1|" + lookup));
}

std::string hidden_csrf(const std::string& browser, const std::string& lookup) {
  return "<input type=\"hidden\" name=\"csrf\" value=\"" + csrf_for(browser, lookup) + "\">";
}

}  // namespace

http_response portal_app::handle(const http_request& req, const boost::asio::ip::address& peer, int64_t now) {
  const portal_config& cfg = config_;
  std::vector<std::string_view> forwarded_for;
  for (auto [it, end] = req.equal_range("X-Forwarded-For"); it != end; ++it) forwarded_for.push_back(it->value());
  const forwarded_client derived = client_of(peer, forwarded_for, cfg.trusted_proxies);
  if (derived.malformed)
    forwarded_malformed_("portal: [" + derived.address.to_string() + "]: X-Forwarded-For element '" + *derived.malformed +
                         "' is not an address; the proxy is taken for the client");
  const std::string client = derived.address.to_string();
  auto plain_page = [&](status s, std::string_view title, const std::string& text) {
    return answer(req, s, html_page(cfg, !logo_.empty(), title, "<div class=\"card\"><p>" + html_escape(text) + "</p></div>"),
                  "text/html; charset=utf-8");
  };
  std::string_view target = req.target();
  if (target.find('?') != std::string_view::npos) target = target.substr(0, target.find('?'));
  bool get = req.method() == http::verb::get || req.method() == http::verb::head;
  bool post = req.method() == http::verb::post;

  if (target == "/style.css" || target == "/logo") {
    if (!get) return plain_page(status::method_not_allowed, "Not allowed", "This address only answers GET.");
    return static_file(target, req);
  }
  if (target == "/" && get)
    return plain_page(status::ok, "Secure mail", "Open the link in the email you received to read your message.");
  if (target.substr(0, 3) != "/m/") return plain_page(status::not_found, "Not found", "There is nothing at this address.");

  std::string_view rest = target.substr(3);
  std::string_view token = rest.substr(0, rest.find('/'));
  std::string_view action = token.size() < rest.size() ? rest.substr(token.size()) : std::string_view{};
  context c(req, client, now);
  c.token = std::string(token);
  c.browser = cookie_value(req[field::cookie], cookie_name);
  if (!token_shape_ok(c.browser)) c.browser.clear();
  if (c.browser.empty() && get && action.empty()) {
    c.browser = new_token();
    c.new_browser = true;
  }

  if (!limiter_.allow(client, now)) {
    auto r = plain_page(status::too_many_requests, "Too many requests", "Please wait a minute and try again.");
    r.set(field::retry_after, "60");
    return r;
  }
  // Unknown, expired and retracted links do the same work (one lookup) before
  // they answer, so their timing tells nothing apart.
  c.lookup = lookup_key(token_shape_ok(c.token) ? c.token : std::string(43, 'A'));
  {
    std::lock_guard lock(store_mutex_);
    c.found = store_->find(c.lookup);
  }
  if (!token_shape_ok(c.token) || !c.found)
    return plain_page(status::not_found, "Link not valid",
                      "This link is not valid. Check that you opened the whole link from your email.");
  if (c.found->state == entry_state::retracted)
    return plain_page(status::gone, "Message withdrawn", "The sender has withdrawn this message. It can no longer be read.");
  if (c.found->state == entry_state::expired || c.found->expires <= now)
    return plain_page(status::gone, "Message expired",
                      "This message expired on " + utc_time(c.found->expires, readable_utc) + " and can no longer be read. "
                      "Ask the sender to send it again.");

  http_response r;
  if (action.empty() && get) {
    if (req.target().find("?sent=1") != std::string_view::npos) c.notice = "Your reply was sent.";
    r = entry_page(c);
  } else if (action.substr(0, 3) == "/a/" && get) {
    r = download(c, action.substr(3));
  } else if (post && (action == "/code" || action == "/verify" || action == "/reply")) {
    // CSRF: the form's token must be the one derived from this browser's cookie.
    std::string csrf;
    std::string_view type = req[field::content_type];
    if (action == "/reply") {
      form_limits limits;
      limits.max_file_bytes = cfg.reply_max_size;
      auto form = parse_multipart(type, req.body(), limits);
      if (form && form->fields.count("csrf")) csrf = form->fields["csrf"];
    } else if (auto form = parse_urlencoded(req.body(), 20)) {
      if (form->count("csrf")) csrf = (*form)["csrf"];
    }
    if (c.browser.empty() || !equal_constant_time(csrf, csrf_for(c.browser, c.lookup)))
      return plain_page(status::forbidden, "Please try again",
                        "This form has expired or your browser did not send its cookie. Go back, reload the page and "
                        "try again (this page needs cookies).");
    r = action == "/code" ? request_code(c) : action == "/verify" ? verify_code(c) : reply(c);
  } else if (action.empty() || action == "/code" || action == "/verify" || action == "/reply" ||
             action.substr(0, 3) == "/a/") {
    r = plain_page(status::method_not_allowed, "Not allowed", "This address does not answer that kind of request.");
    r.set(field::allow, action.empty() || action.substr(0, 3) == "/a/" ? "GET, HEAD" : "POST");
  } else {
    r = plain_page(status::not_found, "Not found", "There is nothing at this address.");
  }
  if (c.new_browser)
    r.set(field::set_cookie, std::string(cookie_name) + "=" + c.browser + "; Path=/; Secure; HttpOnly; SameSite=Strict");
  return r;
}

std::optional<std::string> portal_app::open_for(context& c) {
  if (c.browser.empty()) return std::nullopt;
  std::optional<int64_t> session;
  std::optional<sealed_message> sealed;
  {
    std::lock_guard lock(store_mutex_);
    session = store_->session_entry(session_key(c.browser), c.now);
    if (!session || *session != c.found->id) return std::nullopt;
    sealed = store_->sealed(c.found->id);
  }
  if (!sealed) return std::nullopt;
  return open_message(*sealed, c.token, c.lookup);
}

http_response portal_app::entry_page(context& c) {
  const entry& e = *c.found;
  auto page = [&](std::string_view title, const std::string& body) {
    return answer(c.request, status::ok, html_page(config_, !logo_.empty(), title, body), "text/html; charset=utf-8");
  };
  std::string base = "/m/" + c.token;
  if (auto message = open_for(c)) {
    view_limits limits;
    auto view = read_message_view(*message, limits);
    if (!view) return page("Message", "<div class=\"card\"><p class=\"error\">This message cannot be shown.</p></div>");
    std::string body;
    if (!c.notice.empty()) body += "<p class=\"note\" role=\"status\">" + html_escape(c.notice) + "</p>";
    body += "<div class=\"card\"><dl>";
    auto row = [&](std::string_view name, const std::string& value) {
      if (!value.empty()) body += "<dt>" + std::string(name) + "</dt><dd>" + html_escape(value) + "</dd>";
    };
    row("From", view->from);
    row("To", view->to);
    row("Cc", view->cc);
    row("Date", view->date);
    row("Subject", view->subject);
    row("Readable until", utc_time(e.expires, readable_utc));
    body += "</dl></div><h2>Message</h2><div class=\"card\"><pre>" + html_escape(view->text) + "</pre></div>";
    if (!view->attachments.empty()) {
      body += "<h2>Attachments</h2><div class=\"card\"><ul class=\"files\">";
      for (const auto& a : view->attachments)
        body += "<li><a href=\"" + base + "/a/" + std::to_string(a.index) + "\" download>" + html_escape(a.name) +
                "</a> (" + format_size(a.size) + ")</li>";
      body += "</ul></div>";
    }
    body += "<h2>Reply</h2><div class=\"card\"><form method=\"post\" action=\"" + base +
            "/reply\" enctype=\"multipart/form-data\">" + hidden_csrf(c.browser, c.lookup) +
            "<p class=\"note\">Your reply goes to " + html_escape(e.sender) + " only, and is sent securely.</p>"
            "<label for=\"text\">Your reply</label><textarea id=\"text\" name=\"text\" required></textarea>"
            "<label for=\"files\">Attachments (optional, up to " + format_size(config_.reply_max_size) +
            " in all)</label><input id=\"files\" type=\"file\" name=\"files\" multiple>"
            "<button type=\"submit\">Send reply</button></form></div>";
    return page(view->subject.empty() ? "Message" : view->subject, body);
  }
  if (e.locked_until > c.now)
    return page("Too many wrong codes",
                "<div class=\"card\"><p>Too many wrong codes were entered. Try again after " +
                    html_escape(utc_time(e.locked_until, readable_utc)) + ".</p></div>");
  bool code_pending = !c.browser.empty() && !e.code_hash.empty() && e.code_expires > c.now &&
                      equal_constant_time(e.code_session, session_key(c.browser));
  std::string intro = "<p>" + html_escape(e.sender) + " sent you a secure message. It can be read until " +
                      html_escape(utc_time(e.expires, readable_utc)) + ".</p>";
  if (code_pending) {
    std::string body = "<div class=\"card\">";
    if (!c.notice.empty()) body += "<p class=\"error\" role=\"alert\">" + html_escape(c.notice) + "</p>";
    body += "<p>We sent a 6-digit code to " + html_escape(e.recipient) +
            ". Enter it below. It is valid for " + std::to_string(config_.codes.lifetime / 60) + " minutes.</p>"
            "<form method=\"post\" action=\"" + base + "/verify\">" + hidden_csrf(c.browser, c.lookup) +
            "<label for=\"code\">Code</label><input id=\"code\" type=\"text\" name=\"code\" inputmode=\"numeric\" "
            "autocomplete=\"one-time-code\" pattern=\"[0-9]{6}\" maxlength=\"6\" required autofocus>"
            "<button type=\"submit\">Open the message</button></form>"
            "<form method=\"post\" action=\"" + base + "/code\">" + hidden_csrf(c.browser, c.lookup) +
            "<button type=\"submit\">Send a new code</button></form></div>";
    return page("Enter your code", body);
  }
  std::string body = "<div class=\"card\">" + intro;
  if (!c.notice.empty()) body += "<p class=\"error\" role=\"alert\">" + html_escape(c.notice) + "</p>";
  body += "<p>To open it, we send a code to " + html_escape(e.recipient) +
          ". Only the person who reads that mailbox can open the message.</p>"
          "<form method=\"post\" action=\"" + base + "/code\">" + hidden_csrf(c.browser, c.lookup) +
          "<button type=\"submit\">Send me a code</button></form></div>";
  return page("A secure message for you", body);
}

http_response portal_app::request_code(context& c) {
  std::string code = new_code();
  std::optional<std::string> outbox_key;
  code_request_result result;
  {
    std::lock_guard lock(store_mutex_);
    outbox_key = store_->setting("outbox_public_key");
    if (!outbox_key) {
      log_error("portal: the gateway has not published its outbox key yet; no code can be sent");
      c.notice = "The code cannot be sent right now. Please try again in a few minutes.";
      return entry_page(c);
    }
    bool ok = false;
    std::string key = base64_decode(*outbox_key, ok);
    if (!ok || key.size() != 32) {
      log_error("portal: the outbox key in the store is damaged; no code can be sent");
      c.notice = "The code cannot be sent right now. Please try again in a few minutes.";
      return entry_page(c);
    }
    result = store_->request_code(c.found->id, session_key(c.browser), code_hash(c.browser, code),
                                  box_seal(key, code), c.now, config_.codes);
  }
  switch (result) {
    case code_request_result::issued:
      log_info("portal: entry " + std::to_string(c.found->id) + ": code sent (client " + c.client + ")");
      return redirect(c.request, "/m/" + c.token);
    case code_request_result::rate_limited:
      c.notice = "Too many codes were asked for this message. Please wait and try again later.";
      break;
    case code_request_result::locked:
    case code_request_result::not_active:
      break;
  }
  {
    std::lock_guard lock(store_mutex_);
    c.found = store_->find(c.lookup);
  }
  return entry_page(c);
}

http_response portal_app::verify_code(context& c) {
  auto form = parse_urlencoded(c.request.body(), 20);
  std::string code = form && form->count("code") ? (*form)["code"] : "";
  code.erase(std::remove_if(code.begin(), code.end(), [](char ch) { return ch == ' ' || ch == '-'; }), code.end());
  code_check_result result;
  {
    std::lock_guard lock(store_mutex_);
    result = store_->check_code(c.found->id, session_key(c.browser), code_hash(c.browser, code.substr(0, 12)), c.now,
                                config_.codes, c.client);
    if (result == code_check_result::accepted) {
      // A new token for the session that may read: the one that asked for
      // the code is never worth more than that (no fixation).
      c.browser = new_token();
      c.new_browser = true;
      store_->add_session(session_key(c.browser), c.found->id, c.now + config_.session_lifetime.count());
    }
    c.found = store_->find(c.lookup);
  }
  log_info("portal: entry " + std::to_string(c.found->id) + ": code " +
           (result == code_check_result::accepted ? "accepted" : "refused") + " (client " + c.client + ")");
  switch (result) {
    case code_check_result::accepted: return redirect(c.request, "/m/" + c.token);
    case code_check_result::wrong: {
      int left = config_.codes.max_failures - c.found->failed_codes;
      c.notice = "That code is not right. " + std::to_string(std::max(left, 0)) + " attempts left.";
      break;
    }
    case code_check_result::expired: c.notice = "That code has expired. Ask for a new one."; break;
    case code_check_result::none: c.notice = "Ask for a code first."; break;
    case code_check_result::locked:
    case code_check_result::not_active: break;
  }
  return entry_page(c);
}

http_response portal_app::download(context& c, std::string_view index_text) {
  size_t index = 0;
  auto [end, ec] = std::from_chars(index_text.data(), index_text.data() + index_text.size(), index);
  auto message = open_for(c);
  if (!message) return redirect(c.request, "/m/" + c.token);
  view_limits limits;
  auto view = read_message_view(*message, limits);
  const attachment* found = nullptr;
  if (ec == std::errc{} && end == index_text.data() + index_text.size() && view)
    for (const auto& a : view->attachments)
      if (a.index == index) found = &a;
  auto bytes = found ? attachment_bytes(*message, index, limits) : std::nullopt;
  if (!bytes)
    return answer(c.request, status::not_found,
                  html_page(config_, !logo_.empty(), "Not found", "<div class=\"card\"><p>No such attachment.</p></div>"),
                  "text/html; charset=utf-8");
  {
    std::lock_guard lock(store_mutex_);
    store_->record({c.found->id, c.found->queue_id, c.found->recipient, c.now, "downloaded",
                    "attachment " + std::to_string(index) + ", " + std::to_string(bytes->size()) + " bytes"});
  }
  http_response r = answer(c.request, status::ok, std::move(*bytes), safe_download_type(found->content_type));
  // The name in both forms: ASCII for old clients, RFC 5987 UTF-8 for the rest.
  std::string ascii_name, encoded;
  for (unsigned char ch : found->name) {
    ascii_name += ch >= 0x20 && ch < 0x7f && ch != '"' && ch != '\\' ? static_cast<char>(ch) : '_';
    static constexpr char digits[] = "0123456789ABCDEF";
    if (std::isalnum(ch) || ch == '.' || ch == '-' || ch == '_') encoded += static_cast<char>(ch);
    else (encoded += '%', encoded += digits[ch >> 4], encoded += digits[ch & 15]);
  }
  r.set(field::content_disposition, "attachment; filename=\"" + ascii_name + "\"; filename*=UTF-8''" + encoded);
  return r;
}

http_response portal_app::reply(context& c) {
  auto message = open_for(c);
  if (!message) return redirect(c.request, "/m/" + c.token);
  form_limits limits;
  limits.max_file_bytes = config_.reply_max_size;
  auto form = parse_multipart(c.request[field::content_type], c.request.body(), limits);
  std::string text = form && form->fields.count("text") ? form->fields["text"] : "";
  if (!form || text.find_first_not_of(" \t\r\n") == std::string::npos) {
    c.notice = "Write a reply before sending it.";
    return entry_page(c);
  }
  view_limits vl;
  auto view = read_message_view(*message, vl);
  reply_input in;
  // From the portal's address, on the recipient's behalf: the recipient's own
  // domain in From would fail DMARC at the sender's MX.
  in.from = config_.from;
  in.from_name = c.found->recipient + " via " + config_.organisation;
  in.reply_to = c.found->recipient;
  in.to = c.found->sender;
  in.original_subject = view ? view->subject : "";
  in.original_message_id = view ? view->message_id : "";
  in.date = c.now;
  in.host = config_.from.substr(config_.from.find('@') + 1);
  in.text = text;
  for (auto& f : form->files)
    if (!f.filename.empty() || !f.data.empty()) in.attachments.push_back({f.filename, std::move(f.data)});
  std::string composed = compose_reply(in);
  {
    std::lock_guard lock(store_mutex_);
    auto key_text = store_->setting("outbox_public_key");
    bool ok = false;
    std::string key = key_text ? base64_decode(*key_text, ok) : "";
    if (!ok) {
      c.notice = "Your reply cannot be sent right now. Please try again in a few minutes.";
      return entry_page(c);
    }
    store_->put_outbox(c.found->id, "reply", box_seal(key, composed), c.now);
    store_->record({c.found->id, c.found->queue_id, c.found->recipient, c.now, "replied",
                    std::to_string(composed.size()) + " bytes, " + std::to_string(in.attachments.size()) +
                        " attachments"});
  }
  log_info("portal: entry " + std::to_string(c.found->id) + ": reply queued (client " + c.client + ")");
  return redirect(c.request, "/m/" + c.token + "?sent=1");
}

http_response portal_app::static_file(std::string_view path, const http_request& req) {
  if (path == "/style.css") {
    http_response r = answer(req, status::ok, std::string(style_sheet), "text/css; charset=utf-8");
    r.set(field::cache_control, "public, max-age=3600");  // the only cacheable answer: no message in it
    return r;
  }
  if (logo_.empty())
    return answer(req, status::not_found, "", "text/plain; charset=utf-8");
  http_response r = answer(req, status::ok, logo_, "image/png");
  r.set(field::cache_control, "public, max-age=3600");
  return r;
}

}  // namespace sealgate::portal
