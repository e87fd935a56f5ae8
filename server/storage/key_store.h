// The storage interface of the key service. Domain logic (server/service)
// depends only on this header; the MySQL backend lives in storage/mysql and
// an in-memory fake for unit tests in tests/.
//
// Every method that touches tenant data takes the tenant id and is scoped by
// it, except LoadForVerify and LoadManyForVerify, whose purpose is to find
// which tenant a presented key id belongs to (key ids are globally unique).
//
// Error contract (all methods): INVALID_ARGUMENT when a value does not fit
// the schema (too long, time out of range); ABORTED on a deadlock (retry);
// UNAVAILABLE when the database cannot be
// reached or the pool has no connection within its acquire timeout (retry
// later); DEADLINE_EXCEEDED when a statement or lock wait hit its ceiling;
// INTERNAL for anything unexpected. Method comments list the other codes.
// No status message ever contains key material.
#ifndef LUMOKEYS_SERVER_STORAGE_KEY_STORE_H_
#define LUMOKEYS_SERVER_STORAGE_KEY_STORE_H_

#include <algorithm>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "server/core/crypto.h"
#include "server/core/string_map_json.h"
#include "server/storage/change_feed_store.h"
#include "server/storage/list_page.h"

namespace lumo::storage {

struct Tenant {
  int64_t id = 0;
  std::string slug;
  std::string name;
  absl::Time created_at;
};

// A stored secret: HMAC-SHA256(pepper[pepper_version], full key).
struct StoredSecret {
  core::Digest digest{};
  int pepper_version = 0;
};

// A secret replaced by a rotation. It still verifies until `valid_until`
// (the rotation time itself when there was no grace period).
struct RetiredSecret {
  StoredSecret secret;
  absl::Time valid_until;
};

// A named rate limit of a key (docs/limits.md): `limit` requests per
// `duration` (whole milliseconds). Names are validated by the service
// (1-32 of [a-z0-9_.-]); the stores refuse an empty name or one holding ':'
// or ',' with INVALID_ARGUMENT.
struct KeyRateLimit {
  std::string name;
  int64_t limit = 0;
  absl::Duration duration;
  bool operator==(const KeyRateLimit& o) const {
    return name == o.name && limit == o.limit && duration == o.duration;
  }
};

// A key's usage quota (docs/limits.md "Usage quotas"): `remaining`
// credits and, with refill_amount > 0, a reset of the balance to
// refill_amount every refill_interval (whole milliseconds). In a record
// read back, `remaining` is the stored balance after any refill due at
// `db_now`: credits the replicas hold in leases count as spent. The stores
// refuse remaining < 0 or a half-given refill with INVALID_ARGUMENT.
struct KeyQuota {
  int64_t remaining = 0;
  int64_t refill_amount = 0;
  absl::Duration refill_interval;
  bool operator==(const KeyQuota& o) const {
    return remaining == o.remaining && refill_amount == o.refill_amount &&
           refill_interval == o.refill_interval;
  }
};

struct ApiKeyRecord {
  std::string id;
  int64_t tenant_id = 0;
  std::string name;
  std::string external_id;  // the tenant's owner/service id; "" = none
  core::StringMap metadata;
  std::vector<std::string> scopes;         // canonical order
  std::vector<std::string> allowed_cidrs;  // canonical text
  int32_t rate_limit_per_minute = 0;       // 0: none
  std::vector<KeyRateLimit> rate_limits;   // by name
  std::optional<KeyQuota> quota;           // unset: no usage quota
  bool revoked = false;
  bool disabled = false;  // a reversible pause
  // A decoy key (docs/webhooks.md "Decoy keys"): never valid; fixed at
  // creation.
  bool decoy = false;
  int64_t version = 1;
  std::string created_by_type;  // "api_key", "user", "system"
  std::string created_by_id;
  absl::Time created_at;
  std::optional<absl::Time> last_used_at;
  std::optional<absl::Time> expires_at;
  std::optional<absl::Time> rotated_at;
  std::optional<absl::Time> revoked_at;
  std::optional<absl::Time> disabled_at;  // set while disabled
  // The latest valid_until among retired secrets still in their grace
  // period at `db_now`, if any.
  std::optional<absl::Time> previous_secret_valid_until;
  // The database clock when the record was read.
  absl::Time db_now;
};

// A tenant's key policy (docs/api-keys.md, "Tenant key policy"); 0 means
// "not set" for every number. These are the defaults of a tenant that never
// changed its settings.
struct KeyPolicy {
  bool require_expiry = false;
  int32_t max_lifetime_days = 0;
  int32_t rotation_period_days = 0;
  int32_t expiry_warning_days = 7;
  int32_t inactive_after_days = 0;

