// The gateway's side of the portal; see portal_service.hpp.
#include "gateway/methods/portal_service.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <stdexcept>

#include "common/file_io.hpp"
#include "common/log.hpp"
#include "common/metrics.hpp"
#include "common/text.hpp"
#include "common/unique_fd.hpp"
#include "common/worker.hpp"
#include "gateway/mail/headers.hpp"

namespace sealgate::gateway {
namespace {

int64_t unix_now() {
  return std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count();
}

// One line, no control characters: what may go into a header or a line of text.
std::string one_line(std::string_view s, size_t max = 200) {
  std::string out;
  for (unsigned char c : s) {
    if (c < 0x20 || c == 0x7f) continue;
    out += static_cast<char>(c);
  }
  if (out.size() > max) {
    size_t cut = max;
    while (cut > 0 && (static_cast<unsigned char>(out[cut]) & 0xC0) == 0x80) --cut;  // not inside a UTF-8 sequence
    out.resize(cut);
  }
  return out;
}

bool ascii(std::string_view s) {
  for (unsigned char c : s)
    if (c >= 0x80) return false;
  return true;
}

// An unstructured header value: as it is when ASCII, else RFC 2047 base64 words.
std::string header_text(std::string_view s) {
  if (ascii(s)) return std::string(s);
  std::string out;
  size_t at = 0;
  while (at < s.size()) {
    size_t n = std::min<size_t>(45, s.size() - at);
    // A word holds whole UTF-8 characters (RFC 2047 5).
    while (at + n < s.size() && n > 0 && (static_cast<unsigned char>(s[at + n]) & 0xC0) == 0x80) --n;
    if (!out.empty()) out += "\r\n ";
    out += "=?utf-8?b?" + base64_encode(s.substr(at, n)) + "?=";
    at += n;
  }
  return out;
}

// A display name as a quoted string (RFC 5322 3.2.4), or encoded words.
std::string display_name(std::string_view name) {
  if (!ascii(name)) return header_text(name);
  std::string out = "\"";
  for (char c : name) {
    if (c == '"' || c == '\\') out += '\\';
    out += c;
  }
  return out + "\"";
}

// The body as 7bit when it can be, else base64 in 76-column lines.
std::string body_part(const std::string& text, std::string& encoding) {
  std::string crlf;
  for (size_t i = 0; i < text.size(); ++i) {
    if (text[i] == '\n' && (i == 0 || text[i - 1] != '\r')) crlf += '\r';
    crlf += text[i];
  }
  if (crlf.size() < 2 || crlf.compare(crlf.size() - 2, 2, "\r\n") != 0) crlf += "\r\n";
  bool short_lines = true;
  for (size_t start = 0; start < crlf.size();) {
    size_t end = crlf.find("\r\n", start);
    if (end - start > 900) short_lines = false;
    start = end + 2;
  }
  if (ascii(crlf) && short_lines) {
    encoding = "7bit";
    return crlf;
  }
  encoding = "base64";
  std::string b64 = base64_encode(crlf), out;
  for (size_t i = 0; i < b64.size(); i += 76) out += b64.substr(i, 76) + "\r\n";
  return out;
}

std::string message_id(const std::string& hostname) {
  return "<" + portal::base64url_encode(portal::random_bytes(18)) + "@" + hostname + ">";
}

// A body part: its Content-Type and Content-Transfer-Encoding lines, the
// empty line, the encoded body.
std::string text_part(std::string_view type, const std::string& text) {
  std::string encoding;
  std::string body = body_part(text, encoding);
  return "Content-Type: " + std::string(type) + "; charset=utf-8\r\nContent-Transfer-Encoding: " + encoding +
         "\r\n\r\n" + body;
}

std::string base64_part(std::string_view data) {
  std::string b64 = base64_encode(data), out;
  for (size_t i = 0; i < b64.size(); i += 76) out += b64.substr(i, 76) + "\r\n";
  return out;
}

// The HTML version of a notification: the organisation's logo (a related
// part, never fetched from anywhere), the text with every value escaped and
// the link as a link. Built from the text template, so there is one text to
// configure.
std::string notification_html(std::string_view text_template, std::vector<std::pair<std::string, std::string>> values,
                              const std::string& link, const std::string& organisation) {
  constexpr std::string_view link_mark = "\x01";
  for (auto& [k, v] : values) v = k == "link" ? std::string(link_mark) : std::string(v);
  std::string escaped = html_escape(render_template(text_template, values));
  std::string anchor = "<a href=\"" + html_escape(link) + "\">" + html_escape(link) + "</a>";
  std::string body;
  for (char c : escaped) {
    if (c == '\x01') body += anchor;
    else if (c == '\n') body += "<br>\n";
    else body += c;
  }
  return "<!doctype html><html><head><meta charset=\"utf-8\"></head><body style=\"font-family:sans-serif\">"
         "<p><img src=\"cid:logo@sealgate\" alt=\"" + html_escape(organisation) + "\" style=\"max-height:48px\"></p>"
         "<p>" + body + "</p></body></html>\n";
}

// content: the MIME body with its own Content-Type lines (text_part, or a multipart).
std::string compose(const std::string& from, const std::string& to, const std::string& reply_to,
                    const std::string& subject, const std::string& content, const std::string& hostname, int64_t now,
                    bool auto_submitted) {
  std::string m;
  m += "From: " + from + "\r\n";
  m += "To: <" + to + ">\r\n";
  if (!reply_to.empty()) m += "Reply-To: " + reply_to + "\r\n";
  m += "Subject: " + header_text(subject) + "\r\n";
  m += "Date: " + rfc5322_date(static_cast<std::time_t>(now)) + "\r\n";
  m += "Message-ID: " + message_id(hostname) + "\r\n";
  if (auto_submitted) m += "Auto-Submitted: auto-generated\r\n";
  m += "MIME-Version: 1.0\r\n";
  return m + content;
}

// The From header's display name and address, for the notification; the
// envelope sender when the header has no usable address.
void sender_of(const message_content& content, const std::string& envelope_sender, std::string& name,
               std::string& address) {
  name.clear();
  address = envelope_sender;
  std::string head;
  if (!content.read(0, 64 * 1024, head)) return;
  std::string from = header_field(header_block(head), "From");
  size_t lt = from.rfind('<'), gt = from.rfind('>');
  if (lt != std::string::npos && gt != std::string::npos && gt > lt + 1) {
    std::string a = from.substr(lt + 1, gt - lt - 1);
    if (a.find('@') != std::string::npos && a.find_first_of(" \t\"") == std::string::npos) address = a;
    std::string n = from.substr(0, lt);
    while (!n.empty() && (n.back() == ' ' || n.back() == '\t')) n.pop_back();
    while (!n.empty() && (n.front() == ' ' || n.front() == '\t')) n.erase(0, 1);
    if (n.size() >= 2 && n.front() == '"' && n.back() == '"') n = n.substr(1, n.size() - 2);
    std::string unescaped;
    for (size_t i = 0; i < n.size(); ++i) {
      if (n[i] == '\\' && i + 1 < n.size()) ++i;
      unescaped += n[i];
    }
    // Encoded words are not decoded here: the address stands in for such a name.
    if (unescaped.find("=?") == std::string::npos) name = one_line(unescaped, 100);
  } else if (from.find('@') != std::string::npos && from.find_first_of(" \t<>\"") == std::string::npos) {
    address = from;
  }
  address = one_line(address, 254);
  if (name.empty()) name = address;
}

std::string trim_line(std::string_view s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == '\r' || s.back() == ' ')) s.remove_suffix(1);
  return std::string(s);
}

