// How to reach the MySQL/MariaDB database, and the DSN syntax that carries
// it. Pure value types and functions: thread-safe.
#ifndef LUMOKEYS_SERVER_STORAGE_MYSQL_MYSQL_OPTIONS_H_
#define LUMOKEYS_SERVER_STORAGE_MYSQL_MYSQL_OPTIONS_H_

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"

namespace lumo::storage {

// One database server of a multi-host DSN.
struct MysqlHost {
  std::string host;
  int port = 3306;
  friend bool operator==(const MysqlHost& a, const MysqlHost& b) {
    return a.host == b.host && a.port == b.port;
  }
};

struct MysqlOptions {
  std::string host = "127.0.0.1";
  int port = 3306;
  // Further nodes of a cluster (a multi-host DSN), tried in order after
  // `host`:`port` when a connection cannot be opened there or the node
  // cannot serve (a Galera node that is not Synced). TCP only.
  std::vector<MysqlHost> other_hosts;
  // When set, connect over this Unix socket instead of TCP.
  std::string unix_socket;
  std::string user;
  std::string password;
  // Empty: no default database (only the migrator and admin tools).
  std::string database;

  // Most connections the pool opens.
  int pool_size = 16;
  // How long an operation waits for a free connection before UNAVAILABLE.
  absl::Duration acquire_timeout = absl::Seconds(2);
  // Client-side socket ceilings (the client library counts whole seconds;
  // anything shorter rounds up to one second).
  absl::Duration connect_timeout = absl::Seconds(2);
  absl::Duration read_timeout = absl::Seconds(10);
  absl::Duration write_timeout = absl::Seconds(10);
  // innodb_lock_wait_timeout of every pooled session.
  int lock_wait_timeout_seconds = 3;
  // Server-side ceiling per statement (MariaDB max_statement_time, MySQL
  // max_execution_time, which only covers SELECT). Zero: none.
  absl::Duration statement_timeout = absl::Seconds(5);
};

// Parses `mysql://user[:password]@host[:port][,host[:port]...]/[database]
// [?params]`.
//
// User and password are percent-decoded. A host may be a bracketed IPv6
// literal (`[::1]`); the host may be empty when `socket` is given (then
// only one). Several hosts are the nodes of one cluster: the first is
// `host`, the rest `other_hosts`, in order. Parameters:
// `socket=/path`, `pool_size=N`, `lock_wait_timeout=N` (seconds) and the
// durations `acquire_timeout`, `connect_timeout`, `read_timeout`,
// `write_timeout`, `statement_timeout` (absl syntax: `500ms`, `2s`).
//
// INVALID_ARGUMENT names the part that is wrong; no error message ever
// contains the password.
absl::StatusOr<MysqlOptions> ParseMysqlDsn(absl::string_view dsn);

// INVALID_ARGUMENT unless the options are usable: a user, a host or socket,
// a port in 1..65535, positive pool size and timeouts, and a database name
// that passes IsValidDatabaseName (or none).
absl::Status ValidateMysqlOptions(const MysqlOptions& options);

// Database names this project accepts: 1-64 characters of [A-Za-z0-9_].
// Names are spliced into DDL (`CREATE DATABASE`), which cannot take
// parameters, so nothing else is allowed.
bool IsValidDatabaseName(absl::string_view name);

// `user@host:port[,host:port...]/database` or `user@unix:/path/database`:
// safe to log, never contains the password.
std::string DescribeForLog(const MysqlOptions& options);

// Every host of `options` in order: `host`:`port`, then `other_hosts`.
std::vector<MysqlHost> AllHosts(const MysqlOptions& options);

// `options` with only `host` as its server (no other hosts).
MysqlOptions OnHost(const MysqlOptions& options, const MysqlHost& host);

// `host:port`, IPv6 literals bracketed.
std::string HostForLog(const MysqlHost& host);

}  // namespace lumo::storage

#endif  // LUMOKEYS_SERVER_STORAGE_MYSQL_MYSQL_OPTIONS_H_
