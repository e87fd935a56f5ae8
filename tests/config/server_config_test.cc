// lumokeys-server's flags -> ServerConfig (server/config/server_config.h):
// which command a command line names, the options a flag set produces, and
// the documented error of each bad combination. Flags are set through the
// config-file path (process::ApplyConfigText), i.e. by each flag's own
// parser, exactly as an operator's file or environment sets them.
#include "server/config/server_config.h"

#include <string>
#include <utility>
#include <vector>

#include "absl/flags/reflection.h"
#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/time/time.h"
#include "gtest/gtest.h"
#include "tests/shared/process/flag_conversion_test.h"

namespace lumo::config {
namespace {

constexpr char kDsn[] = "mysql = mysql://lumo@127.0.0.1:1/lumo\n";

using ServerConfigTest =
    process::FlagConversionTest<ServerConfig, ServerConfigFromFlags>;

TEST_F(ServerConfigTest, DefaultsServeOnLoopbackWithTheDocumentedOptions) {
  absl::StatusOr<ServerConfig> config = ConfigFor(kDsn);
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->command, ServerCommand::kServe);
  EXPECT_EQ(config->database.dsn, "mysql://lumo@127.0.0.1:1/lumo");
  EXPECT_EQ(config->database.pool_size, 16);
  EXPECT_EQ(config->listen, "127.0.0.1:50051");
  EXPECT_EQ(config->internal_listen, "");
  EXPECT_EQ(config->tls.cert_file, "");
  EXPECT_EQ(config->drain_delay, absl::ZeroDuration());
  EXPECT_EQ(config->shutdown_grace, absl::Seconds(10));
  EXPECT_EQ(config->heap_trim.interval, absl::Seconds(30));
  EXPECT_EQ(config->heap_trim.freed_bytes, size_t{32} << 20);
  const app::AppOptions& app = config->app;
  EXPECT_EQ(app.verify_cache_ttl, absl::Seconds(30));
  EXPECT_EQ(app.default_key_rate_limit_per_minute, 1000000);
  EXPECT_EQ(app.workers, 32);
  EXPECT_TRUE(app.record_usage);
  EXPECT_FALSE(app.bench_service);
  EXPECT_FALSE(app.internal_listener_only);
  EXPECT_EQ(app.audit_writer.max_queue, 100000u);
  EXPECT_EQ(app.audit_writer.max_batch, 5000u);
  EXPECT_EQ(app.audit_writer.flush_interval, absl::Milliseconds(100));
  EXPECT_EQ(app.audit_writer.summary_window, absl::Seconds(1));
  EXPECT_EQ(app.usage_auditor.burst_threshold, 10);
  EXPECT_EQ(app.ipv6_prefix_len, 64);
  EXPECT_EQ(app.failure_throttle.ip_burst, 1000);
  EXPECT_EQ(app.failure_throttle.key_per_minute, 60);
  EXPECT_EQ(app.portal.idle_ttl, absl::Minutes(30));
  EXPECT_EQ(app.portal.absolute_ttl, absl::Hours(12));
  EXPECT_EQ(app.portal.throttle.max_failures_per_pair, 5);
  EXPECT_EQ(app.portal.hashing.threads, 2);
  EXPECT_EQ(app.portal.hashing.max_queue, 8u);
  EXPECT_EQ(app.portal.hashing.nice_increment, 10);
  EXPECT_EQ(app.portal.scrypt.log2_n, 17);
  EXPECT_TRUE(app.replication);
  EXPECT_EQ(app.replica.address, "127.0.0.1:50051");
  EXPECT_FALSE(app.webhooks.addresses.allow_http);
  EXPECT_TRUE(app.webhooks.addresses.allowed_cidrs.empty());
  EXPECT_EQ(config->webhook_sender.timeout, absl::Seconds(5));
  EXPECT_EQ(config->webhook_sender.ca_file, "");
  EXPECT_EQ(config->webhook_delivery.threads, 4);
  EXPECT_EQ(config->webhook_delivery.failure.retry_window, absl::Hours(24));
  EXPECT_EQ(config->webhook_delivery.failure.disable_after_failures, 20);
  EXPECT_EQ(config->webhook_delivery.failure.disable_after, absl::Hours(1));
  EXPECT_EQ(config->webhook_delivery.base_backoff, absl::Seconds(10));
  EXPECT_EQ(config->webhook_delivery.max_backoff, absl::Hours(1));
  EXPECT_EQ(config->webhook_delivery.poll_interval, absl::Milliseconds(500));
  EXPECT_EQ(config->webhook_delivery.lease, absl::Seconds(40));
  EXPECT_EQ(config->webhook_delivery.retention, absl::Hours(24 * 7));
  EXPECT_EQ(app.replica.lease, absl::Seconds(3));
  // Token hashes and peppers come from files, read by the serve command.
  EXPECT_FALSE(app.service_token_sha256.has_value());
  EXPECT_EQ(app.peppers, nullptr);
}

TEST_F(ServerConfigTest, FlagSetProducesTheOptions) {
  absl::StatusOr<ServerConfig> config =
      ConfigFor(std::string(kDsn) +
                "mysql_password_file = /etc/lumokeys/db.password\n"
                "db_pool_size = 4\n"
                "pepper_file = /etc/lumokeys/pepper\n"
                "service_token_file = /etc/lumokeys/service.token\n"
                "operator_token_file = /etc/lumokeys/operator.token\n"
                "listen = 0.0.0.0:50051\n"
                "internal_listen = 0.0.0.0:50052\n"
                "tls_cert_file = /etc/lumokeys/server.crt\n"
                "tls_key_file = /etc/lumokeys/server.key\n"
                "tls_client_ca_file = /etc/lumokeys/ca.crt\n"
                "drain_delay = 4s\n"
                "shutdown_grace = 20s\n"
                "heap_trim_interval = 0s\n"
                "heap_trim_freed_mb = 256\n"
                "allow_nondurable_db = true\n"
                "allow_missing_pepper_versions = true\n"
                "workers = 7\n"
                "verify_cache_ttl = 5s\n"
                "default_key_rate_limit_per_minute = 0\n"
                "bench_disable_usage_audit = true\n"
                "bench_service = true\n"
                "audit_queue_size = 0\n"       // raised to 1
                "audit_batch_size = -4\n"      // raised to 1
                "audit_burst_threshold = 0\n"  // raised to 1
                "portal_hash_queue = -3\n"     // raised to 0
                "verify_usage_window = 0s\n"
                "throttle_ipv6_prefix_len = 48\n"
                "auth_failures_per_ip_burst = 0\n"
                "portal_login_max_failures_per_ip = 9\n"
                "portal_hash_threads = 64\n"
                "portal_hash_nice = 0\n"
                "portal_scrypt_log_n = 10\n"
                "replication = false\n"
                "replica_id = r-1\n"
                "replica_lease = 10s\n");
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->command, ServerCommand::kServe);
  EXPECT_EQ(config->database.password_file, "/etc/lumokeys/db.password");
  EXPECT_EQ(config->database.pool_size, 4);
  EXPECT_EQ(config->pepper_file, "/etc/lumokeys/pepper");
  EXPECT_EQ(config->service_token_file, "/etc/lumokeys/service.token");
  EXPECT_EQ(config->operator_token_file, "/etc/lumokeys/operator.token");
  EXPECT_EQ(config->listen, "0.0.0.0:50051");
  EXPECT_EQ(config->internal_listen, "0.0.0.0:50052");
  EXPECT_EQ(config->tls.cert_file, "/etc/lumokeys/server.crt");
  EXPECT_EQ(config->tls.key_file, "/etc/lumokeys/server.key");
  EXPECT_EQ(config->tls.client_ca_file, "/etc/lumokeys/ca.crt");
  EXPECT_EQ(config->drain_delay, absl::Seconds(4));
  EXPECT_EQ(config->shutdown_grace, absl::Seconds(20));
  EXPECT_EQ(config->heap_trim.interval, absl::ZeroDuration());
  EXPECT_EQ(config->heap_trim.freed_bytes, size_t{256} << 20);
  EXPECT_TRUE(config->allow_nondurable_db);
  EXPECT_TRUE(config->allow_missing_pepper_versions);
  const app::AppOptions& app = config->app;
  EXPECT_EQ(app.workers, 7);
  EXPECT_EQ(app.verify_cache_ttl, absl::Seconds(5));
  EXPECT_EQ(app.default_key_rate_limit_per_minute, 0);
  EXPECT_FALSE(app.record_usage);
  EXPECT_TRUE(app.bench_service);
  // The internal listener confines privileged credentials to it.
  EXPECT_TRUE(app.internal_listener_only);
  EXPECT_EQ(app.audit_writer.max_queue, 1u);
  EXPECT_EQ(app.audit_writer.max_batch, 1u);
  EXPECT_EQ(app.usage_auditor.burst_threshold, 1);
  EXPECT_EQ(app.portal.hashing.max_queue, 0u);
  EXPECT_EQ(app.audit_writer.summary_window, absl::ZeroDuration());
  // One flag, three throttles.
  EXPECT_EQ(app.ipv6_prefix_len, 48);
  EXPECT_EQ(app.failure_throttle.ipv6_prefix_len, 48);
  EXPECT_EQ(app.portal.throttle.ipv6_prefix_len, 48);
  EXPECT_EQ(app.failure_throttle.ip_burst, 0);
  EXPECT_EQ(app.portal.throttle.max_failures_per_network, 9);
  EXPECT_EQ(app.portal.hashing.threads, 64);
  EXPECT_EQ(app.portal.hashing.nice_increment, 0);
  EXPECT_EQ(app.portal.scrypt.log2_n, 10);
  EXPECT_FALSE(app.replication);
  EXPECT_EQ(app.replica.replica_id, "r-1");
  EXPECT_EQ(app.replica.address, "0.0.0.0:50051");
  EXPECT_EQ(app.replica.lease, absl::Seconds(10));
  EXPECT_EQ(app.replica.lease_margin, absl::Seconds(2));
}

