// Per-recipient status records, their file, the retry schedule, and reading a
// queued message back from the spool.
#include "gateway/spool/queue_state.hpp"

#include "common/file_io.hpp"

#include <gtest/gtest.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fstream>

using namespace sealgate::gateway;
using std::chrono::seconds;

namespace {
class QueueState : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/sealgate-qstate-XXXXXX";
    dir_ = mkdtemp(tmpl);
    std::filesystem::create_directories(dir_ / "queue");
    std::filesystem::create_directories(dir_ / "status");
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  void spool_message(const std::string& id, size_t recipients) {
    spooled_envelope e;
    e.queue_id = id;
    e.received = 1795513787;
    e.listener = "smarthost";
    e.client_address = "127.0.0.1";
    e.helo = "app";
    e.sender = "app@ours.example";
    for (size_t i = 0; i < recipients; ++i) e.recipients.push_back({"r" + std::to_string(i) + "@example.org", {}});
    std::ofstream(queue_file(dir_, id), std::ios::binary) << encode_envelope(e) << "Subject: x\r\n\r\nbody\r\n";
  }
  std::filesystem::path dir_;
};
}  // namespace

TEST(StatusRecord, RoundTripsEveryFieldIncludingSpacesInTheReply) {
  rcpt_status s;
  s.state = rcpt_state::pending;
  s.time = 1795513800;
  s.attempts = 3;
  s.next_try = 1795514100;
  s.delay_warned = true;
  s.method = "tls";
  s.detail = "451 4.7.1 greylisted, try again\r\nlater";
  auto line = encode_status_record(7, s);
  ASSERT_EQ(line.back(), '\n');
  EXPECT_EQ(line.find('\n'), line.size() - 1) << "one record is one line";
  size_t index = 0;
  rcpt_status back;
  ASSERT_TRUE(decode_status_record(std::string_view(line).substr(0, line.size() - 1), index, back));
  EXPECT_EQ(index, 7u);
  EXPECT_EQ(back.state, rcpt_state::pending);
  EXPECT_EQ(back.attempts, 3u);
  EXPECT_EQ(back.next_try, 1795514100);
  EXPECT_TRUE(back.delay_warned);
  EXPECT_EQ(back.method, "tls");
  EXPECT_EQ(back.detail, s.detail);
}

TEST(StatusRecord, MalformedLinesAreRefused) {
  size_t i;
  rcpt_status s;
  EXPECT_FALSE(decode_status_record("", i, s));
  EXPECT_FALSE(decode_status_record("0 delivered 1 1 0 0 tls", i, s));                // a field short
  EXPECT_FALSE(decode_status_record("0 sent 1 1 0 0 tls -", i, s));                   // unknown state
  EXPECT_FALSE(decode_status_record("x delivered 1 1 0 0 tls -", i, s));              // index not a number
  EXPECT_FALSE(decode_status_record("0 delivered 1 1 0 2 tls -", i, s));              // warned flag
  EXPECT_FALSE(decode_status_record("0 delivered 1 1 0 0 tls - extra", i, s));
  EXPECT_TRUE(decode_status_record("0 delivered 1 1 0 0 tls -", i, s));
}

TEST_F(QueueState, LastRecordWinsAndATornLastLineIsIgnored) {
  auto file = status_file(dir_, "ABC");
  rcpt_status deferred{rcpt_state::pending, 100, 1, 400, false, "tls", "451 try later"};
  rcpt_status delivered{rcpt_state::delivered, 500, 2, 0, false, "tls", "250 ok"};
  append_status(file, {{0, deferred}, {1, deferred}});
  append_status(file, {{1, delivered}});
  std::ofstream(file, std::ios::app) << "0 bounced 600 3 0 0 tls 550";  // no newline: the write was cut
  auto st = load_status(file, 2);
  ASSERT_EQ(st.size(), 2u);
  EXPECT_EQ(st[0].state, rcpt_state::pending);
  EXPECT_EQ(st[0].next_try, 400);
  EXPECT_EQ(st[1].state, rcpt_state::delivered);
  EXPECT_EQ(st[1].detail, "250 ok");
  struct stat info {};
  ASSERT_EQ(::stat(file.c_str(), &info), 0);
  EXPECT_EQ(info.st_mode & 0777, 0600u);
  // Indexes beyond the message's recipients are ignored, not a crash.
  append_status(file, {{9, delivered}});
  EXPECT_EQ(load_status(file, 2).size(), 2u);
  // No file: every recipient pending.
  auto none = load_status(dir_ / "status" / "nothing", 3);
  ASSERT_EQ(none.size(), 3u);
  EXPECT_EQ(none[2].state, rcpt_state::pending);
}

TEST(RetryDelay, DoublesFromMinimumToMaximumWithJitterInTheUpperHalf) {
  const seconds lo{300}, hi{4000};
  EXPECT_EQ(retry_delay(1, lo, hi, 0.999999), seconds(299));
  EXPECT_EQ(retry_delay(1, lo, hi, 0.0), seconds(150));
  EXPECT_EQ(retry_delay(2, lo, hi, 0.999999), seconds(599));
  EXPECT_EQ(retry_delay(4, lo, hi, 0.999999), seconds(2399));
  EXPECT_EQ(retry_delay(5, lo, hi, 0.999999), seconds(3999));   // capped
  EXPECT_EQ(retry_delay(500, lo, hi, 0.0), seconds(2000));       // no overflow
  EXPECT_EQ(retry_delay(0, seconds(1), seconds(1), 0.0), seconds(1));  // never zero
}

