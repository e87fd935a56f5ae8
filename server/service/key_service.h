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
  // A decoy key (docs/webhooks.md "Decoy keys"): made like any other, never
  // valid; its presentation is a critical suspicious event.
  bool decoy = false;
};

struct ListKeysParams {
  std::optional<int32_t> page;   // unset: 1
  std::optional<int32_t> limit;  // unset: 25
  std::string search;
  std::string sort_by;   // "", createdAt, name, lastUsedAt, expiresAt
  std::string sort_dir;  // "", ASC, DESC
  std::string status;    // "", active, revoked, expired
  bool decoys = false;   // list only decoys (else only ordinary keys)
};

// A key together with its full text, which exists only in this reply.
struct KeyWithSecret {
  storage::ApiKeyRecord record;
  std::string full_key;
};

inline constexpr int64_t kMaxGracePeriodSeconds = 7 * 24 * 3600;
inline constexpr size_t kMaxAllowedCidrs = 32;
inline constexpr int32_t kMaxRateLimitPerMinute = 1'000'000;

// Thread-safe (holds no mutable state of its own).
//
// With a `barrier` (replication, docs/replication.md), RotateKey, RevokeKey
// (also of an already revoked key) and DeleteKey return OK only after the
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
  absl::StatusOr<KeyWithSecret> RotateKey(const Principal& caller,
                                          const RequestInfo& info,
                                          absl::string_view id,
                                          int64_t grace_period_seconds);
  absl::StatusOr<storage::ApiKeyRecord> RevokeKey(const Principal& caller,
                                                  const RequestInfo& info,
                                                  absl::string_view id);
  absl::Status DeleteKey(const Principal& caller, const RequestInfo& info,
                         absl::string_view id);

  // Operator operations: not bound by the no-escalation rule.
  struct TenantWithKey {
    storage::Tenant tenant;
    std::optional<KeyWithSecret> initial_key;
  };
  absl::StatusOr<TenantWithKey> CreateTenant(
      const RequestInfo& info, absl::string_view slug, absl::string_view name,
      const std::optional<CreateKeyParams>& initial_key);
  absl::StatusOr<storage::Tenant> GetTenant(absl::string_view slug);
  absl::StatusOr<KeyWithSecret> CreateTenantKey(const RequestInfo& info,
                                                absl::string_view tenant_slug,
                                                const CreateKeyParams& params);

 private:
  // Validates `params` into a NewKey (without id and secret).
  absl::StatusOr<storage::NewKey> ValidateNewKey(const CreateKeyParams& params);
  // Draws an id and a secret into `key`; returns the full key.
  absl::StatusOr<std::string> AssignIdAndSecret(storage::NewKey& key);
  absl::StatusOr<KeyWithSecret> InsertWithRetry(storage::NewKey key,
                                                const Principal* caller,
                                                const RequestInfo& info);
  // After a committed change that kills a secret: the barrier's wait (OK
  // without a barrier). `changed` is false when the call found the change
  // made already (it is then announced again); `took` is how long the
  // store call ran.
  absl::Status AwaitReplicas(int64_t tenant_id, absl::string_view id,
                             absl::string_view change_type, int64_t version,
                             bool changed, absl::Duration took);

  storage::KeyStore* const store_;
  const std::shared_ptr<const core::PepperSet> peppers_;
  Verifier* const verifier_;
  ChangeBarrier* const barrier_;  // may be null: a single replica
};

// "active", "revoked" or "expired" at the record's database time.
std::string KeyStatusName(const storage::ApiKeyRecord& record);

}  // namespace lumo::service

#endif  // LUMOKEYS_SERVER_SERVICE_KEY_SERVICE_H_