TEST_F(ServerConfigTest, SecretFilesNameEveryFlagThatHoldsASecret) {
  absl::StatusOr<ServerConfig> config =
      ConfigFor(std::string(kDsn) +
                "pepper_file = /p\n"
                "tls_cert_file = /c\ntls_key_file = /k\n"
                "mysql_password_file = /m\n");
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->SecretFiles(),
            (std::vector<std::pair<std::string, std::string>>{
                {"--pepper_file", "/p"},
                {"--operator_token_file", ""},
                {"--service_token_file", ""},
                {"--mysql_password_file", "/m"},
                {"--tls_key_file", "/k"}}));
}

TEST_F(ServerConfigTest, CommandsByNameAndByTheirEarlierFlagSpellings) {
  const struct {
    std::string settings;
    std::vector<std::string> words;
    ServerCommand command;
  } cases[] = {
      {"", {}, ServerCommand::kServe},
      {"", {"serve"}, ServerCommand::kServe},
      {"", {"migrate"}, ServerCommand::kMigrate},
      {"migrate = true\n", {}, ServerCommand::kMigrate},
      {"migrate = true\n", {"migrate"}, ServerCommand::kMigrate},
      {"older_than_days = 30\n", {"purge-audit"}, ServerCommand::kPurgeAudit},
      {"purge_audit_older_than_days = 30\n", {}, ServerCommand::kPurgeAudit},
      {"", {"check-peppers"}, ServerCommand::kCheckPeppers},
      {"check_peppers = true\n", {}, ServerCommand::kCheckPeppers},
  };
  for (const auto& c : cases) {
    absl::FlagSaver saver;
    absl::StatusOr<ServerConfig> config = ConfigFor(kDsn + c.settings, c.words);
    ASSERT_TRUE(config.ok()) << c.settings << config.status();
    EXPECT_EQ(config->command, c.command) << c.settings;
  }
}