  bool operator==(const KeyPolicy& o) const {
    return require_expiry == o.require_expiry &&
           max_lifetime_days == o.max_lifetime_days &&
           rotation_period_days == o.rotation_period_days &&
           expiry_warning_days == o.expiry_warning_days &&
           inactive_after_days == o.inactive_after_days;
  }
  bool operator!=(const KeyPolicy& o) const { return !(*this == o); }
};

// A tenant's key policy and the database clock read with it.
struct KeyPolicyAt {
  KeyPolicy policy;
  absl::Time db_now;
};

// A key and its tenant's key policy, read together.
struct KeyWithPolicy {
  ApiKeyRecord key;
  KeyPolicy policy;
};

// Everything verification needs about a key id, read in one query.
struct VerifyRecord {
  // Every field verification and leak reports use. A backend may leave
  // empty the ones they do not: created_by_type, created_by_id, revoked_at
  // and disabled_at.
  ApiKeyRecord key;
  std::string tenant_slug;
  bool deleted = false;
  StoredSecret current;
  // Most recent first; at most kMaxRetiredSecrets.
  std::vector<RetiredSecret> retired;
  // The key's tenant's key policy, read with the key (the verify reply's
  // key states).
  KeyPolicy policy;
  // The limits of the key's identity (tenant, external id) by name
  // (CounterStore::SetIdentityLimits); none without an external id.
  std::vector<KeyRateLimit> identity_limits;
};

// How many replaced secrets per key are kept for recognising the use of a
// rotated-away secret.
inline constexpr int kMaxRetiredSecrets = 16;

// An audit event written in the same transaction as the change it records.
// The store fills in the tenant id, the sequence and the database timestamp.
struct AuditEvent {
  std::string action;    // e.g. "api_key.created"
  std::string category;  // e.g. "api_keys"
  std::string actor_type;
  std::string actor_id;
  std::string target_type;
  std::string target_id;
  std::string outcome = "success";
  bool suspicious = false;
  std::string ip_address;
  std::string user_agent;
  std::string request_id;
  std::string metadata_json = "{}";  // a JSON object; never secrets
};

struct NewKey {
  std::string id;
  int64_t tenant_id = 0;
  std::string name;
  std::string external_id;
  core::StringMap metadata;
  std::vector<std::string> scopes;
  std::vector<std::string> allowed_cidrs;
  int32_t rate_limit_per_minute = 0;
  // Stored in key_limits; names unique (INVALID_ARGUMENT otherwise).
  std::vector<KeyRateLimit> rate_limits;
  // Stored in key_quotas in the same transaction (its period starts now).
  std::optional<KeyQuota> quota;
  std::optional<absl::Time> expires_at;
  std::string created_by_type;
  std::string created_by_id;
  StoredSecret secret;
  bool decoy = false;
  // The key's created_at: a database clock reading taken before the insert
  // (KeyPolicyAt::db_now), so that the caller knows the stored record
  // without reading it back (RecordOfNewKey). Unset: the database clock at
  // the insert.
  std::optional<absl::Time> created_at;
};

// The record a store holds right after InsertKey(key) with
// key.created_at set (what GetKey returns then, db_now being created_at):
// the create call's reply, built without a read-back.
inline ApiKeyRecord RecordOfNewKey(const NewKey& key) {
  ApiKeyRecord r;
  r.id = key.id;
  r.tenant_id = key.tenant_id;
  r.name = key.name;
  r.external_id = key.external_id;
  r.metadata = key.metadata;
  r.scopes = key.scopes;
  r.allowed_cidrs = key.allowed_cidrs;
  r.rate_limit_per_minute = key.rate_limit_per_minute;
  r.rate_limits = key.rate_limits;
  std::sort(r.rate_limits.begin(), r.rate_limits.end(),
            [](const KeyRateLimit& a, const KeyRateLimit& b) {
              return a.name < b.name;
            });
  r.quota = key.quota;
  r.decoy = key.decoy;
  r.version = 1;
  r.created_by_type = key.created_by_type;
  r.created_by_id = key.created_by_id;
  r.created_at = key.created_at.value_or(absl::UnixEpoch());
  r.expires_at = key.expires_at;
  r.db_now = r.created_at;
  return r;
}

enum class KeySortField { kCreatedAt, kName, kLastUsedAt, kExpiresAt };
// By the key's status (revoked > expired > disabled > active).
enum class KeyStatusFilter { kAny, kActive, kRevoked, kExpired, kDisabled };
// By one of the key's states under its tenant's policy (key_states.h).
enum class KeyStateFilter {
  kAny,
  kRotationDue,
  kExpiring,
  kInactive,
  kDisabled
};

// A position in a key list: the sort value of a listed key and its id
// (the list's order is the sort value, then the id, both in the list's
// direction). Built from a record by PositionOf.
struct KeyPosition {
  // kCreatedAt, kLastUsedAt, kExpiresAt: the key's time (unset: NULL, a
  // never used key or one that never expires).
  std::optional<absl::Time> time;
  std::string name;  // kName
  std::string id;

