// The storage interface of webhooks (docs/webhooks.md): a tenant's
// endpoints, and the outbox — one webhook event per audit event that at
// least one endpoint receives, and one delivery per receiving endpoint —
// with the claims and attempt outcomes of the delivery workers.
//
// The outbox is filled by the audit appends themselves, not here: every
// backend's lifecycle transactions and batched audit writer insert the
// event and its deliveries in the audit event's own transaction
// (webhook_outbox.h says which events and types), for the endpoints that
// are enabled and subscribed at that moment.
//
// Error contract as key_store.h (INVALID_ARGUMENT, ABORTED, UNAVAILABLE,
// DEADLINE_EXCEEDED, INTERNAL); method comments list the other codes. No
// status message ever contains a secret. Endpoint ids that cannot exist
// (not "whk_" + 16 base62) are NOT_FOUND without a query.
//
// Lock order (backends with row locks): an endpoint's row, then the audit
// chain head of the event being written, then delivery rows; claims lock
// delivery rows only. The audit appends never lock an endpoint row.
#ifndef LUMOKEYS_SERVER_STORAGE_WEBHOOK_STORE_H_
#define LUMOKEYS_SERVER_STORAGE_WEBHOOK_STORE_H_

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "server/storage/key_store.h"
#include "server/storage/list_page.h"

namespace lumo::storage {

// A signing secret as stored: encrypted by the service (opaque here) under
// a key derived from pepper `pepper_version`.
struct SealedSecret {
  std::string sealed;
  int pepper_version = 0;
};

struct WebhookEndpointRecord {
  std::string id;  // "whk_" + 16 base62
  int64_t tenant_id = 0;
  std::string url;
  std::string description;
  std::vector<std::string> event_types;  // canonical; empty: every type
  bool enabled = true;
  std::string disabled_reason;  // "" while enabled, "manual" or "failures"
  SealedSecret secret;
  std::string secret_prefix;
  // The secret replaced by the last rotation while it still signs.
  std::optional<SealedSecret> previous_secret;
  std::optional<absl::Time> previous_secret_valid_until;
  std::optional<absl::Time> secret_rotated_at;
  int32_t consecutive_failures = 0;
  std::optional<absl::Time> failing_since;
  int64_t version = 1;
  absl::Time created_at;
  absl::Time updated_at;
};

struct NewWebhookEndpoint {
  std::string id;
  int64_t tenant_id = 0;
  std::string url;
  std::string description;
  std::vector<std::string> event_types;
  bool enabled = true;
  SealedSecret secret;
  std::string secret_prefix;
};

// The members of a change that are set; unset ones stay as they are.
struct WebhookEndpointUpdate {
  std::optional<std::string> url;
  std::optional<std::string> description;
  std::optional<std::vector<std::string>> event_types;
  std::optional<bool> enabled;
};

struct WebhookEndpointPage {
  std::vector<WebhookEndpointRecord> endpoints;  // oldest first
  int64_t total = 0;
};

enum class DeliveryState { kPending, kDelivered, kFailed, kCancelled };

// "pending", "delivered", "failed", "cancelled".
inline absl::string_view DeliveryStateName(DeliveryState state) {
  switch (state) {
    case DeliveryState::kPending:
      return "pending";
    case DeliveryState::kDelivered:
      return "delivered";
    case DeliveryState::kFailed:
      return "failed";
    case DeliveryState::kCancelled:
      return "cancelled";
  }
  return "pending";
}

struct WebhookDeliveryRecord {
  int64_t id = 0;
  int64_t tenant_id = 0;
  std::string endpoint_id;
  std::string event_id;  // "evt_..."
  std::string event_type;
  DeliveryState state = DeliveryState::kPending;
  int32_t attempts = 0;
  absl::Time next_attempt_at;
  std::optional<absl::Time> last_attempt_at;
  int32_t last_http_status = 0;  // 0: none read
  int32_t last_latency_ms = 0;
  std::string last_error;
  std::optional<absl::Time> delivered_at;
  absl::Time created_at;
};

struct DeliveryQuery {
  int page = 1;    // 1-based
  int limit = 25;  // 1..100
  std::optional<DeliveryState> state;
  // Set: only deliveries with a smaller id (keyset paging, newest first,
  // through the (endpoint_id, id) index); page must then be 1.
  std::optional<int64_t> before_id;
  // The total's count: of every delivery matching the filter, before_id
  // aside.
  CountRequest count;
};

struct DeliveryPage {
  std::vector<WebhookDeliveryRecord> deliveries;  // newest first
  int64_t total = 0;                              // see total_kind
  TotalKind total_kind = TotalKind::kExact;
  // There are matching deliveries after the last one returned.
  bool has_more = false;
};

// A stored webhook event: the facts its payload is rendered from.
struct WebhookEventRecord {
  std::string event_id;  // "evt_" + 22 base62
  int64_t tenant_id = 0;
  std::string tenant_slug;
  std::string type;
  AuditEvent audit;  // as stored (cut to the audit columns)
  absl::Time created_at;
};

// One claimed attempt: what the worker needs to send it.
struct ClaimedDelivery {
  int64_t delivery_id = 0;
  std::string endpoint_id;
  // Proves the claim to CompleteAttempt.
  std::string lease_token;
  int32_t attempt = 0;  // this attempt's number, 1-based
  WebhookEventRecord event;
  // The endpoint at the claim.
  std::string url;
  SealedSecret secret;
  // Set while the previous secret still signs (database clock).
  std::optional<SealedSecret> previous_secret;
};

// The outcome of one attempt, as the worker saw it.
struct AttemptOutcome {
  bool delivered = false;
  int32_t http_status = 0;  // 0: none read
  absl::Duration latency;
  std::string error;  // our own text, never the response body
  // For a failed attempt: the next one is due this long after now.
  absl::Duration retry_in;
};

// When a failed attempt ends its delivery and disables its endpoint.
struct FailurePolicy {
  // A failed attempt of a delivery whose event is older than this gives it
  // up (state failed).
  absl::Duration retry_window = absl::Hours(24);
  // The endpoint is disabled when it has failed this many attempts in a
  // row and the first of them is at least `disable_after` old.
  int32_t disable_after_failures = 20;
  absl::Duration disable_after = absl::Hours(1);
};

struct CompletedAttempt {
  // False when the claim was no longer held (its lease ended and another
  // claim took the row, or the delivery was cancelled): nothing was
  // written.
  bool applied = false;
  DeliveryState state = DeliveryState::kPending;
  // The endpoint was disabled by this attempt.
  bool endpoint_disabled = false;
};

// A secret-scanning report of one secret of a key (docs/webhooks.md,
// "Leaked-key intake"). The secret is named by its stored digest, which
// stays the same when a rotation retires it.
struct LeakedSecretReport {
  std::string key_id;
  int64_t tenant_id = 0;
  core::Digest secret_digest{};
  std::string url;     // at most 2048 bytes (INVALID_ARGUMENT otherwise)
  std::string source;  // at most 64 bytes
};

// Thread-safe: every method may be called concurrently from any thread.
class WebhookStore {
 public:
  virtual ~WebhookStore() = default;

