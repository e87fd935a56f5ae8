// Names of the protobuf well-known types the transcoder treats specially.
// Thread-safe (pure functions).
#ifndef LUMOKEYS_GATEWAY_TRANSCODING_WELL_KNOWN_H_
#define LUMOKEYS_GATEWAY_TRANSCODING_WELL_KNOWN_H_

#include "absl/strings/string_view.h"

namespace lumo::gateway {

// google.protobuf.{Double,Float,Int64,UInt64,Int32,UInt32,Bool,String,
// Bytes}Value: JSON renders them as their `value` field.
bool IsWrapperType(absl::string_view full_name);

// Well-known message types whose proto3 JSON form is not an object of their
// fields: Timestamp, Duration, FieldMask, Struct, Value, ListValue, Any and
// the wrappers.
bool HasSpecialJsonForm(absl::string_view full_name);

}  // namespace lumo::gateway

#endif  // LUMOKEYS_GATEWAY_TRANSCODING_WELL_KNOWN_H_
