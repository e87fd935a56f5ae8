#include "server/storage/backend_factory.h"

#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "server/storage/mysql/connection_pool.h"
#include "server/storage/mysql/migrator.h"
#include "server/storage/mysql/mysql_backend.h"
#include "server/storage/mysql/mysql_options.h"

namespace lumo::storage {
namespace {

constexpr absl::string_view kMysqlScheme = "mysql";

// RFC 3986 scheme characters; anything else is not repeated in a message.
bool LooksLikeScheme(absl::string_view s) {
  if (s.empty() || s.size() > 32 ||
      !absl::ascii_isalpha(static_cast<unsigned char>(s[0]))) {
    return false;
  }
  for (char c : s) {
    if (!absl::ascii_isalnum(static_cast<unsigned char>(c)) && c != '+' &&
        c != '-' && c != '.') {
      return false;
    }
  }
  return true;
}

// The DSN's scheme when a backend has it; INVALID_ARGUMENT otherwise.
absl::StatusOr<absl::string_view> BackendScheme(absl::string_view dsn) {
  const std::string supported = absl::StrJoin(SupportedDsnSchemes(), ", ");
  const size_t end = dsn.find("://");
  if (end == absl::string_view::npos || !LooksLikeScheme(dsn.substr(0, end))) {
    return absl::InvalidArgumentError(absl::StrCat(
        "the database DSN must start with a scheme (supported: ", supported,
        ")"));
  }
  const absl::string_view scheme = dsn.substr(0, end);
  if (scheme != kMysqlScheme) {
    return absl::InvalidArgumentError(
        absl::StrCat("unsupported database scheme ", scheme,
                     ":// (supported: ", supported, ")"));
  }
  return kMysqlScheme;
}

absl::StatusOr<MysqlOptions> MysqlOptionsFor(const BackendOptions& options) {
  absl::StatusOr<MysqlOptions> mysql = ParseMysqlDsn(options.dsn);
  if (!mysql.ok()) return mysql.status();
  if (options.password.has_value()) mysql->password = *options.password;
  if (options.pool_size.has_value()) mysql->pool_size = *options.pool_size;
  return mysql;
}

}  // namespace

std::vector<std::string> SupportedDsnSchemes() {
  return {absl::StrCat(kMysqlScheme, "://")};
}

absl::Status CheckBackendOptions(const BackendOptions& options) {
  absl::StatusOr<absl::string_view> scheme = BackendScheme(options.dsn);
  if (!scheme.ok()) return scheme.status();
  return MysqlOptionsFor(options).status();
}

absl::StatusOr<std::unique_ptr<Backend>> OpenBackend(
    const BackendOptions& options) {
  absl::StatusOr<absl::string_view> scheme = BackendScheme(options.dsn);
  if (!scheme.ok()) return scheme.status();
  InitMysqlDriver();
  absl::StatusOr<MysqlOptions> mysql = MysqlOptionsFor(options);
  if (!mysql.ok()) return mysql.status();
  absl::StatusOr<std::unique_ptr<MysqlBackend>> backend =
      MysqlBackend::Open(*mysql);
  if (!backend.ok()) return backend.status();
  return std::unique_ptr<Backend>(*std::move(backend));
}

absl::Status MigrateSchema(const BackendOptions& options,
                           const std::string& migrations_dir,
                           std::vector<std::string>* applied) {
  absl::StatusOr<absl::string_view> scheme = BackendScheme(options.dsn);
  if (!scheme.ok()) return scheme.status();
  InitMysqlDriver();
  absl::StatusOr<MysqlOptions> mysql = MysqlOptionsFor(options);
  if (!mysql.ok()) return mysql.status();
  return ApplyMigrations(*mysql, migrations_dir, applied);
}

}  // namespace lumo::storage
