// The portal's reading side (portal/web): escaping, HTML to text, the view of
// a deposited message and its attachments, download types and file names.
// Real-world shaped messages first, then hostile ones; each hostile case
// asserts what the reader made of it, not only that it survived.
#include <gtest/gtest.h>

#include <chrono>
#include <string>

#include "common/text.hpp"
#include "portal/web/html.hpp"
#include "portal/web/message_view.hpp"
#include "portal/web/utf8.hpp"

using namespace sealgate::portal;
using namespace std::string_literals;

namespace {

// 76-column base64 with CRLF, as mail writes it.
std::string base64_lines(std::string_view data) {
  std::string encoded = sealgate::base64_encode(data), out;
  for (size_t pos = 0; pos < encoded.size(); pos += 76) out += encoded.substr(pos, 76) + "\r\n";
  return out;
}

std::string all_byte_values(size_t n) {
  std::string s;
  for (size_t i = 0; i < n; ++i) s += static_cast<char>((i * 7 + i / 256) & 0xFF);
  return s;
}

const std::string pdf_bytes = "%PDF-1.7\n" + all_byte_values(3000) + "\n%%EOF\n";

// Outlook's shape: mixed > alternative (plain, html) + a PDF.
std::string outlook_message() {
  return "From: =?utf-8?Q?J=C3=BCrgen_M=C3=BCller?= <juergen@example.de>\r\n"
         "To: Alice Example <alice@example.org>\r\n"
         "Cc: =?iso-8859-1?Q?Bj=F6rn?= <bjorn@example.org>, carol@example.org\r\n"
         "Subject: =?utf-8?B?QmVmdW5kIGbDvHIgU2ll?=\r\n"
         "Date: Tue, 4 Mar 2025 10:00:00 +0100\r\n"
         "Message-ID: <AM0PR01MB1234@example.de>\r\n"
         "MIME-Version: 1.0\r\n"
         "Content-Type: multipart/mixed;\r\n"
         "\tboundary=\"----=_NextPart_000_0001_01DB8C2A.5F0E1D40\"\r\n"
         "\r\n"
         "This is a multi-part message in MIME format.\r\n"
         "\r\n"
         "------=_NextPart_000_0001_01DB8C2A.5F0E1D40\r\n"
         "Content-Type: multipart/alternative;\r\n"
         "\tboundary=\"----=_NextPart_001_0002_01DB8C2A.5F0E1D40\"\r\n"
         "\r\n"
         "\r\n"
         "------=_NextPart_001_0002_01DB8C2A.5F0E1D40\r\n"
         "Content-Type: text/plain;\r\n"
         "\tcharset=\"utf-8\"\r\n"
         "Content-Transfer-Encoding: quoted-printable\r\n"
         "\r\n"
         "Hallo Alice,\r\n"
         "\r\n"
         "anbei der Befund. Gr=C3=BC=C3=9Fe, J=C3=BCrgen. Ein sehr langer Satz, der =\r\n"
         "umbrochen wurde.\r\n"
         "\r\n"
         "------=_NextPart_001_0002_01DB8C2A.5F0E1D40\r\n"
         "Content-Type: text/html;\r\n"
         "\tcharset=\"utf-8\"\r\n"
         "Content-Transfer-Encoding: quoted-printable\r\n"
         "\r\n"
         "<html><body><p>Hallo Alice,</p><p>HTML version</p></body></html>\r\n"
         "\r\n"
         "------=_NextPart_001_0002_01DB8C2A.5F0E1D40--\r\n"
         "\r\n"
         "------=_NextPart_000_0001_01DB8C2A.5F0E1D40\r\n"
         "Content-Type: application/pdf;\r\n"
         "\tname=\"Befund 2025.pdf\"\r\n"
         "Content-Transfer-Encoding: base64\r\n"
         "Content-Disposition: attachment;\r\n"
         "\tfilename=\"Befund 2025.pdf\"\r\n"
         "\r\n" +
         base64_lines(pdf_bytes) +
         "\r\n"
         "------=_NextPart_000_0001_01DB8C2A.5F0E1D40--\r\n";
}

}  // namespace

// ---- html_escape and html_to_text ------------------------------------------

TEST(PortalHtml, EscapeCoversTextAndQuotedAttributes) {
  EXPECT_EQ(html_escape("<a href=\"x\" onclick='y'>&amp;</a>"),
            "&lt;a href=&quot;x&quot; onclick=&#39;y&#39;&gt;&amp;amp;&lt;/a&gt;");
  EXPECT_EQ(html_escape("plain caf\xc3\xa9"), "plain caf\xc3\xa9");
  EXPECT_EQ(html_escape(""), "");
}

