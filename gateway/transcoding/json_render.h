// JSON rendering of reply messages for the REST surface (docs/product.md §3.1),
// by protobuf reflection. Differs from MessageToJsonString on purpose:
//   * every non-oneof field is rendered: scalars with their value even when
//     it is the default (false, 0, ""), unset singular messages and unset
//     proto3 `optional` scalars as `null` (so clients always see the keys);
//     members of a real oneof only when set;
//   * int64/uint64 (also sint/fixed, and in wrappers) are JSON numbers when
//     |v| <= 2^53 and strings otherwise;
//   * fields appear in declaration order, map entries sorted by key.
// Shared with protobuf's mapping: JSON names (camelCase), enums by name
// (unknown numbers as numbers), bytes as base64, float/double NaN and
// infinities as "NaN"/"Infinity"/"-Infinity", and the well-known types:
// Timestamp (RFC 3339 UTC "Z", fraction of 0/3/6/9 digits), Duration
// ("1.5s"), Empty ({}), wrappers, Struct/Value/ListValue, FieldMask, Any.
// A Timestamp or Duration outside protobuf's valid range, an Any whose type
// is unknown, a non-finite number in a Value, and nesting deeper than 64
// messages render as `null`: rendering never fails.
//
// Strings are escaped per RFC 8259: `"` and `\` with a backslash, every
// control character (U+0000-U+001F) and DEL as \u00xx (lower-case hex), and
// each maximal ill-formed UTF-8 subsequence is replaced by U+FFFD.
#ifndef LUMOKEYS_GATEWAY_TRANSCODING_JSON_RENDER_H_
#define LUMOKEYS_GATEWAY_TRANSCODING_JSON_RENDER_H_

#include <cstddef>
#include <string>

#include "absl/container/flat_hash_set.h"
#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "gateway/transcoding/route_table.h"
#include "google/protobuf/message.h"

namespace lumo::gateway {

struct RenderOptions {
  // Fields never rendered, by full name ("lumo.keys.v1.ApiKey.key").
  absl::flat_hash_set<std::string> omit_fields;
  // Fields rendered only when set (a non-default scalar, a present message
  // or optional field, a non-empty repeated field or map), by full name. For
  // example ApiKey.key, which only Create and Rotate fill in.
  absl::flat_hash_set<std::string> omit_fields_when_unset;
};

// Appends `s` as a JSON string literal, quotes included (see the file
// comment for the escaping).
void AppendJsonString(absl::string_view s, std::string* out);

// `s` as a JSON string literal for error messages: at most `max_bytes` of
// input (cut at a character boundary, then `...` inside the quotes).
std::string QuoteForMessage(absl::string_view s, size_t max_bytes = 64);

// `status` naming the request field `name` (core/field_error.h), for the
// error body's details, when its message quotes `name` whole (QuoteForMessage
// with `max_bytes`, so at most `max_bytes` long); otherwise unchanged.
absl::Status WithQuotedField(absl::Status status, absl::string_view name,
                             size_t max_bytes);

// The message as a compact JSON object. Thread-safe for concurrent calls on
// messages that are not being modified.
std::string RenderJson(const google::protobuf::Message& message,
                       const RenderOptions& options = {});

// The body of a successful reply for `route` (docs/product.md §3.1):
//   * a reply with exactly the two fields `data` (repeated) and `meta` (a
//     message): {"data":[...],"meta":{...}};
//   * otherwise {"data":<reply>}, plus ,"message":"..." when the route has a
//     success_message.
// Callers send no body at all when route.success_status is 204.
std::string RenderEnvelope(const Route& route,
                           const google::protobuf::Message& reply,
                           const RenderOptions& options = {});

}  // namespace lumo::gateway

#endif  // LUMOKEYS_GATEWAY_TRANSCODING_JSON_RENDER_H_
