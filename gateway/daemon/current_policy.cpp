#include "gateway/daemon/current_policy.hpp"

namespace sealgate::gateway {

current_policy::current_policy(std::filesystem::path file)
    : file_(std::move(file)), policy_(std::make_shared<const policy::policy>(policy::load_policy(file_))) {}

std::string current_policy::reload() {
  try {
    auto fresh = std::make_shared<const policy::policy>(policy::load_policy(file_));
    std::atomic_store(&policy_, std::move(fresh));
    return "";
  } catch (const policy::policy_error& e) {
    return e.what();
  } catch (const std::exception& e) {
    // Whatever else goes wrong (memory, a library's own exception), the
    // running policy stays and the process with it.
    return file_.string() + ": cannot load: " + e.what();
  }
}

}  // namespace sealgate::gateway