TEST_F(QueueState, LoadQueuedReadsEnvelopeAndStatus) {
  spool_message("00000000000000AB", 3);
  append_status(status_file(dir_, "00000000000000AB"),
                {{2, {rcpt_state::bounced, 5, 1, 0, false, "tls", "550 no such user"}}});
  auto m = load_queued(dir_, "00000000000000AB");
  ASSERT_TRUE(m);
  EXPECT_EQ(m->envelope.sender, "app@ours.example");
  ASSERT_EQ(m->status.size(), 3u);
  EXPECT_EQ(m->status[2].state, rcpt_state::bounced);
  EXPECT_FALSE(m->complete());
  EXPECT_EQ(m->envelope.content_size, std::string("Subject: x\r\n\r\nbody\r\n").size());
  EXPECT_EQ(list_queue(dir_), std::vector<std::string>{"00000000000000AB"});
  remove_queued(dir_, "00000000000000AB");
  EXPECT_FALSE(load_queued(dir_, "00000000000000AB"));
  EXPECT_FALSE(std::filesystem::exists(status_file(dir_, "00000000000000AB")));
}

TEST_F(QueueState, LoadQueuedRefusesNamesThatAreNotQueueIds) {
  EXPECT_FALSE(load_queued(dir_, "../../etc/passwd"));
  EXPECT_FALSE(load_queued(dir_, "0000000000000ABG"));
  EXPECT_FALSE(load_queued(dir_, ""));
}

TEST_F(QueueState, AnEnvelopeLongerThanTheFirstReadIsStillRead) {
  spool_message("00000000000000CD", 3000);  // ~80 KiB of envelope
  auto m = load_queued(dir_, "00000000000000CD");
  ASSERT_TRUE(m);
  EXPECT_EQ(m->envelope.recipients.size(), 3000u);
}

TEST_F(QueueState, ReadQueuedGivesASmallMessagesContentFromTheSameRead) {
  spool_message("00000000000000EF", 2);
  append_status(status_file(dir_, "00000000000000EF"), {{1, {rcpt_state::delivered, 5, 1, 0, false, "tls", "250 ok"}}});
  int fd = ::open(queue_file(dir_, "00000000000000EF").c_str(), O_RDONLY);
  ASSERT_GE(fd, 0);
  std::string content = "stale";
  auto m = read_queued(fd, dir_, "00000000000000EF", &content);
  ASSERT_TRUE(m);
  EXPECT_EQ(content, "Subject: x\r\n\r\nbody\r\n");
  EXPECT_EQ(m->envelope.content_size, content.size());
  EXPECT_EQ(m->status[1].state, rcpt_state::delivered);
  EXPECT_FALSE(read_queued(fd, dir_, "../../etc/passwd", &content));
  ::close(fd);
}

TEST_F(QueueState, ReadQueuedLeavesALargeMessagesContentToTheCaller) {
  spooled_envelope e;
  e.queue_id = "0000000000000ABC";
  e.sender = "app@ours.example";
  e.listener = e.client_address = e.helo = "x";
  e.recipients.push_back({"r@example.org", {}});
  std::string body(2 * 1024 * 1024, 'a');
  std::ofstream(queue_file(dir_, e.queue_id), std::ios::binary) << encode_envelope(e) << body;
  int fd = ::open(queue_file(dir_, e.queue_id).c_str(), O_RDONLY);
  ASSERT_GE(fd, 0);
  std::string content = "stale";
  auto m = read_queued(fd, dir_, e.queue_id, &content);
  ::close(fd);
  ASSERT_TRUE(m);
  EXPECT_TRUE(content.empty());
  EXPECT_EQ(m->envelope.content_size, body.size());
  EXPECT_EQ(m->file_size - m->content_offset, body.size());
}

// queue_lock's check after the flock: a descriptor still names the queued
// file, not one the lock's earlier holder removed or a new file of the name.
TEST(NamesFile, AnUnlinkedOrReplacedFileIsNoLongerTheQueuedOne) {
  char tmpl[] = "/tmp/sealgate-names-XXXXXX";
  std::filesystem::path dir = ::mkdtemp(tmpl);
  auto p = dir / "0123456789ABCDEF";
  std::ofstream(p) << "x";
  int fd = ::open(p.c_str(), O_RDONLY | O_CLOEXEC);
  ASSERT_GE(fd, 0);
  EXPECT_TRUE(sealgate::names_file(fd, p));
  std::ofstream(dir / "other") << "y";
  std::filesystem::rename(dir / "other", p);  // a new file of the same name
  EXPECT_FALSE(sealgate::names_file(fd, p));
  ::close(fd);
  fd = ::open(p.c_str(), O_RDONLY | O_CLOEXEC);
  std::filesystem::remove(p);  // finished and removed
  EXPECT_FALSE(sealgate::names_file(fd, p));
  ::close(fd);
  std::filesystem::remove_all(dir);
}