TEST_F(ServerConfigTest, MigrateTakesItsDirectoryAndIgnoresServeSettings) {
  // A deploy job may migrate with the serve command's whole configuration;
  // serve-only settings are not checked then.
  absl::StatusOr<ServerConfig> config =
      ConfigFor(std::string(kDsn) +
                    "migrations_dir = /usr/share/lumokeys/migrations\n"
                    "listen = 10.0.0.1:1\n"  // plaintext, not loopback
                    "tls_key_file = /k\n"    // without a certificate
                    "portal_hash_threads = 0\n",
                {"migrate"});
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->migrations_dir, "/usr/share/lumokeys/migrations");
  // Every command's secret files are still checked.
  EXPECT_EQ(config->SecretFiles().back(),
            (std::pair<std::string, std::string>{"--tls_key_file", "/k"}));
}

TEST_F(ServerConfigTest, PurgeAuditTakesDaysFromEitherSpelling) {
  {
    absl::FlagSaver saver;
    absl::StatusOr<ServerConfig> config = ConfigFor(
        std::string(kDsn) + "older_than_days = 30\n", {"purge-audit"});
    ASSERT_TRUE(config.ok()) << config.status();
    EXPECT_EQ(config->purge_older_than_days, 30);
  }
  absl::StatusOr<ServerConfig> config =
      ConfigFor(std::string(kDsn) + "purge_audit_older_than_days = 45\n");
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->purge_older_than_days, 45);
}

