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
  sql::require_newest_schema(db.get(), schema::description, where.describe());
  return db;
}

void upgrade_schema(sql::connection* db, const std::string& place) {
  sql::upgrade_schema(db, schema::description, place);
}

}  // namespace sealgate::gateway
