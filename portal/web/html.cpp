// Escaping and HTML-to-text for the portal; see html.hpp. html_to_text is a
// single forward scan shaped after the HTML tokenizer (WHATWG HTML 13.2.5):
// tags, comments and raw-text elements are recognised the way a browser
// recognises them, so that what a browser would hide stays hidden, but no
// tree is built and no regex is used. Every search starts where the previous
// one ended, so the cost is linear in the input whatever its shape.
#include "portal/web/html.hpp"

#include "common/text.hpp"
#include "portal/web/utf8.hpp"

#include <algorithm>
#include <array>
#include <cstdint>
#include <optional>
#include <utility>
#include <vector>

namespace sealgate::portal {
namespace {

bool is_space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f'; }
bool is_alpha(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }
bool is_digit(char c) { return c >= '0' && c <= '9'; }
bool is_alnum(char c) { return is_alpha(c) || is_digit(c); }

bool one_of(std::string_view name, std::initializer_list<std::string_view> names) {
  return std::find(names.begin(), names.end(), name) != names.end();
}

// Content a reader never sees, skipped to the element's end tag without
// looking for tags inside (scripts and styles are raw text to a browser, and
// "<" in them means nothing).
bool hidden_with_content(std::string_view tag) {
  return one_of(tag, {"script", "style", "title", "noscript", "template", "iframe", "noembed", "noframes"});
}

// Elements that may appear in head without ending it (HTML 13.2.6.4.4); any
// other start tag, or visible text, ends head as it does in a browser, so a
// message with an unclosed <head> still shows its body.
bool belongs_in_head(std::string_view tag) {
  return one_of(tag, {"head", "meta", "link", "base", "basefont", "bgsound", "title", "style", "script", "noscript",
                      "template"});
}

bool paragraph_element(std::string_view tag) {
  return one_of(tag, {"p", "h1", "h2", "h3", "h4", "h5", "h6", "blockquote", "pre", "table", "ul", "ol", "dl"});
}

bool line_element(std::string_view tag) {
  return one_of(tag, {"div", "li", "tr", "dt", "dd", "address", "article", "aside", "center", "details", "dialog",
                      "fieldset", "figcaption", "figure", "footer", "form", "header", "hr", "main", "nav", "section",
                      "summary", "caption", "legend", "option"});
}

// The named references mail actually uses: the HTML 4 Latin-1 set (U+00A0 to
// U+00FF, in order), the markup-significant five, and common punctuation.
constexpr std::array<std::string_view, 96> latin1_names = {
    "nbsp",   "iexcl",  "cent",   "pound",  "curren", "yen",    "brvbar", "sect",   "uml",    "copy",   "ordf",
    "laquo",  "not",    "shy",    "reg",    "macr",   "deg",    "plusmn", "sup2",   "sup3",   "acute",  "micro",
    "para",   "middot", "cedil",  "sup1",   "ordm",   "raquo",  "frac14", "frac12", "frac34", "iquest", "Agrave",
    "Aacute", "Acirc",  "Atilde", "Auml",   "Aring",  "AElig",  "Ccedil", "Egrave", "Eacute", "Ecirc",  "Euml",
    "Igrave", "Iacute", "Icirc",  "Iuml",   "ETH",    "Ntilde", "Ograve", "Oacute", "Ocirc",  "Otilde", "Ouml",
    "times",  "Oslash", "Ugrave", "Uacute", "Ucirc",  "Uuml",   "Yacute", "THORN",  "szlig",  "agrave", "aacute",
    "acirc",  "atilde", "auml",   "aring",  "aelig",  "ccedil", "egrave", "eacute", "ecirc",  "euml",   "igrave",
    "iacute", "icirc",  "iuml",   "eth",    "ntilde", "ograve", "oacute", "ocirc",  "otilde", "ouml",   "divide",
    "oslash", "ugrave", "uacute", "ucirc",  "uuml",   "yacute", "thorn",  "yuml"};

constexpr std::pair<std::string_view, char32_t> other_names[] = {
    {"amp", '&'},         {"lt", '<'},          {"gt", '>'},          {"quot", '"'},        {"apos", '\''},
    {"OElig", 0x152},     {"oelig", 0x153},     {"Scaron", 0x160},    {"scaron", 0x161},    {"Yuml", 0x178},
    {"fnof", 0x192},      {"circ", 0x2C6},      {"tilde", 0x2DC},     {"ensp", 0x2002},     {"emsp", 0x2003},
    {"thinsp", 0x2009},   {"zwnj", 0x200C},     {"zwj", 0x200D},      {"lrm", 0x200E},      {"rlm", 0x200F},
    {"ndash", 0x2013},    {"mdash", 0x2014},    {"lsquo", 0x2018},    {"rsquo", 0x2019},    {"sbquo", 0x201A},
    {"ldquo", 0x201C},    {"rdquo", 0x201D},    {"bdquo", 0x201E},    {"dagger", 0x2020},   {"Dagger", 0x2021},
    {"bull", 0x2022},     {"hellip", 0x2026},   {"permil", 0x2030},   {"prime", 0x2032},    {"Prime", 0x2033},
    {"lsaquo", 0x2039},   {"rsaquo", 0x203A},   {"oline", 0x203E},    {"euro", 0x20AC},     {"trade", 0x2122},
    {"larr", 0x2190},     {"uarr", 0x2191},     {"rarr", 0x2192},     {"darr", 0x2193},     {"harr", 0x2194},
    {"minus", 0x2212},    {"le", 0x2264},       {"ge", 0x2265},       {"ne", 0x2260},       {"infin", 0x221E},
    {"hearts", 0x2665},   {"check", 0x2713},    {"star", 0x2606},     {"Alpha", 0x391},     {"alpha", 0x3B1},
    {"beta", 0x3B2},      {"gamma", 0x3B3},     {"delta", 0x3B4},     {"mu", 0x3BC},        {"pi", 0x3C0}};

// Sorted once, then binary-searched: a message of ten million references
// costs ten million lookups of a few comparisons each.
const std::vector<std::pair<std::string_view, char32_t>>& entity_table() {
  static const auto table = [] {
    std::vector<std::pair<std::string_view, char32_t>> t;
    for (size_t i = 0; i < latin1_names.size(); ++i) t.emplace_back(latin1_names[i], static_cast<char32_t>(0xA0 + i));
    for (const auto& e : other_names) t.push_back(e);
    std::sort(t.begin(), t.end());
    return t;
  }();
  return table;
}

std::optional<char32_t> named_entity(std::string_view name) {
  const auto& table = entity_table();
  auto it = std::lower_bound(table.begin(), table.end(), name,
                             [](const std::pair<std::string_view, char32_t>& e, std::string_view n) { return e.first < n; });
  if (it == table.end() || it->first != name) return std::nullopt;
  return it->second;
}

// Numeric references 0x80-0x9F name windows-1252 characters (HTML 13.2.5.80).
char32_t numeric_reference(uint32_t value) {
  static constexpr char16_t c1[32] = {0x20AC, 0x81,   0x201A, 0x0192, 0x201E, 0x2026, 0x2020, 0x2021,
                                      0x02C6, 0x2030, 0x0160, 0x2039, 0x0152, 0x8D,   0x017D, 0x8F,
                                      0x90,   0x2018, 0x2019, 0x201C, 0x201D, 0x2022, 0x2013, 0x2014,
                                      0x02DC, 0x2122, 0x0161, 0x203A, 0x0153, 0x9D,   0x017E, 0x0178};
  if (value == 0 || value > 0x10FFFF || (value >= 0xD800 && value <= 0xDFFF)) return 0xFFFD;
  if (value >= 0x80 && value <= 0x9F) return c1[value - 0x80];
  return value;
}

// The output: collapses white space as a browser's normal flow does, turns
// block boundaries into at most one blank line, and stops at its limit.
class text_builder {
 public:
  explicit text_builder(size_t limit) : limit_(limit) {}