TEST(PortalHtml, DropsScriptStyleHeadAndComments) {
  std::string html =
      "<!DOCTYPE html><html><head><title>Secret title</title><style>p { color: red }</style>"
      "<script>var leaked = 1;</script></head><body><!-- a comment <b>with markup</b> -->"
      "<p>Hello&nbsp;<b>World</b></p><SCRIPT type=\"text/javascript\">alert('x')</SCRIPT>"
      "<div>Second line</div><noscript>no script here</noscript></body></html>";
  EXPECT_EQ(html_to_text(html, 1000), "Hello\xc2\xa0World\n\nSecond line");
}

TEST(PortalHtml, BlockElementsBecomeLineBreaksAndBlankLinesCollapse) {
  EXPECT_EQ(html_to_text("<p>a</p><p>b</p>", 100), "a\n\nb");
  EXPECT_EQ(html_to_text("a<br>b<br><br><br><br>c", 100), "a\nb\n\nc");
  EXPECT_EQ(html_to_text("<div><div><div>x</div></div></div>y", 100), "x\ny");
  EXPECT_EQ(html_to_text("<ul><li>one</li><li>two</li></ul>after", 100), "one\ntwo\n\nafter");
  EXPECT_EQ(html_to_text("<table><tr><td>a</td><td>b</td></tr><tr><td>c</td></tr></table>", 100), "a b\nc");
  EXPECT_EQ(html_to_text("<h1>Title</h1>text<blockquote>quoted</blockquote>", 100), "Title\n\ntext\n\nquoted");
  EXPECT_EQ(html_to_text("  lots \n\t of\r\n   space  ", 100), "lots of space");
  EXPECT_EQ(html_to_text("<pre>a\n  b\r\n\n\n\nc</pre>d", 100), "a\n  b\n\nc\n\nd");
}

TEST(PortalHtml, CharacterReferences) {
  EXPECT_EQ(html_to_text("&lt;b&gt; &amp; &quot; &#39; &#x41;&#65; &eacute;&hellip; &euro;", 100),
            "<b> & \" ' AA \xc3\xa9\xe2\x80\xa6 \xe2\x82\xac");
  // The markup the references spell stays text: the page escapes it later.
  EXPECT_EQ(html_to_text("&lt;script&gt;alert(1)&lt;/script&gt;", 100), "<script>alert(1)</script>");
  // Invalid code points: NUL, a surrogate, past U+10FFFF, an overflowing number.
  EXPECT_EQ(html_to_text("&#0; &#xD800; &#x110000; &#99999999999999999999999999;", 100),
            "\xef\xbf\xbd \xef\xbf\xbd \xef\xbf\xbd \xef\xbf\xbd");
  EXPECT_EQ(html_to_text("&#" + std::string(100000, '9') + ";x", 100), "\xef\xbf\xbdx");
  EXPECT_EQ(html_to_text("&#4294967361;&#x100000041;", 100), "\xef\xbf\xbd\xef\xbf\xbd");  // 2^32 + 'A' must not wrap to 'A'
  EXPECT_EQ(html_to_text("&#128;", 100), "\xe2\x82\xac");  // windows-1252, as browsers read it
  EXPECT_EQ(html_to_text("&unknown; &amp &#; &#x; & x", 100), "&unknown; & &#; &#x; & x");
  EXPECT_EQ(html_to_text("a&#1;b&#x1b;c", 100), "abc");  // controls dropped
}

TEST(PortalHtml, HostileMarkup) {
  // The HTML tokenizer reads "<scr<script>" as one tag named "scr<script":
  // nothing here is a script, and what is left is text.
  EXPECT_EQ(html_to_text("<scr<script>ipt>alert(1)</script>", 100), "ipt>alert(1)");
  EXPECT_EQ(html_to_text("before<script>alert(1)", 100), "before");           // unterminated script hides the rest
  EXPECT_EQ(html_to_text("before<!-- never closed <p>text", 100), "before");  // unterminated comment too
  EXPECT_EQ(html_to_text("before<a href=\"x", 100), "before");              // and an unterminated tag
  EXPECT_EQ(html_to_text("<a title='x>y' href=\"a>b\">link</a>", 100), "link");
  EXPECT_EQ(html_to_text("<script>a</scripty>b</script >c", 100), "c");
  EXPECT_EQ(html_to_text("<style>x</style/>y", 100), "y");
  EXPECT_EQ(html_to_text("a < b and c<3 <!-->d<!--->e</>f<?php x ?>g", 100), "a < b and c<3 defg");
  EXPECT_EQ(html_to_text("<head><title>t</title>Body without body tag", 100), "Body without body tag");
  EXPECT_EQ(html_to_text("<head><p>para", 100), "para");
  EXPECT_EQ(html_to_text("a\x01\x1b[31mb\xff", 100), "a[31mb\xef\xbf\xbd");
  std::string deep;
  for (int i = 0; i < 100000; ++i) deep += "<div><span>";
  deep += "x";
  for (int i = 0; i < 100000; ++i) deep += "</span></div>";
  EXPECT_EQ(html_to_text(deep, 100), "x");
}

