// The portal's writing side (portal/web): what a browser posts (urlencoded and
// multipart/form-data bodies, cookies) and the reply composed from it, checked
// once by our own reader and once by Python's email package.
#include <gtest/gtest.h>

#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>

#include "common/text.hpp"
#include "portal/web/forms.hpp"
#include "portal/web/message_view.hpp"
#include "portal/web/reply.hpp"
#include "portal/web/utf8.hpp"

using namespace sealgate::portal;
using namespace std::string_literals;

// ---- application/x-www-form-urlencoded --------------------------------------

TEST(PortalForms, UrlencodedGood) {
  auto f = parse_urlencoded("a=1&b=hello+world&c=%C3%A9%2B%26&d=&e&&f=x=y", 10);
  ASSERT_TRUE(f);
  EXPECT_EQ(*f, (std::map<std::string, std::string>{
                    {"a", "1"}, {"b", "hello world"}, {"c", "\xc3\xa9+&"}, {"d", ""}, {"e", ""}, {"f", "x=y"}}));
  auto empty = parse_urlencoded("", 10);
  ASSERT_TRUE(empty);
  EXPECT_TRUE(empty->empty());
  auto text = parse_urlencoded("reply=line+1%0D%0Aline+2", 10);
  ASSERT_TRUE(text);
  EXPECT_EQ(text->at("reply"), "line 1\r\nline 2");  // a textarea's line breaks are a value's business
}

TEST(PortalForms, UrlencodedRefusals) {
  EXPECT_FALSE(parse_urlencoded("a=1&a=2", 10));        // duplicate name
  EXPECT_FALSE(parse_urlencoded("a=1&%61=2", 10));      // duplicate once decoded
  EXPECT_FALSE(parse_urlencoded("a=%zz", 10));          // bad escapes
  EXPECT_FALSE(parse_urlencoded("a=%4", 10));
  EXPECT_FALSE(parse_urlencoded("a=%", 10));
  EXPECT_FALSE(parse_urlencoded("a%=1", 10));
  EXPECT_FALSE(parse_urlencoded("a=%FF", 10));          // not UTF-8
  EXPECT_FALSE(parse_urlencoded("a=%C3", 10));
  EXPECT_FALSE(parse_urlencoded("=x", 10));             // empty name
  EXPECT_FALSE(parse_urlencoded("%0Aa=1", 10));         // control character in a name
  EXPECT_FALSE(parse_urlencoded(std::string(257, 'n') + "=1", 10));
  EXPECT_TRUE(parse_urlencoded(std::string(256, 'n') + "=1", 10));
  EXPECT_TRUE(parse_urlencoded("a=1&b=2", 2));
  EXPECT_FALSE(parse_urlencoded("a=1&b=2&c=3", 2));     // too many fields
  EXPECT_FALSE(parse_urlencoded("a=1", 0));
}

// ---- multipart/form-data ------------------------------------------------------

namespace {

const std::string webkit_type = "multipart/form-data; boundary=----WebKitFormBoundary7MA4YWxkTrZu0gW";
const std::string dash = "------WebKitFormBoundary7MA4YWxkTrZu0gW";

std::string field_part(std::string_view name, std::string_view value) {
  return dash + "\r\nContent-Disposition: form-data; name=\"" + std::string(name) + "\"\r\n\r\n" + std::string(value) + "\r\n";
}

std::string file_part(std::string_view name, std::string_view filename, std::string_view type, std::string_view data) {
  return dash + "\r\nContent-Disposition: form-data; name=\"" + std::string(name) + "\"; filename=\"" +
         std::string(filename) + "\"\r\nContent-Type: " + std::string(type) + "\r\n\r\n" + std::string(data) + "\r\n";
}

// Binary that looks like structure: CRLFs, dashes, a boundary one byte off.
// (A delimiter is only one after a CRLF, so the last dash-boundary here is data.)
const std::string tricky_data = "%PDF-1.4\r\n--\r\n" + dash.substr(0, dash.size() - 1) + "X\r\n\0\xff"s + dash + "\r\n";

std::string good_form() {
  return field_part("csrf", "tok123") + field_part("message", "Line one\r\nLine two \xc3\xa9") +
         file_part("attachment", "scan.pdf", "application/pdf", tricky_data) +
         file_part("attachment", "", "application/octet-stream", "") +  // a file input left empty
         dash + "\r\nContent-Disposition: form-data; name=\"attachment\"; filename=\"x.txt\"; "
                "filename*=UTF-8''%C3%BCber.txt\r\nContent-Type: Text/Plain; charset=utf-8\r\n\r\nhello\r\n" +
         dash + "--\r\n";
}

}  // namespace

