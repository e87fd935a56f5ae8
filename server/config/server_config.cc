#include "server/config/server_config.h"

#include <algorithm>
#include <iterator>
#include <string>
#include <tuple>

#include "absl/flags/flag.h"
#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "server/core/net.h"
#include "server/shared/process/flag_checks.h"

ABSL_FLAG(std::string, listen, "127.0.0.1:50051",
          "gRPC listen address host:port");
ABSL_FLAG(bool, allow_remote_plaintext, false,
          "Allow plaintext gRPC on a non-loopback address (otherwise refused)");
ABSL_FLAG(std::string, mysql, "",
          "Database DSN mysql://user[:password]@host[:port]/database"
          "[?socket=/path]");
ABSL_FLAG(std::string, mysql_password_file, "",
          "File holding the database password (keeps it out of `ps`)");
ABSL_FLAG(int, db_pool_size, 16, "Database connections in the pool");
ABSL_FLAG(std::string, pepper_file, "",
          "Pepper set file: lines `<version>:<hex>` (required)");
// The earlier spelling of the check-peppers command (docs/operations.md
// "Pepper rotation").
ABSL_FLAG(bool, check_peppers, false,
          "Same as the command `check-peppers`: compare --pepper_file with "
          "the pepper versions that stored secrets use, print a table and "
          "exit (1 when live secrets use a version the file lacks)");
ABSL_FLAG(bool, allow_missing_pepper_versions, false,
          "Start even when live secrets use a pepper version missing from "
          "--pepper_file (they then fail to verify; emergencies only)");
ABSL_FLAG(std::string, operator_token_file, "",
          "File with the operator token (OperatorService); unset disables "
          "operator calls");
ABSL_FLAG(std::string, service_token_file, "",
          "File with the internal-service token (VerifyApiKey, gateway); "
          "unset disables service callers");
// The earlier spelling of the migrate command.
ABSL_FLAG(bool, migrate, false,
          "Same as the command `migrate`: apply pending migrations from "
          "--migrations_dir and exit");
ABSL_FLAG(std::string, migrations_dir, "sql/migrations",
          "migrate: directory of NNNN_name.sql migrations");
ABSL_FLAG(int, older_than_days, 0,
          "purge-audit: delete audit rows older than this many days (at "
          "least 1), keeping every tenant's hash chain verifiable. Needs an "
          "account with DELETE on audit_events (the runtime account has "
          "none)");
ABSL_FLAG(int, hourly_older_than_days, 90,
          "purge-usage: delete hourly usage buckets that started more than "
          "this many days ago (at least 1)");
ABSL_FLAG(int, daily_older_than_days, 400,
          "purge-usage: delete daily usage buckets that started more than "
          "this many days ago (at least 1)");
// The earlier spelling of the purge-audit command.
ABSL_FLAG(int, purge_audit_older_than_days, 0,
          "Same as `purge-audit --older_than_days=N`: the retention job, "
          "then exit");
ABSL_FLAG(bool, allow_nondurable_db, false,
          "DEV ONLY: start even if innodb_flush_log_at_trx_commit != 1");
ABSL_FLAG(absl::Duration, verify_cache_ttl, absl::Seconds(30),
          "How long a verification cache entry is trusted");
ABSL_FLAG(int, workers, 32, "Threads for blocking (database) work");
ABSL_FLAG(int, default_key_rate_limit_per_minute, 1000000,
          "Requests per sliding minute of a key without rate limits of its "
          "own, counted by each replica at its share (limit / replicas); 0: "
          "none (such keys then get no X-RateLimit-* headers)");
ABSL_FLAG(absl::Duration, key_state_sweep_interval, absl::Seconds(60),
          "Pause between rounds of the key-state sweep, which writes the "
          "api_key.rotation_due/expiring/inactive audit events (one replica "
          "at a time, by lease); 0 disables it on this replica");
ABSL_FLAG(absl::Duration, heap_trim_interval, absl::Seconds(30),
          "How often the server estimates its free resident heap and, when "
          "it rose by --heap_trim_freed_mb since the last trim, gives "
          "malloc's free pages back to the system (malloc_trim); 0 disables "
          "it");
ABSL_FLAG(int, heap_trim_freed_mb, 32,
          "Rise of the free resident heap (MiB) above its low since the last "
          "heap trim that calls for the next one");
