#include "server/service/pepper_coverage.h"

#include <map>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"

namespace lumo::service {
namespace {

// "1 key" / "2 keys"; nothing for 0.
void AppendCount(std::vector<std::string>& parts, int64_t n,
                 absl::string_view one, absl::string_view many) {
  if (n == 0) return;
  parts.push_back(absl::StrCat(n, " ", n == 1 ? one : many));
}

std::string LiveParts(const storage::PepperVersionUsage& u) {
  std::vector<std::string> parts;
  AppendCount(parts, u.live_keys, "key", "keys");
  AppendCount(parts, u.live_retired_secrets,
              "rotated-away secret in its grace period",
              "rotated-away secrets in their grace period");
  AppendCount(parts, u.client_secrets, "OAuth client secret",
              "OAuth client secrets");
  AppendCount(parts, u.webhook_secrets, "webhook signing secret",
              "webhook signing secrets");
  return absl::StrJoin(parts, ", ");
}

std::string DeadParts(const storage::PepperVersionUsage& u) {
  std::vector<std::string> parts;
  AppendCount(parts, u.dead_keys, "revoked or expired key",
              "revoked or expired keys");
  AppendCount(parts, u.dead_retired_secrets,
              "rotated-away secret past its grace period",
              "rotated-away secrets past their grace period");
  return absl::StrJoin(parts, ", ");
}

}  // namespace

bool PepperCoverage::refused() const {
  for (const Row& row : rows) {
    if (!row.in_set && row.usage.live() > 0) return true;
  }
  return false;
}

bool PepperCoverage::degraded() const {
  for (const Row& row : rows) {
    if (!row.in_set && row.usage.dead() > 0) return true;
  }
  return false;
}

std::string PepperCoverage::RefusalMessage() const {
  std::vector<std::string> clauses;
  for (const Row& row : rows) {
    if (row.in_set || row.usage.live() == 0) continue;
    clauses.push_back(absl::StrCat(
        "pepper version ", row.version,
        " is missing from the pepper file but live secrets use it (",
        LiveParts(row.usage), ")"));
  }
  if (clauses.empty()) return "";
  return absl::StrCat(
      absl::StrJoin(clauses, "; "),
      ": they would stop verifying. Keep the version in the pepper file "
      "until they are rotated or revoked (lumokeys-server check-peppers "
      "counts what uses each version)");
}

std::string PepperCoverage::WarningMessage() const {
  std::vector<std::string> clauses;
  for (const Row& row : rows) {
    if (row.in_set || row.usage.dead() == 0) continue;
    clauses.push_back(absl::StrCat("pepper version ", row.version,
                                   " is missing from the pepper file and "
                                   "dead secrets use it (",
                                   DeadParts(row.usage), ")"));
  }
  if (clauses.empty()) return "";
  return absl::StrCat(absl::StrJoin(clauses, "; "),
                      ": they stay refused, but are answered NOT_FOUND "
                      "instead of REVOKED, EXPIRED or ROTATED");
}

std::string PepperCoverage::Report() const {
  std::string out = absl::StrFormat(
      "%7s  %-11s  %9s  %16s  %14s  %15s  %9s  %18s\n", "version",
      "pepper file", "live keys", "in-grace secrets", "client secrets",
      "webhook secrets", "dead keys", "past-grace secrets");
  for (const Row& row : rows) {
    absl::StrAppendFormat(
        &out, "%7d  %-11s  %9d  %16d  %14d  %15d  %9d  %18d\n", row.version,
        !row.in_set ? "MISSING" : (row.current ? "current" : "present"),
        row.usage.live_keys, row.usage.live_retired_secrets,
        row.usage.client_secrets, row.usage.webhook_secrets,
        row.usage.dead_keys, row.usage.dead_retired_secrets);
  }
  const std::string refusal = RefusalMessage();
  const std::string warning = WarningMessage();
  if (!refusal.empty()) absl::StrAppend(&out, "REFUSED: ", refusal, "\n");
  if (!warning.empty()) absl::StrAppend(&out, "WARNING: ", warning, "\n");
  if (refusal.empty() && warning.empty()) {
    absl::StrAppend(&out,
                    "OK: the pepper file holds every pepper version that a "
                    "stored secret uses\n");
  }
  return out;
}

PepperCoverage ComparePepperCoverage(
    const std::vector<int>& set_versions,
    const std::vector<storage::PepperVersionUsage>& usage) {
  std::map<int, PepperCoverage::Row> rows;
  for (int version : set_versions) {
    PepperCoverage::Row& row = rows[version];
    row.version = version;
    row.in_set = true;
    row.usage.version = version;
  }
  if (!set_versions.empty()) rows[set_versions.back()].current = true;
  for (const storage::PepperVersionUsage& u : usage) {
    PepperCoverage::Row& row = rows[u.version];
    row.version = u.version;
    row.usage = u;
  }
  PepperCoverage coverage;
  for (auto& [version, row] : rows) coverage.rows.push_back(std::move(row));
  return coverage;
}

absl::StatusOr<PepperCoverage> CheckPepperCoverage(
    const core::PepperSet& peppers, storage::PepperUsageStore& store) {
  absl::StatusOr<std::vector<storage::PepperVersionUsage>> usage =
      store.PepperUsage();
  if (!usage.ok()) return usage.status();
  return ComparePepperCoverage(peppers.Versions(), *usage);
}

}  // namespace lumo::service