TEST(PortalForms, MultipartGood) {
  auto form = parse_multipart(webkit_type, good_form());
  ASSERT_TRUE(form);
  EXPECT_EQ(form->fields,
            (std::map<std::string, std::string>{{"csrf", "tok123"}, {"message", "Line one\r\nLine two \xc3\xa9"}}));
  ASSERT_EQ(form->files.size(), 2u);
  EXPECT_EQ(form->files[0].field, "attachment");
  EXPECT_EQ(form->files[0].filename, "scan.pdf");
  EXPECT_EQ(form->files[0].content_type, "application/pdf");
  EXPECT_EQ(form->files[0].data, tricky_data);
  EXPECT_EQ(form->files[1].filename, "\xc3\xbc" "ber.txt");  // filename* wins (RFC 6266 4.3)
  EXPECT_EQ(form->files[1].content_type, "text/plain");
  EXPECT_EQ(form->files[1].data, "hello");

  // Quoted boundary with a space, transport padding after a delimiter, a
  // preamble-free body with an epilogue, a part without Content-Type.
  auto quoted = parse_multipart("Multipart/Form-Data; charset=utf-8; boundary=\"a b:c\"",
                                "--a b:c  \r\nContent-Disposition: form-data; name=x\r\n\r\n1\r\n--a b:c--\r\nepilogue");
  ASSERT_TRUE(quoted);
  EXPECT_EQ(quoted->fields.at("x"), "1");
  auto empty_value = parse_multipart(webkit_type, field_part("x", "") + dash + "--");
  ASSERT_TRUE(empty_value);
  EXPECT_EQ(empty_value->fields.at("x"), "");
  // A file's name is sanitized; its path and controls are gone.
  auto path = parse_multipart(webkit_type, file_part("f", "../../boot.ini", "text/plain", "x") + dash + "--");
  ASSERT_TRUE(path);
  EXPECT_EQ(path->files[0].filename, "_.._boot.ini");
}