ABSL_FLAG(int, audit_queue_size, 100000,
          "Usage/auth audit events held in memory at most; beyond, they are "
          "dropped and recorded as an audit.dropped count");
ABSL_FLAG(bool, bench_disable_usage_audit, false,
          "BENCHMARK ONLY: do not record key use and failed authentication "
          "(to measure the audit's cost); never in production");
ABSL_FLAG(bool, bench_disable_key_states, false,
          "BENCHMARK ONLY: verify without computing or returning the key "
          "policy states (to measure their cost); never in production");
ABSL_FLAG(bool, bench_service, false,
          "BENCHMARK ONLY: serve lumo.bench.v1.BenchService (Echo, raw "
          "database baselines, counters) for tools/bench; never in "
          "production");
ABSL_FLAG(int, audit_batch_size, 5000, "Audit events per batched INSERT");
ABSL_FLAG(absl::Duration, audit_flush_interval, absl::Milliseconds(100),
          "Longest time a usage/auth audit event waits in memory");
ABSL_FLAG(absl::Duration, verify_usage_window, absl::Seconds(1),
          "Valid VerifyApiKey calls of one key, client address and caller "
          "within this window are audited as one api_key.used event with a "
          "count (0: one event per call)");
ABSL_FLAG(bool, usage_rollups, true,
          "Count every key use per key, hour and day into the usage rollups "
          "(docs/usage.md), in the audit writer's batches; false: not "
          "counted (the benchmark's baseline)");
ABSL_FLAG(int, audit_burst_threshold, 10,
          "Failures on one key id or from one address within a minute that "
          "mark the failures suspicious");
// See docs/reliability.md "Brute force".
ABSL_FLAG(int, auth_failures_per_ip_burst, 1000,
          "Failed key verifications one source address may make in a burst "
          "before every attempt from it gets RESOURCE_EXHAUSTED/429 (0: off)");
ABSL_FLAG(int, auth_failures_per_ip_per_minute, 600,
          "Refill rate of the per-address failure budget");
ABSL_FLAG(int, auth_failures_per_key_burst, 100,
          "Failed verifications of one key id in a burst before further "
          "failures for it get RESOURCE_EXHAUSTED/429 (the right secret is "
          "still accepted; 0: off)");
ABSL_FLAG(int, auth_failures_per_key_per_minute, 60,
          "Refill rate of the per-key-id failure budget");
ABSL_FLAG(absl::Duration, shutdown_grace, absl::Seconds(10),
          "How long in-flight calls may run after SIGTERM");
ABSL_FLAG(std::string, tls_cert_file, "",
          "PEM certificate chain: with --tls_key_file, --listen and "
          "--internal_listen serve TLS (reloaded on SIGHUP)");
ABSL_FLAG(std::string, tls_key_file, "",
          "PEM private key (unencrypted) of --tls_cert_file");
ABSL_FLAG(std::string, tls_client_ca_file, "",
          "PEM CA bundle that client certificates must chain to. With "
          "--internal_listen only that port requires client certificates "
          "(mTLS); without it, --listen requires them");
ABSL_FLAG(std::string, internal_listen, "",
          "Optional second gRPC address host:port for internal callers "
          "(VerifyApiKey): TLS that requires a client certificate signed by "
          "--tls_client_ca_file (mTLS)");
ABSL_FLAG(absl::Duration, drain_delay, absl::ZeroDuration(),
          "After SIGTERM, how long health reports NOT_SERVING while calls "
          "are still accepted (lets load balancers move traffic away) before "
          "the --shutdown_grace drain starts");
// --log_level, --metrics_listen and --metrics_allow_remote come from
// server/observability/observability_flags; --config and
// --allow_insecure_secret_files from server/shared/process.
// See docs/replication.md.
ABSL_FLAG(bool, replication, true,
          "Register in the replicas table and tail the key_changes feed, so "
          "that Rotate/Revoke/Delete return only when every live replica "
          "has evicted the key (off: this process must be the only replica)");
ABSL_FLAG(std::string, replica_id, "",
          "This replica's id in the replicas table (default: random)");
ABSL_FLAG(absl::Duration, replica_lease, absl::Seconds(3),
          "Replica lease: peers stop waiting for a replica this long after "
          "its last heartbeat, and it stops answering from its cache before");
