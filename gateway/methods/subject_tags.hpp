// The Subject rewrite a rule asks for with strip_subject_tag: the tag that
// routed a message ("[secure]") is taken out before the recipient sees it.
// Touches the Subject field only; never the body, never another header.
#pragma once
#include <string>
#include <string_view>
#include <vector>

namespace sealgate::gateway {

// Removes the tags (case-insensitive) from the Subject field of a message.
// Plain text is edited in place; each RFC 2047 encoded word is decoded,
// edited and encoded again in its own charset (an ISO-8859-1 word stays
// ISO-8859-1), in words of at most 75 characters; the field is folded at 78
// characters where it has whitespace (RFC 5322 2.1.1, RFC 2047 2). Content
// other than the Subject field is returned byte for byte, and a message whose
// Subject holds no tag is returned unchanged. The content must be as the
// spool holds it: CRLF line ends only (data_reader refuses a bare CR or LF),
// or a field could run on into the next one.
std::string strip_subject_tags_in(std::string_view content, const std::vector<std::string>& tags);

}  // namespace sealgate::gateway
