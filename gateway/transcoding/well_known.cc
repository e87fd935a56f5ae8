#include "gateway/transcoding/well_known.h"

#include "absl/strings/string_view.h"

namespace lumo::gateway {

bool IsWrapperType(absl::string_view full_name) {
  return full_name == "google.protobuf.DoubleValue" ||
         full_name == "google.protobuf.FloatValue" ||
         full_name == "google.protobuf.Int64Value" ||
         full_name == "google.protobuf.UInt64Value" ||
         full_name == "google.protobuf.Int32Value" ||
         full_name == "google.protobuf.UInt32Value" ||
         full_name == "google.protobuf.BoolValue" ||
         full_name == "google.protobuf.StringValue" ||
         full_name == "google.protobuf.BytesValue";
}

bool HasSpecialJsonForm(absl::string_view full_name) {
  return IsWrapperType(full_name) || full_name == "google.protobuf.Timestamp" ||
         full_name == "google.protobuf.Duration" ||
         full_name == "google.protobuf.FieldMask" ||
         full_name == "google.protobuf.Struct" ||
         full_name == "google.protobuf.Value" ||
         full_name == "google.protobuf.ListValue" ||
         full_name == "google.protobuf.Any";
}

}  // namespace lumo::gateway