std::string read_or_make_outbox_key(const std::filesystem::path& file) {
  if (auto bytes = read_file(file)) {
    bool ok = false;
    std::string raw = base64_decode(trim_line(*bytes), ok);
    if (!ok || !portal::box_public_key(raw)) throw std::runtime_error(file.string() + ": not a portal outbox key");
    return raw;
  }
  auto keys = portal::new_box_keys();
  std::string text = base64_encode(keys.private_key) + "\n";
  unique_fd fd(::open(file.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600));
  if (!fd || !write_all(fd.get(), text) || ::fsync(fd.get()) != 0)
    throw std::runtime_error(file.string() + ": cannot create the portal outbox key");
  return keys.private_key;
}

}  // namespace

std::string render_template(std::string_view t, const std::vector<std::pair<std::string, std::string>>& values) {
  std::string out;
  for (size_t i = 0; i < t.size(); ++i) {
    if ((t[i] == '{' || t[i] == '}') && i + 1 < t.size() && t[i + 1] == t[i]) {
      out += t[i++];
      continue;
    }
    if (t[i] == '{') {
      size_t end = t.find('}', i);
      if (end != std::string_view::npos) {
        std::string_view name = t.substr(i + 1, end - i - 1);
        for (const auto& [k, v] : values)
          if (k == name) {
            out += v;
            break;
          }
        // An unknown name was refused when the configuration was loaded.
        i = end;
        continue;
      }
    }
    out += t[i];
  }
  return out;
}