  bool full() const { return out_.size() >= limit_; }

  // One byte of document text; in pre, white space is kept as written.
  void text(char c, bool preformatted) {
    if (preformatted && (c == '\n' || c == '\r')) {
      line_break_always();
      return;
    }
    if (!preformatted && is_space(c)) {
      pending_space_ = true;
      return;
    }
    if (pending_space_ && !out_.empty() && newlines_ == 0) out_ += ' ';
    pending_space_ = false;
    out_ += c;
    newlines_ = 0;
  }

  void code_point(char32_t cp, bool preformatted) {
    if (cp < 0x80) {
      text(static_cast<char>(cp), preformatted);
      return;
    }
    std::string bytes;
    append_utf8(bytes, cp);
    for (char c : bytes) text(c, preformatted);
  }

  // A separator that reads as white space (between table cells).
  void space() { pending_space_ = true; }

  // Ends the current line (lines = 1) or paragraph (lines = 2) unless it is
  // ended already: nested blocks do not stack their breaks.
  void block_break(int lines) {
    pending_space_ = false;
    if (out_.empty()) return;
    while (newlines_ < lines) line_break_always();
  }

  // <br> and newlines in pre: always a new line, but never more than one blank line.
  void line_break_always() {
    pending_space_ = false;
    if (out_.empty()) return;
    while (!out_.empty() && (out_.back() == ' ' || out_.back() == '\t')) out_.pop_back();
    newlines_ = 0;
    for (auto it = out_.rbegin(); it != out_.rend() && *it == '\n' && newlines_ < 2; ++it) ++newlines_;
    if (out_.empty() || newlines_ >= 2) return;
    out_ += '\n';
    ++newlines_;
  }