ABSL_FLAG(absl::Duration, replica_poll_interval, absl::Milliseconds(20),
          "Pause between reads of the key_changes feed");
ABSL_FLAG(absl::Duration, replica_heartbeat_interval, absl::Milliseconds(250),
          "Longest pause between heartbeats when nothing changes");
ABSL_FLAG(absl::Duration, replica_gap_timeout, absl::Seconds(1),
          "How long a missing feed seq is waited for before it is treated "
          "as rolled back");
ABSL_FLAG(absl::Duration, portal_session_idle_timeout, absl::Minutes(30),
          "A portal session ends after this long without a request");
ABSL_FLAG(absl::Duration, portal_session_absolute_timeout, absl::Hours(12),
          "A portal session ends this long after login");
ABSL_FLAG(int, portal_login_max_failures, 5,
          "Failed portal logins per account and client network within "
          "--portal_login_failure_window before further attempts of that "
          "account from that network get 429 (other networks are not "
          "affected)");
ABSL_FLAG(int, portal_login_max_failures_per_ip, 20,
          "Failed portal logins per client network (any account) within the "
          "window");
ABSL_FLAG(int, portal_login_max_failures_per_account, 20,
          "Failed portal logins per account from all networks within the "
          "window, after which only networks the account logged in from "
          "before may try until the window ends");
ABSL_FLAG(absl::Duration, portal_login_known_network_ttl, absl::Hours(24 * 30),
          "How long a network an account logged in from stays known (exempt "
          "from --portal_login_max_failures_per_account)");
ABSL_FLAG(int, portal_hash_threads, 2,
          "Threads that check portal passwords (scrypt, 128 MiB each at the "
          "default cost): the cap on concurrent password checks");
ABSL_FLAG(int, portal_hash_queue, 8,
          "Portal logins that may wait for a password-check thread; more are "
          "refused at once with 429 and Retry-After: 1");
ABSL_FLAG(absl::Duration, portal_hash_max_wait, absl::Seconds(2),
          "A login that waited this long for a password-check thread is "
          "refused with 429 and Retry-After: 1 instead of being checked");
ABSL_FLAG(int, portal_hash_nice, 10,
          "Nice increment of the password-check threads (0-19), so request "
          "handling takes the CPU first");
ABSL_FLAG(int, throttle_ipv6_prefix_len, 64,
          "IPv6 clients are counted per network of this prefix length by the "
          "failure throttle, the portal login throttle and the open "
          "registration limit (IPv4 addresses one by one); 1-128");
ABSL_FLAG(absl::Duration, portal_login_failure_window, absl::Minutes(15),
          "Window of the portal login failure counters");
ABSL_FLAG(int, portal_scrypt_log_n, 17,
          "log2 of scrypt's N for new portal passwords (OWASP: 17, with r=8, "
          "p=1; 10-20). Lower it only for tests on small machines");

ABSL_FLAG(int, webhook_workers, 4,
          "Threads delivering webhooks in this process (0: this process "
          "delivers none; others sharing the database still do); 0-64");
ABSL_FLAG(absl::Duration, webhook_timeout, absl::Seconds(5),
          "Bound of one webhook attempt: resolve, connect, TLS, request and "
          "response head; 1s-60s");
ABSL_FLAG(absl::Duration, webhook_retry_window, absl::Hours(24),
          "A webhook whose event is older than this when an attempt fails is "
          "given up; 1m-72h");
ABSL_FLAG(absl::Duration, webhook_retry_base, absl::Seconds(10),
          "Wait after a webhook's first failed attempt; it doubles with each "
          "further failure up to 1h (then jittered to 50-100%); 10ms-1h");
ABSL_FLAG(int, webhook_disable_after_failures, 20,
          "A webhook endpoint is disabled after this many failed attempts in "
          "a row ...; 1-10000");
ABSL_FLAG(absl::Duration, webhook_disable_after, absl::Hours(1),
          "... once the first of them is at least this old; 0s-72h");
ABSL_FLAG(bool, webhook_allow_http, false,
          "Allow plain-http webhook URLs to loopback addresses (tests and "
          "local receivers only)");
ABSL_FLAG(std::string, webhook_allow_cidrs, "",
          "Comma-separated CIDRs webhooks may reach although they are "
          "loopback, private, link-local or otherwise refused");
ABSL_FLAG(std::string, webhook_ca_file, "",
          "PEM CA certificates webhook receivers may present besides the "
          "system's");
