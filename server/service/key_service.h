// Domain logic of the API-key lifecycle (docs/product.md §2.3-§2.4):
// validation, the no-escalation rule, key generation and hashing, audit events,
// and cache eviction. Knows neither gRPC nor SQL.
//
// Error contract: INVALID_ARGUMENT for a bad request (the message names the
// field); PERMISSION_DENIED (error code "insufficient_scope") when the
// caller may not grant the scopes; NOT_FOUND for a missing, deleted or
// other-tenant key; FAILED_PRECONDITION when rotating a revoked or expired
// key; ALREADY_EXISTS for a taken tenant slug; UNAVAILABLE /
// DEADLINE_EXCEEDED when the store cannot answer.
#ifndef LUMOKEYS_SERVER_SERVICE_KEY_SERVICE_H_
#define LUMOKEYS_SERVER_SERVICE_KEY_SERVICE_H_

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "server/core/pepper.h"
#include "server/service/change_barrier.h"
#include "server/service/errors.h"
#include "server/service/key_fields.h"
#include "server/service/principal.h"
#include "server/service/verifier.h"
#include "server/storage/key_store.h"

namespace lumo::service {

struct CreateKeyParams {
  std::string name;
  std::vector<std::string> scopes;
  std::optional<absl::Time> expires_at;
  std::vector<std::string> allowed_cidrs;
  int32_t rate_limit_per_minute = 0;
  std::string external_id;
  core::StringMap metadata;
  // A decoy key (docs/webhooks.md "Decoy keys"): made like any other, never
  // valid; its presentation is a critical suspicious event.
  bool decoy = false;
  // Named rate limits (docs/limits.md).
  std::vector<storage::KeyRateLimit> rate_limits;
  // A usage quota (docs/limits.md "Usage quotas").
  std::optional<storage::KeyQuota> credits;
};

// An edit: the fields named in `update_mask` (camelCase paths) take the
// values given here; the others are ignored. An unset `expires_at` named in
// the mask removes the expiry.
struct UpdateKeyParams {
  std::vector<std::string> update_mask;
  std::string name;
  std::vector<std::string> scopes;
  std::vector<std::string> allowed_cidrs;
  int32_t rate_limit_per_minute = 0;
  std::vector<storage::KeyRateLimit> rate_limits;
  std::optional<absl::Time> expires_at;
  std::string external_id;
  core::StringMap metadata;
};

struct ListKeysParams {
  std::optional<int32_t> page;   // unset: 1
  std::optional<int32_t> limit;  // unset: 25
  std::string search;
  std::string sort_by;   // "", createdAt, name, lastUsedAt, expiresAt
  std::string sort_dir;  // "", ASC, DESC
  std::string status;    // "", active, revoked, expired, disabled
  // "", rotation_due, expiring, inactive, disabled
  std::string state;
  bool decoys = false;  // list only decoys (else only ordinary keys)
  // A meta.nextPageToken of an earlier page of the same query.
  std::string page_token;
  // Count the total (default: without page_token only).
  std::optional<bool> include_total;
};

// A key together with its full text, which exists only in this reply.
struct KeyWithSecret {
  storage::ApiKeyRecord record;
  std::string full_key;
  // The tenant's key policy the call checked the key against, when it read
  // one: the reply's key states use it instead of reading it again.
  std::optional<storage::KeyPolicy> policy;
};

inline constexpr int64_t kMaxGracePeriodSeconds = 7 * 24 * 3600;

// Thread-safe (holds no mutable state of its own).
//
// With a `barrier` (replication, docs/replication.md), RotateKey, RevokeKey
// (also of an already revoked key), UpdateKey, DisableKey and EnableKey
// (also when they change nothing) and DeleteKey return OK only after the
// barrier acknowledged the committed change; when it cannot, they return
// its UNAVAILABLE (DEADLINE_EXCEEDED when the caller's deadline passed) and
// the change still stands. DeleteKey of a key already deleted answers
// NOT_FOUND, also only after the barrier acknowledged the deletion again.
class KeyService {
 public:
  KeyService(storage::KeyStore* store,
             std::shared_ptr<const core::PepperSet> peppers, Verifier* verifier,
             ChangeBarrier* barrier = nullptr);

  // Key-holder operations: `caller` is an API-key principal of `tenant_id`.
  absl::StatusOr<KeyWithSecret> CreateKey(const Principal& caller,
                                          const RequestInfo& info,
                                          const CreateKeyParams& params);
  absl::StatusOr<storage::ApiKeyRecord> GetKey(const Principal& caller,
                                               absl::string_view id);
  absl::StatusOr<storage::KeyPage> ListKeys(const Principal& caller,
                                            const ListKeysParams& params,
                                            storage::ListKeysQuery* query);
  // The token of the page after `page`, listed by `query` (the applied
  // query ListKeys returned); "" when it is the last page.
  static std::string NextPageToken(int64_t tenant_id,
                                   const storage::ListKeysQuery& query,
                                   const storage::KeyPage& page);
  // Installs a new secret (docs/api-keys.md, "Rotate"). `expires_at`, if
  // given, becomes the key's expiry (checked like create's, and against the
  // tenant's policy); without it, under a maximum lifetime the key expires
  // that long after the rotation. An expired key with a new expiry is
  // renewed (api_key.renewed instead of api_key.rotated).
  absl::StatusOr<KeyWithSecret> RotateKey(
      const Principal& caller, const RequestInfo& info, absl::string_view id,
      int64_t grace_period_seconds,
      const std::optional<absl::Time>& expires_at = std::nullopt);
  absl::StatusOr<storage::ApiKeyRecord> RevokeKey(const Principal& caller,
                                                  const RequestInfo& info,
                                                  absl::string_view id);
  absl::Status DeleteKey(const Principal& caller, const RequestInfo& info,
                         absl::string_view id);
  // Applies the edit (docs/api-keys.md, "Edit"): the fields in the mask are
  // validated as on create; the caller must hold the key's scopes and
  // restrictions before and after the edit. Revoked: kInvalidRequest.
  // Writes api_key.updated with the before/after of each changed field.
  absl::StatusOr<storage::ApiKeyRecord> UpdateKey(
      const Principal& caller, const RequestInfo& info, absl::string_view id,
      const UpdateKeyParams& params);
  // Pauses (`disabled`) or resumes the key; api_key.disabled / enabled.
  // Revoked: kInvalidRequest.
  absl::StatusOr<storage::ApiKeyRecord> SetKeyDisabled(const Principal& caller,
                                                       const RequestInfo& info,
                                                       absl::string_view id,
                                                       bool disabled);

