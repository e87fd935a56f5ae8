// Conversions between storage/domain records and proto messages.
#ifndef LUMOKEYS_SERVER_RPC_CONVERT_H_
#define LUMOKEYS_SERVER_RPC_CONVERT_H_

#include <optional>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "google/protobuf/timestamp.pb.h"
#include "lumo/keys/v1/keys.pb.h"
#include "lumo/ops/v1/ops.pb.h"
#include "server/storage/key_states.h"
#include "server/storage/key_store.h"

namespace lumo::rpc {

void ToTimestamp(absl::Time t, google::protobuf::Timestamp* out);
// INVALID_ARGUMENT for out-of-range seconds or nanos.
absl::StatusOr<absl::Time> FromTimestamp(const google::protobuf::Timestamp& t);

void ToProto(const storage::KeyStates& states, lumo::keys::v1::KeyState* out);
// Fills `out` from `record`; never sets `key`.
// With the key's states under `policy` (its tenant's key policy).
void ToProto(const storage::ApiKeyRecord& record,
             const storage::KeyPolicy& policy, lumo::keys::v1::ApiKey* out);
void ToProto(const storage::Tenant& tenant, lumo::ops::v1::Tenant* out);

}  // namespace lumo::rpc

#endif  // LUMOKEYS_SERVER_RPC_CONVERT_H_
