// The SMTP AUTH users file (relay.users_file): "name:$scrypt$..." per line,
// mode 0600. Reads happen on the worker pool: scrypt is deliberately slow.
#pragma once
#include <filesystem>
#include <string>

namespace sealgate::gateway {

// True when user exists and the password matches. Unknown users cost the same
// scrypt work as known ones. A missing or unreadable file means no user matches.
bool check_user_password(const std::filesystem::path& users_file, const std::string& user, const std::string& password);

// Adds or replaces a user's hash, atomically (temporary file, fsync, rename),
// keeping the file 0600. Throws std::runtime_error with the reason.
void set_user_hash(const std::filesystem::path& users_file, const std::string& user, const std::string& hash);

// A user name we can store: no ':' or line breaks, 1..256 octets.
bool valid_user_name(const std::string& user);

}  // namespace sealgate::gateway
