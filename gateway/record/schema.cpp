// The record's migrations, from its description; see schema.hpp.
#include "gateway/record/schema.hpp"

namespace sealgate::gateway {

static_assert(sqlite::description_is_consistent(schema::description),
              "gateway/record/schema.hpp: the schema description contradicts itself");

std::vector<std::string> migration_statements(int version) {
  return sqlite::migration_statements(schema::description, version);
}

void upgrade_schema(sqlite3* db, const std::filesystem::path& file) {
  sqlite::upgrade_schema(db, schema::description, file);
}

}  // namespace sealgate::gateway
