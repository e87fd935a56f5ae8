#include "server/rpc/convert.h"

#include "server/core/key_format.h"
#include "server/service/errors.h"
#include "server/service/key_service.h"

namespace lumo::rpc {
namespace {
// RFC 3339 range: 0001-01-01T00:00:00Z .. 9999-12-31T23:59:59Z.
constexpr int64_t kMinSeconds = -62135596800;
constexpr int64_t kMaxSeconds = 253402300799;
}  // namespace

void ToTimestamp(absl::Time t, google::protobuf::Timestamp* out) {
  const int64_t micros = absl::ToUnixMicros(t);
  int64_t seconds = micros / 1'000'000;
  int64_t rem = micros % 1'000'000;
  if (rem < 0) {
    rem += 1'000'000;
    --seconds;
  }
  out->set_seconds(seconds);
  out->set_nanos(static_cast<int32_t>(rem * 1000));
}

absl::StatusOr<absl::Time> FromTimestamp(const google::protobuf::Timestamp& t) {
  if (t.seconds() < kMinSeconds || t.seconds() > kMaxSeconds || t.nanos() < 0 ||
      t.nanos() > 999'999'999) {
    return absl::InvalidArgumentError("timestamp out of range");
  }
  return absl::FromUnixSeconds(t.seconds()) + absl::Nanoseconds(t.nanos());
}

absl::StatusOr<std::vector<std::string>> StringsFromListValue(
    const google::protobuf::ListValue& list, absl::string_view field) {
  std::vector<std::string> out;
  for (const google::protobuf::Value& v : list.values()) {
    if (v.kind_case() != google::protobuf::Value::kStringValue) {
      return service::InvalidField(field, "must be an array of strings");
    }
    out.push_back(v.string_value());
  }
  return out;
}

void AddRateLimits(
    const std::vector<storage::KeyRateLimit>& limits,
    google::protobuf::RepeatedPtrField<lumo::keys::v1::RateLimit>* out) {
  for (const storage::KeyRateLimit& l : limits) {
    lumo::keys::v1::RateLimit* limit = out->Add();
    limit->set_name(l.name);
    limit->set_limit(static_cast<int32_t>(l.limit));
    limit->set_duration_seconds(
        static_cast<int32_t>(absl::ToInt64Seconds(l.duration)));
  }
}

void ToProto(const storage::ApiKeyRecord& r, const storage::KeyPolicy& policy,
             lumo::keys::v1::ApiKey* out) {
  ToProto(storage::KeyStatesOf(r, policy), out->mutable_state());
  out->set_id(r.id);
  out->set_name(r.name);
  out->set_prefix(core::DisplayPrefix(r.id));
  for (const std::string& s : r.scopes) out->add_scopes(s);
  out->set_status(service::KeyStatusName(r));
  ToTimestamp(r.created_at, out->mutable_created_at());
  out->mutable_created_by()->set_type(r.created_by_type);
  out->mutable_created_by()->set_id(r.created_by_id);
  if (r.last_used_at) ToTimestamp(*r.last_used_at, out->mutable_last_used_at());
  if (r.expires_at) ToTimestamp(*r.expires_at, out->mutable_expires_at());
  if (r.rotated_at) ToTimestamp(*r.rotated_at, out->mutable_rotated_at());
  if (r.revoked_at) ToTimestamp(*r.revoked_at, out->mutable_revoked_at());
  for (const std::string& c : r.allowed_cidrs) out->add_allowed_cidrs(c);
  out->set_rate_limit_per_minute(r.rate_limit_per_minute);
  AddRateLimits(r.rate_limits, out->mutable_rate_limits());
  if (r.quota.has_value()) {
    lumo::keys::v1::Credits* credits = out->mutable_credits();
    credits->set_remaining(r.quota->remaining);
    if (r.quota->refill_amount > 0) {
      credits->mutable_refill()->set_amount(r.quota->refill_amount);
      credits->mutable_refill()->set_interval_seconds(
          static_cast<int32_t>(absl::ToInt64Seconds(r.quota->refill_interval)));
    }
  }
  out->set_version(r.version);
  if (r.decoy) out->set_decoy(true);
  out->set_external_id(r.external_id);
  out->mutable_metadata()->insert(r.metadata.begin(), r.metadata.end());
  if (r.disabled_at) ToTimestamp(*r.disabled_at, out->mutable_disabled_at());
  if (r.previous_secret_valid_until && !r.revoked) {
    ToTimestamp(*r.previous_secret_valid_until,
                out->mutable_previous_secret_valid_until());
  }
}

void ToProto(const storage::Tenant& tenant, lumo::ops::v1::Tenant* out) {
  out->set_id(tenant.id);
  out->set_slug(tenant.slug);
  out->set_name(tenant.name);
  ToTimestamp(tenant.created_at, out->mutable_created_at());
}

}  // namespace lumo::rpc
