// Conversions between storage/domain records and proto messages.
#ifndef LUMOKEYS_SERVER_RPC_CONVERT_H_
#define LUMOKEYS_SERVER_RPC_CONVERT_H_

#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "google/protobuf/struct.pb.h"
#include "google/protobuf/timestamp.pb.h"
#include "lumo/keys/v1/keys.pb.h"
#include "lumo/ops/v1/ops.pb.h"
#include "server/storage/key_states.h"
#include "server/storage/key_store.h"

namespace lumo::rpc {

void ToTimestamp(absl::Time t, google::protobuf::Timestamp* out);
// INVALID_ARGUMENT for out-of-range seconds or nanos.
absl::StatusOr<absl::Time> FromTimestamp(const google::protobuf::Timestamp& t);

// A PATCH list (a JSON array of strings). INVALID_ARGUMENT kInvalidField
// naming `field` when an element is not a string.
absl::StatusOr<std::vector<std::string>> StringsFromListValue(
    const google::protobuf::ListValue& list, absl::string_view field);

// Fills a KeyState message (lumo.keys.v1 or lumo.auth.v1: the same
// members) from `states`.
template <typename KeyStateMessage>
void ToProto(const storage::KeyStates& states, KeyStateMessage* out) {
  out->set_rotation_due(states.rotation_due);
  if (states.rotation_due_at) {
    ToTimestamp(*states.rotation_due_at, out->mutable_rotation_due_at());
  }
  out->set_expiring_soon(states.expiring_soon);
  out->set_inactive(states.inactive);
  out->set_disabled(states.disabled);
}
// Fills `out` from `record`; never sets `key`.
// With the key's states under `policy` (its tenant's key policy).
void ToProto(const storage::ApiKeyRecord& record,
             const storage::KeyPolicy& policy, lumo::keys::v1::ApiKey* out);
void ToProto(const storage::Tenant& tenant, lumo::ops::v1::Tenant* out);
// Appends `limits` in their API form.
void AddRateLimits(
    const std::vector<storage::KeyRateLimit>& limits,
    google::protobuf::RepeatedPtrField<lumo::keys::v1::RateLimit>* out);

}  // namespace lumo::rpc

#endif  // LUMOKEYS_SERVER_RPC_CONVERT_H_
