// fuzz_data_reader: the DATA byte stream a client sends (gateway/data_reader),
// the SMTP smuggling front. Checks what the reader promises whatever the bytes:
// the result never depends on how TCP cut the stream, the content it keeps has
// only CRLF line ends, and what our own dot_stuff sends reads back exactly.
#include <algorithm>
#include <string>
#include <string_view>

#include "gateway/inbound/data_reader.hpp"
#include "gateway/smtp_client/smtp_reply.hpp"
#include "tests/fuzz/fuzz_input.hpp"
#include "tests/fuzz/fuzz_parsers.hpp"

namespace sealgate::fuzz {
namespace {

struct outcome {
  gateway::data_reader::status state;
  size_t used = 0;
  std::string content;
  bool too_big, line_too_long, saw_8bit;
  uint64_t size;
};

// Feeds the stream in pieces of the given lengths (cycled), as the session
// does with whatever each read returned, stopping where the reader stops.
outcome read_stream(std::string_view stream, uint64_t max_size, size_t max_line, std::string_view cuts) {
  gateway::data_reader reader(max_size, max_line);
  outcome o;
  size_t k = 0;
  while (o.used < stream.size() && reader.state() == gateway::data_reader::status::reading) {
    size_t n = cuts.empty() ? stream.size() : static_cast<unsigned char>(cuts[k++ % cuts.size()]) + 1;
    std::string_view piece = stream.substr(o.used, n);
    size_t used = reader.feed(piece, o.content);
    SEALGATE_FUZZ_CHECK(used <= piece.size());
    // A reader still reading has taken the whole piece; the session relies on it.
    SEALGATE_FUZZ_CHECK(reader.state() != gateway::data_reader::status::reading || used == piece.size());
    o.used += used;
  }
  o.state = reader.state();
  o.too_big = reader.too_big();
  o.line_too_long = reader.line_too_long();
  o.saw_8bit = reader.saw_8bit();
  o.size = reader.size();
  return o;
}

// What a receiver should read back from dot_stuff(raw): bare CR and LF made
// CRLF, and a last line without its end given one.
std::string normalized(std::string_view raw) {
  std::string out = with_crlf(raw);
  if (!out.empty() && !(out.size() >= 2 && out.compare(out.size() - 2, 2, "\r\n") == 0)) out += "\r\n";
  return out;
}

}  // namespace

void feed_data_reader(const uint8_t* data, size_t size, parse_counts& counts) {
  input_cursor in(data, size);
  // Limits small enough for the fuzzer to cross them, and the session's own.
  uint8_t limits = in.byte();
  uint64_t max_size = (limits & 0x80) ? 25u * 1024 * 1024 : 16u + (limits & 0x3f) * 8u;
  size_t max_line = (limits & 0x40) ? 998 : 4 + (limits & 0x0f);
  std::string_view cuts = in.take(in.byte() & 7);
  std::string_view stream = in.rest();

  outcome whole = read_stream(stream, max_size, max_line, {});
  outcome pieces = read_stream(stream, max_size, max_line, cuts);
  // Content past the size limit is dropped at a point that may depend on the
  // cuts; the session discards such a message whole, so only the rest counts.
  SEALGATE_FUZZ_CHECK(whole.state == pieces.state && whole.used == pieces.used &&
                      whole.too_big == pieces.too_big && whole.line_too_long == pieces.line_too_long &&
                      whole.saw_8bit == pieces.saw_8bit && whole.size == pieces.size);
  SEALGATE_FUZZ_CHECK(whole.too_big || whole.content == pieces.content);
  // Kept content is CRLF-clean (a bare CR or LF stops the reader instead),
  // within the limit, and all of it unless the limit was crossed.
  SEALGATE_FUZZ_CHECK(!has_bare_newline(whole.content));
  SEALGATE_FUZZ_CHECK(whole.content.size() <= max_size);
  SEALGATE_FUZZ_CHECK(whole.too_big ? whole.size > max_size : whole.size == whole.content.size());
  switch (whole.state) {
    case gateway::data_reader::status::complete:
      ++counts.data_complete;
      // The end is the five octets CRLF.CRLF (or ".CRLF" at the very start).
      SEALGATE_FUZZ_CHECK(whole.used >= 3 && stream.substr(whole.used - 3, 3) == ".\r\n");
      SEALGATE_FUZZ_CHECK(whole.used == 3 || stream.substr(whole.used - 5, 2) == "\r\n");
      SEALGATE_FUZZ_CHECK(whole.too_big || whole.content.empty() ||
                          whole.content.compare(whole.content.size() - 2, 2, "\r\n") == 0);
      break;
    case gateway::data_reader::status::bare_newline: ++counts.data_bare_newline; break;
    case gateway::data_reader::status::reading: SEALGATE_FUZZ_CHECK(whole.used == stream.size()); break;
  }
  if (whole.too_big) ++counts.data_too_big;
  if (whole.line_too_long) ++counts.data_line_too_long;

  // The outbound side: our dot-stuffing of any content, cut where the input
  // says, must read back through our own reader as that content, CRLF-clean:
  // anything else would let a message end (or a second one start) early.
  bool at_line_start = true, pending_cr = false;
  size_t cut = cuts.empty() ? stream.size() : std::min<size_t>(stream.size(), static_cast<unsigned char>(cuts[0]));
  std::string sent = gateway::dot_stuff(stream.substr(0, cut), at_line_start, false, pending_cr);
  sent += gateway::dot_stuff(stream.substr(cut), at_line_start, true, pending_cr);
  SEALGATE_FUZZ_CHECK(!has_bare_newline(sent));
  outcome back = read_stream(sent, UINT64_MAX, SIZE_MAX, cuts);
  SEALGATE_FUZZ_CHECK(back.state == gateway::data_reader::status::complete);
  SEALGATE_FUZZ_CHECK(back.used == sent.size());
  SEALGATE_FUZZ_CHECK(back.content == normalized(stream));
}

}  // namespace sealgate::fuzz
