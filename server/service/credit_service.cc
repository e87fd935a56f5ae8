#include "server/service/credit_service.h"

#include <optional>
#include <string>

#include "absl/strings/str_cat.h"
#include "server/core/scopes.h"
#include "server/service/errors.h"
#include "server/service/limit_rules.h"
#include "server/storage/counter_rules.h"

namespace lumo::service {
namespace {

absl::Status KeyNotFound() {
  return WithErrorKind(absl::NotFoundError("API key not found"),
                       ErrorKind::kNotFound);
}

CreditBalance BalanceOf(const storage::QuotaState& state) {
  CreditBalance balance;
  balance.has_quota = true;
  balance.state = state;
  return balance;
}

}  // namespace

CreditService::CreditService(storage::KeyStore* keys,
                             storage::CounterStore* counters,
                             ClusterCredits* credits, Verifier* verifier,
                             ChangeBarrier* barrier)
    : keys_(keys),
      counters_(counters),
      credits_(credits),
      verifier_(verifier),
      barrier_(barrier) {}

absl::StatusOr<CreditBalance> CreditService::Get(const Principal& caller,
                                                 absl::string_view id) {
  absl::StatusOr<storage::ApiKeyRecord> key =
      keys_->GetKey(caller.tenant_id, id);
  if (absl::IsNotFound(key.status())) return KeyNotFound();
  if (!key.ok()) return key.status();
  absl::StatusOr<storage::QuotaState> state = counters_->GetQuota(id);
  if (absl::IsNotFound(state.status())) return CreditBalance{};
  if (!state.ok()) return state.status();
  return BalanceOf(*state);
}

absl::Status CreditService::Validate(const CreditChange& change) const {
  const bool has_refill = change.refill_amount != 0 ||
                          change.refill_interval != absl::ZeroDuration();
  switch (change.op) {
    case CreditOp::kSet: {
      storage::KeyQuota quota;
      quota.remaining = change.value;
      quota.refill_amount = change.refill_amount;
      quota.refill_interval = change.refill_interval;
      return ValidateCredits(quota, "", "value");
    }
    case CreditOp::kAdd:
      if (change.value < -kMaxCredits || change.value > kMaxCredits) {
        return InvalidField(
            "value", absl::StrCat("must be between -", kMaxCredits, " and ",
                                  kMaxCredits));
      }
      if (has_refill) return InvalidField("refill", "only with op SET");
      return absl::OkStatus();
    case CreditOp::kRemove:
      if (change.value != 0) return InvalidField("value", "not with op REMOVE");
      if (has_refill) return InvalidField("refill", "only with op SET");
      return absl::OkStatus();
    case CreditOp::kUnspecified:
      break;
  }
  return InvalidField("op", "must be SET, ADD or REMOVE");
}

absl::StatusOr<CreditBalance> CreditService::Update(
    const Principal& caller, absl::string_view id, const CreditChange& change) {
  if (absl::Status s = Validate(change); !s.ok()) return s;
  absl::StatusOr<storage::ApiKeyRecord> key =
      keys_->GetKey(caller.tenant_id, id);
  if (absl::IsNotFound(key.status())) return KeyNotFound();
  if (!key.ok()) return key.status();
  if (caller.kind == Principal::Kind::kApiKey) {
    if (caller.key_id == id) {
      return WithErrorKind(
          absl::PermissionDeniedError("a key cannot change its own credits"),
          ErrorKind::kScopeExceeded);
    }
    if (!core::IsSubset(caller.scopes, key->scopes)) {
      return WithErrorKind(
          absl::PermissionDeniedError("a key can only change the credits of "
                                      "keys whose scopes it holds itself"),
          ErrorKind::kScopeExceeded);
    }
  }
  absl::StatusOr<storage::QuotaState> state;
  switch (change.op) {
    case CreditOp::kSet: {
      storage::KeyQuota quota;
      quota.refill_amount = change.refill_amount;
      quota.refill_interval = change.refill_interval;
      state = counters_->SetQuota(id, change.value, storage::RefillOf(quota));
      break;
    }
    case CreditOp::kAdd:
      state = counters_->AddCredits(id, change.value);
      if (absl::IsNotFound(state.status())) {
        return WithErrorKind(absl::FailedPreconditionError(
                                 "the key has no usage quota: SET one first"),
                             ErrorKind::kInvalidRequest);
      }
      break;
    case CreditOp::kRemove:
      state = absl::NotFoundError("removed");
      if (absl::Status s = counters_->ClearQuota(id); !s.ok()) state = s;
      break;
    case CreditOp::kUnspecified:
      break;
  }
  // Whatever happened, this replica's lease and cached record are stale.
  if (credits_ != nullptr) credits_->Drop(id);
  if (verifier_ != nullptr) verifier_->Evict(id);
  const bool removed =
      change.op == CreditOp::kRemove && absl::IsNotFound(state.status());
  if (!removed && !state.ok()) return state.status();
  // The other replicas end their leases and reload the key when they apply
  // the announcement (an "updated" row: credits are part of the key's
  // representation; the key's version does not move).
  if (barrier_ != nullptr) {
    ChangeRef ref;
    ref.tenant_id = caller.tenant_id;
    ref.key_id = std::string(id);
    ref.change_type = "updated";
    ref.key_version = key->version;
    ref.wrote_feed_row = false;
    if (absl::Status acked = barrier_->AwaitChange(ref, absl::ZeroDuration());
        !acked.ok()) {
      return WithErrorKind(acked, ErrorKind::kUnavailable);
    }
  }
  if (removed) return CreditBalance{};
  return BalanceOf(*state);
}

}  // namespace lumo::service