TEST_F(ServerConfigTest, PurgeUsageTakesBothRetentionsWithDefaults) {
  {
    absl::FlagSaver saver;
    absl::StatusOr<ServerConfig> config =
        ConfigFor(std::string(kDsn), {"purge-usage"});
    ASSERT_TRUE(config.ok()) << config.status();
    EXPECT_EQ(config->command, ServerCommand::kPurgeUsage);
    EXPECT_EQ(config->usage_hourly_retention_days, 90);
    EXPECT_EQ(config->usage_daily_retention_days, 400);
  }
  {
    absl::FlagSaver saver;
    absl::StatusOr<ServerConfig> config = ConfigFor(
        std::string(kDsn) +
            "hourly_older_than_days = 7\ndaily_older_than_days = 60\n",
        {"purge-usage"});
    ASSERT_TRUE(config.ok()) << config.status();
    EXPECT_EQ(config->usage_hourly_retention_days, 7);
    EXPECT_EQ(config->usage_daily_retention_days, 60);
  }
  absl::FlagSaver saver;
  absl::StatusOr<ServerConfig> config = ConfigFor(
      std::string(kDsn) + "daily_older_than_days = 0\n", {"purge-usage"});
  ASSERT_FALSE(config.ok());
  EXPECT_NE(
      std::string(config.status().message()).find("--daily_older_than_days"),
      std::string::npos)
      << config.status();
}

TEST_F(ServerConfigTest, BadCommandLinesGiveTheDocumentedErrors) {
  const struct {
    std::string settings;
    std::vector<std::string> words;
    std::string message;
  } cases[] = {
      {kDsn,
       {"migrat"},
       "unknown command 'migrat' (commands: serve, migrate, purge-audit, "
       "purge-usage, check-peppers)"},
      {kDsn,
       {"migrate", "now"},
       "unexpected argument 'now' (one command at most)"},
      {std::string(kDsn) + "check_peppers = true\n",
       {"migrate"},
       "'migrate' and --check_peppers name different commands (migrate, "
       "check-peppers): give one"},
      {std::string(kDsn) + "migrate = true\npurge_audit_older_than_days = 3\n",
       {},
       "--migrate and --purge_audit_older_than_days name different commands "
       "(migrate, purge-audit): give one"},
      {"", {"migrate"}, "--mysql is required"},
      {"", {}, "--mysql is required"},
      {kDsn,
       {"purge-audit"},
       "purge-audit needs --older_than_days=N with N at least 1 (got 0)"},
      {std::string(kDsn) + "purge_audit_older_than_days = -1\n",
       {},
       "purge-audit needs --purge_audit_older_than_days=N with N at least 1 "
       "(got -1)"},
      {std::string(kDsn) +
           "older_than_days = 30\npurge_audit_older_than_days = 31\n",
       {"purge-audit"},
       "--older_than_days and --purge_audit_older_than_days (its earlier "
       "spelling) disagree: give one"},
  };
  for (const auto& c : cases) {
    absl::FlagSaver saver;
    EXPECT_EQ(Refusal(c.settings, absl::StatusCode::kInvalidArgument, c.words),
              c.message);
  }
}

