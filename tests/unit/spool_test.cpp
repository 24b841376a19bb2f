// The spool: committed messages are complete files with their envelope, mode
// 0600; leftovers of unacknowledged messages disappear on recovery.
#include <gtest/gtest.h>

#include <set>
#include <sys/stat.h>

#include <boost/asio/bind_executor.hpp>
#include <boost/asio/error.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <algorithm>
#include <fstream>
#include <map>
#include <thread>
#include <sstream>

#include "gateway/spool/spool.hpp"

using namespace sealgate::gateway;

namespace {
class SpoolTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/sealgate-spool-XXXXXX";
    dir_ = mkdtemp(tmpl);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  std::filesystem::path dir_;
};

spooled_envelope sample(const std::string& id) {
  spooled_envelope e;
  e.queue_id = id;
  e.received = 1795513787;
  e.listener = "smarthost";
  e.client_address = "127.0.0.1";
  e.helo = "client with space";
  e.auth_user = "alice";
  e.tls_protocol = "TLSv1.3";
  e.tls_cipher = "TLS_AES_256_GCM_SHA384";
  e.sender = "";
  e.params.ret = "HDRS";
  e.params.envid = "abc+2B";
  e.params.smtputf8 = true;
  e.params.requiretls = true;
  parsed_rcpt r;
  r.recipient = "b@example.com";
  r.params.notify = "SUCCESS,FAILURE";
  r.params.orcpt = "rfc822;b+40example.com";
  e.recipients.push_back(r);
  parsed_rcpt r2;
  r2.recipient = "\"john doe\"@example.com";
  e.recipients.push_back(r2);
  return e;
}

// The journal's segments (spare files, kept for reuse, are not segments).
std::vector<std::filesystem::path> journal_segments(const std::filesystem::path& journal) {
  std::vector<std::filesystem::path> out;
  for (const auto& e : std::filesystem::directory_iterator(journal))
    if (!e.path().filename().string().starts_with("spare-")) out.push_back(e.path());
  std::sort(out.begin(), out.end());
  return out;
}

std::string slurp(const std::filesystem::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}
}  // namespace

TEST_F(SpoolTest, EnvelopeRoundTrip) {
  auto e = sample("ID1");
  std::string file = encode_envelope(e) + "Subject: x\r\n\r\nbody\r\n";
  spooled_envelope d;
  size_t off = 0;
  ASSERT_TRUE(decode_envelope(file, d, off));
  EXPECT_EQ(d.helo, "client with space");
  EXPECT_EQ(d.sender, "");
  EXPECT_EQ(d.auth_user, "alice");
  EXPECT_EQ(d.tls_cipher, "TLS_AES_256_GCM_SHA384");
  EXPECT_EQ(d.params.envid, "abc+2B");
  EXPECT_TRUE(d.params.smtputf8);
  EXPECT_TRUE(d.params.requiretls);
  ASSERT_EQ(d.recipients.size(), 2u);
  EXPECT_EQ(d.recipients[0].params.orcpt, "rfc822;b+40example.com");
  EXPECT_EQ(d.recipients[1].recipient, "\"john doe\"@example.com");
  EXPECT_EQ(file.substr(off), "Subject: x\r\n\r\nbody\r\n");
  EXPECT_FALSE(decode_envelope("sealgate-spool 1\nid X\n", d, off));  // truncated: no separator
}

class SpoolCommitTest : public SpoolTest, public ::testing::WithParamInterface<std::tuple<size_t, sync_mode>> {
 protected:
  size_t size() const { return std::get<0>(GetParam()); }
};

// In memory until the commit, and spilled to incoming/ while arriving; both sync modes.
INSTANTIATE_TEST_SUITE_P(SizesAndModes, SpoolCommitTest,
                         ::testing::Combine(::testing::Values(size_t{4096}, spool::message::memory_limit * 3 + 17),
                                            ::testing::Values(sync_mode::journal, sync_mode::file,
                                                              sync_mode::filesystem)));