TEST(PortalForms, MultipartRefusals) {
  const std::string end = dash + "--\r\n";
  // Boundaries: absent, empty, too long, outside bchars, twice, wrong type.
  EXPECT_FALSE(parse_multipart("multipart/form-data", good_form()));
  EXPECT_FALSE(parse_multipart("multipart/form-data; boundary=", good_form()));
  EXPECT_FALSE(parse_multipart("multipart/form-data; boundary=\"\"", good_form()));
  EXPECT_FALSE(parse_multipart("multipart/form-data; boundary=" + std::string(71, 'a'), "--" + std::string(71, 'a') + "--"));
  EXPECT_TRUE(parse_multipart("multipart/form-data; boundary=" + std::string(70, 'a'), "--" + std::string(70, 'a') + "--"));
  EXPECT_FALSE(parse_multipart("multipart/form-data; boundary=\"a@b\"", "--a@b--"));
  EXPECT_FALSE(parse_multipart("multipart/form-data; boundary=\"ab \"", "--ab --"));
  EXPECT_FALSE(parse_multipart(webkit_type + "; boundary=other", good_form()));
  EXPECT_FALSE(parse_multipart("multipart/mixed; boundary=----WebKitFormBoundary7MA4YWxkTrZu0gW", good_form()));
  // Structure: a missing final boundary, a cut body, a preamble, LF-only lines,
  // a delimiter followed by something else.
  std::string good = good_form();
  EXPECT_FALSE(parse_multipart(webkit_type, good.substr(0, good.size() - end.size())));
  EXPECT_FALSE(parse_multipart(webkit_type, good.substr(0, good.size() / 2)));
  EXPECT_FALSE(parse_multipart(webkit_type, field_part("x", "1")));  // no closing delimiter at all
  EXPECT_FALSE(parse_multipart(webkit_type, "preamble\r\n" + good));
  EXPECT_FALSE(parse_multipart(webkit_type, dash + "\nContent-Disposition: form-data; name=x\n\n1\n" + end));
  EXPECT_FALSE(parse_multipart(webkit_type, dash + "X\r\nContent-Disposition: form-data; name=x\r\n\r\n1\r\n" + end));
  EXPECT_FALSE(parse_multipart(webkit_type, field_part("x", "1\r\n" + dash + "junk") + end));
  EXPECT_FALSE(parse_multipart(webkit_type, ""));
  // Part headers.
  auto with_header = [&](std::string_view headers) {
    return parse_multipart(webkit_type, dash + "\r\n" + std::string(headers) + "\r\n1\r\n" + end);
  };
  EXPECT_TRUE(with_header("Content-Disposition: form-data; name=x\r\n"));
  EXPECT_FALSE(with_header(""));                                                 // no disposition
  EXPECT_FALSE(with_header("Content-Type: text/plain\r\n"));
  EXPECT_FALSE(with_header("Content-Disposition: attachment; name=x\r\n"));
  EXPECT_FALSE(with_header("Content-Disposition: form-data\r\n"));               // no name
  EXPECT_FALSE(with_header("Content-Disposition: form-data; name=\"\"\r\n"));
  EXPECT_FALSE(with_header("Content-Disposition: form-data; name=x; name=y\r\n"));
  EXPECT_FALSE(with_header("Content-Disposition: form-data; name=x; filename=a; filename=b\r\n"));
  EXPECT_FALSE(with_header("Content-Disposition: form-data; name=x; filename*0=a\r\n"));
  EXPECT_FALSE(with_header("Content-Disposition: form-data; name=x; filename*=koi8-r''%C1\r\n"));
  EXPECT_FALSE(with_header("Content-Disposition: form-data; name=x; filename*=utf-8''%ZZ\r\n"));
  EXPECT_FALSE(with_header("Content-Disposition: form-data; name=x\r\nContent-Disposition: form-data; name=y\r\n"));
  EXPECT_FALSE(with_header("Content-Disposition: form-data;\r\n name=x\r\n"));    // folded
  EXPECT_FALSE(with_header("Content-Disposition form-data; name=x\r\n"));         // no colon
  EXPECT_FALSE(with_header("Content-Disposition: form-data; name=x\r\nContent-Transfer-Encoding: base64\r\n"));
  EXPECT_TRUE(with_header("Content-Disposition: form-data; name=x\r\nContent-Transfer-Encoding: 8bit\r\nX-Other: y\r\n"));
  EXPECT_FALSE(with_header("Content-Disposition: form-data; name=x\r\nX-Big: " + std::string(9000, 'a') + "\r\n"));
  // Text fields: unique names, valid UTF-8.
  EXPECT_FALSE(parse_multipart(webkit_type, field_part("a", "1") + field_part("a", "2") + end));
  EXPECT_FALSE(parse_multipart(webkit_type, field_part("a", "\xff") + end));
}

TEST(PortalForms, MultipartLimits) {
  const std::string end = dash + "--\r\n";
  form_limits limits;
  limits.max_parts = 3;
  std::string three = field_part("a", "1") + field_part("b", "2") + file_part("f", "", "x/y", "");
  EXPECT_TRUE(parse_multipart(webkit_type, three + end, limits));
  EXPECT_FALSE(parse_multipart(webkit_type, three + field_part("c", "3") + end, limits));  // too many parts

  limits = {};
  limits.max_field = 4;
  EXPECT_TRUE(parse_multipart(webkit_type, field_part("a", "1234") + end, limits));
  EXPECT_FALSE(parse_multipart(webkit_type, field_part("a", "12345") + end, limits));

  limits = {};
  limits.max_file_bytes = 10;
  EXPECT_TRUE(parse_multipart(webkit_type, file_part("f", "a", "x/y", std::string(10, 'x')) + end, limits));
  EXPECT_FALSE(parse_multipart(webkit_type, file_part("f", "a", "x/y", std::string(11, 'x')) + end, limits));
  EXPECT_FALSE(parse_multipart(webkit_type,
                               file_part("f", "a", "x/y", std::string(6, 'x')) + file_part("f", "b", "x/y", std::string(5, 'x')) + end,
                               limits));  // the limit is on all files together
}

