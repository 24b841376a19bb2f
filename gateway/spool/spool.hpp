// The durable spool: one file per accepted message in queue/ (written there
// with mode 0 and made 0600 when complete in journal mode; written to incoming/
// and renamed into queue/ otherwise, and for large messages), durable before
// the session may answer 250. Group
// commit: the committer thread makes every message that is waiting durable in
// one pass (how: sync_mode). Must never report a message committed before its
// bytes are on disk in a form that a restart finds.
#pragma once
#include <boost/asio/any_completion_handler.hpp>
#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/thread_pool.hpp>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "common/unique_fd.hpp"
#include "gateway/config/config.hpp"
#include "gateway/mail/envelope.hpp"
#include "gateway/spool/spool_journal.hpp"

namespace sealgate::gateway {

// The mode of a complete queue/ file. A journal-mode file is created with mode
// 0 and gets this mode once its bytes are all written, so a file that a crash
// cut short is told apart (and was never acknowledged).
inline constexpr unsigned spool_file_mode = 0600;

// True for a queue/ file whose writing finished (its mode is not 0).
bool spool_file_complete(const std::filesystem::path& p);

// Serialises the envelope header that precedes the content in a spool file.
std::string encode_envelope(const spooled_envelope& e);
// Parses a spool file's envelope header; content_offset receives where the
// content starts. False for anything malformed.
bool decode_envelope(std::string_view file, spooled_envelope& out, size_t& content_offset);

struct spool_stats {
  uint64_t commits = 0;       // messages made durable
  uint64_t file_syncs = 0;    // fdatasync calls (of message files, or of the journal)
  uint64_t dir_syncs = 0;     // fsync calls of queue/ (and of journal/ for a new segment)
  uint64_t fs_syncs = 0;      // syncfs calls (a group in filesystem mode, a checkpoint in journal mode)
  uint64_t checkpoint_failures = 0;  // journal checkpoints whose syncfs or clean-up failed (retried)
  uint64_t replayed = 0;      // queue/ files that recover() wrote again from the journal
};


class spool {
 public:
  explicit spool(std::filesystem::path dir, sync_mode mode = sync_mode::journal);
  ~spool();
  spool(const spool&) = delete;
  spool& operator=(const spool&) = delete;

  // Creates incoming/ and queue/ (0700), removes incoming/ leftovers (never
  // acknowledged), replays the journal of an earlier run (after a reboot:
  // spool_journal.hpp) and retires it, moves files whose envelope does not
  // parse to corrupt/, and returns the ids of committed messages in queue/,
  // oldest first. Throws when the journal cannot be replayed.
  std::vector<std::string> recover();
  // Ids that recover() moved to corrupt/.
  const std::vector<std::string>& corrupt() const { return corrupt_; }
  // The envelope of a waiting message, read from its queue/ file (content_size
  // from the file's size); nullopt when the file is gone or malformed.
  std::optional<spooled_envelope> read_envelope(const std::string& id) const;

  // One message being received: kept in memory up to memory_limit, then
  // streamed to an incoming/ file (0600) so that memory stays flat for large ones.
  class message {
   public:
    message(const message&) = delete;
    message& operator=(const message&) = delete;
    ~message();
    const std::string& id() const { return id_; }
    spooled_envelope envelope;  // what the session accepted; moved to on_committed
    // Logged (info, with the queue id) once the message is durable, before
    // on_committed hands it to delivery: its "queued" line always comes
    // before any line about its delivery.
    std::string accepted_log;
    // Appends content; false after any write error (the session then answers 451).
    bool write(std::string_view bytes);
    // Drops what was written: the message was refused.
    void abort();

    // Content larger than this goes to a file in incoming/ while it arrives.
    static constexpr size_t memory_limit = 256 * 1024;

