// RFC 5322 header fields and dates, as the session (Message-ID, Received),
// the queue (DSNs) and the record read and write them.
#pragma once
#include <ctime>
#include <string>
#include <string_view>

namespace sealgate::gateway {

// The header block of a message (its header lines, CRLF, without the empty line).
std::string header_block(std::string_view content);

// The first field called name (case-insensitive) in a header block, unfolded
// and trimmed; "" when there is none. Capped at 998 octets.
std::string header_field(std::string_view headers, std::string_view name);

// "Tue, 24 Nov 2026 10:00:00 +0000"
std::string rfc5322_date_now();
std::string rfc5322_date(std::time_t t);

}  // namespace sealgate::gateway