TEST(PortalForms, MultipartMutationsNeverThrow) {
  std::string base = good_form();
  uint32_t seed = 777;
  auto next = [&seed] { return seed = seed * 1103515245u + 12345u; };
  size_t parsed = 0;
  for (int i = 0; i < 3000; ++i) {
    std::string m = base;
    for (int k = next() % 4; k >= 0; --k) {
      size_t pos = next() % (m.size() + 1);
      switch (next() % 4) {
        case 0: m.resize(pos); break;
        case 1: if (pos < m.size()) m[pos] = static_cast<char>(next()); break;
        case 2: m.insert(pos, m.substr(pos, next() % 64)); break;
        case 3: m.insert(pos, next() % 2 ? "\r\n" + dash : "\""); break;
      }
    }
    std::optional<multipart_form> form;
    ASSERT_NO_THROW(form = parse_multipart(webkit_type, m));
    if (!form) continue;
    ++parsed;
    for (const auto& [name, value] : form->fields) EXPECT_TRUE(is_valid_utf8(value));
    for (const auto& f : form->files) EXPECT_EQ(f.filename.find_first_of("/\\\r\n"), std::string::npos);
  }
  EXPECT_GT(parsed, 0u);  // some mutations (inside file data) keep the form well-formed
}

// ---- cookies ------------------------------------------------------------------

TEST(PortalForms, CookieValue) {
  EXPECT_EQ(cookie_value("a=1; sid=abc123; b=2", "sid"), "abc123");
  EXPECT_EQ(cookie_value("sid=abc123", "sid"), "abc123");
  EXPECT_EQ(cookie_value("  sid = \"quoted\" ;x=y", "sid"), "quoted");
  EXPECT_EQ(cookie_value("xsid=1; sidx=2; SID=3", "sid"), "");  // names match exactly, case included
  EXPECT_EQ(cookie_value("sid=first; sid=second", "sid"), "");  // tossed cookie: ambiguous, refused
  EXPECT_EQ(cookie_value("", "sid"), "");
  EXPECT_EQ(cookie_value("sid", "sid"), "");
  EXPECT_EQ(cookie_value("sid=", "sid"), "");
  EXPECT_EQ(cookie_value(";;; ;sid=v;;", "sid"), "v");
  EXPECT_EQ(cookie_value("a=b", ""), "");
}

// ---- the reply ----------------------------------------------------------------

namespace {

std::string pdf_like() {
  std::string s = "%PDF-1.7\n";
  for (int i = 0; i < 5000; ++i) s += static_cast<char>((i * 31) & 0xFF);
  return s;
}

reply_input sample_reply() {
  reply_input in;
  in.from = "alice@example.org";
  in.from_name = "Alice Example";
  in.to = "juergen@example.de";
  in.to_name = "J\xc3\xbcrgen M\xc3\xbcller";
  in.original_subject = "Befund f\xc3\xbcr Sie";
  in.original_message_id = "<AM0PR01MB1234@example.de>";
  in.original_references = "<root@example.de> <mid@example.de>";
  in.date = 1741078800;
  in.host = "portal.example.org";
  in.text = "Danke!\n\nBeste Gr\xc3\xbc\xc3\x9f" "e,\nAlice\n" + std::string(200, 'x') + "\nFrom here on.\n";
  in.attachments.push_back({"Antwort.pdf", pdf_like()});
  in.attachments.push_back({"\xc3\x9c" "bersicht \xe2\x80\x94 sehr langer Dateiname, der umbrochen werden muss.txt",
                            "Zeile 1\nZeile 2 \xc3\xa4\n"});
  in.attachments.push_back({"../empty.bin", ""});
  return in;
}

std::string header_block(const std::string& message) { return message.substr(0, message.find("\r\n\r\n") + 2); }

// Every line ends in CRLF and holds at most 998 octets (RFC 5322 2.1.1).
void expect_wire_form(const std::string& message) {
  size_t pos = 0;
  while (pos < message.size()) {
    size_t crlf = message.find("\r\n", pos);
    ASSERT_NE(crlf, std::string::npos) << "a last line without CRLF";
    std::string_view line(message.data() + pos, crlf - pos);
    EXPECT_LE(line.size(), 998u);
    EXPECT_EQ(line.find_first_of("\r\n"), std::string_view::npos) << "a bare CR or LF";
    pos = crlf + 2;
  }
}

}  // namespace