  std::string finish() {
    // Cut before repairing: a character split by the limit must not come back as U+FFFD.
    out_.resize(utf8_prefix(out_, limit_).size());
    while (!out_.empty() && (out_.back() == '\n' || out_.back() == ' ' || out_.back() == '\t')) out_.pop_back();
    std::string clean = display_text(out_);
    return std::string(utf8_prefix(clean, limit_));
  }

 private:
  std::string out_;
  size_t limit_;
  bool pending_space_ = false;
  int newlines_ = 0;  // line feeds at the end of out_ (at most 2)
};

class html_reader {
 public:
  html_reader(std::string_view html, size_t max_out) : in_(html), out_(max_out) {}

  std::string run() {
    size_t i = 0;
    while (i < in_.size() && !out_.full()) {
      char c = in_[i];
      if (c == '<') {
        i = markup(i);
      } else if (c == '&') {
        leave_head_for_text();
        i = reference(i);
      } else {
        if (!is_space(c)) leave_head_for_text();
        if (!in_head_) {
          // In pre a CRLF is one line end.
          if (!(pre_depth_ > 0 && c == '\r' && i + 1 < in_.size() && in_[i + 1] == '\n')) out_.text(c, pre_depth_ > 0);
        }
        ++i;
      }
    }
    return out_.finish();
  }

 private:
  static constexpr size_t npos = std::string_view::npos;

  void leave_head_for_text() { in_head_ = false; }

  // Just past the '>' at or after from, or the end (a tag or comment cut off
  // by the end of input is dropped, as a browser drops it).
  size_t past(char terminator, size_t from) const {
    size_t at = in_.find(terminator, from);
    return at == npos ? in_.size() : at + 1;
  }

  // At '<': a tag, a comment, a declaration, or just a '<' in the text.
  size_t markup(size_t i) {
    if (i + 1 >= in_.size()) {
      text_char('<');
      return i + 1;
    }
    char next = in_[i + 1];
    if (is_alpha(next)) return tag(i + 1, false);
    if (next == '/') {
      if (i + 2 < in_.size() && is_alpha(in_[i + 2])) return tag(i + 2, true);
      return past('>', i + 2);  // "</>" or "</ ...>": a bogus comment
    }
    if (next == '!') {
      if (in_.substr(i, 4) == "<!--") return comment_end(i + 4);
      return past('>', i + 2);  // DOCTYPE, CDATA outside foreign content: bogus comments
    }
    if (next == '?') return past('>', i + 2);
    text_char('<');
    return i + 1;
  }

  void text_char(char c) {
    leave_head_for_text();
    out_.text(c, pre_depth_ > 0);
  }

  size_t comment_end(size_t body) {
    // "<!-->" and "<!--->" close at once (HTML 13.2.5.43, 13.2.5.44).
    if (in_.substr(body, 1) == ">") return body + 1;
    if (in_.substr(body, 2) == "->") return body + 2;
    size_t end = in_.find("-->", body);
    return end == npos ? in_.size() : end + 3;
  }

  // A start or end tag whose name begins at name_start. Its name runs to white
  // space, '/' or '>' (so "<scr<script>" is one tag named "scr<script", as in
  // a browser); attributes are skipped with their quoted values, which may
  // hold '>'.
  size_t tag(size_t name_start, bool end_tag) {
    size_t i = name_start;
    while (i < in_.size() && !is_space(in_[i]) && in_[i] != '/' && in_[i] != '>') ++i;
    // Only the first bytes matter for recognising a name; a longer one is unknown.
    std::string name = lower_ascii(in_.substr(name_start, std::min<size_t>(i - name_start, 16)));
    if (i - name_start > 16) name.clear();
    while (i < in_.size() && in_[i] != '>') {
      if (in_[i] == '=') {
        ++i;
        while (i < in_.size() && is_space(in_[i])) ++i;
        if (i < in_.size() && (in_[i] == '"' || in_[i] == '\'')) {
          size_t close = in_.find(in_[i], i + 1);
          if (close == npos) return in_.size();
          i = close + 1;
        }
        continue;
      }
      ++i;
    }
    if (i >= in_.size()) return in_.size();
    ++i;  // '>'
    return end_tag ? on_end_tag(name, i) : on_start_tag(name, i);
  }