   private:
    friend class spool;
    message() = default;
    bool open_file();
    bool spill();
    boost::system::error_code persist(bool sync_data);
    boost::system::error_code write_unsynced();
    std::string id_;
    std::filesystem::path incoming_, final_;
    unique_fd fd_;
    std::string buffer_;
    bool failed_ = false;
  };

  std::unique_ptr<message> begin();

  // Makes the message durable and calls handler(error_code) on its executor
  // once it is. After an error the message file is removed.
  template <typename Token>
  auto async_commit(std::unique_ptr<message> m, Token&& token) {
    return boost::asio::async_initiate<Token, void(boost::system::error_code)>(
        [this](auto handler, std::unique_ptr<message> msg) {
          // The handler resumes on its own executor (the session's strand).
          boost::asio::any_io_executor ex = boost::asio::get_associated_executor(handler);
          enqueue(std::move(msg), std::move(ex),
                  boost::asio::any_completion_handler<void(boost::system::error_code)>(std::move(handler)));
        },
        token, std::move(m));
  }

  // Called on the committer thread after each group, with the envelopes of
  // what was made durable (moved out of the messages); used to hand accepted
  // messages to the database and the queue off the reply path. It must not
  // block: the next group waits for it.
  using committed_handler = std::function<void(std::vector<spooled_envelope>)>;
  void on_committed(committed_handler f) { on_committed_ = std::move(f); }

  spool_stats stats() const;
  const std::filesystem::path& queue_dir() const { return queue_; }

  // This node's number in a cluster (0 to 63; 0 for a gateway alone): six
  // bits of every queue id made from now on, so that two nodes accepting in
  // the same microsecond never make the same id, and an id moved to another
  // node (queue import) can never meet one made there.
  void set_node_number(unsigned number);

  // Stops the committer after finishing what is queued.
  void stop();

 private:
  struct pending {
    std::unique_ptr<message> msg;
    boost::asio::any_io_executor executor;
    boost::asio::any_completion_handler<void(boost::system::error_code)> handler;
  };
  void enqueue(std::unique_ptr<message> m, boost::asio::any_io_executor ex,
               boost::asio::any_completion_handler<void(boost::system::error_code)> h);
  void run_committer();
  void run_checkpointer();
  void checkpoint();
  void replay_journal();
  std::string next_id();

  std::filesystem::path dir_, incoming_, queue_;
  sync_mode mode_;
  unique_fd queue_fd_;
  mutable std::mutex mutex_;
  std::condition_variable wake_;
  std::vector<pending> waiting_;
  bool stopping_ = false;
  spool_stats stats_;
  committed_handler on_committed_;
  uint64_t last_microsecond_ = 0;  // of the last id made
  unsigned sequence_ = 0;           // ids made in that microsecond, less one
  unsigned node_number_ = 0;
  std::vector<std::string> corrupt_;
  std::thread committer_;
  std::unique_ptr<spool_journal> journal_;  // sync_mode::journal only
  std::condition_variable checkpoint_wake_;
  bool checkpoint_stopping_ = false;
  bool checkpoint_ok_ = true;  // the last checkpoint succeeded
  std::thread checkpointer_;
  // How long a checkpoint waits for the next: bounds how much of the journal a
  // reboot replays, and how much unsynced work a syncfs meets.
  static constexpr std::chrono::milliseconds checkpoint_interval{1000};
  // fdatasync is a wait for the disk, not CPU: a few threads let one group's
  // syncs overlap.
  static constexpr int sync_thread_count = 8;
  boost::asio::thread_pool sync_threads_;
};

// The name of the node this spool belongs to, kept in DIR/node-id: the
// configured one (node.id), else the one kept there, else 8 random hex digits
// written there once. The name travels with the spool, as a node that returns
// after a failure must be the node it was. Throws std::runtime_error when the
// configured name differs from the one the spool holds (the spool of another
// node), or when the file cannot be read or written.
std::string spool_node_id(const std::filesystem::path& dir, const std::string& configured);

}  // namespace sealgate::gateway