TEST(PortalReply, HeadersAndThreading) {
  std::string m = compose_reply(sample_reply());
  expect_wire_form(m);
  std::string h = header_block(m);
  EXPECT_NE(h.find("\r\nSubject: Re: =?utf-8?B?"), std::string::npos) << h;
  EXPECT_NE(h.find("Date: Tue, 04 Mar 2025 09:00:00 +0000\r\n"), std::string::npos);
  EXPECT_NE(h.find("In-Reply-To: <AM0PR01MB1234@example.de>\r\n"), std::string::npos);
  EXPECT_NE(h.find("References: <root@example.de>\r\n <mid@example.de>\r\n <AM0PR01MB1234@example.de>\r\n"),
            std::string::npos);
  EXPECT_NE(h.find("From: \"Alice Example\" <alice@example.org>\r\n"), std::string::npos);
  EXPECT_NE(h.find("To: =?utf-8?B?"), std::string::npos);
  EXPECT_NE(h.find("@portal.example.org>\r\n"), std::string::npos);
  EXPECT_NE(h.find("MIME-Version: 1.0\r\n"), std::string::npos);
  for (char c : h) EXPECT_TRUE(static_cast<unsigned char>(c) < 0x80) << "non-ASCII in the header block";

  reply_input plain;
  plain.from = "a@example.org";
  plain.to = "b@example.org";
  plain.original_subject = "RE: already a reply";
  plain.text = "ok";
  plain.message_id = "<fixed@example.org>";
  std::string p = compose_reply(plain);
  EXPECT_NE(p.find("\r\nSubject: RE: already a reply\r\n"), std::string::npos) << p;
  EXPECT_NE(p.find("\r\nMessage-ID: <fixed@example.org>\r\n"), std::string::npos);
  EXPECT_EQ(p.find("In-Reply-To"), std::string::npos);  // no parent id: no threading fields
  EXPECT_EQ(p.find("References"), std::string::npos);
  EXPECT_NE(p.find("Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\nok\r\n"),
            std::string::npos);
  expect_wire_form(p);

  plain.original_subject = std::string(300, 'w') + " " + std::string(50, 'v');  // long ASCII: folded
  std::string folded = compose_reply(plain);
  EXPECT_NE(folded.find("Subject: Re:\r\n " + std::string(300, 'w') + "\r\n " + std::string(50, 'v') + "\r\n"), std::string::npos)
      << folded;
  plain.original_subject = "";
  EXPECT_NE(compose_reply(plain).find("\r\nSubject: Re:\r\n"), std::string::npos);
  plain.original_subject = std::string(5000, 'z');  // one unfoldable word: encoded words instead
  std::string long_word = compose_reply(plain);
  expect_wire_form(long_word);
  EXPECT_NE(long_word.find("Subject: Re: =?utf-8?B?"), std::string::npos);
}

