// Inside the sql library only: how sql::open reaches each engine.
#pragma once
#include "common/sql.hpp"

namespace sealgate::sql {

connection_ptr open_sqlite_file(const std::filesystem::path& file, access how);
connection_ptr open_postgresql(const std::string& conninfo, access how, std::string_view schema);

}  // namespace sealgate::sql
