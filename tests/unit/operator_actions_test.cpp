// `sealgate queue delete` as the queue does it: never while a delivery pass
// holds the message's lock; the recipients still waiting become "deleted" in
// the status file and the record; the message's files go last.
#include <gtest/gtest.h>
#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <fstream>

#include "gateway/queue/operator_actions.hpp"
#include "gateway/record/database.hpp"
#include "gateway/record/report.hpp"
#include "gateway/spool/queue_state.hpp"

using namespace sealgate::gateway;
namespace fs = std::filesystem;

namespace {

class OperatorActions : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/sealgate-operator-XXXXXX";
    dir_ = mkdtemp(tmpl);
    spool_ = dir_ / "spool";
    record_ = dir_ / "sealgate.db";
    fs::create_directories(spool_ / "queue");
    fs::create_directories(spool_ / "status");
  }
  void TearDown() override { fs::remove_all(dir_); }

  // A message of three recipients, accepted and recorded; the first one
  // already delivered.
  void queue_message() {
    spooled_envelope e;
    e.queue_id = id_;
    e.received = 1796530000;
    e.listener = "smarthost";
    e.client_address = "127.0.0.1";
    e.helo = "app";
    e.sender = "app@ours.example";
    e.recipients = {{"done@example.org", {}}, {"wait@example.org", {}}, {"held@example.org", {}}};
    std::ofstream(queue_file(spool_, id_), std::ios::binary) << encode_envelope(e) << "Subject: x\r\n\r\nbody\r\n";
    rcpt_status delivered;
    delivered.state = rcpt_state::delivered;
    delivered.time = 1796530001;
    delivered.attempts = 1;
    delivered.method = "tls";
    delivered.detail = "250 2.0.0 Ok";
    rcpt_status deferred;
    deferred.time = 1796530001;
    deferred.attempts = 1;
    deferred.next_try = 1796533601;
    deferred.method = "plain";
    deferred.detail = "451 4.3.0 later";
    append_status(status_file(spool_, id_), {{0, delivered}, {1, deferred}});
    database(record_).record_accepted({e});
  }

  fs::path dir_, spool_, record_;
  const std::string id_ = "661EF3E76DE7F000";
};

TEST_F(OperatorActions, DeleteRecordsTheWaitingRecipientsThenRemovesTheFiles) {
  queue_message();
  auto done = delete_queued_message(spool_, record_, id_);
  EXPECT_EQ(done.outcome, deletion::result::deleted);
  EXPECT_EQ(done.recipients_deleted, 2u) << "the delivered one is left as it was";
  EXPECT_FALSE(fs::exists(queue_file(spool_, id_)));
  EXPECT_FALSE(fs::exists(status_file(spool_, id_)));
  auto story = read_message_story(record_, id_);
  ASSERT_EQ(story.recipients.size(), 3u);
  EXPECT_EQ(story.recipients[0].status, "queued") << "this record never heard of the delivery; delete does not invent it";
  for (size_t i : {1u, 2u}) {
    EXPECT_EQ(story.recipients[i].status, "deleted");
    EXPECT_EQ(story.recipients[i].reply, "deleted by an operator");
    EXPECT_EQ(story.recipients[i].attempts, 0) << "no connection was made";
    EXPECT_TRUE(story.recipients[i].final_at);
  }
  EXPECT_TRUE(story.attempts.empty()) << "a deletion is not an attempt";

  EXPECT_EQ(delete_queued_message(spool_, record_, id_).outcome, deletion::result::no_such_message);
}

TEST_F(OperatorActions, DeleteNeverRacesADeliveryPass) {
  queue_message();
  // A delivery pass holds the lock (its own open file description).
  int pass = ::open(queue_file(spool_, id_).c_str(), O_RDONLY | O_CLOEXEC);
  ASSERT_GE(pass, 0);
  ASSERT_EQ(::flock(pass, LOCK_EX | LOCK_NB), 0);
  auto busy = delete_queued_message(spool_, record_, id_);
  EXPECT_EQ(busy.outcome, deletion::result::being_delivered);
  EXPECT_TRUE(fs::exists(queue_file(spool_, id_)));
  EXPECT_EQ(load_status(status_file(spool_, id_), 3)[1].state, rcpt_state::pending) << "nothing written";
  ::close(pass);
  EXPECT_EQ(delete_queued_message(spool_, record_, id_).outcome, deletion::result::deleted);
}

TEST_F(OperatorActions, OnlyQueueIdsNameMessages) {
  for (const char* id : {"../../etc/passwd", "", "661EF3E76DE7F00", "0123456789ABCDEF"})
    EXPECT_EQ(delete_queued_message(spool_, record_, id).outcome, deletion::result::no_such_message) << id;
  EXPECT_FALSE(fs::exists(record_)) << "nothing to delete, nothing opened";
}

TEST_F(OperatorActions, ARecordThatCannotBeWrittenKeepsTheMessage) {
  queue_message();
  fs::remove(record_);
  fs::create_directory(record_);  // a directory where the database should be
  EXPECT_THROW(delete_queued_message(spool_, record_, id_), std::exception);
  EXPECT_TRUE(fs::exists(queue_file(spool_, id_)));
  // The status lines went first: the next pass sees the recipients final
  // and records them itself.
  auto status = load_status(status_file(spool_, id_), 3);
  EXPECT_EQ(status[1].state, rcpt_state::deleted);
  EXPECT_EQ(status[2].state, rcpt_state::deleted);
}

}  // namespace
