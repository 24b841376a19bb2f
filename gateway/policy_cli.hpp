// The `sealgate policy` commands (check, explain) and the running gateway's
// current policy. The commands only read files and print; they never send mail
// or probe the network.
#pragma once
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "policy/policy.hpp"

namespace sealgate::gateway {

// args are what follows "policy" on the command line. Exit codes: 0 ok,
// 1 failure (policy errors, unreadable files), 2 usage.
int run_policy_command(const std::vector<std::string>& args);

// One line for logs and `policy check`: classes, rules and the content hash.
std::string policy_summary(const policy::policy& p);

// The policy the gateway decides with. Readers take a snapshot with get(); a
// reload swaps in a new policy only when it validates, so a typo in the file
// never leaves the gateway without a policy (or with half of one).
class current_policy {
 public:
  explicit current_policy(std::filesystem::path file);  // throws policy::policy_error
  std::shared_ptr<const policy::policy> get() const { return std::atomic_load(&policy_); }
  // Returns "" on success, else the errors (the old policy stays in force).
  std::string reload();
  const std::filesystem::path& file() const { return file_; }

 private:
  std::filesystem::path file_;
  std::shared_ptr<const policy::policy> policy_;
};

}  // namespace sealgate::gateway
