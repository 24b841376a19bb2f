// The record's migrations, from its description; see schema.hpp.
#include "gateway/record/schema.hpp"

#include <stdexcept>

namespace sealgate::gateway {

static_assert(sqlite::description_is_consistent(schema::description),
              "gateway/record/schema.hpp: the schema description contradicts itself");

std::vector<std::string> migration_statements(int version) {
  return sqlite::migration_statements(schema::description, version);
}

sqlite::connection open_record_read_only(const std::filesystem::path& file) {
  auto db = sqlite::open_read_only(file);
  int version = stored_schema_version(db.get());
  if (version < schema::newest_version)
    throw std::runtime_error(file.string() + ": schema version " + std::to_string(version) + ", this sealgate reads " +
                             std::to_string(schema::newest_version) + ": start the gateway once to upgrade it");
  if (version > schema::newest_version)
    throw std::runtime_error(file.string() + ": schema version " + std::to_string(version) +
                             " is newer than this sealgate knows (" + std::to_string(schema::newest_version) + ")");
  return db;
}

void upgrade_schema(sqlite3* db, const std::filesystem::path& file) {
  sqlite::upgrade_schema(db, schema::description, file);
}

}  // namespace sealgate::gateway
