// DATA framing: the end of data is exactly CRLF.CRLF, found however the bytes
// are split across reads; every smuggling variant stops the reader.
#include <gtest/gtest.h>

#include "gateway/inbound/data_reader.hpp"

using namespace sealgate::gateway;

namespace {
struct outcome {
  data_reader::status status;
  std::string content;
  size_t consumed = 0;
  bool too_big = false, line_too_long = false;
};

outcome run(std::string_view input, size_t chunk, uint64_t max_size = 1 << 20, size_t max_line = 998) {
  data_reader r(max_size, max_line);
  outcome o;
  size_t pos = 0;
  while (pos < input.size() && r.state() == data_reader::status::reading) {
    size_t n = std::min(chunk, input.size() - pos);
    size_t used = r.feed(input.substr(pos, n), o.content);
    pos += used;
    if (used < n) break;
  }
  o.status = r.state();
  o.consumed = pos;
  o.too_big = r.too_big();
  o.line_too_long = r.line_too_long();
  return o;
}
}  // namespace

TEST(DataReader, FindsEndAndUnstuffsAtEveryChunkSize) {
  const std::string input = "Subject: x\r\n\r\n..leading dot\r\n.\r\nQUIT\r\n";
  for (size_t chunk = 1; chunk <= input.size(); ++chunk) {
    auto o = run(input, chunk);
    ASSERT_EQ(o.status, data_reader::status::complete) << chunk;
    EXPECT_EQ(o.content, "Subject: x\r\n\r\n.leading dot\r\n") << chunk;
    EXPECT_EQ(input.substr(o.consumed), "QUIT\r\n") << chunk;
  }
}

TEST(DataReader, EmptyMessage) {
  auto o = run(".\r\n", 1);
  EXPECT_EQ(o.status, data_reader::status::complete);
  EXPECT_EQ(o.content, "");
}

TEST(DataReader, SmugglingVariantsNeverEndData) {
  const char* variants[] = {
      "a\n.\nMAIL FROM:<x@y>\r\n.\r\n",      // <LF>.<LF>
      "a\r\n.\nMAIL FROM:<x@y>\r\n.\r\n",    // <CR><LF>.<LF>
      "a\n.\r\nMAIL FROM:<x@y>\r\n.\r\n",    // <LF>.<CR><LF>
      "a\r.\rMAIL FROM:<x@y>\r\n.\r\n",      // <CR>.<CR>
      "a\r\n.\rMAIL FROM:<x@y>\r\n.\r\n",    // .<CR> without LF
      "bare\nlf\r\n.\r\n",
  };
  for (const char* v : variants) {
    for (size_t chunk : {size_t{1}, size_t{3}, size_t{1000}}) {
      auto o = run(v, chunk);
      EXPECT_EQ(o.status, data_reader::status::bare_newline) << v << " chunk " << chunk;
      EXPECT_LE(o.consumed, std::string(v).find("MAIL FROM")) << "read past the bad octet: " << v;
    }
  }
}

TEST(DataReader, SizeLimitKeepsReadingToTheEnd) {
  std::string body(5000, 'x');
  std::string input = body + "\r\n.\r\nNEXT";
  auto o = run(input, 512, 1000, 100000);
  EXPECT_EQ(o.status, data_reader::status::complete);
  EXPECT_TRUE(o.too_big);
  EXPECT_LE(o.content.size(), 1000u);
  EXPECT_EQ(input.substr(o.consumed), "NEXT");
}

TEST(DataReader, LineLengthLimit) {
  std::string ok(998, 'a');
  EXPECT_FALSE(run(ok + "\r\n.\r\n", 100).line_too_long);
  EXPECT_TRUE(run(ok + "a\r\n.\r\n", 100).line_too_long);
  // The transparency dot is not part of the line (RFC 5321 4.5.2).
  EXPECT_FALSE(run("." + std::string(998, '.') + "\r\n.\r\n", 100).line_too_long);
  EXPECT_TRUE(run("." + std::string(999, '.') + "\r\n.\r\n", 100).line_too_long);
}
