// The recipient's reply, written in the portal, as an RFC 5322 message for
// the gateway to send. Every header value is built from parts that cannot
// carry a line break or a control character, so nothing a reply's author or
// the original message wrote can add a header field or a recipient.
#pragma once
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace sealgate::portal {

struct reply_attachment {
  std::string filename;  // sanitized again here
  std::string data;
};

struct reply_input {
  std::string from;       // the recipient replying (an address: local@domain)
  std::string from_name;  // optional display name
  std::string to;         // the original sender (an address)
  std::string to_name;    // optional display name
  // Optional: where answers go. The portal sends replies From its own
  // address (the recipient's domain would fail DMARC at the sender's MX) with
  // the recipient here.
  std::string reply_to;
  std::string original_subject;     // decoded text (UTF-8), as message_view shows it
  std::string original_message_id;  // "<id@host>" of the message replied to; may be empty
  std::string original_references;  // its References field, if it had one
  int64_t date = 0;                 // unix time of the reply
  std::string message_id;           // "<...>" to use; empty: new_message_id(host)
  std::string host = "localhost";   // right-hand side of a new Message-ID
  std::string text;                 // the body, UTF-8
  std::vector<reply_attachment> attachments;
};

// The whole message, CRLF line ends, every line at most 998 octets (78 where
// it can be folded): From, To, Subject ("Re: " added unless the subject starts
// with "Re:" in any case; RFC 2047 encoded when not plain ASCII), Date,
// Message-ID, In-Reply-To and References (RFC 5322 3.6.4, the list trimmed to
// its first and last ids when long), MIME-Version. The text is UTF-8 in
// quoted-printable; with attachments the message is multipart/mixed, each
// attachment base64 in 76-column lines with its name in the RFC 2231 form
// when it is not plain ASCII, and a type from sniff_content_type (the
// browser's claim is never used). Control characters in any header value
// are removed; addresses lose everything that could end or split them.
std::string compose_reply(const reply_input& input);

// "<32 random hex digits@host>", host reduced to letters, digits, '.' and '-'.
std::string new_message_id(std::string_view host);

// RFC 5322 3.3 date-time in UTC: "Thu, 01 Jan 1970 00:00:00 +0000". Times
// outside years 1970-9999 are clamped into them.
std::string rfc5322_date(int64_t unix_time);

// The type to declare for a file from its first bytes (PDF, PNG, JPEG, GIF,
// and ZIP, which with a .docx/.xlsx/.pptx/.odt/.ods/.odp name is that Office
// type) or, for .txt and .csv names, valid UTF-8 without NUL; else
// application/octet-stream. Only types safe_download_type allows come out.
std::string sniff_content_type(std::string_view filename, std::string_view data);

}  // namespace sealgate::portal