std::string compose_notification(const portal::portal_config& config, const notice_input& in) {
  std::vector<std::pair<std::string, std::string>> values{
      {"sender", one_line(in.sender_address, 254)}, {"sender_name", one_line(in.sender_name, 100)},
      {"recipient", one_line(in.recipient, 254)},   {"link", in.link},
      {"expires", utc_time(in.expires, readable_utc)},         {"organisation", one_line(config.organisation, 100)}};
  std::string subject = one_line(render_template(config.notification.subject, values), 250);
  std::string text = render_template(config.notification.text, values);
  std::string from = display_name(one_line(in.sender_name, 100) + " via " + one_line(config.organisation, 100)) +
                     " <" + config.from + ">";
  std::string reply_to = in.sender_address.empty() ? "" : "<" + one_line(in.sender_address, 254) + ">";
  std::string content = text_part("text/plain", text);
  if (!in.logo.empty()) {
    // Text for every reader, HTML with the logo for those that show it.
    std::string alt = "=_alt" + portal::hex(portal::random_bytes(12)), rel = "=_rel" + portal::hex(portal::random_bytes(12));
    std::string html = notification_html(config.notification.text, values, in.link, one_line(config.organisation, 100));
    content = "Content-Type: multipart/alternative; boundary=\"" + alt + "\"\r\n\r\n--" + alt + "\r\n" + content +
              "--" + alt + "\r\nContent-Type: multipart/related; boundary=\"" + rel + "\"\r\n\r\n--" + rel +
              "\r\n" + text_part("text/html", html) + "--" + rel +
              "\r\nContent-Type: image/png\r\nContent-ID: <logo@sealgate>\r\n"
              "Content-Disposition: inline; filename=\"logo.png\"\r\nContent-Transfer-Encoding: base64\r\n\r\n" +
              base64_part(in.logo) + "--" + rel + "--\r\n--" + alt + "--\r\n";
  }
  return compose(from, in.recipient, reply_to, subject, content, in.hostname, in.now, false);
}

std::string compose_code_mail(const portal::portal_config& config, const std::string& recipient,
                              const std::string& code, const std::string& hostname, int64_t now) {
  std::vector<std::pair<std::string, std::string>> values{
      {"code", code},
      {"minutes", std::to_string(config.codes.lifetime / 60)},
      {"organisation", one_line(config.organisation, 100)},
      {"recipient", one_line(recipient, 254)}};
  std::string subject = one_line(render_template(config.code.subject, values), 250);
  std::string text = render_template(config.code.text, values);
  std::string from = display_name(one_line(config.organisation, 100)) + " <" + config.from + ">";
  return compose(from, recipient, "", subject, text_part("text/plain", text), hostname, now, true);
}

