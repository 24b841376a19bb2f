// See subject_tags.hpp. The field is read as a sequence of atoms (plain words
// and encoded words, each knowing whether whitespace came before it), edited
// atom by atom, and written again with folding.
#include "gateway/methods/subject_tags.hpp"

#include <algorithm>
#include <cctype>

#include "common/text.hpp"
#include "policy/classify.hpp"
#include "policy/message_facts.hpp"

namespace sealgate::gateway {
namespace {

constexpr size_t fold_at = 78;            // RFC 5322 2.1.1: SHOULD stay within 78 characters a line
constexpr size_t encoded_word_max = 75;   // RFC 2047 2

bool is_wsp(char c) { return c == ' ' || c == '\t'; }


bool contains_tag(std::string_view text, const std::vector<std::string>& tags) {
  std::string low = lower_ascii(text);
  return std::any_of(tags.begin(), tags.end(), [&](const std::string& t) { return !t.empty() && low.find(lower_ascii(t)) != std::string::npos; });
}

struct atom {
  std::string text;          // as written in the field
  bool space_before = false;  // whitespace (where a fold may go) before it
};

// One encoded word of the original field.
struct encoded_word {
  std::string charset;  // with any RFC 2231 language suffix, as written
  std::string bytes;    // decoded, still in that charset
};

// Parses "=?charset?B|Q?text?=" at pos; on success sets end past it.
bool parse_encoded_word(std::string_view in, size_t pos, encoded_word& w, size_t& end) {
  if (in.compare(pos, 2, "=?") != 0) return false;
  size_t q1 = in.find('?', pos + 2);
  if (q1 == std::string_view::npos || q1 + 2 >= in.size() || in[q1 + 2] != '?') return false;
  size_t close = in.find("?=", q1 + 3);
  if (close == std::string_view::npos) return false;
  char enc = static_cast<char>(std::tolower(static_cast<unsigned char>(in[q1 + 1])));
  std::string_view text = in.substr(q1 + 3, close - q1 - 3);
  if (text.find_first_of(" \t") != std::string_view::npos) return false;
  w.charset = std::string(in.substr(pos + 2, q1 - pos - 2));
  if (enc == 'b') {
    w.bytes = policy::decode_base64(text);
  } else if (enc == 'q') {
    std::string t(text);
    std::replace(t.begin(), t.end(), '_', ' ');
    w.bytes = policy::decode_quoted_printable(t);
  } else {
    return false;
  }
  end = close + 2;
  return true;
}

// The bytes as B-encoded words in their charset, each at most 75 characters.
// A UTF-8 word is never cut inside a character.
std::vector<std::string> encode_words(const std::string& charset, std::string_view bytes) {
  std::vector<std::string> out;
  const size_t overhead = charset.size() + 7;  // =? ?B? ?=
  size_t raw_per_word = encoded_word_max > overhead + 4 ? (encoded_word_max - overhead) / 4 * 3 : 3;
  bool utf8 = lower_ascii(charset).rfind("utf-8", 0) == 0;
  size_t pos = 0;
  while (pos < bytes.size()) {
    size_t n = std::min(raw_per_word, bytes.size() - pos);
    if (utf8 && pos + n < bytes.size())
      while (n > 1 && (static_cast<unsigned char>(bytes[pos + n]) & 0xC0) == 0x80) --n;
    out.push_back("=?" + charset + "?B?" + sealgate::base64_encode(bytes.substr(pos, n)) + "?=");
    pos += n;
  }
  return out;
}

// The Subject value (unfolded) with the tags removed, as atoms.
std::vector<atom> strip_atoms(std::string_view value, const std::vector<std::string>& tags) {
  std::vector<atom> atoms;
  bool pending_space = false;
  bool last_encoded = false;
  size_t pos = 0;
  auto add_plain = [&](std::string_view text) {
    // Whitespace before, inside or after plain text shows; runs become one space.
    if (text.empty()) return;
    if (is_wsp(text.front())) pending_space = true;
    std::string stripped = policy::strip_subject_tags(text, tags);
    bool first = true;
    for (size_t i = 0; i < stripped.size();) {
      while (i < stripped.size() && is_wsp(stripped[i])) ++i;
      size_t j = i;
      while (j < stripped.size() && !is_wsp(stripped[j])) ++j;
      if (j > i) {
        atoms.push_back({stripped.substr(i, j - i), first ? pending_space : true});
        first = false;
        pending_space = false;
        last_encoded = false;
      }
      i = j;
    }
    if (is_wsp(text.back())) pending_space = true;
  };
  while (pos < value.size()) {
    size_t start = value.find("=?", pos);
    encoded_word w;
    size_t end = 0;
    while (start != std::string_view::npos && !parse_encoded_word(value, start, w, end)) start = value.find("=?", start + 2);
    if (start == std::string_view::npos) {
      add_plain(value.substr(pos));
      break;
    }
    std::string_view between = value.substr(pos, start - pos);
    bool only_space = std::all_of(between.begin(), between.end(), is_wsp);
    // Whitespace between two encoded words does not show (RFC 2047 6.2).
    if (!(last_encoded && only_space)) add_plain(between);
    else if (!between.empty()) pending_space = true;
    std::string bytes = policy::strip_subject_tags(w.bytes, tags);
    if (!w.bytes.empty() && is_wsp(w.bytes.front())) pending_space = true;
    bool first = true;
    for (auto& word : encode_words(w.charset, bytes)) {
      // Between two encoded words a space is folding whitespace only.
      atoms.push_back({std::move(word), first ? (pending_space || last_encoded) : true});
      first = false;
      last_encoded = true;
      pending_space = false;
    }
    if (!w.bytes.empty() && is_wsp(w.bytes.back())) pending_space = true;
    pos = end;
  }
  return atoms;
}

// "Name: atom atom\r\n atom ...": folded before an atom that would pass 78
// characters, where whitespace allows; no line ends with whitespace.
std::string fold_field(std::string_view name, const std::vector<atom>& atoms) {
  std::string out(name);
  out += ':';
  size_t line = out.size();
  bool first = true;
  for (const auto& a : atoms) {
    bool space = first || a.space_before;
    if (space && !first && line + 1 + a.text.size() > fold_at) {
      out += "\r\n ";
      line = 1;
    } else if (space) {
      out += ' ';
      ++line;
    }
    out += a.text;
    line += a.text.size();
    first = false;
  }
  return out;
}

}  // namespace

std::string strip_subject_tags_in(std::string_view content, const std::vector<std::string>& tags) {
  if (tags.empty()) return std::string(content);
  size_t header_end = content.find("\r\n\r\n");
  if (header_end == std::string_view::npos) header_end = content.size();
  size_t pos = 0;
  while (pos < header_end) {
    size_t eol = content.find("\r\n", pos);
    if (eol == std::string_view::npos) eol = content.size();
    if (content.size() - pos >= 8 && lower_ascii(content.substr(pos, 8)) == "subject:") {
      size_t end = eol;  // the field goes on over folded lines
      while (end + 2 < content.size() && (content[end + 2] == ' ' || content[end + 2] == '\t')) {
        size_t next = content.find("\r\n", end + 2);
        end = next == std::string_view::npos ? content.size() : next;
      }
      std::string unfolded;
      std::string_view raw = content.substr(pos + 8, end - pos - 8);
      for (size_t i = 0; i < raw.size(); ++i) {
        if (raw[i] == '\r' && i + 1 < raw.size() && raw[i + 1] == '\n') {
          ++i;
          continue;
        }
        unfolded += raw[i];
      }
      if (!contains_tag(policy::decode_rfc2047(unfolded), tags)) return std::string(content);
      std::string field = fold_field(content.substr(pos, 7), strip_atoms(unfolded, tags));
      return std::string(content.substr(0, pos)) + field + std::string(content.substr(end));
    }
    pos = eol + 2;
  }
  return std::string(content);
}

}  // namespace sealgate::gateway
