// Listeners and inbound sessions. Each session runs on its own strand; a
// watchdog on the same strand enforces the per-stage deadline. The session
// only moves bytes: smtp_protocol decides every reply, data_reader frames DATA,
// spool makes messages durable.
#include "gateway/inbound/server.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/ssl/stream.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <algorithm>
#include <array>
#include <cstring>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <unordered_map>
#include <unordered_set>

#include "common/proxy_protocol.hpp"
#include "crypto/tls_context.hpp"
#include "gateway/inbound/data_reader.hpp"
#include "gateway/inbound/smtp_protocol.hpp"
#include "gateway/mail/headers.hpp"
#include "common/log.hpp"
#include "common/metrics.hpp"
#include "gateway/inbound/users.hpp"

namespace sealgate::gateway {
namespace asio = boost::asio;
namespace ssl = asio::ssl;
using asio::awaitable;
using asio::ip::tcp;
using boost::system::error_code;
constexpr auto use_tuple = asio::as_tuple(asio::use_awaitable);

// Failed AUTH attempts per client address and per user name, in a sliding
// window: past the limit, further attempts get 454 without a password check,
// so that one attacker can neither guess quickly nor fill the scrypt pool that
// legitimate clients wait on. The user count only throttles addresses that
// have failed themselves: a distributed guess at one account must not lock
// its rightful owner out.
class auth_throttle {
 public:
  using clock = std::chrono::steady_clock;
  void configure(unsigned limit, std::chrono::seconds window) {
    limit_ = limit;
    window_ = window;
  }
  bool allowed(const std::string& address, const std::string& user) {
    std::lock_guard lock(mutex_);
    auto now = clock::now();
    unsigned by_address = count(addresses_, address, now);
    if (by_address >= limit_) return false;
    return by_address == 0 || count(users_, user, now) < limit_ * 2;
  }
  void failed(const std::string& address, const std::string& user) {
    std::lock_guard lock(mutex_);
    auto now = clock::now();
    bump(addresses_, address, now);
    bump(users_, user, now);
  }
  void succeeded(const std::string& address) {
    std::lock_guard lock(mutex_);
    addresses_.erase(address);
  }
  // One password check at a time per address: the scrypt pool is shared, and
  // a client opening many connections must not queue many checks ahead of
  // everyone else's before its first failure is even counted.
  bool try_begin_check(const std::string& address) {
    std::lock_guard lock(mutex_);
    return checking_.insert(address).second;
  }
  void end_check(const std::string& address) {
    std::lock_guard lock(mutex_);
    checking_.erase(address);
  }

 private:
  struct entry {
    unsigned failures = 0;
    clock::time_point since;
  };
  using table = std::unordered_map<std::string, entry>;
  unsigned count(table& t, const std::string& key, clock::time_point now) {
    auto it = t.find(key);
    if (it == t.end()) return 0;
    if (now - it->second.since > window_) {
      t.erase(it);
      return 0;
    }
    return it->second.failures;
  }
  void bump(table& t, const std::string& key, clock::time_point now) {
    if (t.size() > 100000) {  // bounded memory: forget windows that have passed
      for (auto it = t.begin(); it != t.end();) it = now - it->second.since > window_ ? t.erase(it) : std::next(it);
    }
    auto& e = t[key];
    if (e.failures == 0 || now - e.since > window_) e = entry{0, now};
    ++e.failures;
  }
  std::mutex mutex_;
  unsigned limit_ = 5;
  std::chrono::seconds window_{300};
  table addresses_, users_;
  std::unordered_set<std::string> checking_;
};

struct server::shared_state {
  shared_state(const config& c, spool& s, asio::thread_pool& w, std::shared_ptr<ssl::context> t)
      : cfg(c), spooler(s), workers(w), tls(std::move(t)) {
    auth_failures.configure(c.limits.auth_failures, c.limits.auth_window);
  }
  const config& cfg;
  spool& spooler;
  asio::thread_pool& workers;
  std::shared_ptr<ssl::context> tls;
  std::atomic<size_t> connections{0};
  // Connections from a load balancer whose PROXY header is still being read:
  // not yet anyone's (the client is unknown until it ends), so not in
  // connections, but bounded by the same limit and by proxy_timeout.
  std::atomic<size_t> proxy_headers_pending{0};
  std::atomic<bool> stopping{false};
  // Connections per client address, for limits.connections_per_client
  // (outside relay.networks) and for choosing whom to evict; touched by the
  // accept loop and by sessions ending on other threads. Lock order:
  // sessions_mutex before per_client_mutex.
  std::mutex per_client_mutex;
  std::unordered_map<std::string, size_t> per_client;
  auth_throttle auth_failures;
  // Under stress (connections past 80% of the limit) a command line gets the
  // short timeout, as Postfix's stress-dependent smtpd_timeout: idle and
  // trickling clients make room for new ones instead of holding every slot.
  bool under_stress() const { return connections.load() * 5 >= cfg.limits.connections * 4; }
  // Live sessions, for stop(): each is told on its own strand.
  std::mutex sessions_mutex;
  enum class notice { shut_down, abort, evict };
  struct registration {
    std::function<void(notice)> notify;  // posts to the session's strand
    // When the session began to wait for a command line (steady clock,
    // nanoseconds), 0 while it is not waiting for one: what eviction reads.
    std::atomic<int64_t>* line_wait_since;
    std::string address;  // the client's, as counted in per_client
  };
  std::unordered_map<void*, registration> sessions;
};

namespace {

// Runs on the worker pool: scrypt must not stall the io threads.
awaitable<bool> verify_on_worker(std::filesystem::path users_file, std::string user, std::string password) {
  bool ok = check_user_password(users_file, user, password);
  std::fill(password.begin(), password.end(), '\0');
  co_return ok;
}

void log_exception(std::exception_ptr e, const char* what) {
  if (!e) return;
  try {
    std::rethrow_exception(e);
  } catch (const std::exception& ex) {
    log_error(std::string(what) + ": " + ex.what());
  }
}

asio::ip::address client_address(const tcp::endpoint& peer) {
  auto addr = peer.address();
  if (addr.is_v6() && addr.to_v6().is_v4_mapped()) addr = asio::ip::make_address_v4(asio::ip::v4_mapped, addr.to_v6());
  return addr;
}

bool in_relay_networks(const config& cfg, const asio::ip::address& addr) { return in_any(cfg.relay_networks, addr); }

// A session's input buffer. Unlike std::vector<char>, growing it neither
// zeroes the new bytes (it grows to 64 KiB for every message, and read(2)
// overwrites them) nor copies more than the bytes it held.
class input_buffer {
 public:
  char* data() { return bytes_.get(); }
  size_t size() const { return size_; }
  // Keeps the first min(size(), n) bytes.
  void resize(size_t n) {
    auto fresh = std::make_unique_for_overwrite<char[]>(n);
    if (bytes_) std::memcpy(fresh.get(), bytes_.get(), std::min(size_, n));
    bytes_ = std::move(fresh);
    size_ = n;
  }

