// The record's migrations, from its description; see schema.hpp.
#include "gateway/record/schema.hpp"

#include <stdexcept>

namespace sealgate::gateway {

static_assert(sql::description_is_consistent(schema::description),
              "gateway/record/schema.hpp: the schema description contradicts itself");

std::vector<std::string> migration_statements(int version, sql::engine e) {
  return sql::migration_statements(schema::description, version, e);
}

sql::connection_ptr open_record_read_only(const sql::location& where) {
  auto db = sql::open(where, sql::access::read_only, schema::schema_name);
  const std::string place = where.describe();
  int version = stored_schema_version(db.get());
  if (version < schema::newest_version)
    throw std::runtime_error(place + ": schema version " + std::to_string(version) + ", this sealgate reads " +
                             std::to_string(schema::newest_version) + ": start the gateway once to upgrade it");
  if (version > schema::newest_version)
    throw std::runtime_error(place + ": schema version " + std::to_string(version) +
                             " is newer than this sealgate knows (" + std::to_string(schema::newest_version) + ")");
  return db;
}

void upgrade_schema(sql::connection* db, const std::string& place) {
  sql::upgrade_schema(db, schema::description, place);
}

}  // namespace sealgate::gateway
