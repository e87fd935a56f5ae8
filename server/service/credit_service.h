// The credits API (docs/limits.md "Usage quotas"): read a key's balance,
// set it (with or without a refill), add to it or remove the quota. The
// balance lives in the shared counters (storage/counter_store.h); this
// replica's lease of the key's credits is dropped after every change, and
// the change is announced on the change feed and waited for like a key
// edit: once Update returns, every live replica has ended its lease of the
// old balance and reloaded the key (docs/limits.md "Usage quotas").
//
// Who may: callers holding the scopes of the RPC (admin:read / admin:write)
// of the key's tenant; an API key may only change the credits of keys whose
// scopes it holds itself, and never its own.
//
// Thread-safe.
#ifndef LUMOKEYS_SERVER_SERVICE_CREDIT_SERVICE_H_
#define LUMOKEYS_SERVER_SERVICE_CREDIT_SERVICE_H_

#include <cstdint>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "server/service/change_barrier.h"
#include "server/service/cluster_credits.h"
#include "server/service/principal.h"
#include "server/service/verifier.h"
#include "server/storage/counter_store.h"
#include "server/storage/key_store.h"

namespace lumo::service {

struct CreditBalance {
  bool has_quota = false;
  // When has_quota: the balance, refill and next refill (database clock).
  storage::QuotaState state;
};

enum class CreditOp { kUnspecified, kSet, kAdd, kRemove };

struct CreditChange {
  CreditOp op = CreditOp::kUnspecified;
  // kSet: the balance; kAdd: the credits added (negative: taken).
  int64_t value = 0;
  // kSet: the refill (amount and interval 0: none). Must be none for the
  // other ops.
  int64_t refill_amount = 0;
  absl::Duration refill_interval;
};

class CreditService {
 public:
  // `credits` and `verifier` may be null (no replica-local state to drop),
  // and `barrier` (no other replica to tell).
  CreditService(storage::KeyStore* keys, storage::CounterStore* counters,
                ClusterCredits* credits, Verifier* verifier,
                ChangeBarrier* barrier = nullptr);

  // NOT_FOUND (kNotFound) when the tenant has no such key.
  absl::StatusOr<CreditBalance> Get(const Principal& caller,
                                    absl::string_view id);

  // INVALID_ARGUMENT kInvalidField naming `op`, `value`, `refill.amount` or
  // `refill.intervalSeconds`; FAILED_PRECONDITION kInvalidRequest for ADD
  // to a key without a quota; PERMISSION_DENIED kScopeExceeded for a key
  // changing its own credits or those of a key with more scopes;
  // UNAVAILABLE kUnavailable when the other replicas did not acknowledge
  // the change in time (it stands; retrying it waits again).
  absl::StatusOr<CreditBalance> Update(const Principal& caller,
                                       absl::string_view id,
                                       const CreditChange& change);

 private:
  absl::Status Validate(const CreditChange& change) const;

  storage::KeyStore* const keys_;
  storage::CounterStore* const counters_;
  ClusterCredits* const credits_;
  Verifier* const verifier_;
  ChangeBarrier* const barrier_;
};

}  // namespace lumo::service

#endif  // LUMOKEYS_SERVER_SERVICE_CREDIT_SERVICE_H_