 private:
  std::unique_ptr<char[]> bytes_;
  size_t size_ = 0;
};

class session : public std::enable_shared_from_this<session> {
  static constexpr size_t idle_buffer_size = 4096;
  static constexpr size_t head_limit = 65536;
  static constexpr std::chrono::seconds auth_failure_delay{1};  // header bytes kept to find the Message-ID
  static constexpr std::chrono::seconds tls_shutdown_timeout{5};

 public:
  // peer: the client, as accept(2) or a trusted proxy's header named it;
  // per_client_key: the address counted in per_client; via: the proxy's
  // address when a PROXY header named the client, for the log.
  session(tcp::socket socket, const tcp::endpoint& peer, const listener_config& listener,
          std::shared_ptr<server::shared_state> state, std::string per_client_key, std::string via)
      : socket_(std::move(socket)), timer_(socket_.get_executor()), listener_(listener), state_(std::move(state)),
        protocol_(make_facts(peer), make_limits()), per_client_key_(std::move(per_client_key)), via_(std::move(via)) {
    in_.resize(idle_buffer_size);
    timer_.expires_at(std::chrono::steady_clock::time_point::max());
    metrics::get().connection_opened(listener_.name);
  }

  static awaitable<void> run(std::shared_ptr<session> self) { co_await self->serve(); }
  static awaitable<void> watchdog(std::shared_ptr<session> self) { co_await self->watch(); }

  ~session() {
    metrics::get().connection_closed(listener_.name);
    {
      std::lock_guard lock(state_->sessions_mutex);
      state_->sessions.erase(this);
    }
    {
      std::lock_guard lock(state_->per_client_mutex);
      auto it = state_->per_client.find(per_client_key_);
      if (it != state_->per_client.end() && --it->second == 0) state_->per_client.erase(it);
    }
    state_->connections.fetch_sub(1);
  }

 private:
  connection_facts make_facts(const tcp::endpoint& peer) {
    connection_facts f;
    f.hostname = state_->cfg.hostname;
    f.listener = listener_.name;
    f.tls = listener_.tls;
    f.auth = listener_.auth;
    auto addr = client_address(peer);
    f.client_address = addr.to_string();
    f.client_may_relay = in_relay_networks(state_->cfg, addr);
    f.client_ip = addr;
    f.relay_classes = &state_->cfg.relay_classes;
    return f;
  }
  protocol_limits make_limits() {
    protocol_limits l;
    l.message_size = state_->cfg.limits.message_size;
    l.recipients = state_->cfg.limits.recipients;
    l.errors = state_->cfg.limits.errors;
    l.data_line_length = state_->cfg.limits.data_line_length;
    return l;
  }

  // ---- deadlines -----------------------------------------------------------
  // Moves the deadline. The watchdog sleeps until the timer's expiry and then
  // looks at deadline_, so a later deadline costs nothing; an earlier one
  // (a reply after a long command wait) must move the timer itself.
  void arm(std::chrono::seconds timeout) { arm_until(std::chrono::steady_clock::now() + timeout); }
  void arm_until(std::chrono::steady_clock::time_point deadline) {
    deadline_ = deadline;
    if (deadline_ < timer_.expiry()) timer_.expires_at(deadline_);
  }

  awaitable<void> watch() {
    while (!closed_) {
      timer_.expires_at(deadline_);
      co_await timer_.async_wait(use_tuple);
      if (closed_) break;
      if (deadline_ > std::chrono::steady_clock::now()) continue;  // moved on since
      if (!timed_out_) {
        // First expiry: stop the pending operation so the session can say 421.
        timed_out_ = true;
        arm(state_->cfg.timeouts.reply);
        error_code ec;
        lowest().cancel(ec);
      } else {
        // The goodbye itself stalled: hang up.
        error_code ec;
        lowest().close(ec);
        break;
      }
    }
  }

