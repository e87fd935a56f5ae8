// What gRPC accepts as custom metadata, and an escaping that turns any
// bytes into an acceptable value. gRPC checks every key and every non-binary
// value a call sends (grpc_header_key_is_legal /
// grpc_header_nonbin_value_is_legal) and the C++ library aborts the process
// when a call or a reply carries one it refuses, so every value built from
// outside input must pass through here first (docs/gateway.md, "Headers
// forwarded as metadata").
//
// Pure functions, thread-safe.
#ifndef LUMOKEYS_SERVER_CORE_METADATA_TEXT_H_
#define LUMOKEYS_SERVER_CORE_METADATA_TEXT_H_

#include <cstddef>
#include <string>

#include "absl/strings/string_view.h"

namespace lumo::core {

// True for a key gRPC accepts: one or more of [0-9a-z_.-] (upper case, ':'
// and everything else are refused).
bool IsLegalMetadataKey(absl::string_view key);

// True for a value gRPC accepts under a key that does not end in "-bin":
// bytes 0x20..0x7E only (no HTAB, no other control byte, no DEL, nothing at
// or above 0x80). The empty value is legal.
bool IsLegalMetadataValue(absl::string_view value);

// `value` with every byte IsLegalMetadataValue refuses written as %XX
// (upper-case hex); every other byte, '%' included, is kept, so text that is
// already legal is unchanged. The result is always legal and at most
// `max_bytes` long: it ends before the first byte whose output would not
// fit (an escape is never cut in half).
std::string EscapeMetadataValue(absl::string_view value,
                                size_t max_bytes = std::string::npos);

}  // namespace lumo::core

#endif  // LUMOKEYS_SERVER_CORE_METADATA_TEXT_H_
