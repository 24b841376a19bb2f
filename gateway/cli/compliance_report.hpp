// The compliance report's two spellings, both written from one
// compliance_summary (gateway/record/compliance.hpp): the "compliance" member
// of `sealgate report --format json`, and the page of `--format html`. Every
// number the page shows carries the JSON pointer (RFC 6901) of the same
// number in the JSON (data-json), so the two can be checked against each
// other. The page is one self-contained file: no URL, no script, no font or
// image from anywhere; every text is escaped (domains come from mail).
#pragma once
#include <cstdint>
#include <string>

#include "gateway/record/compliance.hpp"

namespace sealgate::gateway {

// Who the report is for and what made it (not in the record).
struct compliance_heading {
  std::string organisation;  // tlsrpt.organization: the hostname unless set
  std::string version;       // of sealgate
  int64_t generated_at = 0;  // unix seconds
};

// The JSON object (no newline after it).
std::string compliance_json(const compliance_summary& s, const compliance_heading& h);
// The whole HTML document.
std::string compliance_html(const compliance_summary& s, const compliance_heading& h);

}  // namespace sealgate::gateway