  tcp::socket& lowest() { return tls_ ? tls_->next_layer() : socket_; }

  // ---- bytes in and out ----------------------------------------------------
  // Reads what the client sent, waiting until `deadline` at most: the
  // caller's deadline for a whole line or a whole message, never one per read
  // (a byte every few seconds must not hold a connection for ever).
  awaitable<error_code> read_more(std::chrono::steady_clock::time_point deadline) {
    if (!out_.empty()) {
      // About to wait for the client: send the replies batched so far (RFC 2920).
      if (auto ec = co_await flush()) co_return ec;
    }
    if (begin_ == end_) begin_ = end_ = 0;
    if (end_ == in_.size()) {
      if (begin_ > 0) {
        std::memmove(in_.data(), in_.data() + begin_, end_ - begin_);
        end_ -= begin_;
        begin_ = 0;
      } else {
        in_.resize(in_.size() * 2);  // bounded: read_line discards past the line limit
      }
    }
    arm_until(deadline);
    auto buf = asio::buffer(in_.data() + end_, in_.size() - end_);
    auto [ec, n] = tls_ ? co_await tls_->async_read_some(buf, use_tuple) : co_await socket_.async_read_some(buf, use_tuple);
    end_ += n;
    if (timed_out_) co_return asio::error::timed_out;
    co_return ec;
  }

  awaitable<error_code> flush() {
    arm(state_->cfg.timeouts.reply);
    auto buf = asio::buffer(out_);
    auto [ec, n] = tls_ ? co_await asio::async_write(*tls_, buf, use_tuple) : co_await asio::async_write(socket_, buf, use_tuple);
    out_.clear();
    if (timed_out_) co_return asio::error::timed_out;
    co_return ec;
  }

  enum class line_status { ok, too_long, closed, timed_out };

  // One CRLF-terminated line (a bare LF is taken for commands, as Postfix does;
  // DATA framing is strict, see data_reader).
  awaitable<line_status> read_line(std::string& line) {
    const size_t limit = state_->cfg.limits.command_line_length;
    const auto& t = state_->cfg.timeouts;
    const auto line_start = std::chrono::steady_clock::now();
    bool discarding = false;
    while (true) {
      const char* start = in_.data() + begin_;
      const char* nl = static_cast<const char*>(std::memchr(start, '\n', end_ - begin_));
      if (nl) {
        size_t len = static_cast<size_t>(nl - start);
        begin_ += len + 1;
        if (discarding) co_return line_status::too_long;
        if (len > 0 && start[len - 1] == '\r') --len;
        if (len > limit) co_return line_status::too_long;
        line.assign(start, len);
        co_return line_status::ok;
      }
      if (end_ - begin_ > limit + 2) {
        discarding = true;  // drop what we have, keep looking for the end of the line
        begin_ = end_ = 0;
      }
      // Judged again at every read: stress that begins while a client
      // trickles its line shortens that line too.
      auto ec = co_await read_more(line_start + (state_->under_stress() ? std::min(t.command, t.command_under_stress)
                                                                         : t.command));
      if (ec == asio::error::timed_out) co_return line_status::timed_out;
      if (ec) co_return line_status::closed;
    }
  }

