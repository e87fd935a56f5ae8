// lumokeys-server's configuration: its flags (defined in server_config.cc,
// each also settable from the environment and a config file, see
// server/shared/process/flag_config.h) and their conversion into the
// options the commands take. The one place that reads the server's flags.
//
// Commands (docs/operations.md "Commands"):
//   lumokeys-server [serve]        serve gRPC (the default)
//   lumokeys-server migrate        apply pending schema migrations, exit
//   lumokeys-server purge-audit --older_than_days=N
//                                  delete audit rows older than N days,
//                                  keeping every hash chain verifiable, exit
//   lumokeys-server purge-usage    delete usage rollup buckets older than
//                                  their retention, exit
//   lumokeys-server check-peppers  compare --pepper_file with the pepper
//                                  versions stored secrets use, print a
//                                  table, exit 1 when refused
// The earlier spellings --migrate, --purge_audit_older_than_days=N and
// --check_peppers still select the same commands.
//
// Thread-compatible: read the flags once, from main(), after parsing.
#ifndef LUMOKEYS_SERVER_CONFIG_SERVER_CONFIG_H_
#define LUMOKEYS_SERVER_CONFIG_SERVER_CONFIG_H_

#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "server/app/app.h"
#include "server/shared/process/heap_trim.h"
#include "server/tls/server_tls.h"
#include "server/webhooks/delivery_worker.h"
#include "server/webhooks/sender.h"

namespace lumo::config {

enum class ServerCommand {
  kServe,
  kMigrate,
  kPurgeAudit,
  kPurgeUsage,
  kCheckPeppers
};

// "serve", "migrate", "purge-audit", "purge-usage", "check-peppers".
absl::string_view CommandName(ServerCommand command);

// Where the data lives.
struct DatabaseConfig {
  // --mysql: mysql://user[:password]@host[:port]/database[?params].
  std::string dsn;
  // --mysql_password_file: a password file (process::ReadPasswordFile)
  // that replaces the DSN's password; empty: the DSN's.
  std::string password_file;
  // --db_pool_size.
  int pool_size = 16;
};

struct ServerConfig {
  ServerCommand command = ServerCommand::kServe;
  DatabaseConfig database;

  // migrate: --migrations_dir.
  std::string migrations_dir;
  // purge-audit: --older_than_days (or its earlier spelling), at least 1.
  int purge_older_than_days = 0;
  // purge-usage: --hourly_older_than_days, --daily_older_than_days (at
  // least 1 each).
  int usage_hourly_retention_days = 90;
  int usage_daily_retention_days = 400;

  // serve and check-peppers: --pepper_file (required by both; the commands
  // say so when they load it).
  std::string pepper_file;

  // serve only, below.
  bool allow_missing_pepper_versions = false;
  bool allow_nondurable_db = false;
  // Empty: that kind of caller is disabled.
  std::string service_token_file;
  std::string operator_token_file;
  std::string listen;
  // Empty: no internal (mTLS) listener.
  std::string internal_listen;
  // tls.cert_file empty: plaintext listeners.
  tls::ServerTlsFiles tls;
  absl::Duration drain_delay;
  absl::Duration shutdown_grace;
  // --secret_scanning_keys_file: the scanner's public keys (reread on
  // SIGHUP); empty: every leaked-key report is refused.
  std::string secret_scanning_keys_file;
  // The heap trimmer (--heap_trim_interval, --heap_trim_freed_mb).
  process::HeapTrimOptions heap_trim;
  // Every option the flags decide. Left for the serve command: the pepper
  // set and the token hashes (read from their files) and the replica's
  // host name, process id and log sink.
  app::AppOptions app;
  // The webhook sender and delivery worker (--webhook_*; the address
  // policy is also app.webhooks.addresses).
  webhooks::HttpsSenderOptions webhook_sender;
  webhooks::DeliveryWorkerOptions webhook_delivery;

  // (flag, path) of every secret file the flags name, unset ones included
  // (process::CheckSecretFiles skips those).
  std::vector<std::pair<std::string, std::string>> SecretFiles() const;
};

// The configuration the parsed flags and `args` describe. `args` are the
// positional arguments (argv[0] first, as process::Start returns them): at
// most one, the command. INVALID_ARGUMENT naming the settings when:
//   - the command is unknown or there is more than one argument;
//   - two different commands are named (e.g. `migrate` and
//     --check_peppers);
//   - --mysql is unset;
//   - purge-audit has no --older_than_days of at least 1 (or both spellings
//     with different values);
//   - serve: TLS flags that must come together do not, --internal_listen
//     without mTLS or equal to --listen, a negative --drain_delay or
//     --shutdown_grace, a value out of its documented range (the
//     --webhook_* ones included), a --webhook_allow_cidrs entry that is not
//     a CIDR;
// FAILED_PRECONDITION when serve would listen in plaintext on a
// non-loopback --listen without --allow_remote_plaintext.
// Flags that belong to other commands are ignored, so one config file
// serves every command.
absl::StatusOr<ServerConfig> ServerConfigFromFlags(
    const std::vector<char*>& args);

// The start of lumokeys-server --help.
extern const char kServerUsage[];

}  // namespace lumo::config

#endif  // LUMOKEYS_SERVER_CONFIG_SERVER_CONFIG_H_
