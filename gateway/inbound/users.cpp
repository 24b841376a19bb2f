// Users file reading and atomic rewriting; see users.hpp.
#include "gateway/inbound/users.hpp"

#include "common/unique_fd.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <vector>

#include "crypto/password.hpp"

namespace sealgate::gateway {

bool valid_user_name(const std::string& user) {
  if (user.empty() || user.size() > 256) return false;
  for (unsigned char c : user)
    if (c == ':' || c < 0x20 || c == 0x7f) return false;
  return true;
}

bool check_user_password(const std::filesystem::path& users_file, const std::string& user, const std::string& password) {
  std::ifstream in(users_file);
  std::string line, hash;
  bool found = false;
  while (in && std::getline(in, line)) {
    auto colon = line.find(':');
    if (colon == std::string::npos || line[0] == '#') continue;
    // Compare every name so that the scan's time does not depend on where the user is.
    bool match = line.compare(0, colon, user) == 0 && colon == user.size();
    if (match && !found) {
      hash = line.substr(colon + 1);
      found = true;
    }
  }
  if (!found) {
    crypto::verify_password(password, crypto::dummy_hash());
    return false;
  }
  return crypto::verify_password(password, hash);
}

void set_user_hash(const std::filesystem::path& users_file, const std::string& user, const std::string& hash) {
  if (!valid_user_name(user)) throw std::runtime_error("invalid user name (no ':' or control characters, 1-256 octets)");
  std::vector<std::string> lines;
  {
    std::ifstream in(users_file);
    std::string line;
    while (in && std::getline(in, line)) {
      auto colon = line.find(':');
      if (colon != std::string::npos && line.compare(0, colon, user) == 0 && colon == user.size()) continue;
      lines.push_back(line);
    }
  }
  lines.push_back(user + ":" + hash);
  if (users_file.has_parent_path()) std::filesystem::create_directories(users_file.parent_path());
  auto tmp = users_file;
  tmp += ".tmp";
  unique_fd file(::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600));
  int fd = file.get();
  if (!file) throw std::runtime_error(tmp.string() + ": " + std::strerror(errno));
  std::string all;
  for (auto& l : lines) all += l + "\n";
  bool ok = ::fchmod(fd, 0600) == 0 && ::write(fd, all.data(), all.size()) == static_cast<ssize_t>(all.size()) &&
            ::fsync(fd) == 0;
  ok = file.close() == 0 && ok;
  if (!ok || ::rename(tmp.c_str(), users_file.c_str()) != 0) {
    ::unlink(tmp.c_str());
    throw std::runtime_error(users_file.string() + ": cannot write: " + std::strerror(errno));
  }
}

}  // namespace sealgate::gateway
