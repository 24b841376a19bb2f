// queue export / import (spool_move.hpp): the file carries each message and
// its status, a damaged or truncated file is refused before anything is
// written, a second import of a message is refused, and an exported message
// can no longer be found by the spool it left.
#include <gtest/gtest.h>

#include <fstream>
#include <functional>
#include <sstream>

#include "common/file_io.hpp"
#include "gateway/spool/queue_state.hpp"
#include "gateway/spool/spool.hpp"
#include "gateway/spool/spool_move.hpp"

using namespace sealgate::gateway;

namespace {

class SpoolMoveTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/sealgate-move-XXXXXX";
    root_ = mkdtemp(tmpl);
    a_ = root_ / "a";
    b_ = root_ / "b";
    for (const auto& d : {a_, b_}) {
      std::filesystem::create_directories(d / "queue");
      std::filesystem::create_directories(d / "status");
    }
    file_ = root_ / "export";
  }
  void TearDown() override { std::filesystem::remove_all(root_); }

  // A complete queue file with `recipients` recipients in spool dir.
  void queue(const std::filesystem::path& dir, const std::string& id, size_t recipients, const std::string& body) {
    spooled_envelope e;
    e.queue_id = id;
    e.received = 1795513787;
    e.listener = "smarthost";
    e.sender = "s@example.org";
    for (size_t i = 0; i < recipients; ++i) {
      parsed_rcpt r;
      r.recipient = "r" + std::to_string(i) + "@example.com";
      e.recipients.push_back(r);
    }
    std::ofstream(queue_file(dir, id), std::ios::binary) << encode_envelope(e) << body;
    std::filesystem::permissions(queue_file(dir, id), std::filesystem::perms::owner_read |
                                                          std::filesystem::perms::owner_write);
  }

  void delivered(const std::filesystem::path& dir, const std::string& id, size_t index) {
    rcpt_status s;
    s.state = rcpt_state::delivered;
    s.time = 1795513800;
    s.attempts = 1;
    s.method = "tls";
    s.detail = "250 ok";
    append_status(status_file(dir, id), {{index, s}});
  }

  std::string bytes() { return sealgate::read_file(file_).value(); }
  void rewrite(const std::string& data) { std::ofstream(file_, std::ios::binary | std::ios::trunc) << data; }

  std::filesystem::path root_, a_, b_, file_;
};

const std::string id1 = "0006300000000001", id2 = "0006300000000042";

std::string refusal(const std::function<void()>& f) {
  try {
    f();
  } catch (const spool_move_error& e) {
    return e.what();
  }
  return "";
}

}  // namespace