portal_service::portal_service(portal::portal_config config, std::string hostname, boost::asio::thread_pool& pool)
    : config_(std::move(config)), hostname_(std::move(hostname)), pool_(pool) {
  store_ = portal::open_store(config_.store);
  outbox_private_ = read_or_make_outbox_key(config_.outbox_key);
  store_->set_setting("outbox_public_key", base64_encode(*portal::box_public_key(outbox_private_)));
  if (!config_.logo.empty()) {
    auto bytes = read_file(config_.logo);
    if (!bytes) throw std::runtime_error(config_.logo.string() + ": cannot read the portal logo");
    logo_ = std::move(*bytes);
  }
  if (!config_.master_key.empty()) {
    auto bytes = read_file(config_.master_key);
    bool ok = false;
    if (bytes) master_key_ = base64_decode(trim_line(*bytes), ok);
    if (!ok || master_key_.size() != 32)
      throw std::runtime_error(config_.master_key.string() + ": portal.master_key must hold 32 bytes in base64");
  }
}

bool portal_service::available() {
  int64_t now = unix_now();
  if (now - checked_.load() >= 30) {
    checked_ = now;
    std::lock_guard lock(mutex_);
    try {
      writable_ = store_->writable();
    } catch (const std::exception&) {
      writable_ = false;
    }
    if (!writable_) log_warning("portal store " + config_.store.describe() + " is not writable: portal unavailable");
  }
  return writable_;
}

std::optional<portal_deposit_result> portal_service::deposit_now(const portal_deposit_request& r, std::string* why) {
  std::string message;
  if (!r.content || !r.content->read_all(message)) {
    *why = "cannot read the message from the spool";
    return std::nullopt;
  }
  int64_t now = unix_now();
  std::string token = portal::new_token();
  portal::deposit d;
  d.lookup = portal::lookup_key(token);
  d.queue_id = r.queue_id;
  d.recipient = r.recipient;
  d.sender = r.sender;
  d.created = now;
  d.expires = now + (r.expire > 0 ? r.expire : config_.expire.count());
  d.size = message.size();
  d.sealed = portal::seal_message(message, token, d.lookup, master_key_);
  std::fill(message.begin(), message.end(), '\0');
  portal_deposit_result out;
  try {
    out.entry_id = add_in_group(d);
  } catch (const std::exception& e) {
    writable_ = false;
    *why = e.what();
    return std::nullopt;
  }
  notice_input n;
  sender_of(*r.content, r.sender, n.sender_name, n.sender_address);
  n.recipient = r.recipient;
  n.link = config_.base_url + "/m/" + token;
  n.hostname = hostname_;
  n.expires = d.expires;
  n.now = now;
  n.logo = logo_;
  out.notification = compose_notification(config_, n);
  return out;
}

struct portal_service::waiting_deposit {
  const portal::deposit* d = nullptr;
  int64_t id = 0;
  std::exception_ptr error;
  bool done = false;
};

int64_t portal_service::add_in_group(const portal::deposit& d) {
  waiting_deposit me;
  me.d = &d;
  std::unique_lock lock(group_mutex_);
  group_.push_back(&me);
  while (!me.done) {
    if (group_writing_) {
      group_done_.wait(lock);
      continue;
    }
    // This thread writes everything that is waiting, itself included.
    group_writing_ = true;
    std::vector<waiting_deposit*> group;
    group.swap(group_);
    lock.unlock();
    std::vector<const portal::deposit*> deposits;
    for (auto* w : group) deposits.push_back(w->d);
    std::vector<int64_t> ids;
    std::exception_ptr error;
    try {
      std::lock_guard store_lock(mutex_);
      ids = store_->add_group(deposits);
    } catch (...) {
      error = std::current_exception();
    }
    lock.lock();
    for (size_t i = 0; i < group.size(); ++i) {
      group[i]->error = error;
      if (!error) group[i]->id = ids[i];
      group[i]->done = true;
    }
    group_writing_ = false;
    group_done_.notify_all();
  }
  if (me.error) std::rethrow_exception(me.error);
  return me.id;
}