TEST(PortalHtml, OutputLimitAndLinearTimeOnPathologicalInput) {
  EXPECT_EQ(html_to_text("\xc3\xa9\xc3\xa9\xc3\xa9", 3), "\xc3\xa9");  // cut on a character boundary
  EXPECT_EQ(html_to_text("abc", 0), "");
  auto start = std::chrono::steady_clock::now();
  std::string lt(10 * 1024 * 1024, '<');
  std::string text = html_to_text(lt, 1024 * 1024);
  EXPECT_LE(text.size(), 1024u * 1024u);
  EXPECT_EQ(text.find_first_not_of('<'), std::string::npos);
  // Each of these would be quadratic for a reader that rescans from every '<'.
  for (const std::string& unit : {std::string("<a"), std::string("<a x=\""), std::string("<!--"),
                                  std::string("</x"), std::string("<script>"), std::string("&#"),
                                  std::string("<p "), std::string("</script")}) {
    std::string big;
    while (big.size() < 4 * 1024 * 1024) big += unit;
    EXPECT_NO_THROW(html_to_text(big, 1024 * 1024)) << unit;
  }
  auto seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  EXPECT_LT(seconds, 10.0);  // linear: well under a second each; quadratic: hours
}

// ---- UTF-8 and charsets -----------------------------------------------------

TEST(PortalText, Utf8RepairAndCharsets) {
  EXPECT_EQ(valid_utf8("ok \xc3\xa9"), "ok \xc3\xa9");
  EXPECT_EQ(valid_utf8("\xc0\xaf"), "\xef\xbf\xbd\xef\xbf\xbd");                   // overlong '/'
  EXPECT_EQ(valid_utf8("\xe0\x80\xaf"), "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd");  // overlong '/', 3 bytes
  EXPECT_EQ(valid_utf8("\xf0\x80\x80\xaf"), "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd");
  EXPECT_EQ(valid_utf8("\xed\xa0\x80"), "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd");   // a surrogate
  EXPECT_EQ(valid_utf8("\xf0\x90\x80" "A"), "\xef\xbf\xbd" "A");                   // truncated: one U+FFFD
  EXPECT_EQ(valid_utf8("\xf4\x90\x80\x80"), "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd");  // > U+10FFFF
  EXPECT_FALSE(is_valid_utf8("\xe2\x82"));
  EXPECT_TRUE(is_valid_utf8("\xf0\x9f\x98\x80"));
  EXPECT_EQ(utf8_prefix("a\xe2\x82\xac", 3), "a");
  EXPECT_EQ(charset_to_utf8("ISO-8859-1", "K\xf6ln \x80"), "K\xc3\xb6ln \xe2\x82\xac");
  EXPECT_EQ(charset_to_utf8("windows-1252", "\x93quoted\x94"), "\xe2\x80\x9cquoted\xe2\x80\x9d");
  EXPECT_EQ(charset_to_utf8("iso-8859-15", "\xa4"), "\xe2\x82\xac");
  EXPECT_EQ(charset_to_utf8("utf-8*de", "\xc3\xa4"), "\xc3\xa4");
  EXPECT_EQ(charset_to_utf8("koi8-r", "\xc1\xc2"), "\xef\xbf\xbd\xef\xbf\xbd");  // unknown: bytes kept if valid
  EXPECT_EQ(display_text("a\r\nb\rc\nd\x00\x07\te"s), "a\nb\nc\nd\te");
  EXPECT_EQ(display_line("  a\r\n\tb\x01 ", 100), "a   b");
}

// ---- the message view -------------------------------------------------------