TEST_F(SpoolMoveTest, ExportCarriesMessagesAndStatusAndEmptiesTheQueue) {
  queue(a_, id1, 2, "Subject: one\r\n\r\nbody one\r\n");
  queue(a_, id2, 1, "Subject: two\r\n\r\nbody two\r\n");
  delivered(a_, id1, 0);
  const std::string original = sealgate::read_file(queue_file(a_, id1)).value();
  auto summary = export_spool(a_, file_, "gw-a");
  EXPECT_EQ(summary.ids, (std::vector<std::string>{id1, id2}));
  EXPECT_EQ(summary.node, "gw-a");
  EXPECT_EQ(summary.bytes, std::filesystem::file_size(file_));
  EXPECT_TRUE(bytes().starts_with("sealgate-export 1 gw-a\nmessage " + id1 + " "));
  // The returning node finds nothing to deliver: the messages are in exported/.
  EXPECT_TRUE(list_queue(a_).empty());
  EXPECT_EQ(sealgate::read_file(a_ / "exported" / id1), original);
  EXPECT_TRUE(std::filesystem::exists(a_ / "exported" / (id1 + ".status")));
  EXPECT_FALSE(std::filesystem::exists(status_file(a_, id1)));
  spool returning(a_, sync_mode::file);
  EXPECT_TRUE(returning.recover().empty());

  auto index = verify_export(file_);
  ASSERT_EQ(index.messages.size(), 2u);
  EXPECT_EQ(index.node, "gw-a");

  auto imported = import_spool(b_, file_);
  EXPECT_EQ(imported.imported, (std::vector<std::string>{id1, id2}));
  EXPECT_TRUE(imported.refused.empty());
  ASSERT_EQ(imported.envelopes.size(), 2u);
  EXPECT_EQ(imported.envelopes[0].queue_id, id1);
  EXPECT_EQ(imported.envelopes[0].content_size, std::string("Subject: one\r\n\r\nbody one\r\n").size());
  // Same id, same bytes, same status: only the pending recipient is left.
  EXPECT_EQ(sealgate::read_file(queue_file(b_, id1)), original);
  EXPECT_TRUE(spool_file_complete(queue_file(b_, id1)));
  auto m = load_queued(b_, id1);
  ASSERT_TRUE(m);
  EXPECT_EQ(m->status[0].state, rcpt_state::delivered);
  EXPECT_EQ(m->status[0].detail, "250 ok");
  EXPECT_EQ(m->status[1].state, rcpt_state::pending);
  EXPECT_EQ(list_queue(b_), (std::vector<std::string>{id1, id2}));
  EXPECT_EQ(sealgate::read_file(b_ / "imported" / id1), "gw-a\n");
  EXPECT_TRUE(std::filesystem::is_empty(b_ / "incoming"));
}

TEST_F(SpoolMoveTest, SecondImportIsRefusedPerMessage) {
  queue(a_, id1, 1, "x\r\n");
  queue(a_, id2, 1, "y\r\n");
  export_spool(a_, file_, "gw-a");
  EXPECT_EQ(import_spool(b_, file_).imported.size(), 2u);
  // Delivered and gone from queue/ meanwhile: the marker still refuses it.
  remove_queued(b_, id1);
  auto again = import_spool(b_, file_);
  EXPECT_TRUE(again.imported.empty());
  ASSERT_EQ(again.refused.size(), 2u);
  EXPECT_EQ(again.refused[0], std::make_pair(id1, std::string("already imported")));
  EXPECT_EQ(again.refused[1], std::make_pair(id2, std::string("already imported")));
  EXPECT_FALSE(std::filesystem::exists(queue_file(b_, id1)));
  // Nor does the node it came from take it back.
  EXPECT_EQ(import_spool(a_, file_).refused[0].second, "exported from this spool");
}

TEST_F(SpoolMoveTest, DigestMismatchIsRefusedBeforeAnythingIsWritten) {
  queue(a_, id1, 1, "Subject: one\r\n\r\nbody one\r\n");
  queue(a_, id2, 1, "Subject: two\r\n\r\nbody two\r\n");
  export_spool(a_, file_, "gw-a");
  std::string data = bytes();
  auto at = data.find("body two");
  ASSERT_NE(at, std::string::npos);
  data[at] = 'B';
  rewrite(data);
  auto why = refusal([&] { import_spool(b_, file_); });
  EXPECT_NE(why.find("damaged: " + id2 + ": digest mismatch (queue file)"), std::string::npos) << why;
  // The first message was sound, but nothing at all was written.
  EXPECT_TRUE(list_queue(b_).empty());
  EXPECT_FALSE(std::filesystem::exists(b_ / "imported"));
}