boost::asio::awaitable<std::optional<portal_deposit_result>> portal_service::deposit(portal_deposit_request request,
                                                                                      std::string* why) {
  std::function<std::optional<portal_deposit_result>()> work = [this, &request, why] {
    auto r = deposit_now(request, why);
    // A deposit that reached the store is counted from the store's events.
    if (!r) metrics::get().portal_event("deposit_failed");
    return r;
  };
  co_return co_await on_pool<std::optional<portal_deposit_result>>(pool_, work);
}

std::vector<portal::event> portal_service::events_after(int64_t after, size_t limit) {
  std::lock_guard lock(mutex_);
  return store_->events_after(after, limit);
}

portal::store::event_tally portal_service::count_events(int64_t after) {
  std::lock_guard lock(mutex_);
  try {
    return store_->count_events(after);
  } catch (const std::exception& e) {
    log_error(std::string("portal: counting events: ") + e.what());
    return {{}, after};
  }
}

void portal_service::notified(int64_t entry_id, const std::string& queue_id, const std::string& recipient,
                              const std::string& notice_queue_id) {
  std::lock_guard lock(mutex_);
  try {
    store_->set_notice(entry_id, notice_queue_id);
    store_->record({entry_id, queue_id, recipient, unix_now(), "notified", "notification " + notice_queue_id});
  } catch (const std::exception& e) {
    log(log_level::error, queue_id, std::string("portal: cannot record the notification: ") + e.what());
  }
}

boost::asio::awaitable<std::vector<portal_mail>> portal_service::take_outbox(size_t limit) {
  std::function<std::vector<portal_mail>()> work = [this, limit] {
    std::vector<portal_mail> out;
    std::lock_guard lock(mutex_);
    for (const auto& item : store_->outbox(limit)) {
      auto e = store_->get(item.entry_id);
      auto opened = portal::box_open(outbox_private_, item.box);
      if (!e || !opened) {
        log_warning("portal outbox item " + std::to_string(item.id) + " dropped: " +
                    (e ? "not sealed to this gateway's outbox key" : "its entry is gone"));
        store_->remove_outbox(item.id);
        continue;
      }
      portal_mail m;
      m.sender = config_.from;
      m.kind = item.kind;
      m.entry_id = item.entry_id;
      m.queue_id = e->queue_id;
      if (item.kind == "code") {
        m.recipient = e->recipient;
        m.content = compose_code_mail(config_, e->recipient, *opened, hostname_, unix_now());
      } else if (item.kind == "notice") {
        // A reissued link (sealgate portal resend): to the deposit's recipient only.
        m.recipient = e->recipient;
        m.content = std::move(*opened);
      } else {
        // A reply goes to the original sender only, whatever its header says.
        m.recipient = e->sender;
        m.content = std::move(*opened);
      }
      m.outbox_id = item.id;
      out.push_back(std::move(m));
    }
    return out;
  };
  co_return co_await on_pool<std::vector<portal_mail>>(pool_, work);
}

void portal_service::outbox_done(int64_t item_id) {
  std::lock_guard lock(mutex_);
  store_->remove_outbox(item_id);
}

boost::asio::awaitable<size_t> portal_service::expire() {
  std::function<size_t()> work = [this] {
    std::lock_guard lock(mutex_);
    return store_->expire(unix_now());
  };
  co_return co_await on_pool<size_t>(pool_, work);
}

}  // namespace sealgate::gateway
