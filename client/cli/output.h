// Human-readable and JSON rendering of replies for the `lumokeys` CLI.
//
// Human output: `field: value` lines with aligned values for one object, a
// table for lists. Text coming from the server (names, ...) has control
// characters replaced so it cannot drive the terminal. The `key` field of
// an ApiKey is rendered only by FormatApiKey with `show_key` set; list
// rendering never shows it, whatever the server sent.
#ifndef LUMOKEYS_CLIENT_CLI_OUTPUT_H_
#define LUMOKEYS_CLIENT_CLI_OUTPUT_H_

#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "google/protobuf/message.h"
#include "google/protobuf/timestamp.pb.h"
#include "lumo/audit/v1/audit.pb.h"
#include "lumo/auth/v1/auth.pb.h"
#include "lumo/keys/v1/keys.pb.h"
#include "lumo/ops/v1/ops.pb.h"
#include "lumo/webhooks/v1/webhooks.pb.h"

namespace lumo::cli {

// `text` with every ASCII control character (and DEL) replaced by '?'.
std::string Sanitize(absl::string_view text);

// RFC 3339 in UTC with second precision ("2030-01-01T00:00:00Z").
std::string FormatTimestamp(const google::protobuf::Timestamp& timestamp);

// `label: value` lines, values aligned one column after the longest label.
std::string FormatFields(
    const std::vector<std::pair<std::string, std::string>>& fields);

// Rows padded to the widest cell of each column (two spaces between
// columns; no trailing spaces). `rows[0]` is the header.
std::string FormatTable(const std::vector<std::vector<std::string>>& rows);

// One key as aligned fields. The full key is included only when
// `show_key` is set and the reply carries one.
std::string FormatApiKey(const lumo::keys::v1::ApiKey& key, bool show_key);
// A page of keys as a table (prefix, name, status, scopes, created, last
// used, expires) plus a "page P of N" footer.
std::string FormatApiKeyList(const lumo::keys::v1::ListApiKeysResponse& list);
// A key's balance (credits API) and an identity's limits.
std::string FormatCredits(const lumo::keys::v1::ApiKeyCredits& credits);
std::string FormatIdentityLimits(const lumo::keys::v1::IdentityLimits& limits);
std::string FormatTenant(const lumo::ops::v1::Tenant& tenant);
std::string FormatVerify(const lumo::auth::v1::VerifyApiKeyResponse& reply);

// A page of audit events as a table (id, time, action, outcome, suspicious,
// actor, target, ip) plus a "page P of N" footer.
std::string FormatAuditList(const lumo::audit::v1::ListAuditLogsResponse& list);
// A usage series as a table: one row per bucket (start, calls,
// verifications, API calls, failures, then one column per outcome that
// occurred in the range) and a total row.
std::string FormatKeyUsage(const lumo::audit::v1::ApiKeyUsage& usage);
// The same for a tenant, followed by the top keys by calls and by failures.
std::string FormatTenantUsage(const lumo::audit::v1::TenantUsage& usage);
// One audit event on one line (for `audit tail`), with a trailing newline.
std::string FormatAuditLine(const lumo::audit::v1::AuditEvent& event);
// The outcome of `audit verify` for `tenant`.
std::string FormatChainVerification(
    absl::string_view tenant,
    const lumo::ops::v1::VerifyAuditChainResponse& reply);

// One webhook endpoint as aligned fields; the signing secret only with
// `show_secret` (the replies of create and rotate-secret).
std::string FormatWebhook(const lumo::webhooks::v1::Webhook& webhook,
                          bool show_secret);
// A page of endpoints as a table (id, url, enabled, events, failures).
std::string FormatWebhookList(
    const lumo::webhooks::v1::ListWebhooksResponse& list);
std::string FormatWebhookDelivery(
    const lumo::webhooks::v1::WebhookDelivery& delivery);
// A page of deliveries as a table (id, event, type, status, attempts, HTTP
// status, latency, last error).
std::string FormatWebhookDeliveryList(
    const lumo::webhooks::v1::ListWebhookDeliveriesResponse& list);

// The message as proto3 JSON on one line (no trailing newline).
absl::StatusOr<std::string> ToJsonLine(
    const google::protobuf::Message& message);

// The stderr note printed after a full key in human mode.
inline constexpr absl::string_view kShownOnceNote =
    "note: the full key is shown only once; store it somewhere safe now, it "
    "cannot be retrieved again.";
// The stderr note printed after a webhook signing secret in human mode.
inline constexpr absl::string_view kSecretShownOnceNote =
    "note: the signing secret is shown only once; store it with the "
    "receiver now, it cannot be retrieved again.";

}  // namespace lumo::cli

#endif  // LUMOKEYS_CLIENT_CLI_OUTPUT_H_
