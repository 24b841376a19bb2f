// Databases for the tests that run on both engines: a SQLite file in a
// temporary directory, or a fresh database on the PostgreSQL server that
// ctest starts for the unit tests (fixture "postgresql", tests/CMakeLists.txt:
// SEALGATE_TEST_POSTGRESQL holds its connection words without a dbname).
#pragma once
#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

#include "common/sql.hpp"

namespace sealgate::testing {

inline std::string engine_name(sql::engine e) { return e == sql::engine::sqlite ? "SQLite" : "PostgreSQL"; }

// One database, gone with the object.
class test_database {
 public:
  explicit test_database(sql::engine e) : engine_(e) {
    if (e == sql::engine::sqlite) {
      char tmpl[] = "/tmp/sealgate-sql-XXXXXX";
      dir_ = ::mkdtemp(tmpl);
      std::ofstream(dir_ / "t.sqlite");
      where_ = sql::location::sqlite_file(dir_ / "t.sqlite");
      return;
    }
    const char* server = std::getenv("SEALGATE_TEST_POSTGRESQL");
    if (!server || !*server)
      throw std::runtime_error("SEALGATE_TEST_POSTGRESQL is not set: run the PostgreSQL tests through ctest");
    static std::atomic<int> counter{0};
    name_ = "t" + std::to_string(::getpid()) + "_" + std::to_string(counter++);
    server_ = server;
    auto admin = sql::open(sql::location::parse(server_ + " dbname=postgres"), sql::access::read_write, "public");
    admin->exec("DROP DATABASE IF EXISTS " + name_);
    admin->exec("CREATE DATABASE " + name_);
    where_ = sql::location::parse(server_ + " dbname=" + name_);
  }
  ~test_database() {
    if (engine_ == sql::engine::sqlite) {
      std::filesystem::remove_all(dir_);
      return;
    }
    try {
      auto admin = sql::open(sql::location::parse(server_ + " dbname=postgres"), sql::access::read_write, "public");
      admin->exec("DROP DATABASE IF EXISTS " + name_ + " WITH (FORCE)");
    } catch (...) {
    }
  }
  test_database(const test_database&) = delete;
  test_database& operator=(const test_database&) = delete;

  const sql::location& where() const { return where_; }
  sql::connection_ptr open(std::string_view schema = "test", sql::access how = sql::access::read_write) const {
    return sql::open(where_, how, schema);
  }
  const std::filesystem::path& directory() const { return dir_; }

 private:
  sql::engine engine_;
  std::filesystem::path dir_;
  std::string server_;
  std::string name_;
  sql::location where_;
};

}  // namespace sealgate::testing