  // ---- the session ---------------------------------------------------------
  awaitable<void> serve() {
    asio::co_spawn(socket_.get_executor(), watchdog(shared_from_this()),
                   [](std::exception_ptr e) { log_exception(e, "watchdog"); });
    {
      std::lock_guard lock(state_->sessions_mutex);
      using notice = server::shared_state::notice;
      auto notify = [weak = weak_from_this(), ex = socket_.get_executor()](notice n) {
        asio::post(ex, [weak, n] {
          auto self = weak.lock();
          if (!self) return;
          if (n == notice::abort) self->abort();
          else if (n == notice::evict) self->evict();
          else self->begin_shutdown();
        });
      };
      state_->sessions[this] = {std::move(notify), &line_wait_since_, per_client_key_};
    }
    if (state_->stopping) begin_shutdown();  // stop() ran between the accept and here
    const std::string& client = protocol_.facts().client_address;
    log_info("connect from [" + client + "]" + (via_.empty() ? "" : " via [" + via_ + "]") + " listener=" + listener_.name);
    if (listener_.tls == listener_tls::implicit) {
      if (!co_await handshake()) co_return finish();
    }
    smtp_protocol::step step = protocol_.greeting();
    std::string line;
    while (true) {
      out_ += step.output;
      switch (step.next) {
        case smtp_protocol::action::close:
          if (!co_await flush()) co_await close_tls();
          co_return finish();
        case smtp_protocol::action::start_tls: {
          if (co_await flush()) co_return finish();
          // RFC 3207 5: anything the client pipelined behind STARTTLS arrived in
          // clear and could be an attacker's injection: discard it.
          begin_ = end_ = 0;
          if (!co_await handshake()) co_return finish();
          step = smtp_protocol::step{};
          continue;
        }
        case smtp_protocol::action::verify_auth: {
          auto creds = protocol_.pending_credentials();
          if (!state_->auth_failures.allowed(client, creds.user)) {
            std::fill(creds.password.begin(), creds.password.end(), '\0');
            log_warning("[" + client + "]: authentication refused: too many failures lately");
            step = protocol_.auth_throttled();
            continue;
          }
          // Wait for this address's previous check to end (bounded by the
          // command timeout, as any wait of the client's would be).
          auto give_up = std::chrono::steady_clock::now() + state_->cfg.timeouts.command;
          bool turn = state_->auth_failures.try_begin_check(client);
          while (!turn && std::chrono::steady_clock::now() < give_up && !shutting_down_) {
            asio::steady_timer wait(socket_.get_executor(), std::chrono::milliseconds(20));
            co_await wait.async_wait(use_tuple);
            turn = state_->auth_failures.try_begin_check(client);
          }
          if (!turn) {
            std::fill(creds.password.begin(), creds.password.end(), '\0');
            step = protocol_.auth_throttled();
            continue;
          }
          bool ok = false;
          try {
            ok = co_await asio::co_spawn(state_->workers, verify_on_worker(state_->cfg.users_file, creds.user, creds.password),
                                         asio::use_awaitable);
          } catch (...) {
            state_->auth_failures.end_check(client);
            throw;
          }
          state_->auth_failures.end_check(client);
          std::fill(creds.password.begin(), creds.password.end(), '\0');
          if (ok) state_->auth_failures.succeeded(client);
          else state_->auth_failures.failed(client, creds.user);
          if (!ok) {
            log_warning("[" + client + "]: authentication failed");
            // Each wrong password costs the client a second before its 535
            // (as Postfix's smtpd_error_sleep_time), so guessing is slow; the
            // scrypt check already made it expensive for us, not for them.
            asio::steady_timer pause(socket_.get_executor(), auth_failure_delay);
            co_await pause.async_wait(asio::as_tuple(asio::use_awaitable));
          } else {
            log_info("[" + client + "]: authenticated");
          }
          step = protocol_.auth_result(ok);
          continue;
        }
        case smtp_protocol::action::receive_data:
          step = co_await receive_data();
          shrink_buffer();
          continue;
        case smtp_protocol::action::read_line:
          break;
      }
      if (shutting_down_) {
        step = protocol_.on_shutdown();
        continue;
      }
      waiting_for_line_ = true;
      line_wait_since_ = std::chrono::steady_clock::now().time_since_epoch().count();
      auto status = co_await read_line(line);
      waiting_for_line_ = false;
      line_wait_since_ = 0;
      if (shutting_down_ && status != line_status::ok && status != line_status::too_long) {
        step = protocol_.on_shutdown();  // the wait was cut short by begin_shutdown()
        continue;
      }
      if (evicted_ && status != line_status::ok && status != line_status::too_long) {
        step = protocol_.on_timeout();  // the wait was cut short by evict()
        log_info("idle client [" + client + "] disconnected to make room for a new one");
        continue;
      }
      if (status == line_status::timed_out) {
        step = protocol_.on_timeout();
        log_info("timeout from [" + client + "]");
        continue;
      }
      if (status == line_status::closed) co_return finish();
      step = status == line_status::too_long ? protocol_.on_line_too_long() : protocol_.on_line(line);
    }
  }

  // On the session's strand. A session waiting for the client's next line
  // stops waiting and says 421; one in the middle of a message finishes it
  // first (its next wait for a line sees shutting_down_).
  void begin_shutdown() {
    if (shutting_down_ || closed_) return;
    shutting_down_ = true;
    if (waiting_for_line_) {
      error_code ec;
      lowest().cancel(ec);
    }
  }

  // On the session's strand, when the server is full and this session has
  // waited longest for a command line: it gets the 421 of a timeout, and a
  // new client its slot. Only a wait for a command is cut short, never a
  // message being received.
  void evict() {
    if (!waiting_for_line_ || closed_ || shutting_down_) return;
    evicted_ = true;
    error_code ec;
    lowest().cancel(ec);
  }

  // On the session's strand: whatever it is waiting for ends with an error,
  // and the session ends without a reply.
  void abort() {
    if (closed_) return;
    error_code ec;
    lowest().close(ec);
  }

  awaitable<bool> handshake() {
    tls_.emplace(std::move(socket_), *state_->tls);
    arm(state_->cfg.timeouts.tls_handshake);
    auto [ec] = co_await tls_->async_handshake(ssl::stream_base::server, use_tuple);
    if (ec || timed_out_) {
      log_info("TLS handshake failed from [" + protocol_.facts().client_address + "]: " + (timed_out_ ? "timeout" : ec.message()));
      co_return false;
    }
    auto facts = crypto::describe(tls_->native_handle());
    log_info("TLS from [" + protocol_.facts().client_address + "]: " + facts.protocol + " " + facts.cipher);
    if (!state_->cfg.relay_client_ca.empty()) {
      auto cert = crypto::describe_client_certificate(tls_->native_handle());
      if (cert.presented)
        log_info("client certificate from [" + protocol_.facts().client_address + "]: subject=" + cert.subject +
                 " issuer=" + cert.issuer + (cert.verified ? " verified" : " not verified"));
      protocol_.set_client_certificate(std::move(cert));
    }
    protocol_.tls_started(facts.protocol, facts.cipher, facts.secret_bits, facts.algorithm_bits);
    co_return true;
  }

