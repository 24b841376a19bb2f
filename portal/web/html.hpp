// HTML for the portal's pages: escaping what goes into them, and turning an
// HTML mail body into plain text that the page then escapes. The portal never
// renders a message's HTML; nothing here produces markup from its input.
#pragma once
#include "common/text.hpp"
#include <string>
#include <string_view>

namespace sealgate::portal {

// & < > " ' as character references: safe in element text and in quoted
// attribute values (never in an unquoted attribute, a script or a style).
// One escape for the pages and the notification: common/text's.
using sealgate::html_escape;

// The text a reader sees in html, at most max_out bytes of valid UTF-8 (cut
// on a character boundary). script, style, title, head (and noscript,
// template, iframe, ...) and comments are dropped with their contents; block
// elements (p, div, br, li, tr, h1-h6, blockquote, ...) become line breaks;
// white space collapses as a browser collapses it (kept inside pre); named
// and numeric character references are decoded (invalid code points become
// U+FFFD); runs of blank lines become one; control characters are dropped.
// One pass over the input with no stack: hostile nesting costs nothing.
std::string html_to_text(std::string_view html, size_t max_out);

}  // namespace sealgate::portal
