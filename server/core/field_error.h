// A status about one request field. The field's name (as the REST API spells
// it, e.g. "expiresAt" or "redirect_uris[0]") travels beside the message as
// a status payload, so that the edges (the RPC status mapping, the gateway's
// error body) can name it without reading the message text.
// Thread-safe (pure functions).
#ifndef LUMOKEYS_SERVER_CORE_FIELD_ERROR_H_
#define LUMOKEYS_SERVER_CORE_FIELD_ERROR_H_

#include <string>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"

namespace lumo::core {

// The payload URL under which a status names its field.
inline constexpr absl::string_view kInvalidFieldPayload =
    "lumo.dev/invalid-field";

// `status` naming `field`; an OK status is returned unchanged.
absl::Status WithInvalidField(absl::Status status, absl::string_view field);

// INVALID_ARGUMENT with `message` (as given), naming `field`.
absl::Status InvalidFieldError(absl::string_view field,
                               absl::string_view message);

// The field `status` names, or "" when it names none.
std::string InvalidFieldOf(const absl::Status& status);

}  // namespace lumo::core

#endif  // LUMOKEYS_SERVER_CORE_FIELD_ERROR_H_