  awaitable<smtp_protocol::step> receive_data() {
    if (auto ec = co_await flush()) co_return smtp_protocol::step{smtp_protocol::action::close, {}};
    auto& spooler = state_->spooler;
    auto msg = spooler.begin();
    const auto& tx = protocol_.transaction();
    auto& env = msg->envelope;
    env.queue_id = msg->id();
    env.received = std::time(nullptr);
    env.listener = listener_.name;
    env.client_address = protocol_.facts().client_address;
    env.helo = tx.helo;
    env.auth_user = tx.auth_user;
    env.relay_class = tx.relay_class;
    env.tls_protocol = protocol_.tls_active() ? protocol_.tls_protocol() : "";
    env.tls_cipher = protocol_.tls_active() ? protocol_.tls_cipher() : "";
    env.sender = tx.sender;
    env.params = tx.params;
    env.recipients = tx.recipients;
    msg->write(encode_envelope(env));
    const std::string received = received_header(protocol_, msg->id(), rfc5322_date_now());
    msg->write(received);

    data_reader reader(state_->cfg.limits.message_size, state_->cfg.limits.data_line_length);
    std::string chunk;
    // The start of the content, kept until its header block is complete, for
    // the Message-ID in the log and the record.
    std::string head;
    bool head_done = false;
    if (in_.size() < 65536) in_.resize(65536);  // DATA reads in larger blocks
    // One deadline for the content, extended by what arrives at the minimum
    // rate (Postfix's smtpd_min_data_rate): a large message on a slow link
    // gets its time, a client trickling bytes does not keep the slot.
    const auto data_start = std::chrono::steady_clock::now();
    const uint64_t min_rate = state_->cfg.limits.min_data_rate;
    uint64_t received_bytes = 0;
    while (true) {
      chunk.clear();
      size_t used = reader.feed(std::string_view(in_.data() + begin_, end_ - begin_), chunk);
      begin_ += used;
      received_bytes += used;
      if (!chunk.empty()) {
        msg->write(chunk);
        if (!head_done) {
          head.append(chunk, 0, std::min(chunk.size(), head_limit - std::min(head.size(), head_limit)));
          head_done = head.size() >= head_limit || head.find("\r\n\r\n") != std::string::npos;
        }
      }
      if (reader.state() != data_reader::status::reading) break;
      // Under stress the base is the short command timeout: a client that
      // trickles content must not keep its slot for timeouts.data.
      const auto& t = state_->cfg.timeouts;
      auto base = state_->under_stress() ? std::min(t.data, t.command_under_stress) : t.data;
      auto earned = min_rate ? std::chrono::milliseconds(received_bytes * 1000 / min_rate) : std::chrono::milliseconds(0);
      auto ec = co_await read_more(data_start + base + earned);
      if (ec == asio::error::timed_out) {
        msg->abort();
        log_info("timeout after DATA from [" + env.client_address + "]");
        co_return protocol_.on_timeout();
      }
      if (ec) {
        msg->abort();
        log_info("lost connection after DATA from [" + env.client_address + "]");
        co_return smtp_protocol::step{smtp_protocol::action::close, {}};
      }
    }
    data_result result;
    result.bare_newline = reader.state() == data_reader::status::bare_newline;
    result.too_big = reader.too_big();
    result.line_too_long = reader.line_too_long();
    // The size of the message as spooled, our Received: header included (as
    // Postfix's size=), so that rows restored from the spool after a crash agree.
    env.content_size = received.size() + reader.size();
    if (result.bare_newline || result.too_big || result.line_too_long) {
      msg->abort();
      log_info(std::string("rejected message from [") + env.client_address + "]: " +
               (result.bare_newline ? "bare CR or LF" : result.too_big ? "size limit" : "line length"));
      co_return protocol_.data_done(result);
    }
    // The header checks: loops, and the tenant pin of the class that let
    // the client relay. A refusal stores nothing.
    intake_checks checks;
    checks.cls = tx.relay_rule;
    checks.received_limit = state_->cfg.limits.received_headers;
    checks.loop_secret = state_->cfg.loop.secret;
    checks.loop_max_passes = state_->cfg.loop.max_passes;
    checks.loop_max_age = state_->cfg.loop.max_age.count();
    checks.now = static_cast<int64_t>(std::time(nullptr));
    if (auto refusal = check_content(header_block(head), checks)) {
      msg->abort();
      log_info("refused message from [" + env.client_address + "] class=" + tx.relay_class + ": " + refusal->text);
      result.refused = std::move(refusal);
      co_return protocol_.data_done(result);
    }
    // msg (and env with it) belongs to the committer once handed over: keep
    // the id for our own reply and log, and build the accepted line now.
    const std::string id = msg->id();
    env.message_id = header_field(header_block(head), "Message-ID");
    msg->accepted_log =  // logged by the committer once durable, before delivery can start
        "client=[" + env.client_address + "] listener=" + env.listener + " size=" + std::to_string(env.content_size) +
        " nrcpt=" + std::to_string(env.recipients.size()) + (env.auth_user.empty() ? "" : " auth=yes") +
        (env.relay_class.empty() ? "" : " class=" + env.relay_class) +
        (env.tls_protocol.empty() ? " tls=none" : " tls=" + env.tls_protocol) +
        (env.message_id.empty() ? "" : " message-id=" + env.message_id) + " (queued)";
    auto [ec] = co_await spooler.async_commit(std::move(msg), use_tuple);
    result.spool_failed = static_cast<bool>(ec);
    if (ec) log(log_level::error, id, "spool commit failed: " + ec.message());
    if (!result.spool_failed) result.queue_id = id;
    co_return protocol_.data_done(result);
  }

