// DATA framing; see data_reader.hpp. The state machine works a byte at a time
// only at line boundaries and copies runs of ordinary octets in bulk.
#include "gateway/inbound/data_reader.hpp"

#include <cstring>

namespace sealgate::gateway {

void data_reader::emit(std::string_view bytes, std::string& out) {
  size_ += bytes.size();
  if (size_ > max_size_) too_big_ = true;
  if (!too_big_) out.append(bytes);
}

size_t data_reader::feed(std::string_view in, std::string& out) {
  size_t i = 0;
  while (i < in.size() && status_ == status::reading) {
    char c = in[i];
    switch (pos_) {
      case position::line_start:
        if (c == '.') {
          pos_ = position::after_dot;
          ++i;
          continue;
        }
        pos_ = position::middle;
        line_length_ = 0;
        continue;  // reprocess as middle
      case position::after_dot:
        if (c == '\r') {
          pos_ = position::after_dot_cr;
          ++i;
          continue;
        }
        if (c == '\n') {
          status_ = status::bare_newline;  // <LF>.<LF> or CRLF.<LF>: never an end
          return i + 1;
        }
        // A stuffed dot: drop it, the rest of the line is content. The dot does
        // not count towards the line length (RFC 5321 4.5.2).
        pos_ = position::middle;
        line_length_ = 0;
        continue;
      case position::after_dot_cr:
        if (c == '\n') {
          status_ = status::complete;
          return i + 1;
        }
        status_ = status::bare_newline;  // ".<CR>x": the CR was bare; x is not ours to read
        return i;
      case position::after_cr:
        if (c != '\n') {
          status_ = status::bare_newline;
          return i + 1;
        }
        emit("\r\n", out);
        ++i;
        pos_ = position::line_start;
        continue;
      case position::middle: {
        // Copy the run up to the next CR or LF in one piece.
        size_t j = i;
        while (j < in.size() && in[j] != '\r' && in[j] != '\n') {
          if (static_cast<unsigned char>(in[j]) >= 0x80) saw_8bit_ = true;
          ++j;
        }
        if (j > i) {
          line_length_ += j - i;
          if (line_length_ > max_line_) line_too_long_ = true;
          emit(in.substr(i, j - i), out);
          i = j;
          continue;
        }
        if (c == '\n') {
          status_ = status::bare_newline;
          return i + 1;
        }
        pos_ = position::after_cr;  // c == '\r'
        ++i;
        continue;
      }
    }
  }
  return i;
}

}  // namespace sealgate::gateway
