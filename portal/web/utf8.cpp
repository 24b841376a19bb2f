// UTF-8 repair and charset conversion for the portal; see utf8.hpp. One pass
// over the bytes each, every index checked against the size.
#include "portal/web/utf8.hpp"

#include "common/text.hpp"

#include <array>

namespace sealgate::portal {
namespace {

constexpr char32_t replacement = 0xFFFD;

struct utf8_step {
  char32_t code_point;
  size_t length;  // bytes consumed: the sequence, or its maximal ill-formed subpart
  bool valid;
};

// One code point at s[i] (i < s.size()), by the well-formed byte sequences
// of Unicode 15 table 3-7: the second byte's range depends on the first,
// which excludes overlong forms, surrogates and values above U+10FFFF.
utf8_step decode_at(std::string_view s, size_t i) {
  auto b0 = static_cast<unsigned char>(s[i]);
  if (b0 < 0x80) return {b0, 1, true};
  size_t continuation;
  char32_t cp;
  unsigned char low = 0x80, high = 0xBF;
  if (b0 >= 0xC2 && b0 <= 0xDF) {
    continuation = 1;
    cp = b0 & 0x1F;
  } else if (b0 >= 0xE0 && b0 <= 0xEF) {
    continuation = 2;
    cp = b0 & 0x0F;
    if (b0 == 0xE0) low = 0xA0;   // overlong
    if (b0 == 0xED) high = 0x9F;  // surrogates
  } else if (b0 >= 0xF0 && b0 <= 0xF4) {
    continuation = 3;
    cp = b0 & 0x07;
    if (b0 == 0xF0) low = 0x90;   // overlong
    if (b0 == 0xF4) high = 0x8F;  // above U+10FFFF
  } else {
    return {replacement, 1, false};
  }
  for (size_t k = 1; k <= continuation; ++k) {
    if (i + k >= s.size()) return {replacement, k, false};
    auto b = static_cast<unsigned char>(s[i + k]);
    if (b < low || b > high) return {replacement, k, false};
    low = 0x80;
    high = 0xBF;
    cp = (cp << 6) | (b & 0x3F);
  }
  return {cp, continuation + 1, true};
}

bool is_control(char32_t cp) { return cp < 0x20 || (cp >= 0x7F && cp <= 0x9F); }

// windows-1252 0x80-0x9F; the five unassigned bytes map to the C1 control of
// the same value, as the WHATWG index does.
constexpr std::array<char16_t, 32> windows_1252_high = {
    0x20AC, 0x0081, 0x201A, 0x0192, 0x201E, 0x2026, 0x2020, 0x2021, 0x02C6, 0x2030, 0x0160,
    0x2039, 0x0152, 0x008D, 0x017D, 0x008F, 0x0090, 0x2018, 0x2019, 0x201C, 0x201D, 0x2022,
    0x2013, 0x2014, 0x02DC, 0x2122, 0x0161, 0x203A, 0x0153, 0x009D, 0x017E, 0x0178};

char32_t windows_1252(unsigned char b) {
  return b >= 0x80 && b <= 0x9F ? windows_1252_high[b - 0x80] : b;
}

// ISO-8859-15 differs from ISO-8859-1 in eight places (the euro sign and
// letters for French, Finnish and Estonian).
char32_t iso_8859_15(unsigned char b) {
  switch (b) {
    case 0xA4: return 0x20AC;
    case 0xA6: return 0x0160;
    case 0xA8: return 0x0161;
    case 0xB4: return 0x017D;
    case 0xB8: return 0x017E;
    case 0xBC: return 0x0152;
    case 0xBD: return 0x0153;
    case 0xBE: return 0x0178;
    default: return b;
  }
}

std::string single_byte_to_utf8(std::string_view bytes, char32_t (*map)(unsigned char)) {
  std::string out;
  out.reserve(bytes.size() + bytes.size() / 8);
  for (char c : bytes) append_utf8(out, map(static_cast<unsigned char>(c)));
  return out;
}

std::string_view trim_spaces(std::string_view s) {
  while (!s.empty() && s.front() == ' ') s.remove_prefix(1);
  while (!s.empty() && s.back() == ' ') s.remove_suffix(1);
  return s;
}

}  // namespace

void append_utf8(std::string& out, char32_t cp) {
  if ((cp >= 0xD800 && cp <= 0xDFFF) || cp > 0x10FFFF) cp = replacement;
  if (cp < 0x80) {
    out += static_cast<char>(cp);
  } else if (cp < 0x800) {
    out += static_cast<char>(0xC0 | (cp >> 6));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else if (cp < 0x10000) {
    out += static_cast<char>(0xE0 | (cp >> 12));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else {
    out += static_cast<char>(0xF0 | (cp >> 18));
    out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  }
}

std::string valid_utf8(std::string_view bytes) {
  std::string out;
  out.reserve(bytes.size());
  for (size_t i = 0; i < bytes.size();) {
    utf8_step step = decode_at(bytes, i);
    if (!step.valid)
      append_utf8(out, replacement);
    else
      out.append(bytes.substr(i, step.length));
    i += step.length;
  }
  return out;
}

bool is_valid_utf8(std::string_view bytes) {
  for (size_t i = 0; i < bytes.size();) {
    utf8_step step = decode_at(bytes, i);
    if (!step.valid) return false;
    i += step.length;
  }
  return true;
}

std::u32string decode_utf8(std::string_view bytes) {
  std::u32string out;
  for (size_t i = 0; i < bytes.size();) {
    utf8_step step = decode_at(bytes, i);
    out += step.code_point;
    i += step.length;
  }
  return out;
}

std::string_view utf8_prefix(std::string_view s, size_t max_bytes) {
  if (s.size() <= max_bytes) return s;
  size_t end = max_bytes;
  // Back off continuation bytes (10xxxxxx) so the cut falls before a lead byte.
  while (end > 0 && (static_cast<unsigned char>(s[end]) & 0xC0) == 0x80) --end;
  return s.substr(0, end);
}

std::string charset_to_utf8(std::string_view charset, std::string_view bytes) {
  std::string label = lower_ascii(trim_spaces(charset.substr(0, charset.find('*'))));
  if (label.size() >= 2 && label.front() == '"' && label.back() == '"') label = label.substr(1, label.size() - 2);
  for (std::string_view latin1 : {"iso-8859-1", "iso8859-1", "iso_8859-1", "latin1", "latin-1", "l1", "cp819", "ibm819",
                                  "windows-1252", "cp1252", "x-cp1252"})
    if (label == latin1) return single_byte_to_utf8(bytes, windows_1252);
  for (std::string_view latin9 : {"iso-8859-15", "iso8859-15", "iso_8859-15", "latin9", "latin-9", "l9"})
    if (label == latin9) return single_byte_to_utf8(bytes, iso_8859_15);
  // UTF-8, US-ASCII (8-bit bytes in it are most often UTF-8 in practice) and
  // everything unknown: keep what is valid.
  return valid_utf8(bytes);
}

std::string display_text(std::string_view bytes) {
  std::string out;
  out.reserve(bytes.size());
  for (size_t i = 0; i < bytes.size();) {
    utf8_step step = decode_at(bytes, i);
    char32_t cp = step.code_point;
    if (cp == '\r') {
      out += '\n';
      if (i + 1 < bytes.size() && bytes[i + 1] == '\n') ++i;
    } else if (cp == '\n' || cp == '\t' || !is_control(cp)) {
      if (!step.valid)
        append_utf8(out, replacement);
      else
        out.append(bytes.substr(i, step.length));
    }
    // Other controls (ESC, NUL, C1...) are dropped: they mean nothing on a page.
    i += step.length;
  }
  return out;
}

std::string display_line(std::string_view bytes, size_t max_bytes) {
  std::string out;
  for (size_t i = 0; i < bytes.size() && out.size() < max_bytes + 4;) {
    utf8_step step = decode_at(bytes, i);
    char32_t cp = step.code_point;
    if (cp == '\r' || cp == '\n' || cp == '\t' || cp == ' ') {
      if (!out.empty()) out += ' ';  // leading white space is not kept
    } else if (!step.valid) {
      append_utf8(out, replacement);
    } else if (!is_control(cp)) {
      out.append(bytes.substr(i, step.length));
    }
    i += step.length;
  }
  std::string_view v = out;
  while (!v.empty() && v.back() == ' ') v.remove_suffix(1);
  return std::string(utf8_prefix(v, max_bytes));
}

}  // namespace sealgate::portal