  // Back to the small command buffer, so that a connection that sent one large
  // message does not hold 64 KiB while it idles.
  void shrink_buffer() {
    if (in_.size() <= idle_buffer_size || end_ - begin_ > idle_buffer_size) return;
    std::memmove(in_.data(), in_.data() + begin_, end_ - begin_);
    end_ -= begin_;
    begin_ = 0;
    in_.resize(idle_buffer_size);
  }

  // RFC 8446 6.1: a TLS connection ends with a close_notify alert, so that the
  // client can tell our goodbye from a truncation. Bounded: a client that never
  // answers the alert costs at most tls_shutdown_timeout.
  awaitable<void> close_tls() {
    if (!tls_ || timed_out_) co_return;
    arm(tls_shutdown_timeout);
    co_await tls_->async_shutdown(use_tuple);
  }

  void finish() {
    closed_ = true;
    timer_.cancel();
    // close(2) alone sends the FIN: a shutdown(2) first would be one more
    // system call per connection, for nothing.
    error_code ec;
    lowest().close(ec);
    log_info("disconnect from [" + protocol_.facts().client_address + "]");
  }

  tcp::socket socket_;
  std::optional<ssl::stream<tcp::socket>> tls_;
  asio::steady_timer timer_;
  std::chrono::steady_clock::time_point deadline_ = std::chrono::steady_clock::time_point::max();
  bool timed_out_ = false;
  bool closed_ = false;
  bool shutting_down_ = false;
  bool waiting_for_line_ = false;
  bool evicted_ = false;
  std::atomic<int64_t> line_wait_since_{0};
  const listener_config& listener_;
  std::shared_ptr<server::shared_state> state_;
  smtp_protocol protocol_;
  input_buffer in_;
  size_t begin_ = 0, end_ = 0;
  std::string out_;
  std::string per_client_key_;
  std::string via_;
};

awaitable<void> refuse(tcp::socket socket, std::string reply) {
  co_await asio::async_write(socket, asio::buffer(reply), use_tuple);
  error_code ec;
  socket.close(ec);
}

// At the connection limit a new client is served rather than refused when
// some address holds more slots than the newcomer's does: that address's
// session which has waited longest for a command line (0.5 s at least) is told
// to go. Slow or idle clients from a few addresses cannot then keep every
// slot from everyone else, and no address loses a slot to one that holds as
// many. A session busy with a command or a message is never chosen. A few
// evictions may be in flight at once: up to eviction_slack connections over
// the limit, then new clients get 421.
bool evict_for(server::shared_state& state, const std::string& newcomer) {
  constexpr size_t eviction_slack = 16;
  constexpr int64_t min_wait = std::chrono::nanoseconds(std::chrono::milliseconds(500)).count();
  if (state.connections.load() >= state.cfg.limits.connections + eviction_slack) return false;
  const int64_t now = std::chrono::steady_clock::now().time_since_epoch().count();
  std::lock_guard sessions_lock(state.sessions_mutex);
  std::lock_guard counts_lock(state.per_client_mutex);
  auto count_of = [&](const std::string& address) -> size_t {
    auto it = state.per_client.find(address);
    return it == state.per_client.end() ? 0 : it->second;
  };
  const size_t newcomer_holds = count_of(newcomer);
  server::shared_state::registration* victim = nullptr;
  size_t victim_holds = 0;
  int64_t victim_since = 0;
  for (auto& [key, r] : state.sessions) {
    int64_t since = r.line_wait_since->load();
    if (since == 0 || since > now - min_wait) continue;
    size_t holds = count_of(r.address);
    if (!victim || holds > victim_holds || (holds == victim_holds && since < victim_since)) {
      victim = &r;
      victim_holds = holds;
      victim_since = since;
    }
  }
  if (!victim || victim_holds <= newcomer_holds) return false;
  // Cleared here (unless the session moved on meanwhile), so that the next
  // new client picks another session rather than the one already told.
  if (!victim->line_wait_since->compare_exchange_strong(victim_since, 0)) return false;
  victim->notify(server::shared_state::notice::evict);
  return true;
}

// Why accept(2) failed for want of a resource that a closing connection
// gives back (descriptors, socket buffers): wait, do not spin.
bool out_of_resources(const error_code& ec) {
  return ec == asio::error::no_descriptors || ec == asio::error::no_buffer_space || ec == asio::error::no_memory ||
         ec == error_code(ENFILE, boost::system::system_category());
}

// One listener's rate-limited warnings, shared by its accept loop and the
// connections still reading a PROXY header.
struct listener_warnings {
  rate_limited_warning accept_failed, over_limit, over_client_limit, not_a_proxy, proxy_header_refused;
};

// Admission of a client at its real address: accept(2)'s peer, or the client
// a trusted proxy named. One address may hold only so many of the slots
// (relay.networks are trusted applications and exempt, as Postfix exempts
// mynetworks); at the total limit a slot may be won by eviction. Then the
// session, which sees the same address for relay authorisation, the
// Received header, the logs and the record. via: the proxy, or empty.
void admit(tcp::socket socket, const tcp::endpoint& client, const std::string& via, const listener_config& listener,
           const std::shared_ptr<server::shared_state>& state, listener_warnings& warn) {
  auto executor = socket.get_executor();  // the connection's strand
  const auto addr = client_address(client);
  std::string address = addr.to_string();
  if (size_t cap = state->cfg.limits.connections_per_client; cap > 0 && !in_relay_networks(state->cfg, addr)) {
    size_t holds = 0;
    {
      std::lock_guard lock(state->per_client_mutex);
      if (auto it = state->per_client.find(address); it != state->per_client.end()) holds = it->second;
    }
    if (holds >= cap) {
      warn.over_client_limit("[" + address + "]: connection limit per client (" + std::to_string(cap) +
                             ") reached; refusing it on " + listener.name);
      asio::co_spawn(executor,
                     refuse(std::move(socket), "421 4.7.0 " + state->cfg.hostname +
                                                   " Error: too many connections from your address\r\n"),
                     [](std::exception_ptr e) { log_exception(e, "refuse"); });
      return;
    }
  }
  if (state->connections.load() >= state->cfg.limits.connections && !evict_for(*state, address)) {
    warn.over_limit("connection limit (" + std::to_string(state->cfg.limits.connections) + ") reached; refusing clients on " +
                    listener.name);
    asio::co_spawn(executor, refuse(std::move(socket), "421 4.7.0 " + state->cfg.hostname + " Error: too many connections\r\n"),
                   [](std::exception_ptr e) { log_exception(e, "refuse"); });
    return;
  }
  {
    std::lock_guard lock(state->per_client_mutex);
    ++state->per_client[address];
  }
  state->connections.fetch_add(1);
  auto s = std::make_shared<session>(std::move(socket), client, listener, state, std::move(address), via);
  asio::co_spawn(executor, session::run(s), [](std::exception_ptr e) { log_exception(e, "session"); });
}

// Reads exactly the PROXY header: its fixed part, then the length that
// announces, never a byte more, so that what follows (EHLO, or a TLS
// ClientHello on an implicit-TLS listener) stays in the socket for the
// session. One deadline for the whole header: a proxy sends it at once, and a
// peer trickling it must not hold the connection.
awaitable<proxy_protocol::header> read_proxy_header(tcp::socket& socket, std::chrono::seconds timeout) {
  using namespace asio::experimental::awaitable_operators;
  std::array<uint8_t, proxy_protocol::fixed_size + proxy_protocol::max_rest_size> bytes;
  asio::steady_timer deadline(socket.get_executor(), timeout);
  auto refused = [](std::string reason) {
    proxy_protocol::header h;
    h.reason = std::move(reason);
    return h;
  };
  auto read_exactly = [&](size_t from, size_t n) {
    return asio::async_read(socket, asio::buffer(bytes.data() + from, n), use_tuple) || deadline.async_wait(use_tuple);
  };
  auto why_not = [&](const auto& result) -> std::string {
    if (result.index() != 0) return "no complete header within " + std::to_string(timeout.count()) + " s";
    auto [ec, n] = std::get<0>(result);
    if (ec == asio::error::eof) return "the connection closed after " + std::to_string(n) + " bytes of the header";
    return ec ? ec.message() : std::string();
  };
  auto first = co_await read_exactly(0, proxy_protocol::fixed_size);
  if (auto why = why_not(first); !why.empty()) co_return refused(why);
  auto announced = proxy_protocol::read_fixed_part(std::span(bytes.data(), proxy_protocol::fixed_size));
  if (!announced.ok()) co_return refused(announced.refusal);
  if (announced.rest > 0) {
    auto rest = co_await read_exactly(proxy_protocol::fixed_size, announced.rest);
    if (auto why = why_not(rest); !why.empty()) co_return refused(why);
  }
  co_return proxy_protocol::parse(std::span(bytes.data(), proxy_protocol::fixed_size + announced.rest));
}

// A connection from a load balancer in proxy_from: nothing is said before
// its header has named the client (SMTP is server-speaks-first, so a banner
// sent early would go to a client the proxy has not yet vouched for).
awaitable<void> admit_behind_proxy(tcp::socket socket, tcp::endpoint proxy, const listener_config& listener,
                                   std::shared_ptr<server::shared_state> state, std::shared_ptr<listener_warnings> warn) {
  struct pending_count {
    std::atomic<size_t>& n;
    ~pending_count() { --n; }
  } counted{state->proxy_headers_pending};
  const std::string proxy_address = client_address(proxy).to_string();
  auto header = co_await read_proxy_header(socket, listener.proxy_timeout);
  using kind = proxy_protocol::header::kind;
  if (header.what == kind::refused) {
    warn->proxy_header_refused("[" + proxy_address + "]: PROXY header refused on " + listener.name + ": " + header.reason +
                               "; closed without a banner");
    error_code ec;
    socket.close(ec);
    co_return;
  }
  if (header.what == kind::local) {
    // The proxy's own connection (a health check): it is the client.
    admit(std::move(socket), proxy, "", listener, state, *warn);
    co_return;
  }
  admit(std::move(socket), tcp::endpoint(header.source.address, header.source.port), proxy_address, listener, state, *warn);
}

awaitable<void> accept_loop(std::shared_ptr<tcp::acceptor> acceptor, const listener_config& listener,
                            std::shared_ptr<server::shared_state> state, std::vector<asio::io_context*> loops) {
  size_t next_loop = 0;
  // Out of descriptors, accept(2) fails at once for as long as it lasts: the
  // loop pauses (10 ms, doubling to 1 s) and logs once per 10 s with a count,
  // instead of 99% CPU and millions of log lines. The pending clients wait in
  // the listen backlog meanwhile.
  std::chrono::milliseconds pause{0};
  asio::steady_timer backoff(acceptor->get_executor());
  auto warn = std::make_shared<listener_warnings>();
  while (!state->stopping) {
    // Each connection gets its own strand (its session and watchdog never run
    // at once) on the next event loop in turn; accept(2) puts the socket there.
    auto strand = asio::make_strand(loops[next_loop++ % loops.size()]->get_executor());
    tcp::socket socket(strand);
    tcp::endpoint peer;  // filled in by accept(2) itself: no getpeername per connection
    auto [ec] = co_await acceptor->async_accept(socket, peer, use_tuple);
    if (ec) {
      if (ec == asio::error::operation_aborted || state->stopping) break;
      warn->accept_failed("accept on " + listener.name + ": " + ec.message() +
                          (out_of_resources(ec) ? "; pausing new connections until resources free up" : ""));
      pause = std::clamp(pause * 2, std::chrono::milliseconds(10), std::chrono::milliseconds(1000));
      backoff.expires_after(out_of_resources(ec) ? pause : std::chrono::milliseconds(1));
      co_await backoff.async_wait(use_tuple);
      continue;
    }
    pause = std::chrono::milliseconds(0);
    socket.set_option(tcp::no_delay(true), ec);
    if (!listener.proxy_protocol) {
      admit(std::move(socket), peer, "", listener, state, *warn);
      continue;
    }
    // Behind a load balancer only the load balancers may connect: anyone
    // else could write a header naming any client (a relay.networks address
    // above all), so they get no header read and no banner.
    const auto addr = client_address(peer);
    if (!in_any(listener.proxy_from, addr)) {
      warn->not_a_proxy("[" + addr.to_string() + "]: not in proxy_from of " + listener.name +
                        " (a PROXY protocol listener); closed without a banner");
      socket.close(ec);
      continue;
    }
    if (state->proxy_headers_pending.load() >= state->cfg.limits.connections) {
      warn->over_limit("connection limit (" + std::to_string(state->cfg.limits.connections) +
                       ") reached by connections still sending a PROXY header; closing new ones on " + listener.name);
      socket.close(ec);
      continue;
    }
    ++state->proxy_headers_pending;
    asio::co_spawn(strand, admit_behind_proxy(std::move(socket), peer, listener, state, warn),
                   [](std::exception_ptr e) { log_exception(e, "proxy header"); });
  }
}

}  // namespace

server::server(asio::io_context& io, const config& cfg, spool& spooler, asio::thread_pool& workers,
               std::vector<asio::io_context*> session_loops)
    : io_(io) {
  loops_.push_back(&io_);
  loops_.insert(loops_.end(), session_loops.begin(), session_loops.end());
  std::shared_ptr<ssl::context> tls;
  if (!cfg.tls_certificate.empty()) {
    tls = crypto::make_server_context(cfg.tls_certificate, cfg.tls_private_key);
    if (!cfg.relay_client_ca.empty()) crypto::request_client_certificates(*tls, cfg.relay_client_ca);
  }
  state_ = std::make_shared<shared_state>(cfg, spooler, workers, tls);
  for (const auto& l : cfg.listeners) {
    tcp::endpoint ep(asio::ip::make_address(l.address), l.port);
    auto acceptor = std::make_shared<tcp::acceptor>(io_);
    error_code ec;
    acceptor->open(ep.protocol(), ec);
    if (!ec) acceptor->set_option(tcp::acceptor::reuse_address(true), ec);
    if (!ec) acceptor->bind(ep, ec);
    if (!ec) acceptor->listen(asio::socket_base::max_listen_connections, ec);
    if (ec) throw std::system_error(ec, "listener " + l.name + " on " + l.address + ":" + std::to_string(l.port));
    acceptors_.emplace_back(l, acceptor);
  }
}

void server::start() {
  for (auto& [l, acceptor] : acceptors_) {
    log_info("listening on " + l.address + ":" + std::to_string(l.port) + " listener=" + l.name);
    asio::co_spawn(io_, accept_loop(acceptor, l, state_, loops_), [](std::exception_ptr e) { log_exception(e, "listener"); });
  }
}

void server::stop() {
  state_->stopping = true;
  for (auto& [l, acceptor] : acceptors_) {
    error_code ec;
    acceptor->close(ec);
  }
  std::lock_guard lock(state_->sessions_mutex);
  for (auto& [key, r] : state_->sessions) r.notify(shared_state::notice::shut_down);
}

void server::abort_sessions() {
  std::lock_guard lock(state_->sessions_mutex);
  for (auto& [key, r] : state_->sessions) r.notify(shared_state::notice::abort);
}

size_t server::active_connections() const { return state_->connections.load(); }

}  // namespace sealgate::gateway
