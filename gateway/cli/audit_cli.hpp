// `sealgate audit verify|checkpoint|purge`: the record's tamper evidence.
// verify checks the hash chain, the signed checkpoints (with the public key
// an auditor trusts) and any witness copies, and names the first entry
// altered, inserted or deleted: exit 0 intact, 1 not (or unreadable), 2
// usage. docs/audit.md says how to check the same with sqlite3 and openssl.
#pragma once
#include <string>
#include <vector>

namespace sealgate::gateway {

extern const char* const audit_usage_line;
int run_audit_command(const std::vector<std::string>& args);

}  // namespace sealgate::gateway
