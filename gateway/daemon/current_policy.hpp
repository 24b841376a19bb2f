// The policy the running gateway decides with, and how it is swapped on a
// reload. Readers take a snapshot with get(); a reload swaps in a new policy
// only when it validates, so a typo in the file never leaves the gateway
// without a policy (or with half of one).
#pragma once
#include <atomic>
#include <filesystem>
#include <memory>
#include <string>

#include "policy/policy.hpp"

namespace sealgate::gateway {

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
