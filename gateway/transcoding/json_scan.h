// A validating scanner run over every JSON request body before protobuf's
// JSON parser sees it, for what that parser does not check or reports by
// echoing input. Thread-safe (pure function).
#ifndef LUMOKEYS_GATEWAY_TRANSCODING_JSON_SCAN_H_
#define LUMOKEYS_GATEWAY_TRANSCODING_JSON_SCAN_H_

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "google/protobuf/descriptor.h"

namespace lumo::gateway {

inline constexpr int kMaxJsonDepth = 32;

// Checks `text` and returns OK or INVALID_ARGUMENT with a short message that
// quotes at most 100 bytes of input (a key or key path), in this order:
//   * the whole text is valid UTF-8 ("request body is not valid UTF-8");
//   * it is exactly one strict RFC 8259 JSON value surrounded by optional
//     white space, and no `\u` escape is an unpaired surrogate (the message
//     gives the byte offset, never the text);
//   * objects and arrays nest at most `max_depth` deep (the outermost
//     container is depth 1);
//   * no object has the same key twice (compared after unescaping);
// and, when `target` is not null, against that message type (protobuf's
// proto3 JSON mapping, both proto and JSON field names accepted):
//   * the top-level value is an object;
//   * every key of an object mapped to a message names a field of it
//     ("unknown field \"a.b\" in the request body"), recursing through
//     singular/repeated message fields and map values; well-known types
//     with a special JSON form (Timestamp, Struct, Any, wrappers, ...) are
//     not descended into;
//   * no field is given twice under its two names, and at most one member
//     of a oneof is non-null.
absl::Status ScanJsonBody(absl::string_view text,
                          const google::protobuf::Descriptor* target,
                          int max_depth = kMaxJsonDepth);

}  // namespace lumo::gateway

#endif  // LUMOKEYS_GATEWAY_TRANSCODING_JSON_SCAN_H_