  // Inserts the endpoint and `event` in one transaction, unless the tenant
  // already has `max_endpoints` endpoints (FAILED_PRECONDITION; concurrent
  // creations cannot exceed it). ALREADY_EXISTS when the id is taken.
  // NOT_FOUND when the tenant does not exist.
  virtual absl::StatusOr<WebhookEndpointRecord> CreateEndpoint(
      const NewWebhookEndpoint& endpoint, int max_endpoints,
      const AuditEvent& event) = 0;

  // NOT_FOUND when the endpoint does not exist or is another tenant's.
  virtual absl::StatusOr<WebhookEndpointRecord> GetEndpoint(
      int64_t tenant_id, absl::string_view id) = 0;

  // Oldest first. INVALID_ARGUMENT unless page >= 1 and limit in 1..100.
  virtual absl::StatusOr<WebhookEndpointPage> ListEndpoints(int64_t tenant_id,
                                                            int page,
                                                            int limit) = 0;

  // Applies the set members under the endpoint's row lock. A change that
  // changes nothing writes nothing (`*changed` false). Otherwise, in one
  // transaction: the change, version + 1, updated_at, `event`; disabling
  // sets disabled_reason "manual" and cancels the endpoint's pending
  // deliveries; enabling clears the reason and the failure count.
  // NOT_FOUND as GetEndpoint.
  virtual absl::StatusOr<WebhookEndpointRecord> UpdateEndpoint(
      int64_t tenant_id, absl::string_view id,
      const WebhookEndpointUpdate& update, const AuditEvent& event,
      bool* changed) = 0;