  size_t on_start_tag(const std::string& name, size_t after) {
    if (name == "head") {
      in_head_ = true;
      return after;
    }
    if (in_head_ && !belongs_in_head(name)) in_head_ = false;
    if (hidden_with_content(name)) return skip_to_end_tag(name, after);
    if (name == "body" || name == "html") {
      in_head_ = false;
      return after;
    }
    if (in_head_) return after;
    if (name == "br") {
      out_.line_break_always();
    } else if (name == "pre" || name == "listing") {
      out_.block_break(2);
      if (pre_depth_ < 1000) ++pre_depth_;
    } else if (paragraph_element(name)) {
      out_.block_break(2);
    } else if (line_element(name)) {
      out_.block_break(1);
    } else if (name == "td" || name == "th") {
      out_.space();
    }
    return after;
  }

  size_t on_end_tag(const std::string& name, size_t after) {
    if (name == "head") {
      in_head_ = false;
      return after;
    }
    if (in_head_) return after;
    if (name == "br") {
      out_.line_break_always();  // "</br>" is a <br> (HTML 13.2.6.4.7)
    } else if (name == "pre" || name == "listing") {
      if (pre_depth_ > 0) --pre_depth_;
      out_.block_break(2);
    } else if (paragraph_element(name)) {
      out_.block_break(2);
    } else if (line_element(name)) {
      out_.block_break(1);
    } else if (name == "td" || name == "th") {
      out_.space();
    }
    return after;
  }

  // Past "</name" followed by white space, '/' or '>' (and that tag's '>'),
  // or the end when the element is never closed: a browser hides the rest then.
  size_t skip_to_end_tag(std::string_view name, size_t from) {
    size_t i = from;
    while (true) {
      size_t open = in_.find("</", i);
      if (open == npos) return in_.size();
      size_t name_end = open + 2 + name.size();
      if (name_end <= in_.size() && iequals_ascii(in_.substr(open + 2, name.size()), name) &&
          (name_end == in_.size() || is_space(in_[name_end]) || in_[name_end] == '/' || in_[name_end] == '>'))
        return past('>', name_end);
      i = open + 2;
    }
  }

  // At '&': a character reference, or a literal '&'.
  size_t reference(size_t i) {
    size_t j = i + 1;
    if (j < in_.size() && in_[j] == '#') return numeric(i);
    while (j < in_.size() && j - i <= 32 && is_alnum(in_[j])) ++j;
    std::string_view name = in_.substr(i + 1, j - i - 1);
    if (!name.empty() && j < in_.size() && in_[j] == ';') {
      if (auto cp = named_entity(name)) {
        emit(*cp);
        return j + 1;
      }
    }
    // Without the ';' only the oldest references are recognised, as browsers
    // do for them ("&amp" in a URL written by hand).
    if (name == "amp" || name == "lt" || name == "gt" || name == "quot" || name == "nbsp") {
      emit(*named_entity(name));
      return j;
    }
    emit('&');
    return i + 1;
  }

  size_t numeric(size_t i) {
    size_t j = i + 2;
    bool hex = j < in_.size() && (in_[j] == 'x' || in_[j] == 'X');
    if (hex) ++j;
    size_t digits = j;
    uint32_t value = 0;
    bool overflow = false;
    for (; j < in_.size(); ++j) {
      char c = in_[j];
      int d = is_digit(c) ? c - '0' : hex && c >= 'a' && c <= 'f' ? c - 'a' + 10 : hex && c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
      if (d < 0) break;
      // Digits keep being consumed after an overflow, so "&#99999999999999;"
      // is one U+FFFD and not a number followed by text.
      if (!overflow) {
        value = value * (hex ? 16 : 10) + static_cast<uint32_t>(d);
        if (value > 0x10FFFF) overflow = true;
      }
    }
    if (j == digits) {  // "&#" or "&#x" without digits: text
      emit('&');
      return i + 1;
    }
    if (j < in_.size() && in_[j] == ';') ++j;
    emit(overflow ? 0xFFFD : numeric_reference(value));
    return j;
  }

  void emit(char32_t cp) {
    if (!in_head_) out_.code_point(cp, pre_depth_ > 0);
  }

  std::string_view in_;
  text_builder out_;
  bool in_head_ = false;
  int pre_depth_ = 0;
};

}  // namespace

std::string html_to_text(std::string_view html, size_t max_out) { return html_reader(html, max_out).run(); }

}  // namespace sealgate::portal