TEST_F(ServerConfigTest, BadServeSettingsGiveTheDocumentedErrors) {
  const struct {
    std::string settings;
    std::string message;
  } cases[] = {
      {"tls_key_file = /k\n",
       "--tls_cert_file and --tls_key_file must be set together"},
      {"tls_cert_file = /c\n",
       "--tls_cert_file and --tls_key_file must be set together"},
      {"tls_client_ca_file = /ca\n",
       "--tls_client_ca_file needs --tls_cert_file and --tls_key_file "
       "(client certificates are only checked over TLS)"},
      {"internal_listen = 127.0.0.1:0\n",
       "--internal_listen needs --tls_client_ca_file, --tls_cert_file and "
       "--tls_key_file (it serves mTLS only)"},
      {"tls_cert_file = /c\ntls_key_file = /k\ntls_client_ca_file = /ca\n"
       "internal_listen = 127.0.0.1:50051\n",
       "--internal_listen must differ from --listen"},
      {"drain_delay = -1s\n",
       "--drain_delay and --shutdown_grace must not be negative"},
      {"shutdown_grace = -1s\n",
       "--drain_delay and --shutdown_grace must not be negative"},
      {"heap_trim_interval = -1s\n",
       "--heap_trim_interval must be between 0s and 1h"},
      {"heap_trim_interval = 61m\n",
       "--heap_trim_interval must be between 0s and 1h"},
      {"heap_trim_freed_mb = 0\n",
       "--heap_trim_freed_mb must be between 1 and 65536"},
      {"heap_trim_freed_mb = 65537\n",
       "--heap_trim_freed_mb must be between 1 and 65536"},
      {"verify_usage_window = 11m\n",
       "--verify_usage_window must be between 0s and 10m"},
      {"verify_usage_window = -1s\n",
       "--verify_usage_window must be between 0s and 10m"},
      {"throttle_ipv6_prefix_len = 0\n",
       "--throttle_ipv6_prefix_len must be between 1 and 128"},
      {"throttle_ipv6_prefix_len = 129\n",
       "--throttle_ipv6_prefix_len must be between 1 and 128"},
      {"portal_hash_threads = 0\n",
       "--portal_hash_threads must be between 1 and 64"},
      {"portal_hash_threads = 65\n",
       "--portal_hash_threads must be between 1 and 64"},
      {"portal_hash_nice = 20\n",
       "--portal_hash_nice must be between 0 and 19"},
      {"portal_scrypt_log_n = 9\n",
       "--portal_scrypt_log_n must be between 10 and 20"},
      {"portal_scrypt_log_n = 21\n",
       "--portal_scrypt_log_n must be between 10 and 20"},
      {"default_key_rate_limit_per_minute = -1\n",
       "--default_key_rate_limit_per_minute must be between 0 and 1000000000"},
      {"webhook_workers = 65\n", "--webhook_workers must be between 0 and 64"},
      {"webhook_timeout = 500ms\n",
       "--webhook_timeout must be between 1s and 1m"},
      {"webhook_retry_window = 73h\n",
       "--webhook_retry_window must be between 1m and 72h"},
      {"decoy_block_seconds = 86401\n",
       "--decoy_block_seconds must be between 0 and 86400"},
      {"webhook_retention = 30m\n",
       "--webhook_retention must be between 1h and 87600h"},
      {"webhook_disable_after_failures = 0\n",
       "--webhook_disable_after_failures must be between 1 and 10000"},
      {"webhook_allow_cidrs = 127.0.0.1/32,10.0.0.1/8\n",
       "--webhook_allow_cidrs: CIDR has host bits set after the prefix length"},
  };
  for (const auto& c : cases) {
    absl::FlagSaver saver;
    EXPECT_EQ(Refusal(kDsn + c.settings), c.message) << c.settings;
  }
}

TEST_F(ServerConfigTest, PlaintextOnlyOnLoopbackUnlessAllowedOrTls) {
  EXPECT_EQ(Refusal(std::string(kDsn) + "listen = 10.1.1.1:1\n",
                    absl::StatusCode::kFailedPrecondition),
            "--listen=10.1.1.1:1 is not loopback: plaintext gRPC is refused "
            "there unless --allow_remote_plaintext is set (or TLS is "
            "configured with --tls_cert_file/--tls_key_file)");
  for (const char* allowed :
       {"listen = 10.1.1.1:1\nallow_remote_plaintext = true\n",
        "listen = 10.1.1.1:1\ntls_cert_file = /c\ntls_key_file = /k\n",
        "listen = [::1]:50051\n", "listen = localhost:50051\n",
        "listen = unix:/run/lumokeys.sock\n"}) {
    absl::FlagSaver saver;
    absl::StatusOr<ServerConfig> config =
        ConfigFor(kDsn + std::string(allowed));
    EXPECT_TRUE(config.ok()) << allowed << config.status();
  }
}

}  // namespace
}  // namespace lumo::config