ABSL_FLAG(int, decoy_block_seconds, 0,
          "After a decoy key is presented from an address, every key of the "
          "decoy's tenant presented from there answers as an unknown key for "
          "this long (per server process); 0 (default): off; 0-86400");
ABSL_FLAG(absl::Duration, webhook_retention, absl::Hours(24 * 7),
          "Finished webhook deliveries (delivered, failed, cancelled) and "
          "their events are purged this long after they were created; 0 "
          "keeps them; else 1h-87600h");
ABSL_FLAG(absl::Duration, webhook_poll_interval, absl::Milliseconds(500),
          "How often an idle webhook thread looks for due deliveries; "
          "10ms-60s");

ABSL_FLAG(std::string, secret_scanning_keys_file, "",
          "JSON file of the secret-scanning partner's public keys "
          "({\"public_keys\": [{\"key_identifier\", \"key\", "
          "\"is_current\"}]}), reread on SIGHUP; unset: leaked-key reports "
          "are refused");

namespace lumo::config {

const char kServerUsage[] =
    "LumoKeys gRPC server: API-key lifecycle and verification over MySQL.\n"
    "  lumokeys-server [serve] --mysql=DSN --pepper_file=F [--listen=H:P] "
    "...\n"
    "  lumokeys-server migrate --mysql=DSN [--migrations_dir=D]\n"
    "  lumokeys-server purge-audit --mysql=DSN --older_than_days=N\n"
    "  lumokeys-server purge-usage --mysql=DSN [--hourly_older_than_days=N] "
    "[--daily_older_than_days=N]\n"
    "  lumokeys-server check-peppers --mysql=DSN --pepper_file=F\n"
    "(--migrate, --purge_audit_older_than_days=N and --check_peppers are the "
    "earlier spellings of the three commands.)\n"
    "SIGTERM/SIGINT drain and stop; SIGHUP reloads the TLS files and the "
    "pepper file.";

namespace {

using process::FlagValue;

constexpr struct {
  const char* name;
  ServerCommand command;
} kCommands[] = {
    {"serve", ServerCommand::kServe},
    {"migrate", ServerCommand::kMigrate},
    {"purge-audit", ServerCommand::kPurgeAudit},
    {"purge-usage", ServerCommand::kPurgeUsage},
    {"check-peppers", ServerCommand::kCheckPeppers},
};

// One way the command line names a command: the positional argument or an
// earlier flag spelling.
struct CommandSource {
  ServerCommand command;
  std::string named_by;
};

absl::StatusOr<ServerCommand> CommandFromArgs(const std::vector<char*>& args) {
  std::vector<CommandSource> sources;
  if (args.size() > 2) {
    return absl::InvalidArgumentError(absl::StrCat(
        "unexpected argument '", args[2], "' (one command at most)"));
  }
  if (args.size() == 2) {
    const absl::string_view name = args[1];
    const auto* found =
        std::find_if(std::begin(kCommands), std::end(kCommands),
                     [&](const auto& c) { return name == c.name; });
    if (found == std::end(kCommands)) {
      return absl::InvalidArgumentError(
          absl::StrCat("unknown command '", name,
                       "' (commands: serve, migrate, purge-audit, purge-usage, "
                       "check-peppers)"));
    }
    sources.push_back({found->command, absl::StrCat("'", name, "'")});
  }
  if (absl::GetFlag(FLAGS_migrate)) {
    sources.push_back({ServerCommand::kMigrate, "--migrate"});
  }
  if (absl::GetFlag(FLAGS_purge_audit_older_than_days) != 0) {
    sources.push_back(
        {ServerCommand::kPurgeAudit, "--purge_audit_older_than_days"});
  }
  if (absl::GetFlag(FLAGS_check_peppers)) {
    sources.push_back({ServerCommand::kCheckPeppers, "--check_peppers"});
  }
  if (sources.empty()) return ServerCommand::kServe;
  for (const CommandSource& source : sources) {
    if (source.command != sources.front().command) {
      return absl::InvalidArgumentError(absl::StrCat(
          sources.front().named_by, " and ", source.named_by,
          " name different commands (", CommandName(sources.front().command),
          ", ", CommandName(source.command), "): give one"));
    }
  }
  return sources.front().command;
}

absl::StatusOr<int> PurgeDays() {
  const int days = absl::GetFlag(FLAGS_older_than_days);
  const int old_days = absl::GetFlag(FLAGS_purge_audit_older_than_days);
  if (days != 0 && old_days != 0 && days != old_days) {
    return absl::InvalidArgumentError(
        "--older_than_days and --purge_audit_older_than_days (its earlier "
        "spelling) disagree: give one");
  }
  const int chosen = days != 0 ? days : old_days;
  if (chosen < 1) {
    return absl::InvalidArgumentError(absl::StrCat(
        "purge-audit needs ",
        days == 0 && old_days != 0 ? "--purge_audit_older_than_days"
                                   : "--older_than_days",
        "=N with N at least 1 (got ", chosen, ")"));
  }
  return chosen;
}

// An int flag's value when it lies in [low, high]; else INVALID_ARGUMENT
// "--name must be between low and high".
absl::StatusOr<int> InRange(absl::string_view name, int value, int low,
                            int high) {
  if (value < low || value > high) {
    return absl::InvalidArgumentError(
        absl::StrCat(name, " must be between ", low, " and ", high));
  }
  return value;
}

// The serve command's listeners: TLS flags that go together, the internal
// listener's mTLS, drain times and the plaintext rule.
absl::Status ListenersFromFlags(ServerConfig& config) {
  config.listen = absl::GetFlag(FLAGS_listen);
  config.internal_listen = absl::GetFlag(FLAGS_internal_listen);
  config.tls = {absl::GetFlag(FLAGS_tls_cert_file),
                absl::GetFlag(FLAGS_tls_key_file),
                absl::GetFlag(FLAGS_tls_client_ca_file)};
  const FlagValue cert{"--tls_cert_file", config.tls.cert_file};
  const FlagValue key{"--tls_key_file", config.tls.key_file};
  const FlagValue client_ca{"--tls_client_ca_file", config.tls.client_ca_file};
  const FlagValue internal{"--internal_listen", config.internal_listen};
  for (const absl::Status& checked :
       {process::SetTogether(cert, key),
        process::Needs(client_ca, {cert, key},
                       "client certificates are only checked over TLS"),
        process::Needs(internal, {client_ca, cert, key},
                       "it serves mTLS only")}) {
    if (!checked.ok()) return checked;
  }
  if (internal.set() && config.internal_listen == config.listen) {
    return absl::InvalidArgumentError(
        "--internal_listen must differ from --listen");
  }
  config.drain_delay = absl::GetFlag(FLAGS_drain_delay);
  config.shutdown_grace = absl::GetFlag(FLAGS_shutdown_grace);
  if (config.drain_delay < absl::ZeroDuration() ||
      config.shutdown_grace < absl::ZeroDuration()) {
    return absl::InvalidArgumentError(
        "--drain_delay and --shutdown_grace must not be negative");
  }
  config.heap_trim.interval = absl::GetFlag(FLAGS_heap_trim_interval);
  if (config.heap_trim.interval < absl::ZeroDuration() ||
      config.heap_trim.interval > absl::Hours(1)) {
    return absl::InvalidArgumentError(
        "--heap_trim_interval must be between 0s and 1h");
  }
  const int freed_mb = absl::GetFlag(FLAGS_heap_trim_freed_mb);
  if (freed_mb < 1 || freed_mb > 65536) {
    return absl::InvalidArgumentError(
        "--heap_trim_freed_mb must be between 1 and 65536");
  }
  config.heap_trim.freed_bytes = static_cast<size_t>(freed_mb) << 20;
  return process::CheckPlaintextAddress(
      {"--listen", config.listen}, cert.set(),
      absl::GetFlag(FLAGS_allow_remote_plaintext), "plaintext gRPC",
      "TLS is configured with --tls_cert_file/--tls_key_file");
}

// Every AppOptions field a flag decides, with the documented ranges.
absl::Status AppOptionsFromFlags(const ServerConfig& config,
                                 app::AppOptions& app) {
  app.verify_cache_ttl = absl::GetFlag(FLAGS_verify_cache_ttl);
  app.workers = absl::GetFlag(FLAGS_workers);
  absl::StatusOr<int> decoy_block =
      InRange("--decoy_block_seconds", absl::GetFlag(FLAGS_decoy_block_seconds),
              0, 86400);
  if (!decoy_block.ok()) return decoy_block.status();
  app.decoy_block = absl::Seconds(*decoy_block);
  app.default_key_rate_limit_per_minute =
      absl::GetFlag(FLAGS_default_key_rate_limit_per_minute);
  if (app.default_key_rate_limit_per_minute < 0 ||
      app.default_key_rate_limit_per_minute > 1'000'000'000) {
    return absl::InvalidArgumentError(
        "--default_key_rate_limit_per_minute must be between 0 and "
        "1000000000");
  }
  app.key_state_sweep.interval = absl::GetFlag(FLAGS_key_state_sweep_interval);
  if (app.key_state_sweep.interval < absl::ZeroDuration() ||
      app.key_state_sweep.interval > absl::Hours(24)) {
    return absl::InvalidArgumentError(
        "--key_state_sweep_interval must be between 0s and 24h");
  }
  app.record_usage = !absl::GetFlag(FLAGS_bench_disable_usage_audit);
  app.key_states_on_verify = !absl::GetFlag(FLAGS_bench_disable_key_states);
  app.bench_service = absl::GetFlag(FLAGS_bench_service);
  // [trust boundary] with an internal listener, privileged credentials are
  // accepted only there (docs/operations.md "Internal listener").
  app.internal_listener_only = !config.internal_listen.empty();

  app.audit_writer.max_queue =
      static_cast<size_t>(std::max(1, absl::GetFlag(FLAGS_audit_queue_size)));
  app.audit_writer.max_batch =
      static_cast<size_t>(std::max(1, absl::GetFlag(FLAGS_audit_batch_size)));
  app.audit_writer.flush_interval = absl::GetFlag(FLAGS_audit_flush_interval);
  app.audit_writer.summary_window = absl::GetFlag(FLAGS_verify_usage_window);
  if (app.audit_writer.summary_window < absl::ZeroDuration() ||
      app.audit_writer.summary_window > absl::Minutes(10)) {
    return absl::InvalidArgumentError(
        "--verify_usage_window must be between 0s and 10m");
  }
  app.usage_auditor.burst_threshold =
      std::max(1, absl::GetFlag(FLAGS_audit_burst_threshold));
  app.usage_auditor.rollups = absl::GetFlag(FLAGS_usage_rollups);

  absl::StatusOr<int> ipv6_prefix_len =
      InRange("--throttle_ipv6_prefix_len",
              absl::GetFlag(FLAGS_throttle_ipv6_prefix_len), 1, 128);
  if (!ipv6_prefix_len.ok()) return ipv6_prefix_len.status();
  app.ipv6_prefix_len = *ipv6_prefix_len;
  app.failure_throttle.ip_burst =
      absl::GetFlag(FLAGS_auth_failures_per_ip_burst);
  app.failure_throttle.ip_per_minute =
      absl::GetFlag(FLAGS_auth_failures_per_ip_per_minute);
  app.failure_throttle.key_burst =
      absl::GetFlag(FLAGS_auth_failures_per_key_burst);
  app.failure_throttle.key_per_minute =
      absl::GetFlag(FLAGS_auth_failures_per_key_per_minute);
  app.failure_throttle.ipv6_prefix_len = *ipv6_prefix_len;

  service::PortalOptions& portal = app.portal;
  portal.idle_ttl = absl::GetFlag(FLAGS_portal_session_idle_timeout);
  portal.absolute_ttl = absl::GetFlag(FLAGS_portal_session_absolute_timeout);
  portal.throttle.max_failures_per_pair =
      absl::GetFlag(FLAGS_portal_login_max_failures);
  portal.throttle.max_failures_per_network =
      absl::GetFlag(FLAGS_portal_login_max_failures_per_ip);
  portal.throttle.max_failures_per_account =
      absl::GetFlag(FLAGS_portal_login_max_failures_per_account);
  portal.throttle.window = absl::GetFlag(FLAGS_portal_login_failure_window);
  portal.throttle.known_network_ttl =
      absl::GetFlag(FLAGS_portal_login_known_network_ttl);
  portal.throttle.ipv6_prefix_len = *ipv6_prefix_len;
  portal.hashing.max_queue =
      static_cast<size_t>(std::max(0, absl::GetFlag(FLAGS_portal_hash_queue)));
  portal.hashing.max_wait = absl::GetFlag(FLAGS_portal_hash_max_wait);
  for (const auto& [field, name, value, low, high] :
       {std::tuple<int*, const char*, int, int, int>{
            &portal.hashing.threads, "--portal_hash_threads",
            absl::GetFlag(FLAGS_portal_hash_threads), 1, 64},
        {&portal.hashing.nice_increment, "--portal_hash_nice",
         absl::GetFlag(FLAGS_portal_hash_nice), 0, 19},
        {&portal.scrypt.log2_n, "--portal_scrypt_log_n",
         absl::GetFlag(FLAGS_portal_scrypt_log_n), 10, 20}}) {
    absl::StatusOr<int> checked = InRange(name, value, low, high);
    if (!checked.ok()) return checked.status();
    *field = *checked;
  }

  app.replication = absl::GetFlag(FLAGS_replication);
  app.replica.replica_id = absl::GetFlag(FLAGS_replica_id);
  app.replica.address = config.listen;
  app.replica.lease = absl::GetFlag(FLAGS_replica_lease);
  app.replica.lease_margin = app.replica.lease / 5;
  app.replica.poll_interval = absl::GetFlag(FLAGS_replica_poll_interval);
  app.replica.heartbeat_interval =
      absl::GetFlag(FLAGS_replica_heartbeat_interval);
  app.replica.gap_timeout = absl::GetFlag(FLAGS_replica_gap_timeout);
  return absl::OkStatus();
}

// A duration flag's value when it lies in [low, high].
absl::StatusOr<absl::Duration> DurationInRange(absl::string_view name,
                                               absl::Duration value,
                                               absl::Duration low,
                                               absl::Duration high) {
  if (value < low || value > high) {
    return absl::InvalidArgumentError(
        absl::StrCat(name, " must be between ", absl::FormatDuration(low),
                     " and ", absl::FormatDuration(high)));
  }
  return value;
}

// The webhook flags (docs/webhooks.md "Delivery"): the address policy both
// the endpoint validation and the sender apply, the sender, the worker.
absl::Status WebhooksFromFlags(ServerConfig& config) {
  service::WebhookAddressPolicy policy;
  policy.allow_http = absl::GetFlag(FLAGS_webhook_allow_http);
  for (absl::string_view text : absl::StrSplit(
           absl::GetFlag(FLAGS_webhook_allow_cidrs), ',', absl::SkipEmpty())) {
    absl::StatusOr<core::Cidr> cidr =
        core::Cidr::Parse(absl::StripAsciiWhitespace(text));
    if (!cidr.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat("--webhook_allow_cidrs: ", cidr.status().message()));
    }
    policy.allowed_cidrs.push_back(*cidr);
  }
  config.app.webhooks.addresses = policy;
  config.webhook_sender.addresses = policy;
  config.webhook_sender.ca_file = absl::GetFlag(FLAGS_webhook_ca_file);
  config.secret_scanning_keys_file =
      absl::GetFlag(FLAGS_secret_scanning_keys_file);