TEST(PortalReply, HeaderInjectionIsImpossible) {
  reply_input in;
  in.from = "alice@example.org\r\nBcc: spy@evil.example";
  in.from_name = "Alice\r\nBcc: spy@evil.example";
  in.to = "bob@example.org, victim@example.net <x@y>";
  in.to_name = "\"Bob\\\" <evil@x>";
  in.original_subject = "Hi\r\nBcc: spy@evil.example\r\n\r\nbody injection";
  in.original_message_id = "<ok@x>\r\nBcc: spy@evil.example";
  in.original_references = "<a@b>\r\nBcc: <spy@evil.example>";
  in.message_id = "<x\r\nBcc: y@z>";
  in.host = "evil\r\nBcc: spy";
  in.text = "text";
  in.attachments.push_back({"a\r\nContent-Type: text/html\r\n\r\n<script>.txt", "data"});
  std::string m = compose_reply(in);
  expect_wire_form(m);
  std::string h = header_block(m);
  // Every header line is a field we wrote or a continuation (starts with a space).
  std::istringstream lines(h);
  std::string line;
  std::vector<std::string> names;
  while (std::getline(lines, line)) {
    if (line.empty() || line == "\r" || line[0] == ' ') continue;
    names.push_back(line.substr(0, line.find(':')));
  }
  EXPECT_EQ(names, (std::vector<std::string>{"From", "To", "Subject", "Date", "Message-ID", "In-Reply-To", "References",
                                             "MIME-Version", "Content-Type"}));
  EXPECT_NE(h.find("From: \"Alice Bcc: spy@evil.example\" <alice@example.orgBccspy@evil.example>\r\n"), std::string::npos) << h;
  EXPECT_NE(h.find("To: \"\\\"Bob\\\\\\\" <evil@x>\" <bob@example.orgvictim@example.netx@y>\r\n"), std::string::npos) << h;
  EXPECT_NE(h.find("In-Reply-To: <ok@x>\r\n"), std::string::npos);
  EXPECT_NE(h.find("@evilBccspy>\r\n"), std::string::npos) << h;  // the bad Message-ID was replaced
  EXPECT_NE(h.find("Subject: Re: Hi Bcc: spy@evil.example body injection\r\n"), std::string::npos) << h;
  EXPECT_EQ(m.find("\r\nBcc:"), std::string::npos);
  EXPECT_EQ(m.find("\r\nContent-Type: text/html"), std::string::npos);
  auto view = read_message_view(m);
  ASSERT_TRUE(view);
  ASSERT_EQ(view->attachments.size(), 1u);
  EXPECT_EQ(view->attachments[0].name, "aContent-Type_ text_html_script_.txt");
}

TEST(PortalReply, LongAddressesAndNamesStayWithin998OctetLines) {
  // Found with fuzz_portal_web: an address of invalid UTF-8 bytes grew three
  // times (each byte became U+FFFD) past the 512-byte cut, and a quoted name
  // of 256 escaped quotes with a 512-byte address made a 1035-octet From line.
  reply_input in;
  in.from = std::string(600, 'a') + "@example.org";
  in.from_name = std::string(300, '"');
  in.to = std::string(400, '\xff') + "@example.org";
  in.to_name = std::string(300, '\\');
  in.reply_to = std::string(400, '\x80');
  in.original_subject = "x";
  in.text = "t";
  std::string m = compose_reply(in);
  expect_wire_form(m);
  std::string h = header_block(m);
  // Addresses are cut at 512 bytes on a character boundary, and go on a folded
  // line of their own when they would not fit after the name.
  std::string quotes, replacements;
  for (int i = 0; i < 256; ++i) quotes += "\\\"";
  for (int i = 0; i < 170; ++i) replacements += "\xef\xbf\xbd";
  EXPECT_EQ(h.find("From: \"" + quotes + "\"\r\n <" + std::string(512, 'a') + ">\r\n"), 0u) << h;
  EXPECT_NE(h.find("\r\nTo: \"" + std::string(512, '\\') + "\"\r\n <" + replacements + ">\r\n"), std::string::npos) << h;
  EXPECT_NE(h.find("\r\nReply-To: " + replacements + "\r\n"), std::string::npos) << h;
  auto view = read_message_view(m);
  ASSERT_TRUE(view);
  EXPECT_EQ(view->text, "t\n");
  for (const std::string* field : {&view->from, &view->to}) EXPECT_TRUE(is_valid_utf8(*field));
}