TEST(PortalView, OutlookMixedAlternativeWithPdf) {
  std::string raw = outlook_message();
  auto view = read_message_view(raw);
  ASSERT_TRUE(view);
  EXPECT_EQ(view->from, "J\xc3\xbcrgen M\xc3\xbcller <juergen@example.de>");
  EXPECT_EQ(view->to, "Alice Example <alice@example.org>");
  EXPECT_EQ(view->cc, "Bj\xc3\xb6rn <bjorn@example.org>, carol@example.org");
  EXPECT_EQ(view->subject, "Befund f\xc3\xbcr Sie");
  EXPECT_EQ(view->date, "Tue, 4 Mar 2025 10:00:00 +0100");
  EXPECT_EQ(view->message_id, "<AM0PR01MB1234@example.de>");
  EXPECT_EQ(view->text,
            "Hallo Alice,\n\nanbei der Befund. Gr\xc3\xbc\xc3\x9f" "e, J\xc3\xbcrgen. Ein sehr langer Satz, der "
            "umbrochen wurde.\n");
  EXPECT_FALSE(view->text_from_html);
  EXPECT_FALSE(view->truncated);
  ASSERT_EQ(view->attachments.size(), 1u);  // the HTML twin of the body is not an attachment
  EXPECT_EQ(view->attachments[0].name, "Befund 2025.pdf");
  EXPECT_EQ(view->attachments[0].content_type, "application/pdf");
  EXPECT_EQ(view->attachments[0].size, pdf_bytes.size());
  EXPECT_EQ(view->attachments[0].index, 0u);
  auto bytes = attachment_bytes(raw, 0);
  ASSERT_TRUE(bytes);
  EXPECT_EQ(*bytes, pdf_bytes);
  EXPECT_FALSE(attachment_bytes(raw, 1));
}

TEST(PortalView, QuotedPrintableLatin1Body) {
  std::string raw =
      "From: =?ISO-8859-1?Q?Fran=E7ois?= <f@example.fr>\r\n"
      "Subject: =?iso-8859-1?q?R=E9union_=E0?= =?iso-8859-1?q?_midi?=\r\n"
      "Content-Type: text/plain; charset=ISO-8859-1\r\n"
      "Content-Transfer-Encoding: quoted-printable\r\n"
      "\r\n"
      "Bonjour, la r=E9union co=FBte 5 =80.=\r\n"
      " Tr=E8s bien.\r\n"
      "=93Citation=94\r\n";
  auto view = read_message_view(raw);
  ASSERT_TRUE(view);
  EXPECT_EQ(view->from, "Fran\xc3\xa7ois <f@example.fr>");
  EXPECT_EQ(view->subject, "R\xc3\xa9union \xc3\xa0 midi");
  // One character split across two encoded words, as some mailers write it.
  auto split_word = read_message_view("Subject: =?utf-8?B?R3LD?= =?UTF-8?B?vN8=?=\r\n\r\n");
  ASSERT_TRUE(split_word);
  EXPECT_EQ(split_word->subject, "Gr\xc3\xbc\xef\xbf\xbd");
  EXPECT_EQ(view->text,
            "Bonjour, la r\xc3\xa9union co\xc3\xbbte 5 \xe2\x82\xac. Tr\xc3\xa8s bien.\n"
            "\xe2\x80\x9c" "Citation\xe2\x80\x9d\n");
  EXPECT_TRUE(view->attachments.empty());
}

TEST(PortalView, HtmlOnlyBodyWithScript) {
  std::string raw =
      "From: shop@example.com\r\n"
      "Subject: Your order\r\n"
      "Content-Type: text/html; charset=utf-8\r\n"
      "Content-Transfer-Encoding: base64\r\n"
      "\r\n" +
      base64_lines("<html><head><script>steal(document.cookie)</script></head>"
                   "<body onload=\"steal()\"><p>Order <b>#42</b> shipped &amp; on its way.</p>"
                   "<img src=x onerror=alert(1)><div>Thanks</div></body></html>");
  auto view = read_message_view(raw);
  ASSERT_TRUE(view);
  EXPECT_TRUE(view->text_from_html);
  EXPECT_EQ(view->text, "Order #42 shipped & on its way.\n\nThanks");
  EXPECT_TRUE(view->attachments.empty());
}