  webhooks::DeliveryWorkerOptions& worker = config.webhook_delivery;
  absl::StatusOr<int> threads =
      InRange("--webhook_workers", absl::GetFlag(FLAGS_webhook_workers), 0, 64);
  if (!threads.ok()) return threads.status();
  worker.threads = *threads;
  absl::StatusOr<int> failures =
      InRange("--webhook_disable_after_failures",
              absl::GetFlag(FLAGS_webhook_disable_after_failures), 1, 10000);
  if (!failures.ok()) return failures.status();
  worker.failure.disable_after_failures = *failures;
  for (const auto& [out, name, value, low, high] :
       {std::tuple<absl::Duration*, const char*, absl::Duration, absl::Duration,
                   absl::Duration>{&config.webhook_sender.timeout,
                                   "--webhook_timeout",
                                   absl::GetFlag(FLAGS_webhook_timeout),
                                   absl::Seconds(1), absl::Seconds(60)},
        {&worker.failure.retry_window, "--webhook_retry_window",
         absl::GetFlag(FLAGS_webhook_retry_window), absl::Minutes(1),
         absl::Hours(72)},
        {&worker.base_backoff, "--webhook_retry_base",
         absl::GetFlag(FLAGS_webhook_retry_base), absl::Milliseconds(10),
         absl::Hours(1)},
        {&worker.failure.disable_after, "--webhook_disable_after",
         absl::GetFlag(FLAGS_webhook_disable_after), absl::ZeroDuration(),
         absl::Hours(72)},
        {&worker.poll_interval, "--webhook_poll_interval",
         absl::GetFlag(FLAGS_webhook_poll_interval), absl::Milliseconds(10),
         absl::Seconds(60)}}) {
    absl::StatusOr<absl::Duration> checked =
        DurationInRange(name, value, low, high);
    if (!checked.ok()) return checked.status();
    *out = *checked;
  }
  const absl::Duration retention = absl::GetFlag(FLAGS_webhook_retention);
  if (retention != absl::ZeroDuration()) {
    absl::StatusOr<absl::Duration> checked = DurationInRange(
        "--webhook_retention", retention, absl::Hours(1), absl::Hours(87600));
    if (!checked.ok()) return checked.status();
  }
  worker.retention = retention;
  worker.max_backoff = std::max(absl::Hours(1), worker.base_backoff);
  // A claim outlives the attempt it covers, with room to record it.
  worker.lease = config.webhook_sender.timeout * 2 + absl::Seconds(30);
  return absl::OkStatus();
}

}  // namespace