  // Operator operations: not bound by the no-escalation rule.
  struct TenantWithKey {
    storage::Tenant tenant;
    std::optional<KeyWithSecret> initial_key;
  };
  absl::StatusOr<TenantWithKey> CreateTenant(
      const RequestInfo& info, absl::string_view slug, absl::string_view name,
      const std::optional<CreateKeyParams>& initial_key);
  absl::StatusOr<storage::Tenant> GetTenant(absl::string_view slug);

  // The tenant's key policy (for the key states shown with each key).
  absl::StatusOr<storage::KeyPolicy> KeyPolicyOf(int64_t tenant_id) {
    return store_->GetKeyPolicy(tenant_id);
  }
  absl::StatusOr<KeyWithSecret> CreateTenantKey(const RequestInfo& info,
                                                absl::string_view tenant_slug,
                                                const CreateKeyParams& params);

  // The system's answer to a reported leak of a key's current secret
  // (docs/webhooks.md, "Leaked-key intake"): revokes (`revoke`) or disables
  // it, written as api_key.revoked / api_key.disabled by actor `system`
  // `secret-scanning` with metadata {"reason": "leaked"}, and acknowledged
  // by the replicas like any revocation (class comment). Revoking a
  // revoked key or disabling a disabled one changes nothing.
  // FAILED_PRECONDITION (kInvalidRequest) when disabling a revoked key.
  absl::StatusOr<storage::ApiKeyRecord> ContainLeakedKey(
      int64_t tenant_id, const RequestInfo& info, absl::string_view id,
      bool revoke);
  // Ends now the grace period of a leaked retired secret (the one with
  // `digest`), written as api_key.updated by the same actor with metadata
  // {"reason": "leaked", "previousSecret": "ended"} and acknowledged by
  // the replicas. False when no retired secret with that digest was in its
  // grace period (nothing written).
  absl::StatusOr<bool> EndLeakedSecretGrace(int64_t tenant_id,
                                            const RequestInfo& info,
                                            absl::string_view id,
                                            const core::Digest& digest);

 private:
  // Validates `params` into a NewKey (without id and secret).
  absl::StatusOr<storage::NewKey> ValidateNewKey(const CreateKeyParams& params);
  // The caller may manage (rotate, edit, disable) `key`: it holds its scopes
  // and restrictions. `verb` names the action in the refusal.
  absl::Status CheckMayManage(const Principal& caller, absl::string_view verb,
                              const storage::ApiKeyRecord& key);
  // The store options of a rotation of `current` by `caller`: its
  // authority before and after, the tenant's policy `tenant_policy`, the new
  // expiry.
  absl::StatusOr<storage::RotateOptions> RotationOptions(
      const Principal& caller, const storage::ApiKeyRecord& current,
      const storage::KeyPolicy& tenant_policy,
      const std::optional<absl::Time>& requested);
  // Checks a new key's expiry against the tenant's key policy
  // (kInvalidField); returns the policy. Sets key.created_at to the
  // database clock read with the policy.
  absl::StatusOr<storage::KeyPolicy> CheckNewKeyPolicy(storage::NewKey& key);
  // Draws an id and a secret into `key`; returns the full key.
  absl::StatusOr<std::string> AssignIdAndSecret(storage::NewKey& key);
  // Inserts `key` (checked against `policy`) with a fresh id and secret.
  absl::StatusOr<KeyWithSecret> InsertWithRetry(
      storage::NewKey key, const storage::KeyPolicy& policy,
      const Principal* caller, const RequestInfo& info);
  // After a committed change that kills a secret: the barrier's wait (OK
  // without a barrier). `changed` is false when the call found the change
  // made already (it is then announced again); `took` is how long the
  // store call ran.
  // The end of a disable, enable or revoke that the store ran (taking
  // `took`): evicts the key, maps a refusal (FAILED_PRECONDITION:
  // kInvalidRequest), waits for the replicas.
  absl::StatusOr<storage::ApiKeyRecord> FinishStateChange(
      int64_t tenant_id, absl::string_view id, absl::string_view change_type,
      absl::StatusOr<storage::UpdateResult> result, absl::Duration took);
  absl::Status AwaitReplicas(int64_t tenant_id, absl::string_view id,
                             absl::string_view change_type, int64_t version,
                             bool changed, absl::Duration took);

  storage::KeyStore* const store_;
  const std::shared_ptr<const core::PepperSet> peppers_;
  Verifier* const verifier_;
  ChangeBarrier* const barrier_;  // may be null: a single replica
};

// "active", "revoked", "expired" or "disabled" at the record's database
// time (revoked > expired > disabled > active).
std::string KeyStatusName(const storage::ApiKeyRecord& record);

}  // namespace lumo::service

#endif  // LUMOKEYS_SERVER_SERVICE_KEY_SERVICE_H_
