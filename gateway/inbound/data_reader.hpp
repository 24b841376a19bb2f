// Reads the DATA phase byte stream (RFC 5321 4.1.1.4, 4.5.2): removes dot
// stuffing, finds the one true end of data (<CR><LF>.<CR><LF>), and flags what
// must be refused. Never treats <LF>.<LF>, <LF>.<CR><LF> or <CR><LF>.<LF> as an
// end (the SMTP smuggling attacks of 2023), and stops at the first bare CR or LF.
#pragma once
#include <cstdint>
#include <string>
#include <string_view>

namespace sealgate::gateway {

class data_reader {
 public:
  enum class status {
    reading,   // needs more input
    complete,  // end of data found; content is final unless a limit was hit
    bare_newline,  // a CR or LF outside a CRLF pair: the session must reply and close,
                   // since what follows cannot be framed safely
  };

  data_reader(uint64_t max_size, size_t max_line_length) : max_size_(max_size), max_line_(max_line_length) {}

  // Consumes input up to and including the end of data (or the offending
  // octet); appends unstuffed content with CRLF line ends to out while within the
  // size limit. Returns how many octets of input were used; the caller keeps the
  // rest (pipelined commands after the end of data).
  size_t feed(std::string_view input, std::string& out);

  status state() const { return status_; }
  bool too_big() const { return too_big_; }         // content exceeded max_size (content dropped)
  bool line_too_long() const { return line_too_long_; }
  bool saw_8bit() const { return saw_8bit_; }
  uint64_t size() const { return size_; }  // unstuffed content octets seen, including dropped ones

 private:
  void emit(std::string_view bytes, std::string& out);

  uint64_t max_size_;
  size_t max_line_;
  status status_ = status::reading;
  // Where we are in the current line: at its start (a dot may follow), just
  // after a leading dot (".\r\n" ends), or in the middle.
  enum class position { line_start, after_dot, after_dot_cr, middle, after_cr };
  position pos_ = position::line_start;
  bool too_big_ = false;
  bool line_too_long_ = false;
  bool saw_8bit_ = false;
  uint64_t size_ = 0;
  size_t line_length_ = 0;
};

}  // namespace sealgate::gateway
