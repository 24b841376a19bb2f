// Helpers shared by the policy unit tests: write a policy to a temporary file
// and load it, with error texts shown as the operator sees them (policy.yaml:L:C).
#pragma once
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>

#include "policy/policy.hpp"

namespace policy_test {

class temp_policy {
 public:
  temp_policy() {
    char tmpl[] = "/tmp/sealgate-policy-XXXXXX";
    dir_ = mkdtemp(tmpl);
  }
  ~temp_policy() { std::filesystem::remove_all(dir_); }
  std::filesystem::path write(const std::string& text) {
    auto p = dir_ / "policy.yaml";
    std::ofstream(p) << text;
    return p;
  }
  sealgate::policy::policy load(const std::string& text) { return sealgate::policy::load_policy(write(text)); }
  std::string error_of(const std::string& text) {
    auto p = write(text);
    try {
      sealgate::policy::load_policy(p);
    } catch (const sealgate::policy::policy_error& e) {
      std::string msg = e.what();
      auto prefix = p.string();
      for (size_t pos; (pos = msg.find(prefix)) != std::string::npos;) msg.replace(pos, prefix.size(), "policy.yaml");
      return msg;
    }
    return "(no error)";
  }

 private:
  std::filesystem::path dir_;
};

}  // namespace policy_test
