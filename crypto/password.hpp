// Password hashing for SMTP AUTH users: salted scrypt through OpenSSL, compared
// in constant time. Never logs or returns a password or a hash in an error.
#pragma once
#include <string>
#include <string_view>

namespace sealgate::crypto {

// "$scrypt$ln=15,r=8,p=1$<salt base64>$<key base64>" (the parameter spelling of
// passlib and PHC strings), with a fresh 16-byte random salt.
std::string hash_password(std::string_view password);

// True when the password matches the stored hash. A malformed hash never matches.
// Costs the same scrypt work whether the hash is well formed or not, so that
// callers can verify against a dummy hash for unknown users (no user enumeration
// by timing).
bool verify_password(std::string_view password, std::string_view stored_hash);

// A well-formed hash of a random password, for unknown users.
const std::string& dummy_hash();

}  // namespace sealgate::crypto
