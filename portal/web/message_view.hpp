// What the portal shows of a deposited message: its header fields decoded for
// display, its body as plain text, and its attachments, each downloadable by
// number. It reads a message from anywhere: bounds-checked, limited in size,
// depth and parts, linear in the input; it never throws on bad input and
// never hands the page markup that came from the message.
#pragma once
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace sealgate::portal {

struct attachment {
  std::string name;          // safe to show (escaped) and to put in a Content-Disposition: sanitize_file_name
  std::string content_type;  // as declared, lower case, without parameters; serve it as safe_download_type(content_type)
  uint64_t size = 0;         // decoded bytes
  size_t index = 0;          // its position in message_view::attachments and the number for attachment_bytes
};

struct message_view {
  // Decoded (RFC 2047, charsets to UTF-8), one line each, no control
  // characters; "" when the field is absent.
  std::string from, to, cc, date, subject, message_id;
  std::string text;             // the body as plain UTF-8 text, LF line ends
  bool text_from_html = false;  // text is html_to_text of the only (HTML) body
  std::vector<attachment> attachments;
  // Some of the message is not shown: parts beyond view_limits' depth or
  // count, a part whose header block is too long, or a body cut at max_text.
  bool truncated = false;
};

struct view_limits {
  size_t max_message = 64 * 1024 * 1024;  // larger input is refused outright
  size_t max_header_block = 256 * 1024;   // one entity's header block; over it the message (or the part) is refused
  size_t max_field = 8 * 1024;            // one displayed header value
  size_t max_text = 2 * 1024 * 1024;      // the body text shown
  int max_depth = 32;                     // nested multiparts
  size_t max_parts = 1000;                // entities, all levels together
};

// The view of an RFC 5322 message; nullopt when it is over max_message or its
// header block over max_header_block. The body is the first text/plain part
// that is not an attachment (so multipart/alternative shows its plain
// version), else the first such text/html part through html_to_text.
// Attachments, in the order they appear: every part not shown as the body
// that has Content-Disposition: attachment or a file name (filename, name,
// RFC 2231 and RFC 2047 forms), and every leaf that is not text/plain or
// text/html (inline images, calendars, attached messages). The alternatives
// of the body (its text/html twin) and further unnamed text/plain or text/html
// parts are not listed.
std::optional<message_view> read_message_view(std::string_view rfc5322, const view_limits& limits = {});

// The decoded bytes of attachment number index (as numbered by
// read_message_view with the same limits); nullopt when there is no such one.
std::optional<std::string> attachment_bytes(std::string_view rfc5322, size_t index, const view_limits& limits = {});

// A file name safe to show and to send back in a Content-Disposition: valid
// UTF-8 without control, bidirectional-override or zero-width characters
// (which make "invoice<RLO>fdp.exe" read as "invoice.exe.pdf"), path
// separators and the characters Windows refuses (< > : " / \ | ? * become
// '_'), no leading dots or spaces and no trailing ones, at most 200 bytes cut
// on a character boundary and keeping a short extension; "attachment-N"
// (N = number) when nothing is left.
std::string sanitize_file_name(std::string_view name, size_t number);

// The Content-Type to serve an attachment of this declared type with: an
// allow-list of types a browser does not run (PDF, PNG, JPEG, GIF, WebP,
// plain text as "text/plain; charset=utf-8", CSV, calendar, ZIP, Office and
// OpenDocument formats); everything else, HTML, SVG, XML and scripts among
// them, is application/octet-stream.
std::string safe_download_type(std::string_view content_type);

}  // namespace sealgate::portal