absl::string_view CommandName(ServerCommand command) {
  for (const auto& c : kCommands) {
    if (c.command == command) return c.name;
  }
  return "serve";
}

std::vector<std::pair<std::string, std::string>> ServerConfig::SecretFiles()
    const {
  return {{"--pepper_file", pepper_file},
          {"--operator_token_file", operator_token_file},
          {"--service_token_file", service_token_file},
          {"--mysql_password_file", database.password_file},
          {"--tls_key_file", tls.key_file}};
}

absl::StatusOr<ServerConfig> ServerConfigFromFlags(
    const std::vector<char*>& args) {
  ServerConfig config;
  absl::StatusOr<ServerCommand> command = CommandFromArgs(args);
  if (!command.ok()) return command.status();
  config.command = *command;

  config.database.dsn = absl::GetFlag(FLAGS_mysql);
  config.database.password_file = absl::GetFlag(FLAGS_mysql_password_file);
  config.database.pool_size = absl::GetFlag(FLAGS_db_pool_size);
  // Read for every command: the secret-file check covers them all.
  config.pepper_file = absl::GetFlag(FLAGS_pepper_file);
  config.service_token_file = absl::GetFlag(FLAGS_service_token_file);
  config.operator_token_file = absl::GetFlag(FLAGS_operator_token_file);
  config.tls.key_file = absl::GetFlag(FLAGS_tls_key_file);
  if (config.database.dsn.empty()) {
    return absl::InvalidArgumentError("--mysql is required");
  }

  switch (config.command) {
    case ServerCommand::kMigrate:
      config.migrations_dir = absl::GetFlag(FLAGS_migrations_dir);
      return config;
    case ServerCommand::kPurgeAudit: {
      absl::StatusOr<int> days = PurgeDays();
      if (!days.ok()) return days.status();
      config.purge_older_than_days = *days;
      return config;
    }
    case ServerCommand::kPurgeUsage: {
      absl::StatusOr<int> hourly =
          InRange("--hourly_older_than_days",
                  absl::GetFlag(FLAGS_hourly_older_than_days), 1, 100000);
      if (!hourly.ok()) return hourly.status();
      absl::StatusOr<int> daily =
          InRange("--daily_older_than_days",
                  absl::GetFlag(FLAGS_daily_older_than_days), 1, 100000);
      if (!daily.ok()) return daily.status();
      config.usage_hourly_retention_days = *hourly;
      config.usage_daily_retention_days = *daily;
      return config;
    }
    case ServerCommand::kCheckPeppers:
      return config;
    case ServerCommand::kServe:
      break;
  }
  config.allow_missing_pepper_versions =
      absl::GetFlag(FLAGS_allow_missing_pepper_versions);
  config.allow_nondurable_db = absl::GetFlag(FLAGS_allow_nondurable_db);
  if (absl::Status listeners = ListenersFromFlags(config); !listeners.ok()) {
    return listeners;
  }
  if (absl::Status app = AppOptionsFromFlags(config, config.app); !app.ok()) {
    return app;
  }
  if (absl::Status webhooks = WebhooksFromFlags(config); !webhooks.ok()) {
    return webhooks;
  }
  return config;
}

}  // namespace lumo::config