  friend bool operator==(const KeyPosition& a, const KeyPosition& b) {
    return a.time == b.time && a.name == b.name && a.id == b.id;
  }
};

struct ListKeysQuery {
  int page = 1;    // 1-based; must be 1 with `after`
  int limit = 25;  // 1..100
  // Set: only the keys after this position in the list's order (keyset
  // paging: found through the sort's index, whatever the tenant's size).
  std::optional<KeyPosition> after;
  // The total's count (KeyPage::total).
  CountRequest count;
  // Case-insensitive substring of the name, or of the id, or the whole
  // external id (ASCII case-insensitive).
  std::string search;
  KeySortField sort_by = KeySortField::kCreatedAt;
  bool descending = true;
  KeyStatusFilter status = KeyStatusFilter::kAny;
  KeyStateFilter state = KeyStateFilter::kAny;
  // False: ordinary keys only; true: decoys only.
  bool decoys = false;
};

struct KeyPage {
  std::vector<ApiKeyRecord> keys;
  int64_t total = 0;  // matching keys over all pages (see total_kind)
  TotalKind total_kind = TotalKind::kExact;
  // There are matching keys after the last one returned.
  bool has_more = false;
};

// The position of `key` in a list sorted by `sort_by`.
inline KeyPosition PositionOf(const ApiKeyRecord& key, KeySortField sort_by) {
  KeyPosition position;
  position.id = key.id;
  switch (sort_by) {
    case KeySortField::kName:
      position.name = key.name;
      break;
    case KeySortField::kLastUsedAt:
      position.time = key.last_used_at;
      break;
    case KeySortField::kExpiresAt:
      position.time = key.expires_at;
      break;
    case KeySortField::kCreatedAt:
      position.time = key.created_at;
      break;
  }
  return position;
}

struct RevokeResult {
  ApiKeyRecord key;
  // False when the key was already revoked (nothing was written).
  bool changed = false;
};

// The fields an edit changes; unset members keep their value. Values are
// validated by the service; the store checks only that they fit the schema.
struct KeyEdit {
  std::optional<std::string> name;
  std::optional<std::vector<std::string>> scopes;         // canonical
  std::optional<std::vector<std::string>> allowed_cidrs;  // canonical
  std::optional<int32_t> rate_limit_per_minute;
  // Set: change the expiry; an inner nullopt removes it (never expires).
  std::optional<std::optional<absl::Time>> expires_at;
  std::optional<std::string> external_id;
  std::optional<core::StringMap> metadata;
  // Set: the key's named limits, all replaced (CheckKeyRateLimits).
  std::optional<std::vector<KeyRateLimit>> rate_limits;