TEST(PortalView, Rfc2231AndRfc2047AttachmentNames) {
  std::string raw =
      "Subject: names\r\n"
      "Content-Type: multipart/mixed; boundary=b\r\n"
      "\r\n"
      "--b\r\n"
      "Content-Type: text/plain\r\n"
      "\r\n"
      "body\r\n"
      "--b\r\n"
      "Content-Type: application/octet-stream\r\n"
      "Content-Disposition: attachment;\r\n"
      " filename*0*=utf-8''%E2%82%AC%20Rechnung%20;\r\n"
      " filename*1*=M%C3%A4rz;\r\n"
      " filename*2=\".pdf\"\r\n"
      "\r\n"
      "one\r\n"
      "--b\r\n"
      "Content-Type: text/plain; name*=iso-8859-1'fr'r%E9sum%E9.txt\r\n"
      "\r\n"
      "two\r\n"
      "--b\r\n"
      "Content-Type: application/octet-stream; name=\"=?utf-8?B?w6TDtsO8LnR4dA==?=\"\r\n"
      "\r\n"
      "three\r\n"
      "--b\r\n"
      "Content-Type: application/x-sh\r\n"
      "Content-Disposition: attachment; filename=\"../../etc/cron.d/evil\"\r\n"
      "\r\n"
      "four\r\n"
      "--b\r\n"
      "Content-Type: application/pdf\r\n"
      "Content-Disposition: attachment; filename=\"invoice\xe2\x80\xae" "fdp.exe\"\r\n"
      "\r\n"
      "five\r\n"
      "--b\r\n"
      "Content-Type: application/pdf\r\n"
      "Content-Disposition: attachment; filename=\"...\"\r\n"
      "\r\n"
      "six\r\n"
      "--b--\r\n";
  auto view = read_message_view(raw);
  ASSERT_TRUE(view);
  EXPECT_EQ(view->text, "body");  // the CRLF before a delimiter is the delimiter's
  ASSERT_EQ(view->attachments.size(), 6u);
  EXPECT_EQ(view->attachments[0].name, "\xe2\x82\xac Rechnung M\xc3\xa4rz.pdf");
  EXPECT_EQ(view->attachments[1].name, "r\xc3\xa9sum\xc3\xa9.txt");
  EXPECT_EQ(view->attachments[1].content_type, "text/plain");
  EXPECT_EQ(view->attachments[2].name, "\xc3\xa4\xc3\xb6\xc3\xbc.txt");
  EXPECT_EQ(view->attachments[3].name, "_.._etc_cron.d_evil");
  EXPECT_EQ(view->attachments[4].name, "invoicefdp.exe");  // the right-to-left override is gone
  EXPECT_EQ(view->attachments[5].name, "attachment-6");
  for (size_t i = 0; i < 6; ++i) EXPECT_EQ(view->attachments[i].index, i);
  EXPECT_EQ(*attachment_bytes(raw, 2), "three");
  EXPECT_EQ(*attachment_bytes(raw, 5), "six");
}

TEST(PortalView, Base64AttachmentBytesComeBackIdentical) {
  std::string data = all_byte_values(100000);
  std::string raw =
      "Subject: binary\r\n"
      "Content-Type: multipart/mixed; boundary=\"=_x\"\r\n"
      "\r\n"
      "--=_x\r\n"
      "Content-Type: text/plain; charset=us-ascii\r\n"
      "\r\n"
      "see attached\r\n"
      "--=_x\r\n"
      "Content-Type: application/octet-stream; name=data.bin\r\n"
      "Content-Transfer-Encoding: BASE64\r\n"
      "\r\n" +
      base64_lines(data) + "--=_x--\r\n";
  auto view = read_message_view(raw);
  ASSERT_TRUE(view);
  ASSERT_EQ(view->attachments.size(), 1u);
  EXPECT_EQ(view->attachments[0].name, "data.bin");
  EXPECT_EQ(view->attachments[0].size, data.size());
  EXPECT_EQ(attachment_bytes(raw, 0), data);
}

