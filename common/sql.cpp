// What both engines share: where a database is, named parameters and
// columns over a backend's positions, transactions; see sql.hpp.
#include "common/sql.hpp"

#include "common/sql_engines.hpp"

#include <algorithm>

namespace sealgate::sql {

namespace {

// "key=value ..." as libpq reads it: the first word is a keyword of letters
// and underscores directly followed by '=' (a path has a '/' or a '.' first).
bool looks_like_keyword_conninfo(std::string_view text) {
  size_t i = text.find_first_not_of(" \t");
  if (i == std::string_view::npos) return false;
  size_t start = i;
  while (i < text.size() && ((text[i] >= 'a' && text[i] <= 'z') || text[i] == '_')) ++i;
  while (i < text.size() && (text[i] == ' ' || text[i] == '\t')) ++i;
  return i > start && i < text.size() && text[i] == '=';
}

bool starts_with(std::string_view text, std::string_view prefix) { return text.substr(0, prefix.size()) == prefix; }

// The password of a URI ("//user:secret@host") or of a "password=" word or
// query parameter, replaced by "***".
std::string without_password(std::string text) {
  if (starts_with(text, "postgresql://") || starts_with(text, "postgres://")) {
    size_t authority = text.find("//") + 2;
    size_t at = text.find('@', authority);
    size_t end = text.find_first_of("/?", authority);
    if (at != std::string::npos && (end == std::string::npos || at < end)) {
      size_t colon = text.find(':', authority);
      if (colon != std::string::npos && colon < at) text.replace(colon + 1, at - colon - 1, "***");
    }
  }
  for (size_t at = text.find("password="); at != std::string::npos; at = text.find("password=", at + 1)) {
    bool word_start = at == 0 || text[at - 1] == ' ' || text[at - 1] == '?' || text[at - 1] == '&';
    if (!word_start) continue;
    size_t value = at + 9;
    size_t end = value;
    if (end < text.size() && text[end] == '\'') {
      for (++end; end < text.size() && text[end] != '\''; ++end)
        if (text[end] == '\\') ++end;
      end = std::min(end + 1, text.size());
    } else {
      end = text.find_first_of(" &", value);
      if (end == std::string::npos) end = text.size();
    }
    text.replace(value, end - value, "***");
  }
  return text;
}

}  // namespace

location location::parse(const std::string& text) {
  location where;
  if (starts_with(text, "postgresql://") || starts_with(text, "postgres://") || looks_like_keyword_conninfo(text)) {
    where.kind = engine::postgresql;
    where.conninfo = text;
  } else {
    where.file = text;
  }
  return where;
}

location location::sqlite_file(std::filesystem::path file) {
  location where;
  where.file = std::move(file);
  return where;
}

std::string location::describe() const {
  return kind == engine::postgresql ? without_password(conninfo) : file.string();
}

connection_ptr open(const location& where, access how, std::string_view schema) {
  if (where.kind == engine::postgresql) return open_postgresql(where.conninfo, how, schema);
  return open_sqlite_file(where.file, how);
}

void exec(connection* db, std::string_view sql) { db->exec(sql); }

statement::statement(connection* db, const std::string& sql) : backend_(db->prepare(sql)) {
  bound_.assign(backend_->parameters().size(), false);
}

size_t statement::parameter_index(std::string_view name) {
  // Binding after a query that was not read to its end starts a new one,
  // with every parameter to be bound again.
  if (stepping_) {
    backend_->reset();
    stepping_ = false;
    bound_.assign(bound_.size(), false);
  }
  const auto& names = backend_->parameters();
  auto it = std::find(names.begin(), names.end(), name);
  if (it == names.end()) throw std::logic_error("database: no parameter :" + std::string(name) + " in " + backend_->sql());
  auto i = static_cast<size_t>(it - names.begin());
  bound_[i] = true;
  return i;
}

void statement::bind(std::string_view parameter, std::string_view text) {
  auto i = parameter_index(parameter);
  backend_->bind_text(i, text);
}

void statement::bind(std::string_view parameter, int64_t value) {
  auto i = parameter_index(parameter);
  backend_->bind_integer(i, value);
}

void statement::bind_or_null(std::string_view parameter, std::string_view text) {
  if (!text.empty()) return bind(parameter, text);
  bind_null(parameter);
}

void statement::bind_blob(std::string_view parameter, std::string_view bytes) {
  auto i = parameter_index(parameter);
  backend_->bind_blob(i, bytes);
}

void statement::bind_null(std::string_view parameter) {
  auto i = parameter_index(parameter);
  backend_->bind_null(i);
}

void statement::require_all_bound() const {
  auto unbound = std::find(bound_.begin(), bound_.end(), false);
  if (unbound != bound_.end())
    throw std::logic_error("database: parameter :" + backend_->parameters()[static_cast<size_t>(unbound - bound_.begin())] +
                           " not bound in " + backend_->sql());
}

bool statement::next_row() {
  // A SELECT's forgotten parameter would be NULL and match nothing: as loud
  // as run()'s. Checked once per query, not per row.
  if (!stepping_) require_all_bound();
  stepping_ = true;
  bool row = false;
  try {
    row = backend_->step();
  } catch (...) {
    stepping_ = false;
    bound_.assign(bound_.size(), false);
    backend_->reset();
    throw;
  }
  if (row) return true;
  stepping_ = false;
  bound_.assign(bound_.size(), false);
  backend_->reset();
  return false;
}

void statement::run() {
  require_all_bound();
  bound_.assign(bound_.size(), false);
  try {
    backend_->step();
  } catch (...) {
    backend_->reset();
    throw;
  }
  backend_->reset();
}

int64_t statement::run_returning(std::string_view column) {
  if (!next_row()) throw std::logic_error("database: no row returned by " + backend_->sql());
  int64_t value = integer(column);
  while (next_row()) {
  }  // to its end: the statement is then ready for the next bindings
  return value;
}

int64_t statement::changes() const { return backend_->changes(); }

size_t statement::column_index(std::string_view name) const {
  const auto& columns = backend_->columns();
  auto it = std::find(columns.begin(), columns.end(), name);
  if (it == columns.end()) throw std::logic_error("database: no column " + std::string(name) + " in " + backend_->sql());
  return static_cast<size_t>(it - columns.begin());
}

std::string statement::text(std::string_view column) const { return backend_->text(column_index(column)); }
std::string statement::blob(std::string_view column) const { return backend_->blob(column_index(column)); }
bool statement::is_null(std::string_view column) const { return backend_->is_null(column_index(column)); }
int64_t statement::integer(std::string_view column) const { return backend_->integer(column_index(column)); }

std::optional<int64_t> statement::optional_integer(std::string_view column) const {
  auto c = column_index(column);
  if (backend_->is_null(c)) return std::nullopt;
  return backend_->integer(c);
}

transaction::transaction(connection* db, mode m) : db_(db) { db_->begin(m); }

transaction::~transaction() {
  // A failed COMMIT or a lost connection may have ended the transaction
  // already: roll back only what is still open, and never throw here.
  if (committed_ || !db_->in_transaction()) return;
  try {
    db_->exec("ROLLBACK");
  } catch (...) {
  }
}

void transaction::commit() {
  db_->exec("COMMIT");
  committed_ = true;
}

std::string storable_text(std::string_view text) {
  static constexpr std::string_view replacement = "\xEF\xBF\xBD";
  std::string out;
  out.reserve(text.size());
  size_t i = 0;
  while (i < text.size()) {
    auto c = static_cast<unsigned char>(text[i]);
    size_t length = c < 0x80 ? 1 : (c >> 5) == 0x6 ? 2 : (c >> 4) == 0xE ? 3 : (c >> 3) == 0x1E ? 4 : 0;
    bool valid = c != 0 && length != 0 && i + length <= text.size();
    for (size_t k = 1; valid && k < length; ++k) valid = (static_cast<unsigned char>(text[i + k]) & 0xC0) == 0x80;
    if (valid && length > 1) {
      // Overlong forms, UTF-16 surrogates and code points past U+10FFFF are
      // invalid UTF-8 too (RFC 3629 section 3).
      uint32_t cp = c & (0xFF >> (length + 1));
      for (size_t k = 1; k < length; ++k) cp = (cp << 6) | (static_cast<unsigned char>(text[i + k]) & 0x3F);
      static constexpr uint32_t smallest[] = {0, 0, 0x80, 0x800, 0x10000};
      valid = cp >= smallest[length] && cp <= 0x10FFFF && (cp < 0xD800 || cp > 0xDFFF);
    }
    if (valid) {
      out.append(text.substr(i, length));
      i += length;
    } else {
      out.append(replacement);
      ++i;
    }
  }
  return out;
}

}  // namespace sealgate::sql
