// The storage interface of the key service. Domain logic (server/service)
// depends only on this header; the MySQL backend lives in storage/mysql and
// an in-memory fake for unit tests in tests/.
//
// Every method that touches tenant data takes the tenant id and is scoped by
// it, except LoadForVerify, whose purpose is to find which tenant a
// presented key id belongs to (key ids are globally unique).
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

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "server/core/crypto.h"

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

struct ApiKeyRecord {
  std::string id;
  int64_t tenant_id = 0;
  std::string name;
  std::vector<std::string> scopes;         // canonical order
  std::vector<std::string> allowed_cidrs;  // canonical text
  int32_t rate_limit_per_minute = 0;       // 0: none
  bool revoked = false;
  int64_t version = 1;
  std::string created_by_type;  // "api_key", "user", "system"
  std::string created_by_id;
  absl::Time created_at;
  std::optional<absl::Time> last_used_at;
  std::optional<absl::Time> expires_at;
  std::optional<absl::Time> rotated_at;
  std::optional<absl::Time> revoked_at;
  // The latest valid_until among retired secrets still in their grace
  // period at `db_now`, if any.
  std::optional<absl::Time> previous_secret_valid_until;
  // The database clock when the record was read.
  absl::Time db_now;
};

// Everything verification needs about a key id, read in one query.
struct VerifyRecord {
  ApiKeyRecord key;
  std::string tenant_slug;
  bool deleted = false;
  StoredSecret current;
  // Most recent first; at most kMaxRetiredSecrets.
  std::vector<RetiredSecret> retired;
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
  std::vector<std::string> scopes;
  std::vector<std::string> allowed_cidrs;
  int32_t rate_limit_per_minute = 0;
  std::optional<absl::Time> expires_at;
  std::string created_by_type;
  std::string created_by_id;
  StoredSecret secret;
};

enum class KeySortField { kCreatedAt, kName, kLastUsedAt, kExpiresAt };
enum class KeyStatusFilter { kAny, kActive, kRevoked, kExpired };

struct ListKeysQuery {
  int page = 1;    // 1-based
  int limit = 25;  // 1..100
  // Case-insensitive substring of the name, or of the id.
  std::string search;
  KeySortField sort_by = KeySortField::kCreatedAt;
  bool descending = true;
  KeyStatusFilter status = KeyStatusFilter::kAny;
};

struct KeyPage {
  std::vector<ApiKeyRecord> keys;
  int64_t total = 0;  // matching keys over all pages
};

struct RevokeResult {
  ApiKeyRecord key;
  // False when the key was already revoked (nothing was written).
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

  // Deleted keys are never listed. "Expired" compares expires_at with the
  // database clock.
  virtual absl::StatusOr<KeyPage> ListKeys(int64_t tenant_id,
                                           const ListKeysQuery& query) = 0;

  // In one transaction, holding the key row lock: moves the current secret
  // to the retired secrets with valid_until = now + grace (database clock),
  // caps the valid_until of earlier retired secrets at now + grace (so a
  // rotation without grace ends every earlier grace period too),
  // installs `new_secret`, sets rotated_at, increments the version, appends
  // a change-feed row and `event`. Concurrent rotations serialise on the row
  // lock: each one sees the version the previous one wrote.
  // NOT_FOUND as GetKey; FAILED_PRECONDITION when the key is revoked or
  // expired.
  virtual absl::StatusOr<ApiKeyRecord> RotateKey(int64_t tenant_id,
                                                 absl::string_view id,
                                                 const StoredSecret& new_secret,
                                                 absl::Duration grace,
                                                 const AuditEvent& event) = 0;

  // Marks the key revoked (permanent) with a change-feed row and `event`, in
  // one transaction holding the row lock. Revoking a revoked key changes
  // nothing and writes nothing. NOT_FOUND as GetKey.
  virtual absl::StatusOr<RevokeResult> RevokeKey(int64_t tenant_id,
                                                 absl::string_view id,
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

  // One query: the key with its tenant slug, current and retired secrets,
  // deleted ones included. NOT_FOUND when no key ever had this id.
  virtual absl::StatusOr<VerifyRecord> LoadForVerify(absl::string_view id) = 0;

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
};

}  // namespace lumo::storage

#endif  // LUMOKEYS_SERVER_STORAGE_KEY_STORE_H_