TEST(PortalView, InlineImagesAndAttachedMessagesAreAttachments) {
  std::string png = "\x89PNG\r\n\x1a\n" + all_byte_values(200);
  std::string raw =
      "Subject: related\r\n"
      "Content-Type: multipart/alternative; boundary=alt\r\n"
      "\r\n"
      "--alt\r\n"
      "Content-Type: text/plain; charset=utf-8\r\n"
      "\r\n"
      "plain [image: logo]\r\n"
      "--alt\r\n"
      "Content-Type: multipart/related; boundary=rel\r\n"
      "\r\n"
      "--rel\r\n"
      "Content-Type: text/html; charset=utf-8\r\n"
      "\r\n"
      "<p>html <img src=\"cid:logo\"></p>\r\n"
      "--rel\r\n"
      "Content-Type: image/png\r\n"
      "Content-ID: <logo>\r\n"
      "Content-Disposition: inline\r\n"
      "Content-Transfer-Encoding: base64\r\n"
      "\r\n" +
      base64_lines(png) +
      "--rel\r\n"
      "Content-Type: message/rfc822\r\n"
      "\r\n"
      "Subject: forwarded\r\n"
      "Content-Type: text/plain\r\n"
      "\r\n"
      "the forwarded body is not the body\r\n"
      "--rel\r\n"
      "Content-Type: text/calendar; method=REQUEST\r\n"
      "\r\n"
      "BEGIN:VCALENDAR\r\n"
      "--rel--\r\n"
      "--alt--\r\n";
  auto view = read_message_view(raw);
  ASSERT_TRUE(view);
  EXPECT_EQ(view->text, "plain [image: logo]");
  ASSERT_EQ(view->attachments.size(), 3u);
  EXPECT_EQ(view->attachments[0].name, "attachment-1.png");
  EXPECT_EQ(view->attachments[0].content_type, "image/png");
  EXPECT_EQ(attachment_bytes(raw, 0), png);
  EXPECT_EQ(view->attachments[1].name, "attachment-2.eml");
  EXPECT_EQ(view->attachments[1].content_type, "message/rfc822");
  EXPECT_EQ(view->attachments[2].name, "attachment-3.ics");
}

TEST(PortalView, HostileStructures) {
  // No empty line: all header, no body.
  auto no_blank = read_message_view("From: a@example.org\r\nSubject: x\r\nnot a field");
  ASSERT_TRUE(no_blank);
  EXPECT_EQ(no_blank->subject, "x");
  EXPECT_EQ(no_blank->text, "");

  // A multipart without a boundary cannot be split: its text is shown as it is.
  auto no_boundary = read_message_view("Content-Type: multipart/mixed\r\n\r\n--x\r\nContent-Type: image/png\r\n\r\nzz\r\n");
  ASSERT_TRUE(no_boundary);
  EXPECT_EQ(no_boundary->text, "--x\nContent-Type: image/png\n\nzz\n");
  EXPECT_TRUE(no_boundary->attachments.empty());

  // A boundary that never closes: the parts that are there are read.
  auto unterminated = read_message_view(
      "Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\nhello\r\n--b\r\n"
      "Content-Type: application/pdf\r\n\r\n%PDF");
  ASSERT_TRUE(unterminated);
  EXPECT_EQ(unterminated->text, "hello");
  ASSERT_EQ(unterminated->attachments.size(), 1u);
  EXPECT_EQ(unterminated->attachments[0].size, 4u);

  // Control characters, invalid UTF-8 and a CRLF smuggled in an encoded word.
  auto controls = read_message_view(
      "Subject: a\x1b[2Jb =?utf-8?Q?c=0D=0ABcc:_x?= \xff\r\nFrom: \"x\x00y\" <a@b>\r\n\r\nbody\x07\x00 \xc3\r\n"s);
  ASSERT_TRUE(controls);
  EXPECT_EQ(controls->subject, "a[2Jb c  Bcc: x \xef\xbf\xbd");
  EXPECT_EQ(controls->from, "\"xy\" <a@b>");
  EXPECT_EQ(controls->text, "body \xef\xbf\xbd\n");

  // An invalid Content-Type is text/plain (RFC 2045 5.2).
  auto bad_type = read_message_view("Content-Type: garbage\r\n\r\ntext");
  ASSERT_TRUE(bad_type);
  EXPECT_EQ(bad_type->text, "text");

  EXPECT_TRUE(read_message_view(""));
  EXPECT_TRUE(read_message_view("\r\n\r\n"));
}

TEST(PortalView, ThousandDeepNestingStopsAtTheDepthLimit) {
  std::string raw;
  for (int i = 0; i < 1000; ++i) raw += "Content-Type: multipart/mixed; boundary=b" + std::to_string(i) + "\r\n\r\n--b" + std::to_string(i) + "\r\n";
  raw += "Content-Type: text/plain\r\n\r\ndeep text\r\n";
  auto start = std::chrono::steady_clock::now();
  view_limits parts_enough;  // so that the depth limit, not the part limit, is what stops the walk
  parts_enough.max_parts = 5000;
  auto view = read_message_view(raw, parts_enough);
  ASSERT_TRUE(view);
  EXPECT_TRUE(view->truncated);
  EXPECT_EQ(view->text, "");  // 1000 levels down: beyond max_depth (32), not shown
  EXPECT_TRUE(view->attachments.empty());
  // Within the limit the same shape is read through.
  view_limits deep_enough;
  deep_enough.max_depth = 2000;
  deep_enough.max_parts = 5000;
  auto all = read_message_view(raw, deep_enough);
  ASSERT_TRUE(all);
  EXPECT_EQ(all->text, "deep text\n");
  EXPECT_FALSE(all->truncated);
  EXPECT_LT(std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count(), 10.0);
}

