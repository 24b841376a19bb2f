// Operator actions on queued messages; see operator_actions.hpp.
#include "gateway/queue/operator_actions.hpp"

#include <chrono>
#include <string>
#include <utility>
#include <vector>

#include "gateway/record/database.hpp"
#include "gateway/spool/queue_state.hpp"

namespace sealgate::gateway {

deletion delete_queued_message(const std::filesystem::path& spool_dir, const sql::location& database_location,
                               std::string_view id, const std::string& actor) {
  deletion done;
  auto lock = queue_lock::try_lock(spool_dir, id);
  if (lock.status() == queue_lock::state::busy) {
    done.outcome = deletion::result::being_delivered;
    return done;
  }
  if (lock.status() != queue_lock::state::held) return done;
  // Read under the lock: a pass that ended just before may have delivered
  // recipients (or removed the message) since the file was opened.
  auto m = read_queued(lock.fd(), spool_dir, id, nullptr);
  if (!m) return done;
  int64_t now =
      std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count();
  std::vector<std::pair<size_t, rcpt_status>> changes;
  std::vector<attempt_row> rows;
  for (size_t i = 0; i < m->status.size(); ++i) {
    if (is_final(m->status[i].state)) continue;
    rcpt_status s = m->status[i];
    s.state = rcpt_state::deleted;
    s.time = now;
    s.detail = "deleted by an operator";
    changes.emplace_back(i, s);
    attempt_row r;
    r.queue_id = std::string(id);
    r.index = i;
    r.address = m->envelope.recipients[i].recipient;
    r.at = now;
    r.outcome = "deleted";
    r.attempted = false;  // no connection: the recipient's row changes, no attempt row
    r.reply = s.detail;
    r.actor = actor;
    rows.push_back(std::move(r));
  }
  // Status lines first: if the record cannot be written, the message is
  // still final in the spool and the gateway records it at its next pass.
  append_status(status_file(spool_dir, id), changes);
  database(database_location).record_attempts(rows);
  remove_queued(spool_dir, id);
  done.outcome = deletion::result::deleted;
  done.recipients_deleted = changes.size();
  return done;
}

}  // namespace sealgate::gateway