  bool empty() const {
    return !name && !scopes && !allowed_cidrs && !rate_limit_per_minute &&
           !expires_at && !external_id && !metadata && !rate_limits;
  }
};

// Named limits in the order records hold them (by name).
inline void SortByName(std::vector<KeyRateLimit>* limits) {
  std::sort(limits->begin(), limits->end(),
            [](const KeyRateLimit& a, const KeyRateLimit& b) {
              return a.name < b.name;
            });
}

// `key` with the members `edit` sets replaced.
inline void ApplyEdit(const KeyEdit& edit, ApiKeyRecord* key) {
  if (edit.name) key->name = *edit.name;
  if (edit.scopes) key->scopes = *edit.scopes;
  if (edit.allowed_cidrs) key->allowed_cidrs = *edit.allowed_cidrs;
  if (edit.rate_limit_per_minute) {
    key->rate_limit_per_minute = *edit.rate_limit_per_minute;
  }
  if (edit.expires_at) key->expires_at = *edit.expires_at;
  if (edit.external_id) key->external_id = *edit.external_id;
  if (edit.metadata) key->metadata = *edit.metadata;
  if (edit.rate_limits) {
    key->rate_limits = *edit.rate_limits;
    SortByName(&key->rate_limits);
  }
}

// What a rotation may do besides installing a new secret.
struct RotateOptions {
  // Rotate only while the key's version is this (ABORTED otherwise).
  std::optional<int64_t> expected_version;
  // Set: the key's new expiry (an inner nullopt: never expires). A rotation
  // with a new expiry later than now may renew an expired key.
  std::optional<std::optional<absl::Time>> expires_at;
};

// Whether `key`, read at key.db_now, may be rotated with `options`:
// FAILED_PRECONDITION when it is a decoy or revoked, when it has expired and
// the rotation gives no new expiry later than db_now (a renewal needs one), or
// when the new expiry has passed.
inline absl::Status CheckRotation(const ApiKeyRecord& key,
                                  const RotateOptions& options) {
  if (key.decoy) {
    return absl::FailedPreconditionError("a decoy key cannot be rotated");
  }
  if (key.revoked) {
    return absl::FailedPreconditionError("a revoked key cannot be rotated");
  }
  const bool new_expiry =
      options.expires_at.has_value() && options.expires_at->has_value();
  if (new_expiry && **options.expires_at <= key.db_now) {
    return absl::FailedPreconditionError("the new expiry has passed");
  }
  if (key.expires_at.has_value() && *key.expires_at <= key.db_now &&
      !new_expiry) {
    return absl::FailedPreconditionError(
        "an expired key cannot be rotated without a new expiry");
  }
  return absl::OkStatus();
}

// The key states the sweep announces (docs/api-keys.md, "The state
// sweep").
enum class AnnouncedState { kRotationDue, kExpiring, kInactive };

// A state that is on for a live key and was not announced for its current
// date yet.
struct StateAnnouncement {
  int64_t tenant_id = 0;
  std::string key_id;
  AnnouncedState state = AnnouncedState::kRotationDue;
  // The date the state is for: the due date, the expiry, or the last-use
  // baseline (lastUsedAt, or createdAt when never used).
  absl::Time for_date;
  // The date the key last announced for this state; unset: never.
  std::optional<absl::Time> announced_for;
};

struct AnnouncementBatch {
  // In key id order.
  std::vector<StateAnnouncement> announcements;
  // The last key id the batch covered; empty when no key is left after it.
  std::string last_key_id;
};

struct UpdateResult {
  // The key after the call.
  ApiKeyRecord key;
  // False when nothing was written (the key was already in that state).
  bool changed = false;
};

struct DeleteResult {
  // False when the key was already deleted (nothing was written).
  bool changed = false;
  // The key's version after the call.
  int64_t version = 0;
};

// Thread-safe: every method may be called concurrently from any thread.
class KeyStore {
 public:
  virtual ~KeyStore() = default;

  // Creates a tenant and, when `initial_key` is set, its first key, with
  // `events` (the store sets their tenant id), in one transaction.
  // ALREADY_EXISTS when the slug is taken or the key id collides.
  virtual absl::StatusOr<Tenant> CreateTenant(
      absl::string_view slug, absl::string_view name, const NewKey* initial_key,
      const std::vector<AuditEvent>& events) = 0;

  // NOT_FOUND when there is no such tenant.
  virtual absl::StatusOr<Tenant> GetTenantBySlug(absl::string_view slug) = 0;

  // Inserts the key, `event` and a change-feed row in one transaction.
  // ALREADY_EXISTS when the id is taken (the caller draws a new id).
  // NOT_FOUND when the tenant does not exist.
  virtual absl::Status InsertKey(const NewKey& key,
                                 const AuditEvent& event) = 0;

  // NOT_FOUND when the key does not exist, is deleted or belongs to another
  // tenant (indistinguishable on purpose).
  virtual absl::StatusOr<ApiKeyRecord> GetKey(int64_t tenant_id,
                                              absl::string_view id) = 0;
  // GetKey and the tenant's key policy (GetKeyPolicy) in one read: the
  // checks before a mutation.
  virtual absl::StatusOr<KeyWithPolicy> GetKeyWithPolicy(
      int64_t tenant_id, absl::string_view id) = 0;