TEST(PortalReply, DateAndIdsAndSniffing) {
  EXPECT_EQ(rfc5322_date(0), "Thu, 01 Jan 1970 00:00:00 +0000");
  EXPECT_EQ(rfc5322_date(951868799), "Tue, 29 Feb 2000 23:59:59 +0000");
  EXPECT_EQ(rfc5322_date(-5), "Thu, 01 Jan 1970 00:00:00 +0000");
  EXPECT_EQ(rfc5322_date(INT64_MAX), "Fri, 31 Dec 9999 23:59:59 +0000");
  std::string a = new_message_id("mx.example.org"), b = new_message_id("mx.example.org");
  EXPECT_NE(a, b);
  EXPECT_EQ(a.size(), 1 + 32 + 1 + 14 + 1);
  EXPECT_TRUE(a.starts_with("<") && a.ends_with("@mx.example.org>"));
  EXPECT_TRUE(new_message_id("").ends_with("@localhost>"));
  EXPECT_EQ(sniff_content_type("x.bin", "%PDF-1.4"), "application/pdf");
  EXPECT_EQ(sniff_content_type("x.html", "\x89PNG\r\n\x1a\n...."), "image/png");
  EXPECT_EQ(sniff_content_type("x", "\xff\xd8\xff\xe0"), "image/jpeg");
  EXPECT_EQ(sniff_content_type("x", "GIF89a"), "image/gif");
  EXPECT_EQ(sniff_content_type("x.DOCX", "PK\x03\x04"s), "application/vnd.openxmlformats-officedocument.wordprocessingml.document");
  EXPECT_EQ(sniff_content_type("x.jar", "PK\x03\x04"s), "application/zip");
  EXPECT_EQ(sniff_content_type("notes.txt", "caf\xc3\xa9"), "text/plain; charset=utf-8");
  EXPECT_EQ(sniff_content_type("notes.txt", "a\0b"s), "application/octet-stream");
  EXPECT_EQ(sniff_content_type("page.html", "<html><script>"), "application/octet-stream");
  EXPECT_EQ(sniff_content_type("image.svg", "<svg onload=alert(1)>"), "application/octet-stream");
  for (const char* name : {"a.pdf", "a.png", "a.txt", "a.csv", "a.docx", "a.zip", "a.html"})
    for (const std::string& data : {"%PDF"s, "PK\x03\x04"s, "text"s, "<html>"s})
      EXPECT_EQ(safe_download_type(sniff_content_type(name, data)), sniff_content_type(name, data));
}

TEST(PortalReply, RoundTripThroughOurReader) {
  reply_input in = sample_reply();
  std::string m = compose_reply(in);
  auto view = read_message_view(m);
  ASSERT_TRUE(view);
  EXPECT_EQ(view->subject, "Re: Befund f\xc3\xbcr Sie");
  EXPECT_EQ(view->from, "\"Alice Example\" <alice@example.org>");
  EXPECT_EQ(view->to, "J\xc3\xbcrgen M\xc3\xbcller <juergen@example.de>");
  EXPECT_EQ(view->text, in.text);
  ASSERT_EQ(view->attachments.size(), 3u);
  EXPECT_EQ(view->attachments[0].name, "Antwort.pdf");
  EXPECT_EQ(view->attachments[0].content_type, "application/pdf");
  EXPECT_EQ(view->attachments[1].name, in.attachments[1].filename);
  EXPECT_EQ(view->attachments[1].content_type, "text/plain");
  EXPECT_EQ(view->attachments[2].name, "_empty.bin");
  for (size_t i = 0; i < 3; ++i) EXPECT_EQ(attachment_bytes(m, i), in.attachments[i].data) << i;
  // Quoted-printable keeps body lines short, "From " at a line start is encoded.
  size_t text_start = m.find("quoted-printable\r\n\r\n") + 20;
  std::string body = m.substr(text_start, m.find("\r\n--=_", text_start) - text_start);
  EXPECT_NE(body.find("\r\n=46rom here on."), std::string::npos);
  size_t pos = 0;
  for (size_t crlf; (crlf = body.find("\r\n", pos)) != std::string::npos; pos = crlf + 2) EXPECT_LE(crlf - pos, 76u);
}

