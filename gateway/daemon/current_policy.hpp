// The policy the running gateway decides with, and how it is swapped on a
// reload. Readers take a snapshot with get(); a reload swaps in a new policy
// only when it validates, so a typo in the file never leaves the gateway
// without a policy (or with half of one).
#pragma once
#include <atomic>
#include <filesystem>
#include <functional>
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
  // Called after each load that took effect (on the reloading thread), with
  // what caused it: the record keeps every policy that ever decided.
  void on_loaded(std::function<void(const policy::policy&, const std::string& trigger)> f) { on_loaded_ = std::move(f); }
  void loaded(const std::string& trigger) const {
    if (on_loaded_) on_loaded_(*get(), trigger);
  }

 private:
  std::filesystem::path file_;
  std::shared_ptr<const policy::policy> policy_;
  std::function<void(const policy::policy&, const std::string&)> on_loaded_;
};

}  // namespace sealgate::gateway
