// Building a method's request message from an HTTP request: path variables,
// query parameters and the JSON body (docs/architecture.md). Thread-safe (pure
// functions over immutable routes); never throws.
#ifndef LUMOKEYS_GATEWAY_TRANSCODING_TRANSCODER_H_
#define LUMOKEYS_GATEWAY_TRANSCODING_TRANSCODER_H_

#include <cstddef>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "gateway/transcoding/path_template.h"
#include "gateway/transcoding/route_table.h"
#include "google/protobuf/message.h"

namespace lumo::gateway {

// Decoded (key, value) pairs in the order of the query string.
using QueryParams = std::vector<std::pair<std::string, std::string>>;

inline constexpr size_t kMaxQueryParams = 100;
// Longest string accepted from a path variable or query parameter.
inline constexpr size_t kMaxStringValueBytes = 4096;

// Parses the part of a request target after '?' (without the '?'):
// `&`-separated `key=value` pairs (`key` alone means an empty value, empty
// pairs such as `a=1&&b=2` are skipped), `+` is a space, `%XX` is a byte.
// Keys and values are NOT checked for UTF-8 here (binding does that).
// INVALID_ARGUMENT for an invalid percent-escape, an empty key, or more than
// kMaxQueryParams parameters.
absl::StatusOr<QueryParams> ParseQueryString(absl::string_view raw);

// Fills `request` (cleared first; its type must be route.method's input
// type) in three steps:
//
// 1. Body. A body that is empty or only JSON white space counts as empty.
//    Routes without a body accept only an empty one. With body "*" the body
//    is the request message (empty means `{}`); with a field body it is that
//    field's message (empty leaves the field unset). A non-empty body is
//    first checked by ScanJsonBody (UTF-8, strict syntax, depth <= 32, no
//    duplicate keys, no unknown fields, arrays for repeated fields) and then
//    parsed by protobuf's JSON parser with ignore_unknown_fields = false;
//    its "invalid value" errors become `invalid value for field "<path>" in
//    the request body` (the value is never echoed), any other message of it
//    is kept but capped at 200 bytes.
// 2. Path variables, parsed to their field's type, overriding whatever the
//    body set (the tenant in the path always wins).
// 3. Query parameters: each key is a field path of the request in proto or
//    JSON names (`sort_by`, `sortBy`, `created_by.id`). Scalars: strings
//    (valid UTF-8, no NUL, at most kMaxStringValueBytes), signed and
//    unsigned integers (decimal, range-checked), bool (true|false|1|0),
//    enums (value name, case-sensitive, or declared number), float/double
//    (decimal with optional exponent, finite and in range),
//    google.protobuf.Timestamp (RFC 3339) and the wrapper types. A repeated
//    field takes repeated keys and comma-separated items (so items cannot
//    contain commas; empty items are refused); a singular field may appear
//    once. A parameter naming a field bound by the path, or any field when
//    the body is "*", or the body field, is refused; so are unknown names,
//    maps, bytes and message fields other than the ones above.
//
// Client errors are INVALID_ARGUMENT with a short message quoting at most
// 100 bytes of input (names of parameters, never secret-bearing values).
// INTERNAL when `request` has the wrong type or `variables` names a field
// the route's template does not bind (caller bugs).
absl::Status BuildRequest(const Route& route, const Variables& variables,
                          const QueryParams& query, absl::string_view body,
                          google::protobuf::Message* request);

}  // namespace lumo::gateway

#endif  // LUMOKEYS_GATEWAY_TRANSCODING_TRANSCODER_H_
