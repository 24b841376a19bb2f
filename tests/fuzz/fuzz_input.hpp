// A cursor over one fuzz input: the feeds take their switches (limits, modes,
// chunk sizes) from the front and lines or bytes from the rest, so that
// libFuzzer's mutations reach every branch a real peer could choose.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace sealgate::fuzz {

class input_cursor {
 public:
  input_cursor(const uint8_t* data, size_t size) : rest_(reinterpret_cast<const char*>(data), size) {}

  bool empty() const { return rest_.empty(); }
  // Zero once the input is used up, so short inputs still run.
  uint8_t byte() {
    if (rest_.empty()) return 0;
    auto b = static_cast<uint8_t>(rest_.front());
    rest_.remove_prefix(1);
    return b;
  }
  // The next line without its LF (and without a CR before the LF), as a
  // server's line reader gives it; the whole rest when no LF is left.
  std::string_view line() {
    size_t nl = rest_.find('\n');
    std::string_view l = rest_.substr(0, nl);
    rest_ = nl == std::string_view::npos ? std::string_view{} : rest_.substr(nl + 1);
    if (!l.empty() && l.back() == '\r') l.remove_suffix(1);
    return l;
  }
  std::string_view take(size_t n) {
    std::string_view t = rest_.substr(0, n);
    rest_.remove_prefix(t.size());
    return t;
  }
  std::string_view rest() const { return rest_; }
  void skip(size_t n) { rest_.remove_prefix(n < rest_.size() ? n : rest_.size()); }

 private:
  std::string_view rest_;
};

// True when s holds a CR or LF that is not part of a CRLF pair.
inline bool has_bare_newline(std::string_view s) {
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '\r' && (i + 1 >= s.size() || s[i + 1] != '\n')) return true;
    if (s[i] == '\n' && (i == 0 || s[i - 1] != '\r')) return true;
  }
  return false;
}

// s with every bare CR or LF made CRLF: message content as the spool holds
// it (data_reader refuses a message with a bare one, so no other kind exists).
inline std::string with_crlf(std::string_view s) {
  std::string out;
  out.reserve(s.size() + 16);
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '\r') {
      out += "\r\n";
      if (i + 1 < s.size() && s[i + 1] == '\n') ++i;
    } else if (s[i] == '\n') {
      out += "\r\n";
    } else {
      out += s[i];
    }
  }
  return out;
}

inline bool has_control(std::string_view s) {
  for (unsigned char c : s)
    if (c < 0x20 || c == 0x7f) return true;
  return false;
}

}  // namespace sealgate::fuzz