  // Deleted keys are never listed; decoys only when asked for (and then
  // nothing else). "Expired" compares expires_at with the database clock;
  // the state filter applies KeyStatesAt (key_states.h) under the tenant's
  // key policy at the database clock. The page is the `limit` keys after
  // `query.after` (or after (page - 1) * limit keys); `has_more` says
  // whether more follow. The total is counted only when asked, at most
  // `count.cap` keys (docs/admin-api.md, "Paging large lists").
  // INVALID_ARGUMENT for a page below 1, a page other than 1 with `after`,
  // or a limit outside 1..100.
  virtual absl::StatusOr<KeyPage> ListKeys(int64_t tenant_id,
                                           const ListKeysQuery& query) = 0;

  // In one transaction, holding the key row lock: moves the current secret
  // to the retired secrets with valid_until = now + grace (database clock),
  // caps the valid_until of earlier retired secrets at now + grace (so a
  // rotation without grace ends every earlier grace period too),
  // installs `new_secret`, sets rotated_at, increments the version, appends
  // a change-feed row and `event`. Concurrent rotations serialise on the row
  // lock: each one sees the version the previous one wrote.
  // NOT_FOUND as GetKey; FAILED_PRECONDITION when the key is a decoy, or
  // revoked or expired (unless `options` gives a new expiry later than now:
  // a renewal); ABORTED when options.expected_version is not the key's.
  // With options.expires_at the key's expiry is replaced in the same
  // transaction.
  virtual absl::StatusOr<ApiKeyRecord> RotateKey(int64_t tenant_id,
                                                 absl::string_view id,
                                                 const StoredSecret& new_secret,
                                                 absl::Duration grace,
                                                 const RotateOptions& options,
                                                 const AuditEvent& event) = 0;
  // A rotation with no options.
  absl::StatusOr<ApiKeyRecord> RotateKey(int64_t tenant_id,
                                         absl::string_view id,
                                         const StoredSecret& new_secret,
                                         absl::Duration grace,
                                         const AuditEvent& event) {
    return RotateKey(tenant_id, id, new_secret, grace, RotateOptions(), event);
  }

  // Marks the key revoked (permanent) with a change-feed row and `event`, in
  // one transaction holding the row lock. Revoking a revoked key changes
  // nothing and writes nothing. NOT_FOUND as GetKey.
  virtual absl::StatusOr<RevokeResult> RevokeKey(int64_t tenant_id,
                                                 absl::string_view id,
                                                 const AuditEvent& event) = 0;

  // Applies `edit` if the key's version is still `expected_version`: bumps
  // the version, appends a change-feed row ("updated") and `event`, in one
  // transaction holding the row lock. An empty edit is INVALID_ARGUMENT.
  // NOT_FOUND as GetKey; ABORTED when the version moved (re-read and
  // retry); FAILED_PRECONDITION when the key is revoked, or when the edit
  // sets the expiry of a key that has expired (renewal rotates).
  virtual absl::StatusOr<UpdateResult> UpdateKey(int64_t tenant_id,
                                                 absl::string_view id,
                                                 int64_t expected_version,
                                                 const KeyEdit& edit,
                                                 const AuditEvent& event) = 0;

  // Sets or clears the disabled flag (and disabled_at, database clock),
  // bumps the version and appends a change-feed row ("disabled" or
  // "enabled") and `event`, in one transaction holding the row lock. When
  // the key is already in that state nothing is written and changed is
  // false. NOT_FOUND as GetKey; FAILED_PRECONDITION when the key is revoked;
  // ABORTED when `expected_version` is set and is not the key's version
  // (re-read and retry).
  virtual absl::StatusOr<UpdateResult> SetKeyDisabled(
      int64_t tenant_id, absl::string_view id, bool disabled,
      std::optional<int64_t> expected_version, const AuditEvent& event) = 0;
  // Disable or enable at whatever version the key has.
  absl::StatusOr<UpdateResult> SetKeyDisabled(int64_t tenant_id,
                                              absl::string_view id,
                                              bool disabled,
                                              const AuditEvent& event) {
    return SetKeyDisabled(tenant_id, id, disabled, std::nullopt, event);
  }

  // Ends the grace period of the retired secret with `digest` now
  // (database clock): in one transaction holding the row lock, its
  // valid_until becomes now, the version is bumped, and a change-feed row
  // ("updated", so replicas drop what they cached) and `event` are
  // written. When no retired secret with that digest is still in its grace
  // period nothing is written and changed is false. The current secret is
  // untouched. NOT_FOUND as GetKey.
  virtual absl::StatusOr<UpdateResult> EndRetiredSecretGrace(
      int64_t tenant_id, absl::string_view id, const core::Digest& digest,
      const AuditEvent& event) = 0;

