#include "server/service/identity_limit_service.h"

#include <string>
#include <utility>

#include "server/service/audit_json.h"
#include "server/service/client_service.h"
#include "server/service/errors.h"
#include "server/service/key_fields.h"
#include "server/service/limit_rules.h"

namespace lumo::service {
namespace {

absl::Status CheckExternalId(absl::string_view external_id) {
  if (external_id.empty()) return InvalidField("externalId", "is required");
  return ValidateExternalId(std::string(external_id));
}

}  // namespace

IdentityLimitService::IdentityLimitService(storage::CounterStore* counters,
                                           Verifier* verifier,
                                           ChangeBarrier* barrier)
    : counters_(counters), verifier_(verifier), barrier_(barrier) {}

absl::StatusOr<std::vector<storage::KeyRateLimit>> IdentityLimitService::Get(
    const Principal& caller, absl::string_view external_id) {
  if (absl::Status s = CheckExternalId(external_id); !s.ok()) return s;
  return counters_->GetIdentityLimits(caller.tenant_id, external_id);
}

absl::StatusOr<std::vector<storage::KeyRateLimit>> IdentityLimitService::Set(
    const Principal& caller, const RequestInfo& info,
    absl::string_view external_id, std::vector<storage::KeyRateLimit> limits) {
  if (absl::Status s = CheckExternalId(external_id); !s.ok()) return s;
  if (absl::Status s = ValidateRateLimits(limits, /*has_per_minute=*/false);
      !s.ok()) {
    return s;
  }
  if (caller.kind == Principal::Kind::kApiKey &&
      caller.key_external_id == external_id) {
    return WithErrorKind(absl::PermissionDeniedError(
                             "a key cannot change the limits of its identity"),
                         ErrorKind::kScopeExceeded);
  }
  storage::SortByName(&limits);
  absl::StatusOr<storage::IdentityLimitsChange> change =
      counters_->SetIdentityLimits(
          caller.tenant_id, external_id, limits,
          [&](const std::vector<storage::KeyRateLimit>& before) {
            storage::AuditEvent event = ActorEvent(caller, info);
            event.action = "identity.limits_updated";
            event.category = "api_keys";
            event.target_type = "identity";
            event.target_id = std::string(external_id);
            event.metadata_json = JsonObject()
                                      .AddRaw("before", RateLimitsJson(before))
                                      .AddRaw("after", RateLimitsJson(limits))
                                      .Build();
            return event;
          });
  if (!change.ok()) return change.status();
  // Every replica reloads the identity's keys: this one at once, the others
  // when they apply an announcement per key ("updated", the key's version
  // unchanged: the identity's limits are read with the key).
  for (const storage::IdentityKey& key : change->keys) {
    if (verifier_ != nullptr) verifier_->Evict(key.id);
  }
  if (barrier_ != nullptr && !change->keys.empty()) {
    std::vector<ChangeRef> refs;
    refs.reserve(change->keys.size());
    for (const storage::IdentityKey& key : change->keys) {
      ChangeRef ref;
      ref.tenant_id = caller.tenant_id;
      ref.key_id = key.id;
      ref.change_type = "updated";
      ref.key_version = key.version;
      ref.wrote_feed_row = false;
      refs.push_back(std::move(ref));
    }
    if (absl::Status acked = barrier_->AwaitAnnouncements(refs); !acked.ok()) {
      return WithErrorKind(acked, ErrorKind::kUnavailable);
    }
  }
  return limits;
}

}  // namespace lumo::service