TEST(PortalView, LimitsOnHeadersPartsAndText) {
  // A huge header block refuses the message before it is unfolded.
  std::string huge = "Subject: big\r\n";
  while (huge.size() < 1024 * 1024) huge += "X-Junk: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n";
  EXPECT_FALSE(read_message_view(huge + "\r\nbody"));
  EXPECT_FALSE(read_message_view(huge));  // and with no empty line at all
  EXPECT_FALSE(read_message_view("Subject: " + std::string(1024 * 1024, 'a') + "\r\n\r\nbody"));
  view_limits roomy;
  roomy.max_header_block = 2 * 1024 * 1024;
  EXPECT_TRUE(read_message_view(huge + "\r\nbody", roomy));

  // A part's huge header block skips that part only.
  std::string part_huge = "Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\nshown\r\n--b\r\n" +
                          huge.substr(0, 300 * 1024) + "\r\nhidden\r\n--b--\r\n";
  auto skipped = read_message_view(part_huge);
  ASSERT_TRUE(skipped);
  EXPECT_EQ(skipped->text, "shown");
  EXPECT_TRUE(skipped->truncated);
  EXPECT_TRUE(skipped->attachments.empty());

  // Too many parts: the first max_parts entities are read, the view says so.
  std::string many = "Content-Type: multipart/mixed; boundary=b\r\n\r\n";
  for (int i = 0; i < 3000; ++i) many += "--b\r\nContent-Type: image/gif\r\n\r\nGIF89a\r\n";
  many += "--b--\r\n";
  auto capped = read_message_view(many);
  ASSERT_TRUE(capped);
  EXPECT_TRUE(capped->truncated);
  EXPECT_EQ(capped->attachments.size(), 999u);  // 1000 entities: the multipart and 999 parts
  EXPECT_EQ(attachment_bytes(many, 998), "GIF89a");
  EXPECT_FALSE(attachment_bytes(many, 999));

  // The body text is cut at max_text, on a character boundary.
  view_limits small;
  small.max_text = 5;
  auto cut = read_message_view("Content-Type: text/plain; charset=utf-8\r\n\r\nabcd\xc3\xa9" "fgh", small);
  ASSERT_TRUE(cut);
  EXPECT_EQ(cut->text, "abcd");
  EXPECT_TRUE(cut->truncated);
  auto html_cut = read_message_view("Content-Type: text/html\r\n\r\n<p>abcdefgh</p>", small);
  ASSERT_TRUE(html_cut);
  EXPECT_EQ(html_cut->text, "abcde");
  EXPECT_TRUE(html_cut->truncated);

  // Over max_message: refused outright.
  small.max_message = 10;
  EXPECT_FALSE(read_message_view("Subject: more than ten bytes\r\n\r\n", small));

  // Encoded words that never end cost one scan, not one per "=?".
  std::string words = "Subject: ";
  while (words.size() < 200 * 1024) words += "=?a?q?x";
  auto start = std::chrono::steady_clock::now();
  auto w = read_message_view(words + "\r\n\r\n");
  ASSERT_TRUE(w);
  EXPECT_EQ(w->subject.size(), 8u * 1024u);  // max_field
  EXPECT_LT(std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count(), 5.0);
}

