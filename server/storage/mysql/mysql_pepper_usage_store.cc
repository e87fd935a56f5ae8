#include "server/storage/mysql/mysql_pepper_usage_store.h"

#include <cppconn/prepared_statement.h>
#include <cppconn/resultset.h>

#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "server/storage/mysql/mysql_session.h"
#include "server/storage/mysql/select_list.h"

namespace lumo::storage {
namespace {

// The liveness rules of the verifier (server/service/verifier.cc): a key is
// live unless revoked or past expires_at; a rotated-away secret is live
// while its key is and valid_until is ahead. UTC_TIMESTAMP(6) is one value
// for the whole statement.
constexpr char kLiveKey[] =
    "(k.revoked = 0 AND (k.expires_at IS NULL"
    " OR k.expires_at > UTC_TIMESTAMP(6)))";

// One row per pepper version: the six counts of PepperVersionUsage.
struct UsageSelect {
  SelectList list;
  int version = list.Add("v");
  int live_keys = list.Add("CAST(SUM(live_keys) AS SIGNED)");
  int live_retired = list.Add("CAST(SUM(live_retired) AS SIGNED)");
  int clients = list.Add("CAST(SUM(clients) AS SIGNED)");
  int webhooks = list.Add("CAST(SUM(webhooks) AS SIGNED)");
  int dead_keys = list.Add("CAST(SUM(dead_keys) AS SIGNED)");
  int dead_retired = list.Add("CAST(SUM(dead_retired) AS SIGNED)");
};

std::string UsageSql() {
  const std::string live_retired =
      absl::StrCat("(", kLiveKey, " AND r.valid_until > UTC_TIMESTAMP(6))");
  return absl::StrCat(
      "SELECT ", SelectOf<UsageSelect>().list.sql(), " FROM (",
      // Keys (deleted ones never need their pepper).
      "SELECT k.pepper_version AS v, SUM(", kLiveKey, ") AS live_keys,",
      " 0 AS live_retired, 0 AS clients, 0 AS webhooks, SUM(NOT ", kLiveKey,
      ") AS dead_keys, 0 AS dead_retired",
      " FROM api_keys k WHERE k.deleted_at IS NULL GROUP BY k.pepper_version",
      // Rotated-away secrets of keys that are not deleted.
      " UNION ALL SELECT r.pepper_version, 0, SUM(", live_retired,
      "), 0, 0, 0,", " SUM(NOT ", live_retired, ")",
      " FROM api_key_retired_secrets r JOIN api_keys k ON k.id = r.key_id",
      " WHERE k.deleted_at IS NULL GROUP BY r.pepper_version",
      // OAuth client secrets (public clients have none).
      " UNION ALL SELECT secret_pepper_version, 0, 0, COUNT(*), 0, 0, 0",
      " FROM oauth_clients WHERE secret_pepper_version IS NOT NULL",
      " GROUP BY secret_pepper_version",
      // Sealed webhook secrets: current, and previous while still signing.
      " UNION ALL SELECT secret_pepper_version, 0, 0, 0, COUNT(*), 0, 0",
      " FROM webhook_endpoints GROUP BY secret_pepper_version",
      " UNION ALL SELECT previous_secret_pepper_version, 0, 0, 0, COUNT(*),",
      " 0, 0 FROM webhook_endpoints",
      " WHERE previous_secret_valid_until > UTC_TIMESTAMP(6)",
      " GROUP BY previous_secret_pepper_version", ") u GROUP BY v ORDER BY v");
}

}  // namespace

absl::StatusOr<std::vector<PepperVersionUsage>>
MysqlPepperUsageStore::PepperUsage() {
  std::vector<PepperVersionUsage> usage;
  absl::Status status =
      Run(*pool_, "read pepper usage", [&](Session& s) -> absl::Status {
        usage.clear();  // Run may retry the body on a fresh connection
        std::unique_ptr<sql::PreparedStatement> stmt =
            s.PrepareUncached(UsageSql());
        std::unique_ptr<sql::ResultSet> rs = s.Query(*stmt);
        const UsageSelect& c = SelectOf<UsageSelect>();
        while (rs->next()) {
          PepperVersionUsage& u = usage.emplace_back();
          u.version = rs->getInt(c.version);
          u.live_keys = rs->getInt64(c.live_keys);
          u.live_retired_secrets = rs->getInt64(c.live_retired);
          u.client_secrets = rs->getInt64(c.clients);
          u.webhook_secrets = rs->getInt64(c.webhooks);
          u.dead_keys = rs->getInt64(c.dead_keys);
          u.dead_retired_secrets = rs->getInt64(c.dead_retired);
        }
        return absl::OkStatus();
      });
  if (!status.ok()) return status;
  return usage;
}

}  // namespace lumo::storage
