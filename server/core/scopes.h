// API-key scopes (docs/product.md §2.4). Thread-safe (pure functions).
//
// `admin:write` grants every other admin scope (read and write of every
// resource). `admin:read` grants reading every resource but no write, so it
// implies no other scope by name. The resource scopes (`admin:users`, ...)
// grant only themselves.
#ifndef LUMOKEYS_SERVER_CORE_SCOPES_H_
#define LUMOKEYS_SERVER_CORE_SCOPES_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"

namespace lumo::core {

// Every scope a key may carry, in canonical order.
const std::vector<std::string>& AllScopes();

bool IsKnownScope(absl::string_view scope);

// Validates a requested scope list and returns it deduplicated in canonical
// order. INVALID_ARGUMENT when empty (naming the field "scopes",
// core/field_error.h) or when a scope is unknown (the message names the
// unknown scope: scopes are not secret).
absl::StatusOr<std::vector<std::string>> CanonicalizeScopes(
    absl::Span<const std::string> scopes);

// True when `held` grants `needed` (directly or through admin:write).
bool Grants(absl::Span<const std::string> held, absl::string_view needed);

// True when `held` grants at least one of `any_of`; true for an empty
// `any_of`.
bool GrantsAny(absl::Span<const std::string> held,
               absl::Span<const std::string> any_of);

// The no-escalation rule: every scope in `requested` is granted by `held`.
bool IsSubset(absl::Span<const std::string> held,
              absl::Span<const std::string> requested);

}  // namespace lumo::core

#endif  // LUMOKEYS_SERVER_CORE_SCOPES_H_