TEST(PortalReply, PythonEmailPackageParsesTheReply) {
  const char* python = SEALGATE_PYTHON3;
  if (access(python, X_OK) != 0) GTEST_SKIP() << "no " << python;
  reply_input in = sample_reply();
  std::string m = compose_reply(in);
  auto path = std::filesystem::temp_directory_path() / ("sealgate_reply_" + std::to_string(getpid()) + ".eml");
  std::ofstream(path, std::ios::binary) << m;
  // Each value comes back base64-encoded on its own line, so any byte survives the pipe.
  const char* script = R"PY(
import base64, email.policy, email.utils, sys
from email.parser import BytesParser
msg = BytesParser(policy=email.policy.default).parsebytes(open(sys.argv[1], 'rb').read())
def out(key, value):
    if isinstance(value, str): value = value.encode('utf-8')
    print(key, base64.b64encode(value).decode())
for h in ['From', 'To', 'Subject', 'Message-ID', 'In-Reply-To', 'References']:
    out(h, str(msg.get(h, '')))
out('date', str(int(email.utils.parsedate_to_datetime(msg['Date']).timestamp())))
out('body', msg.get_body(preferencelist=('plain',)).get_content().replace('\r\n', '\n'))  # the wire's CRLF as LF
defects = []
for part in msg.walk():
    defects += [type(d).__name__ for d in part.defects]
    for name, value in part.items():
        defects += [name + ':' + type(d).__name__ for d in getattr(value, 'defects', [])]
out('defects', ' '.join(defects))
attachments = list(msg.iter_attachments())
out('count', str(len(attachments)))
for n, part in enumerate(attachments):
    out('name%d' % n, part.get_filename() or '')
    out('type%d' % n, part.get_content_type())
    out('data%d' % n, part.get_payload(decode=True))
)PY";
  std::string command = std::string(python) + " -c \"$SEALGATE_SCRIPT\" " + path.string();
  setenv("SEALGATE_SCRIPT", script, 1);
  FILE* pipe = popen(command.c_str(), "r");
  ASSERT_NE(pipe, nullptr);
  std::string output;
  char buffer[4096];
  for (size_t n; (n = fread(buffer, 1, sizeof buffer, pipe)) > 0;) output.append(buffer, n);
  int status = pclose(pipe);
  std::filesystem::remove(path);
  ASSERT_EQ(status, 0) << output;
  std::map<std::string, std::string> got;
  std::istringstream lines(output);
  for (std::string line; std::getline(lines, line);) {
    size_t space = line.find(' ');
    ASSERT_NE(space, std::string::npos) << line;
    bool ok = false;
    got[line.substr(0, space)] = sealgate::base64_decode(line.substr(space + 1), ok);
    EXPECT_TRUE(ok) << line;
  }
  EXPECT_EQ(got["defects"], "");
  EXPECT_EQ(got["From"], "Alice Example <alice@example.org>");
  EXPECT_EQ(got["To"], "J\xc3\xbcrgen M\xc3\xbcller <juergen@example.de>");
  EXPECT_EQ(got["Subject"], "Re: Befund f\xc3\xbcr Sie");
  EXPECT_EQ(got["In-Reply-To"], "<AM0PR01MB1234@example.de>");
  EXPECT_EQ(got["References"], "<root@example.de> <mid@example.de> <AM0PR01MB1234@example.de>");
  EXPECT_TRUE(got["Message-ID"].ends_with("@portal.example.org>"));
  EXPECT_EQ(got["date"], "1741078800");
  EXPECT_EQ(got["body"], in.text);
  ASSERT_EQ(got["count"], "3");
  EXPECT_EQ(got["name0"], "Antwort.pdf");
  EXPECT_EQ(got["type0"], "application/pdf");
  EXPECT_EQ(got["data0"], in.attachments[0].data);
  EXPECT_EQ(got["name1"], in.attachments[1].filename);
  EXPECT_EQ(got["type1"], "text/plain");
  EXPECT_EQ(got["data1"], in.attachments[1].data);
  EXPECT_EQ(got["name2"], "_empty.bin");
  EXPECT_EQ(got["type2"], "application/octet-stream");
  EXPECT_EQ(got["data2"], "");
}