TEST_F(SpoolMoveTest, DamagedTrailerIsRefused) {
  queue(a_, id1, 1, "x\r\n");
  export_spool(a_, file_, "gw-a");
  std::string data = bytes();
  // A digest that matches its message, but a count that does not.
  auto end = data.rfind("end 1 ");
  ASSERT_NE(end, std::string::npos);
  rewrite(data.substr(0, end) + "end 2 " + data.substr(end + 6));
  EXPECT_NE(refusal([&] { verify_export(file_); }).find("the trailer counts 2 messages, the file holds 1"),
            std::string::npos);
  // A message dropped from the file: the trailer's digest no longer matches.
  rewrite(data);
  std::string header = data.substr(0, data.find('\n') + 1);
  rewrite(header + data.substr(end, 4) + "0 " + data.substr(end + 6));
  EXPECT_NE(refusal([&] { verify_export(file_); }).find("digest mismatch in the trailer"), std::string::npos);
  EXPECT_NE(refusal([&] { verify_export(root_ / "missing"); }).find("open"), std::string::npos);
  rewrite("From: someone\n");
  EXPECT_NE(refusal([&] { verify_export(file_); }).find("not a sealgate export file"), std::string::npos);
}

TEST_F(SpoolMoveTest, TruncatedFileIsRefusedAtEveryLength) {
  queue(a_, id1, 2, "Subject: one\r\n\r\nbody one\r\n");
  delivered(a_, id1, 1);
  queue(a_, id2, 1, "Subject: two\r\n\r\nbody two\r\n");
  export_spool(a_, file_, "gw-a");
  const std::string data = bytes();
  verify_export(file_);
  for (size_t n = 0; n < data.size(); ++n) {
    rewrite(data.substr(0, n));
    auto why = refusal([&] { import_spool(b_, file_); });
    EXPECT_FALSE(why.empty()) << "cut at " << n;
    if (n > data.find('\n')) {
      EXPECT_NE(why.find("truncated"), std::string::npos) << "cut at " << n << ": " << why;
    }
  }
  EXPECT_TRUE(list_queue(b_).empty());
  rewrite(data + "more");
  EXPECT_NE(refusal([&] { verify_export(file_); }).find("data after the trailer"), std::string::npos);
}

TEST_F(SpoolMoveTest, ExportRunsTheRecoveryAndRefusesAnExistingFile) {
  queue(a_, id1, 1, "x\r\n");
  // Mode 0: a file a crash cut short, never acknowledged; not exported.
  queue(a_, id2, 1, "y\r\n");
  std::filesystem::permissions(queue_file(a_, id2), std::filesystem::perms::none);
  auto summary = export_spool(a_, file_, "unknown");
  EXPECT_EQ(summary.ids, std::vector<std::string>{id1});
  EXPECT_FALSE(std::filesystem::exists(queue_file(a_, id2)));
  EXPECT_TRUE(bytes().starts_with("sealgate-export 1 unknown\n"));
  EXPECT_NE(refusal([&] { export_spool(a_, file_, "unknown"); }).find("File exists"), std::string::npos);
}

TEST_F(SpoolMoveTest, ExportRefusesAMessageBeingDelivered) {
  queue(a_, id1, 1, "x\r\n");
  auto lock = queue_lock::try_lock(a_, id1);  // as a delivery pass holds it
  ASSERT_EQ(lock.status(), queue_lock::state::held);
  auto why = refusal([&] { export_spool(a_, file_, "gw-a"); });
  EXPECT_NE(why.find(id1 + ": being delivered"), std::string::npos) << why;
  EXPECT_FALSE(std::filesystem::exists(file_));
  EXPECT_EQ(list_queue(a_), std::vector<std::string>{id1});
}

TEST_F(SpoolMoveTest, AMoveThatFailsWithdrawsTheFile) {
  queue(a_, id1, 1, "x\r\n");
  std::ofstream(a_ / "exported") << "in the way";  // exported/ cannot be made
  auto why = refusal([&] { export_spool(a_, file_, "gw-a"); });
  EXPECT_NE(why.find("nothing exported"), std::string::npos) << why;
  // Never both in a file and in queue/: the file is gone, the message stays.
  EXPECT_FALSE(std::filesystem::exists(file_));
  EXPECT_EQ(list_queue(a_), std::vector<std::string>{id1});
}
