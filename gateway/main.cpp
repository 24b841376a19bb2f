// The sealgate command line: run, passwd, help, --version. Exit codes follow
// Postfix's tools and the sysexits spirit: 0 success, 1 failure, 2 usage.
#include <grp.h>
#include <pwd.h>
#include <termios.h>
#include <unistd.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/thread_pool.hpp>
#include <functional>
#include <iostream>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "crypto/password.hpp"
#include "gateway/config.hpp"
#include "gateway/database.hpp"
#include "gateway/dns_cli.hpp"
#include "gateway/keys_cli.hpp"
#include "gateway/log.hpp"
#include "gateway/policy_cli.hpp"
#include "gateway/server.hpp"
#include "gateway/spool.hpp"
#include "gateway/users.hpp"

#ifndef SEALGATE_VERSION
#define SEALGATE_VERSION "0.0.0"
#endif

namespace {
using namespace sealgate::gateway;

constexpr const char* usage_text =
    "usage: sealgate COMMAND [OPTIONS]\n"
    "\n"
    "commands:\n"
    "  run --config FILE            run the gateway\n"
    "  passwd --config FILE USER    read a password on stdin and store its hash in relay.users_file\n"
    "  policy check|explain ...     validate the delivery policy, or explain its decisions (sealgate policy help)\n"
    "  dns lookup --config FILE TYPE NAME [--json]   look NAME up as the gateway would\n"
    "  keys lookup --config FILE ADDRESS [--json]    what every key source has for ADDRESS\n"
    "  keys encrypt --config FILE --to ADDRESS [--method pgp|smime] [--sign] < MESSAGE\n"
    "  help                         this text\n"
    "  --version                    print the version\n";

int usage(const std::string& problem) {
  std::cerr << "sealgate: " << problem << "\n" << usage_text;
  return 2;
}

// Parses "--config FILE" and positional arguments; false on anything unknown.
bool parse_args(const std::vector<std::string>& args, std::string& config_file, std::vector<std::string>& positional,
                std::string& problem) {
  for (size_t i = 0; i < args.size(); ++i) {
    const auto& a = args[i];
    if (a == "--config" || a == "-c") {
      if (i + 1 >= args.size()) {
        problem = a + " needs a file";
        return false;
      }
      config_file = args[++i];
    } else if (a.rfind("--config=", 0) == 0) {
      config_file = a.substr(9);
    } else if (!a.empty() && a[0] == '-') {
      problem = "unknown option " + a;
      return false;
    } else {
      positional.push_back(a);
    }
  }
  if (config_file.empty()) {
    problem = "--config FILE is required";
    return false;
  }
  return true;
}

bool load(const std::string& file, config& out) {
  try {
    out = load_config(file);
    return true;
  } catch (const config_error& e) {
    std::cerr << e.what() << "\n";
    return false;
  }
}

void drop_privileges(const std::string& user) {
  if (user.empty() || ::geteuid() != 0) return;
  struct passwd* pw = ::getpwnam(user.c_str());
  if (!pw) throw std::runtime_error("user " + user + ": no such user");
  if (::setgroups(0, nullptr) != 0 || ::setgid(pw->pw_gid) != 0 || ::setuid(pw->pw_uid) != 0)
    throw std::runtime_error("cannot drop privileges to " + user);
  if (::setuid(0) == 0) throw std::runtime_error("privileges were not dropped");
}

int cmd_run(const std::vector<std::string>& args) {
  std::string file, problem;
  std::vector<std::string> positional;
  if (!parse_args(args, file, positional, problem)) return usage(problem);
  if (!positional.empty()) return usage("run takes no arguments");
  config cfg;
  if (!load(file, cfg)) return 1;
  // The policy is validated before anything binds: a gateway that cannot
  // decide how to deliver must not accept mail it would then have to hold.
  std::unique_ptr<current_policy> policy;
  if (!cfg.policy_file.empty()) {
    try {
      policy = std::make_unique<current_policy>(cfg.policy_file);
    } catch (const sealgate::policy::policy_error& e) {
      std::cerr << e.what() << "\n";
      return 1;
    }
    log_info("policy " + cfg.policy_file.string() + ": " + policy_summary(*policy->get()));
  }
  try {
    unsigned threads = cfg.threads ? cfg.threads : std::max(1u, std::thread::hardware_concurrency());
    boost::asio::io_context io(static_cast<int>(threads));
    // Signals are caught from here on, before any listener exists: a SIGHUP or
    // SIGTERM that arrives while we start must not kill the process outright.
    boost::asio::signal_set hangup(io, SIGHUP);
    boost::asio::signal_set signals(io, SIGINT, SIGTERM);
    boost::asio::thread_pool workers(2);
    spool spooler(cfg.spool, cfg.spool_sync);
    // Bind first (port 25 needs root), then drop root, then touch the spool and database.
    server srv(io, cfg, spooler, workers);
    drop_privileges(cfg.user);
    auto waiting = spooler.recover();
    log_info("spool " + cfg.spool.string() + ": " + std::to_string(waiting.size()) + " messages waiting for delivery");
    for (const auto& id : spooler.corrupt()) log(log_level::error, id, "damaged spool file moved to corrupt/");
    database db(cfg.database);
    if (size_t restored = db.restore_from_spool(spooler.queue_dir(), waiting))
      log_info("database: " + std::to_string(restored) + " accepted-message records restored from the spool");
    spooler.on_committed([&db](const std::vector<const spooled_envelope*>& messages) {
      try {
        db.record_accepted(messages);
      } catch (const std::exception& e) {
        log_error(std::string("database: ") + e.what());
      }
    });
    srv.start();
    signals.async_wait([&](const boost::system::error_code& ec, int sig) {
      if (ec) return;
      log_info("signal " + std::to_string(sig) + ": stopping");
      srv.stop();
      io.stop();
    });
    std::function<void()> wait_hangup = [&] {
      hangup.async_wait([&](const boost::system::error_code& ec, int) {
        if (ec) return;
        if (!policy) {
          log_info("SIGHUP: no policy_file configured, nothing to reload");
        } else if (auto errors = policy->reload(); errors.empty()) {
          log_info("SIGHUP: policy reloaded: " + policy_summary(*policy->get()));
        } else {
          log_error("SIGHUP: policy not reloaded, the previous one stays in force");
          for (size_t pos = 0; pos < errors.size();) {
            size_t nl = errors.find('\n', pos);
            if (nl == std::string::npos) nl = errors.size();
            log_error(errors.substr(pos, nl - pos));
            pos = nl + 1;
          }
        }
        wait_hangup();
      });
    };
    wait_hangup();
    log_info(std::string("sealgate ") + SEALGATE_VERSION + " started, hostname=" + cfg.hostname);
    std::vector<std::thread> pool;
    for (unsigned i = 1; i < threads; ++i) pool.emplace_back([&io] { io.run(); });
    io.run();
    for (auto& t : pool) t.join();
    spooler.stop();
    workers.join();
    auto st = spooler.stats();
    log_info("spool stats: commits=" + std::to_string(st.commits) + " fdatasync=" + std::to_string(st.file_syncs) +
             " dir_fsync=" + std::to_string(st.dir_syncs) + " syncfs=" + std::to_string(st.fs_syncs));
    return 0;
  } catch (const std::exception& e) {
    log_error(e.what());
    return 1;
  }
}

std::string read_password() {
  bool tty = ::isatty(STDIN_FILENO);
  termios old{};
  if (tty) {
    std::cerr << "Password: " << std::flush;
    ::tcgetattr(STDIN_FILENO, &old);
    termios quiet = old;
    quiet.c_lflag &= ~static_cast<tcflag_t>(ECHO);
    ::tcsetattr(STDIN_FILENO, TCSANOW, &quiet);
  }
  std::string pw;
  std::getline(std::cin, pw);
  if (tty) {
    ::tcsetattr(STDIN_FILENO, TCSANOW, &old);
    std::cerr << "\n";
  }
  if (!pw.empty() && pw.back() == '\r') pw.pop_back();
  return pw;
}

int cmd_passwd(const std::vector<std::string>& args) {
  std::string file, problem;
  std::vector<std::string> positional;
  if (!parse_args(args, file, positional, problem)) return usage(problem);
  if (positional.size() != 1) return usage("passwd takes one USER");
  config cfg;
  if (!load(file, cfg)) return 1;
  if (cfg.users_file.empty()) {
    std::cerr << "sealgate: " << file << ": relay.users_file is not set\n";
    return 1;
  }
  if (!valid_user_name(positional[0])) {
    std::cerr << "sealgate: invalid user name (no ':' or control characters, 1-256 octets)\n";
    return 1;
  }
  std::string pw = read_password();
  if (pw.empty()) {
    std::cerr << "sealgate: empty password refused\n";
    return 1;
  }
  try {
    set_user_hash(cfg.users_file, positional[0], sealgate::crypto::hash_password(pw));
  } catch (const std::exception& e) {
    std::cerr << "sealgate: " << e.what() << "\n";
    return 1;
  }
  std::fill(pw.begin(), pw.end(), '\0');
  std::cerr << "sealgate: password for " << positional[0] << " stored in " << cfg.users_file.string() << "\n";
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<std::string> args(argv + 1, argv + argc);
  if (args.empty()) return usage("no command given");
  std::string cmd = args.front();
  args.erase(args.begin());
  if (cmd == "--version" || cmd == "version") {
    std::cout << "sealgate " << SEALGATE_VERSION << "\n";
    return 0;
  }
  if (cmd == "help" || cmd == "--help" || cmd == "-h") {
    std::cout << usage_text;
    return 0;
  }
  if (cmd == "run") return cmd_run(args);
  if (cmd == "passwd") return cmd_passwd(args);
  if (cmd == "policy") return run_policy_command(args);
  if (cmd == "dns") return run_dns_command(args);
  if (cmd == "keys") return run_keys_command(args);
  return usage("unknown command " + cmd);
}