TEST_P(SpoolCommitTest, CommitMakesAPrivateCompleteFile) {
  const sync_mode mode = std::get<1>(GetParam());
  spool s(dir_, mode);
  EXPECT_TRUE(s.recover().empty());
  boost::asio::io_context io;
  auto m = s.begin();
  std::string id = m->id();
  m->envelope = sample(id);
  ASSERT_TRUE(m->write(encode_envelope(m->envelope)));
  ASSERT_TRUE(m->write(std::string(size(), 'x')));
  boost::system::error_code result = boost::asio::error::would_block;
  auto work = boost::asio::make_work_guard(io);
  s.async_commit(std::move(m), boost::asio::bind_executor(io, [&](boost::system::error_code ec) {
                   result = ec;
                   work.reset();
                 }));
  io.run_for(std::chrono::seconds(10));
  EXPECT_FALSE(result) << result.message();
  auto path = dir_ / "queue" / id;
  struct stat st{};
  ASSERT_EQ(::stat(path.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  ASSERT_EQ(::stat((dir_ / "queue").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0700u);
  spooled_envelope d;
  size_t off = 0;
  std::string content = slurp(path);
  ASSERT_TRUE(decode_envelope(content, d, off));
  EXPECT_EQ(content.size() - off, size());
  EXPECT_TRUE(std::filesystem::is_empty(dir_ / "incoming"));
  auto st2 = s.stats();
  EXPECT_EQ(st2.commits, 1u);
  // Journal mode: a small message is one journal fdatasync; one that spilled
  // to a file while arriving keeps that file (its fdatasync, then queue/'s).
  const bool spilled = size() > spool::message::memory_limit;
  EXPECT_EQ(st2.file_syncs, mode == sync_mode::filesystem ? 0u : 1u);
  EXPECT_EQ(st2.dir_syncs, mode == sync_mode::file || (mode == sync_mode::journal && spilled) ? 1u : 0u);
  EXPECT_EQ(st2.fs_syncs, mode == sync_mode::filesystem ? 1u : 0u);
  if (mode == sync_mode::journal) {
    // Until a checkpoint, the record is in a segment; stop() checkpoints.
    EXPECT_EQ(journal_segments(dir_ / "journal").size(), spilled ? 0u : 1u);
    s.stop();
    EXPECT_TRUE(journal_segments(dir_ / "journal").empty());
    EXPECT_EQ(s.stats().fs_syncs, spilled ? 0u : 1u);
  }
}

TEST_F(SpoolTest, AbortLeavesNothingAndRecoveryClearsIncoming) {
  {
    spool s(dir_);
    s.recover();
    auto m = s.begin();
    m->write("small");
    EXPECT_TRUE(std::filesystem::is_empty(dir_ / "incoming"));  // small content stays in memory
    m->write(std::string(spool::message::memory_limit, 'x'));
    EXPECT_EQ(std::distance(std::filesystem::directory_iterator(dir_ / "incoming"), {}), 1);
    m->abort();
    EXPECT_TRUE(std::filesystem::is_empty(dir_ / "incoming"));
    // Simulate a crash mid-message: a leftover in incoming/ and one committed file.
    std::ofstream(dir_ / "incoming" / "LEFTOVER") << "half a message";
    std::ofstream(dir_ / "queue" / "0000000000000001") << encode_envelope(sample("0000000000000001")) << "body\r\n";
    std::ofstream(dir_ / "queue" / "0000000000000002") << "sealgate-spool 1\nid 0000000000000002\n";  // damaged
  }
  spool s(dir_);
  auto ids = s.recover();
  ASSERT_EQ(ids.size(), 1u);
  EXPECT_EQ(ids[0], "0000000000000001");
  EXPECT_TRUE(std::filesystem::is_empty(dir_ / "incoming"));
  ASSERT_EQ(s.corrupt().size(), 1u);
  EXPECT_TRUE(std::filesystem::exists(dir_ / "corrupt" / "0000000000000002"));
}

TEST_F(SpoolTest, IdsAreUniqueAndOrdered) {
  spool s(dir_);
  s.recover();
  std::string prev;
  for (int i = 0; i < 1000; ++i) {
    auto m = s.begin();
    EXPECT_GT(m->id(), prev);
    prev = m->id();
  }
}

TEST_F(SpoolTest, IdsCarryTheNodeNumberSoTwoNodesNeverMakeTheSameId) {
  spool a(dir_ / "a"), b(dir_ / "b");
  a.recover();
  b.recover();
  a.set_node_number(1);
  b.set_node_number(63);
  EXPECT_THROW(b.set_node_number(64), std::invalid_argument);
  std::set<std::string> seen;
  for (int i = 0; i < 2000; ++i) {
    // Many ids per microsecond: the sequence runs out and borrows the next.
    for (spool* s : {&a, &b}) {
      auto id = s->begin()->id();
      ASSERT_EQ(id.size(), 16u);
      ASSERT_TRUE(seen.insert(id).second) << id;
      uint64_t bits = std::stoull(id, nullptr, 16);
      EXPECT_EQ((bits >> 6) & 63, s == &a ? 1u : 63u) << id;
    }
  }
}

TEST_F(SpoolTest, TheNodeIdIsKeptInTheSpoolAndAnotherNodesSpoolIsRefused) {
  std::filesystem::create_directories(dir_ / "n");
  auto made = spool_node_id(dir_ / "n", "");
  EXPECT_EQ(made.size(), 8u);
  EXPECT_TRUE(valid_node_id(made));
  EXPECT_EQ(spool_node_id(dir_ / "n", ""), made) << "made once, then kept";
  EXPECT_EQ(std::filesystem::status(dir_ / "n" / "node-id").permissions() & std::filesystem::perms::all,
            std::filesystem::perms::owner_read | std::filesystem::perms::owner_write);
  EXPECT_EQ(spool_node_id(dir_ / "n", made), made);
  try {
    spool_node_id(dir_ / "n", "gw-b");
    FAIL() << "the spool of another node";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("belongs to node " + made + ", not gw-b"), std::string::npos) << e.what();
  }
  // A first start: the spool does not exist yet (recover() makes it later).
  EXPECT_EQ(spool_node_id(dir_ / "c", "gw-a"), "gw-a");
  EXPECT_EQ(std::filesystem::status(dir_ / "c").permissions() & std::filesystem::perms::all,
            std::filesystem::perms::owner_all);
  EXPECT_FALSE(valid_node_id("GW-A"));
  EXPECT_FALSE(valid_node_id(""));
  EXPECT_FALSE(valid_node_id(std::string(33, 'a')));
  EXPECT_FALSE(valid_node_id("gw a"));
}

namespace {
// Commits one message of the given content through a journal-mode spool.
std::string commit_one(spool& s, const std::string& body) {
  boost::asio::io_context io;
  auto m = s.begin();
  std::string id = m->id();
  m->envelope = sample(id);
  m->write(encode_envelope(m->envelope));
  m->write(body);
  boost::system::error_code result = boost::asio::error::would_block;
  s.async_commit(std::move(m), boost::asio::bind_executor(io, [&](boost::system::error_code ec) { result = ec; }));
  while (result == boost::asio::error::would_block) io.run_for(std::chrono::milliseconds(10)), io.restart();
  EXPECT_FALSE(result) << result.message();
  return id;
}

// The one segment a test left in journal/, with its header's boot id replaced.
void pretend_written_in_another_boot(const std::filesystem::path& journal) {
  for (const auto& path : journal_segments(journal)) {
    std::string data = slurp(path);
    auto at = data.find(current_boot_id());
    ASSERT_NE(at, std::string::npos);
    data.replace(at, 36, "00000000-0000-0000-0000-000000000000");
    std::ofstream(path, std::ios::binary | std::ios::trunc) << data;
  }
}

// Leaves the spool as a crash would: the committer and checkpointer stop
// without the final checkpoint, so the segment stays.
struct crashed_spool {
  std::filesystem::path dir;
  std::vector<std::string> ids;
  std::map<std::string, std::string> files;
};
crashed_spool crash_after_commits(const std::filesystem::path& dir, int n) {
  crashed_spool c{dir, {}, {}};
  std::filesystem::create_directories(dir / "journal");
  // Keep a copy of each segment as it is before stop() retires it.
  std::map<std::filesystem::path, std::string> segments;
  {
    spool s(dir, sync_mode::journal);
    s.recover();
    for (int i = 0; i < n; ++i) c.ids.push_back(commit_one(s, "body " + std::to_string(i) + "\r\n"));
    for (const auto& path : journal_segments(dir / "journal")) segments[path] = slurp(path);
    for (const auto& id : c.ids) c.files[id] = slurp(dir / "queue" / id);
  }
  for (const auto& [path, data] : segments) std::ofstream(path, std::ios::binary) << data;
  return c;
}
}  // namespace

TEST_F(SpoolTest, AMessageRefusedForWantOfItsFileIsNeverJournaled) {
  // A message over 256 KiB whose incoming/ file could not be created was
  // answered 451 but journaled cut short with a valid digest: after a power
  // loss 292,181 of its 409,660 bytes were restored and delivered.
  auto c = crash_after_commits(dir_, 1);  // a segment in place, from "another boot" below
  std::map<std::filesystem::path, std::string> segments;
  std::string refused_id;
  {
    spool s(dir_, sync_mode::journal);
    s.recover();
    std::filesystem::remove_all(dir_ / "incoming");
    std::ofstream(dir_ / "incoming") << "a file where the directory was: open(2) fails";
    boost::asio::io_context io;
    auto m = s.begin();
    refused_id = m->id();
    m->envelope = sample(refused_id);
    m->write(encode_envelope(m->envelope));
    std::string body = "REFUSED-MARKER\r\n" + std::string(400 * 1024, 'x') + "\r\n";
    EXPECT_FALSE(m->write(body));
    boost::system::error_code result = boost::asio::error::would_block;
    s.async_commit(std::move(m), boost::asio::bind_executor(io, [&](boost::system::error_code ec) { result = ec; }));
    while (result == boost::asio::error::would_block) io.run_for(std::chrono::milliseconds(10)), io.restart();
    EXPECT_TRUE(result) << "a message that was not stored whole was acknowledged";
    for (const auto& path : journal_segments(dir_ / "journal")) {
      segments[path] = slurp(path);
      EXPECT_EQ(segments[path].find("REFUSED-MARKER"), std::string::npos) << path;
    }
  }
  std::filesystem::remove(dir_ / "incoming");
  for (const auto& [path, data] : segments) std::ofstream(path, std::ios::binary) << data;
  pretend_written_in_another_boot(dir_ / "journal");
  spool s(dir_, sync_mode::journal);
  auto ids = s.recover();
  EXPECT_EQ(std::count(ids.begin(), ids.end(), refused_id), 0);
  EXPECT_FALSE(std::filesystem::exists(dir_ / "queue" / refused_id));
}

TEST_F(SpoolTest, JournalAfterAProcessCrashReplaysNothing) {
  // Same boot: the page cache held every queue/ file, so one that is gone was
  // delivered and removed; bringing it back would deliver it twice.
  auto c = crash_after_commits(dir_, 3);
  ASSERT_FALSE(journal_segments(dir_ / "journal").empty());
  std::filesystem::remove(dir_ / "queue" / c.ids[1]);
  spool s(dir_, sync_mode::journal);
  auto ids = s.recover();
  EXPECT_EQ(ids, (std::vector<std::string>{c.ids[0], c.ids[2]}));
  EXPECT_EQ(s.stats().replayed, 0u);
  EXPECT_TRUE(journal_segments(dir_ / "journal").empty());  // retired at once
}

TEST_F(SpoolTest, JournalAfterARebootRestoresMissingAndDamagedFiles) {
  auto c = crash_after_commits(dir_, 3);
  pretend_written_in_another_boot(dir_ / "journal");
  // What a power loss can leave of unsynced files: one gone, one cut short.
  std::filesystem::remove(dir_ / "queue" / c.ids[0]);
  std::filesystem::resize_file(dir_ / "queue" / c.ids[2], 10);
  spool s(dir_, sync_mode::file);  // the mode changed since: the journal is replayed anyway
  auto ids = s.recover();
  EXPECT_EQ(ids, c.ids);
  for (const auto& id : c.ids) EXPECT_EQ(slurp(dir_ / "queue" / id), c.files[id]) << id;
  EXPECT_EQ(s.stats().replayed, 2u);
  EXPECT_TRUE(journal_segments(dir_ / "journal").empty());
  struct stat st{};
  ASSERT_EQ(::stat((dir_ / "queue" / c.ids[0]).c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
}

TEST_F(SpoolTest, AQueueFileLeftWithModeZeroWasNeverAcknowledged) {
  // Journal mode writes a queue/ file under its final name with mode 0 and
  // gives it 0600 once complete: a crash in between leaves mode 0.
  auto c = crash_after_commits(dir_, 2);
  const auto half = dir_ / "queue" / "00000000000000AB";
  std::ofstream(half) << encode_envelope(sample("00000000000000AB")) << "cut sh";
  ASSERT_EQ(::chmod(half.c_str(), 0), 0);
  spool s(dir_, sync_mode::journal);
  EXPECT_EQ(s.recover(), c.ids);  // same boot: nothing replayed, the cut file gone
  EXPECT_FALSE(std::filesystem::exists(half));
  EXPECT_TRUE(s.corrupt().empty());
}

TEST_F(SpoolTest, JournalAfterARebootRestoresAFileWhoseModeChangeWasLost) {
  // The bytes reached the disk but the chmod to 0600 did not: the record
  // says the message was acknowledged, so the file is rewritten, not removed.
  auto c = crash_after_commits(dir_, 1);
  pretend_written_in_another_boot(dir_ / "journal");
  const auto path = dir_ / "queue" / c.ids[0];
  ASSERT_EQ(::chmod(path.c_str(), 0), 0);
  spool s(dir_, sync_mode::journal);
  EXPECT_EQ(s.recover(), c.ids);
  EXPECT_EQ(s.stats().replayed, 1u);
  EXPECT_EQ(slurp(path), c.files[c.ids[0]]);
  struct stat st{};
  ASSERT_EQ(::stat(path.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
}

TEST_F(SpoolTest, JournalTornTailIsIgnored) {
  auto c = crash_after_commits(dir_, 2);
  pretend_written_in_another_boot(dir_ / "journal");
  for (const auto& id : c.ids) std::filesystem::remove(dir_ / "queue" / id);
  // The second record loses its last byte (its digest): a write that no 250 covered.
  auto segment = journal_segments(dir_ / "journal").at(0);
  std::filesystem::resize_file(segment, std::filesystem::file_size(segment) - 1);
  spool s(dir_, sync_mode::journal);
  EXPECT_EQ(s.recover(), std::vector<std::string>{c.ids[0]});
  EXPECT_EQ(s.stats().replayed, 1u);
}

TEST_F(SpoolTest, JournalRecordWithAFlippedByteEndsTheSegment) {
  auto c = crash_after_commits(dir_, 2);
  pretend_written_in_another_boot(dir_ / "journal");
  for (const auto& id : c.ids) std::filesystem::remove(dir_ / "queue" / id);
  auto segment = journal_segments(dir_ / "journal").at(0);
  std::string data = slurp(segment);
  auto at = data.find("body 0");
  ASSERT_NE(at, std::string::npos);
  data[at] = 'B';
  std::ofstream(segment, std::ios::binary | std::ios::trunc) << data;
  spool s(dir_, sync_mode::journal);
  EXPECT_TRUE(s.recover().empty());
}

TEST_F(SpoolTest, JournalCheckpointRetiresSegments) {
  spool s(dir_, sync_mode::journal);
  s.recover();
  commit_one(s, "x\r\n");
  ASSERT_FALSE(journal_segments(dir_ / "journal").empty());
  // The checkpointer runs about once a second.
  for (int i = 0; i < 50 && !journal_segments(dir_ / "journal").empty(); ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  EXPECT_TRUE(journal_segments(dir_ / "journal").empty());
  EXPECT_GE(s.stats().fs_syncs, 1u);
  // A new segment after the rotation. The checkpointer may run again between
  // a commit and the look at journal/ (seen once under load): then the next
  // commit must open a segment in its turn.
  bool segment_seen = false;
  for (int i = 0; i < 3 && !segment_seen; ++i) {
    commit_one(s, "y" + std::to_string(i) + "\r\n");
    segment_seen = !journal_segments(dir_ / "journal").empty();
  }
  EXPECT_TRUE(segment_seen);
}

TEST_F(SpoolTest, JournalReusesRetiredFilesWithoutReplayingTheirOldRecords) {
  std::vector<std::string> old_ids, new_ids;
  std::map<std::filesystem::path, std::string> segments;
  ino_t reused = 0;
  {
    spool s(dir_, sync_mode::journal);
    s.recover();
    // Three long messages, then a checkpoint: their segment becomes a spare.
    for (int i = 0; i < 3; ++i) old_ids.push_back(commit_one(s, std::string(20000, 'o') + "\r\n"));
    for (int i = 0; i < 50 && !journal_segments(dir_ / "journal").empty(); ++i)
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    ASSERT_TRUE(journal_segments(dir_ / "journal").empty());
    std::vector<std::filesystem::path> spares;
    for (const auto& e : std::filesystem::directory_iterator(dir_ / "journal")) spares.push_back(e.path());
    ASSERT_EQ(spares.size(), 1u);
    struct stat st{};
    ASSERT_EQ(::stat(spares[0].c_str(), &st), 0);
    EXPECT_EQ(slurp(spares[0]).substr(0, 16), std::string(16, '\0'));  // unreadable before it was renamed
    reused = st.st_ino;
    // One message of the same size: its record overwrites exactly the first
    // old one, so the parser meets the second old record where a next record
    // would be. Only the segment's nonce in the digests tells it apart.
    new_ids.push_back(commit_one(s, std::string(20000, 'n') + "\r\n"));
    auto now = journal_segments(dir_ / "journal");
    ASSERT_EQ(now.size(), 1u);
    ASSERT_EQ(::stat(now[0].c_str(), &st), 0);
    EXPECT_EQ(st.st_ino, reused);
    segments[now[0]] = slurp(now[0]);
    EXPECT_NE(segments[now[0]].find(std::string(1000, 'o')), std::string::npos);
  }
  // A power loss: the segment as it was, from another boot, and every queue
  // file gone. Only the new record may come back, never the old ones.
  for (const auto& [path, data] : segments) std::ofstream(path, std::ios::binary | std::ios::trunc) << data;
  pretend_written_in_another_boot(dir_ / "journal");
  for (const auto& e : std::filesystem::directory_iterator(dir_ / "queue")) std::filesystem::remove(e.path());
  spool s(dir_, sync_mode::journal);
  EXPECT_EQ(s.recover(), new_ids);
  EXPECT_EQ(s.stats().replayed, 1u);
}