TEST(PortalView, MutatedMessagesKeepTheViewsPromises) {
  // Deterministic mutations of the Outlook message: whatever survives must
  // still be valid UTF-8 with safe names and consistent attachment numbers.
  std::string base = outlook_message();
  uint32_t seed = 4242;
  auto next = [&seed] { return seed = seed * 1103515245u + 12345u; };
  for (int i = 0; i < 1500; ++i) {
    std::string m = base;
    for (int k = next() % 6; k >= 0; --k) {
      size_t pos = next() % (m.size() + 1);
      switch (next() % 5) {
        case 0: m.resize(pos); break;
        case 1: if (pos < m.size()) m[pos] = static_cast<char>(next()); break;
        case 2: m.insert(pos, m.substr(pos, next() % 64)); break;
        case 3: m.insert(pos, next() % 2 ? "\r\n------=_NextPart_000_0001_01DB8C2A.5F0E1D40" : "=?"); break;
        case 4: m.insert(pos, "; filename*0*=utf-8''%2F..%2Fx%E2%80%AE"); break;
      }
    }
    std::optional<message_view> view;
    ASSERT_NO_THROW(view = read_message_view(m));
    if (!view) continue;
    EXPECT_TRUE(is_valid_utf8(view->text));
    EXPECT_TRUE(is_valid_utf8(view->subject));
    EXPECT_EQ(view->subject.find_first_of("\r\n"), std::string::npos);
    for (size_t n = 0; n < view->attachments.size(); ++n) {
      const attachment& a = view->attachments[n];
      EXPECT_EQ(a.index, n);
      EXPECT_FALSE(a.name.empty());
      EXPECT_LE(a.name.size(), 200u);
      EXPECT_TRUE(is_valid_utf8(a.name));
      EXPECT_EQ(a.name.find_first_of("/\\\r\n\""), std::string::npos) << a.name;
      EXPECT_NE(a.name.front(), '.');
      auto bytes = attachment_bytes(m, n);
      ASSERT_TRUE(bytes);
      EXPECT_EQ(bytes->size(), a.size);
    }
    EXPECT_FALSE(attachment_bytes(m, view->attachments.size()));
  }
}

// ---- names and download types -----------------------------------------------

TEST(PortalView, SanitizeFileName) {
  EXPECT_EQ(sanitize_file_name("report.pdf", 1), "report.pdf");
  EXPECT_EQ(sanitize_file_name("C:\\Users\\x\\evil.exe", 1), "C__Users_x_evil.exe");
  EXPECT_EQ(sanitize_file_name("a\r\nb\tc\x7f\xc2\x85" "d", 1), "abcd");
  EXPECT_EQ(sanitize_file_name("  ..hidden. ", 1), "hidden");
  EXPECT_EQ(sanitize_file_name("x\"y<z>|?*:", 1), "x_y_z_____");
  EXPECT_EQ(sanitize_file_name("\xe2\x80\x8b\xef\xbb\xbf", 7), "attachment-7");
  EXPECT_EQ(sanitize_file_name("", 2), "attachment-2");
  EXPECT_EQ(sanitize_file_name("..", 3), "attachment-3");
  EXPECT_EQ(sanitize_file_name("\xff" "a", 1), "\xef\xbf\xbd" "a");
  std::string long_name;
  for (int i = 0; i < 300; ++i) long_name += "\xc3\xa9";  // 600 bytes
  std::string cut = sanitize_file_name(long_name + ".pdf", 1);
  EXPECT_LE(cut.size(), 200u);
  EXPECT_GE(cut.size(), 198u);
  EXPECT_TRUE(cut.ends_with(".pdf"));
  EXPECT_TRUE(is_valid_utf8(cut));
  std::string no_extension = sanitize_file_name(std::string(250, 'a') + "\xc3\xa9", 1);
  EXPECT_EQ(no_extension, std::string(200, 'a'));
}

TEST(PortalView, SafeDownloadTypeIsAnAllowList) {
  EXPECT_EQ(safe_download_type("application/pdf"), "application/pdf");
  EXPECT_EQ(safe_download_type("IMAGE/PNG; name=x.png"), "image/png");
  EXPECT_EQ(safe_download_type("image/jpg"), "image/jpeg");
  EXPECT_EQ(safe_download_type("image/gif"), "image/gif");
  EXPECT_EQ(safe_download_type("text/plain; charset=iso-8859-1"), "text/plain; charset=utf-8");
  EXPECT_EQ(safe_download_type("text/csv"), "text/csv");
  EXPECT_EQ(safe_download_type("application/zip"), "application/zip");
  EXPECT_EQ(safe_download_type("application/vnd.openxmlformats-officedocument.wordprocessingml.document"),
            "application/vnd.openxmlformats-officedocument.wordprocessingml.document");
  EXPECT_EQ(safe_download_type("application/msword"), "application/msword");
  for (const char* active : {"text/html", "TEXT/HTML; charset=utf-8", "image/svg+xml", "application/xhtml+xml",
                             "application/javascript", "text/javascript", "text/xml", "application/xml",
                             "application/x-shockwave-flash", "multipart/x-mixed-replace", "text/x-pdf",
                             "application/pdf+html", "", "garbage"})
    EXPECT_EQ(safe_download_type(active), "application/octet-stream") << active;
}
