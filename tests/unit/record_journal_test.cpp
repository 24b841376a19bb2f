// The record's local journal (gateway/record/record_journal.hpp): what the
// writer could not commit is kept whole, in order, every field, and a damaged
// file is set aside rather than replayed or lost silently.
#include "gateway/record/record_journal.hpp"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

namespace sealgate::gateway {
namespace {

namespace fs = std::filesystem;

record_batch sample_batch() {
  record_batch b;
  b.id = new_batch_id();
  spooled_envelope m;
  m.queue_id = "0123456789ABCDEF";
  m.received = 1765000000;
  m.listener = "smarthost";
  m.client_address = "192.0.2.7";
  m.helo = "app.example";
  m.auth_user = "billing";
  m.tls_protocol = "TLSv1.3";
  m.tls_cipher = "TLS_AES_256_GCM_SHA384";
  m.relay_class = "auth";
  m.sender = "noreply@clinic.example";
  m.message_id = "<a@b>";
  m.content_size = 4096;
  m.recipients.push_back({"pat@example.org", {}});
  m.recipients.push_back({"", {}});  // an empty field survives as empty
  b.accepted.push_back(m);
  b.message_ids.emplace_back("0123456789ABCDEF", "<a@b>");
  attempt_row r;
  r.queue_id = "0123456789ABCDEF";
  r.index = 1;
  r.address = "pat@example.org";
  r.at = 1765000001;
  r.outcome = "delivered";
  r.attempted = false;
  r.method = "tls";
  r.rule = "phi";
  r.policy_sha256 = std::string(64, 'a');
  r.mx_host = "mx.example.org";
  r.mx_address = "192.0.2.25";
  r.tls_protocol = "TLSv1.3";
  r.tls_cipher = "TLS_AES_128_GCM_SHA256";
  r.certificate = "dane";
  r.reply = std::string("250 2.0.0 ok \xff\0 queued", 21);
  r.classes = "phi,pii";
  r.key_fingerprint = "ABCDEF";
  r.actor = "root";
  b.rows.push_back(r);
  b.tls_sessions.push_back({"2026-12-06", "example.org", "sts", "mx.example.org", "192.0.2.25", "success"});
  return b;
}

class RecordJournalTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/sealgate-recj-XXXXXX";
    dir_ = ::mkdtemp(tmpl);
  }
  void TearDown() override { fs::remove_all(dir_); }
  fs::path dir_;
};

TEST_F(RecordJournalTest, EveryFieldOfABatchSurvivesTheJournal) {
  auto b = sample_batch();
  auto decoded = decode_batch(encode_batch(b));
  ASSERT_TRUE(decoded);
  EXPECT_EQ(decoded->id, b.id);
  EXPECT_EQ(decoded->id.size(), 32u);
  ASSERT_EQ(decoded->accepted.size(), 1u);
  const auto& m = decoded->accepted[0];
  EXPECT_EQ(m.queue_id, "0123456789ABCDEF");
  EXPECT_EQ(m.received, 1765000000);
  EXPECT_EQ(m.auth_user, "billing");
  EXPECT_EQ(m.relay_class, "auth");
  EXPECT_EQ(m.message_id, "<a@b>");
  EXPECT_EQ(m.content_size, 4096u);
  ASSERT_EQ(m.recipients.size(), 2u);
  EXPECT_EQ(m.recipients[0].recipient, "pat@example.org");
  EXPECT_EQ(decoded->message_ids, b.message_ids);
  ASSERT_EQ(decoded->rows.size(), 1u);
  const auto& r = decoded->rows[0];
  EXPECT_EQ(r.index, 1u);
  EXPECT_EQ(r.at, 1765000001);
  EXPECT_FALSE(r.attempted);
  EXPECT_EQ(r.reply, b.rows[0].reply) << "every byte";
  EXPECT_EQ(r.actor, "root");
  EXPECT_EQ(r.key_fingerprint, "ABCDEF");
  EXPECT_EQ(r.certificate, "dane");
  ASSERT_EQ(decoded->tls_sessions.size(), 1u);
  EXPECT_EQ(decoded->tls_sessions[0].result_type, "success");
  auto bytes = encode_batch(b);
  for (size_t cut : {size_t{0}, size_t{3}, bytes.size() / 2, bytes.size() - 1})
    EXPECT_FALSE(decode_batch(std::string_view(bytes).substr(0, cut))) << "cut at " << cut;
  EXPECT_FALSE(decode_batch(bytes + "x")) << "trailing bytes";
}

TEST_F(RecordJournalTest, BatchesWaitInOrderAcrossRestartsAndGoOnceCommitted) {
  auto a = sample_batch(), b = sample_batch(), c = sample_batch();
  {
    record_journal j(dir_ / "records");
    EXPECT_TRUE(j.empty());
    ASSERT_FALSE(j.append(a));
    ASSERT_FALSE(j.append(b));
  }
  struct stat st {};
  ASSERT_EQ(::stat((dir_ / "records").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0700u);
  std::ofstream(dir_ / "records" / "0000000000000009.tmp") << "a write that never finished";
  record_journal j(dir_ / "records");
  ASSERT_FALSE(j.append(c));
  auto files = j.waiting();
  ASSERT_EQ(files.size(), 3u) << "the .tmp file is not a batch";
  EXPECT_GT(j.bytes(), 0u);
  ASSERT_EQ(::stat(files[0].c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  std::vector<std::string> ids;
  for (const auto& f : files) ids.push_back(j.read(f)->id);
  EXPECT_EQ(ids, (std::vector<std::string>{a.id, b.id, c.id}));
  j.remove(files[0]);
  EXPECT_EQ(j.waiting().size(), 2u);
}

TEST_F(RecordJournalTest, ADamagedBatchIsSetAsideNotReplayed) {
  record_journal j(dir_);
  ASSERT_FALSE(j.append(sample_batch()));
  auto file = j.waiting().at(0);
  {
    std::fstream f(file, std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(-5, std::ios::end);
    f.put('!');
  }
  EXPECT_FALSE(j.read(file));
  EXPECT_TRUE(j.empty());
  auto aside = file;
  aside.replace_extension(".corrupt");
  EXPECT_TRUE(fs::exists(aside));
}

}  // namespace
}  // namespace sealgate::gateway