  // Installs `secret`; the current one becomes the previous secret, signing
  // until now + `overlap` (database clock; a zero overlap drops it), which
  // replaces any earlier previous secret. With `event`, in one transaction.
  // NOT_FOUND as GetEndpoint.
  virtual absl::StatusOr<WebhookEndpointRecord> RotateSecret(
      int64_t tenant_id, absl::string_view id, const SealedSecret& secret,
      absl::string_view secret_prefix, absl::Duration overlap,
      const AuditEvent& event) = 0;

  // Deletes the endpoint and its delivery log, with `event`, in one
  // transaction. NOT_FOUND as GetEndpoint.
  virtual absl::Status DeleteEndpoint(int64_t tenant_id, absl::string_view id,
                                      const AuditEvent& event) = 0;

  // A "ping" event for this endpoint only (whatever it subscribes to) and
  // its delivery, due now, with `event`, in one transaction. NOT_FOUND as
  // GetEndpoint; FAILED_PRECONDITION when the endpoint is disabled.
  virtual absl::StatusOr<WebhookDeliveryRecord> EnqueuePing(
      int64_t tenant_id, absl::string_view endpoint_id,
      const AuditEvent& event) = 0;

  // The endpoint's deliveries, newest first. NOT_FOUND as GetEndpoint;
  // INVALID_ARGUMENT for paging out of range (a page other than 1 with
  // before_id included).
  virtual absl::StatusOr<DeliveryPage> ListDeliveries(
      int64_t tenant_id, absl::string_view endpoint_id,
      const DeliveryQuery& query) = 0;

  // The stored event `event_id` of the tenant. NOT_FOUND when none.
  virtual absl::StatusOr<WebhookEventRecord> GetEvent(
      int64_t tenant_id, absl::string_view event_id) = 0;

  // Claims up to `max` pending deliveries that are due (database clock),
  // oldest due first, skipping rows another claim holds: each gets a new
  // lease token, attempts + 1, and next_attempt_at = now + `lease`, so no
  // other claim takes it until the lease ends. A due delivery whose
  // endpoint is disabled or gone is cancelled instead of claimed. Two
  // concurrent claims never return the same delivery while its lease runs.
  virtual absl::StatusOr<std::vector<ClaimedDelivery>> ClaimDue(
      int max, absl::Duration lease) = 0;

  // Records the outcome of a claimed attempt if the claim still holds
  // (same lease token, still pending); otherwise writes nothing. In one
  // transaction holding the endpoint's row lock:
  //   - delivered: state delivered, the endpoint's failure count reset;
  //   - failed: the failure count + 1 (failing_since set at the first);
  //     the delivery gives up (failed) when its event is older than
  //     `policy.retry_window`, else is due again at now + retry_in; when
  //     the endpoint reaches the policy's threshold it is disabled
  //     (reason "failures"), its pending deliveries cancelled, and
  //     `disable_event` (its tenant set by the store) written.
  virtual absl::StatusOr<CompletedAttempt> CompleteAttempt(
      const ClaimedDelivery& claim, const AttemptOutcome& outcome,
      const FailurePolicy& policy, const AuditEvent& disable_event) = 0;

  // Retention (docs/webhooks.md "Retention"), on the database clock:
  // deletes the finished deliveries (delivered, failed, cancelled) created
  // more than `finished_older_than` ago, then the webhook events created
  // before then that no delivery references any more, then the
  // previous-secret tallies (AuditStore::ListPreviousSecretUsers) of
  // rotations more than `tallies_older_than` ago. Pending deliveries and
  // their events stay, whatever their age. Works in chunks, each its own
  // short statement, so it never holds many locks for long. Returns the
  // rows deleted, all kinds together. INVALID_ARGUMENT for a duration
  // that is not positive.
  virtual absl::StatusOr<int64_t> PurgeExpired(
      absl::Duration finished_older_than,
      absl::Duration tallies_older_than) = 0;

  // Leaked-key reports (the secret-scanning intake; the reports share the
  // outbox of their events).
  // Whether the secret of `key_id` with this digest was reported before.
  virtual absl::StatusOr<bool> LeakReported(absl::string_view key_id,
                                            const core::Digest& digest) = 0;
  // Records the report (database clock) with `event` (its tenant is the
  // report's) in one transaction: true. When that secret was reported
  // already, also concurrently, writes nothing: false.
  virtual absl::StatusOr<bool> RecordLeakReport(
      const LeakedSecretReport& report, const AuditEvent& event) = 0;
};

}  // namespace lumo::storage

#endif  // LUMOKEYS_SERVER_STORAGE_WEBHOOK_STORE_H_