  // Marks the key deleted: gone from Get and List, never verifies again; the
  // row stays so that later use of the id is recognised. Writes a
  // change-feed row and `event` in the same transaction. Deleting a key of
  // this tenant that is already deleted changes nothing, writes nothing and
  // returns changed = false (the caller still answers NOT_FOUND, after the
  // replicas acknowledged the deletion again). NOT_FOUND when no key of
  // this tenant ever had the id.
  virtual absl::StatusOr<DeleteResult> DeleteKey(int64_t tenant_id,
                                                 absl::string_view id,
                                                 const AuditEvent& event) = 0;

  // One query: the key with its tenant slug, the tenant's key policy,
  // current and retired secrets, deleted ones included. NOT_FOUND when no key
  // ever had this id.
  virtual absl::StatusOr<VerifyRecord> LoadForVerify(absl::string_view id) = 0;

  // LoadForVerify of many ids at once (a leaked-key report): one record per
  // distinct id some key ever had, in no particular order; ids no key had,
  // or that cannot be key ids, are left out. A few statements for the whole
  // call, not one per id. Errors as LoadForVerify; a failure returns no
  // records.
  virtual absl::StatusOr<std::vector<VerifyRecord>> LoadManyForVerify(
      const std::vector<std::string>& ids) = 0;

  // The tenant's key policy (the defaults when its settings were never
  // written). Changed through ClientStore::UpdateSettings.
  virtual absl::StatusOr<KeyPolicy> GetKeyPolicy(int64_t tenant_id) = 0;

  // GetKeyPolicy and the database clock, in one read: a mutation's checks
  // and the time it records (NewKey::created_at).
  virtual absl::StatusOr<KeyPolicyAt> GetKeyPolicyAt(int64_t tenant_id) = 0;

  // The state sweep's lease (one row, database clock): taken for `holder`
  // until now + `lease` when it is free, has expired or is `holder`'s own
  // (a renewal). False when another holder's lease still runs.
  // INVALID_ARGUMENT for an empty holder (over 64 bytes) or a lease that
  // is not positive.
  virtual absl::StatusOr<bool> TakeSweepLease(absl::string_view holder,
                                              absl::Duration lease) = 0;

  // Of the live keys (neither revoked, expired nor deleted) whose id sorts
  // after `after_key_id` (byte order), the first `limit` in id order that
  // have a state on (KeyStatesAt, key_states.h, under the tenant's policy
  // at the database clock) with a date other than the one the key last
  // announced for it, with those announcements. last_key_id is set when
  // `limit` keys were returned. INVALID_ARGUMENT unless 1 <= limit <= 1000.
  virtual absl::StatusOr<AnnouncementBatch> PendingAnnouncements(
      absl::string_view after_key_id, int limit) = 0;

  // In one transaction: when the key's announced date for
  // `announcement.state` is still `announcement.announced_for` and the key
  // is neither revoked nor deleted, sets it to `announcement.for_date` and
  // writes `event`; true. Otherwise (another sweeper announced it first, or
  // the key died) writes nothing: false.
  virtual absl::StatusOr<bool> AnnounceKeyState(
      const StateAnnouncement& announcement, const AuditEvent& event) = 0;

  // The database clock.
  virtual absl::StatusOr<absl::Time> Now() = 0;

  // Per-writer feed streams (docs/replication.md, "Per-writer streams").
  // From this call on, the feed row of every mutation also takes the next
  // position of `writer`'s stream (1, 2, 3, ... in the order drawn, never
  // reused); a position drawn by an attempt that did not commit (an error
  // after the feed row, a conflict, a COMMIT whose outcome is unknown) is
  // closed with a void row unless the original took it after all. Without
  // a writer, rows go to the legacy stream only. Call once, before the first
  // mutation.
  virtual void SetFeedWriter(absl::string_view writer) = 0;

  // The highest position drawn in the writer's stream (0 before the first,
  // or without a writer).
  virtual int64_t FeedWriterHead() = 0;

  // Draws the next position of the writer's stream for a row written
  // outside a key mutation (an announcement through the change feed store):
  // the caller must fill it with that row or, when the row's outcome is
  // unknown or failed, with a void. None without a writer.
  virtual std::optional<StreamPosition> DrawFeedSlot() = 0;
};

}  // namespace lumo::storage

#endif  // LUMOKEYS_SERVER_STORAGE_KEY_STORE_H_
