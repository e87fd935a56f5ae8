// Validation of OAuth client metadata, shared by the admin API and RFC 7591
// registration. Pure functions: thread-safe.
//
// Every error is INVALID_ARGUMENT carrying (service::WithErrorKind) the RFC
// 7591 kind: kInvalidRedirectUri for a redirect or post-logout redirect
// URI, kInvalidClientMetadata for anything else. The admin API replaces
// the kind with kInvalidField. Each error names the field (in the caller's
// naming; in the message, which starts with it, and as the status's field,
// core/field_error.h) and the rule broken, never the value.
#ifndef LUMOKEYS_SERVER_SERVICE_CLIENT_VALIDATION_H_
#define LUMOKEYS_SERVER_SERVICE_CLIENT_VALIDATION_H_

#include <cstddef>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "server/storage/client_store.h"

namespace lumo::service {

inline constexpr size_t kMaxRedirectUris = 20;
inline constexpr size_t kMaxUriLength = 2048;
inline constexpr size_t kMaxClientScopes = 50;
inline constexpr size_t kMaxScopeLength = 100;

// Grant types a client may register. `implicit` and `password` are refused
// (OAuth 2.0 Security BCP).
const std::vector<std::string>& SupportedGrantTypes();

// The OAuth `application_type` of a client: what its redirect URIs may be.
enum class ApplicationType { kWeb, kNative };

// A redirect URI (RFC 3986 absolute URI) is acceptable when:
//   - at most kMaxUriLength bytes of printable ASCII (no spaces, no control
//     or non-ASCII characters: IRIs must be percent-encoded), and every `%`
//     starts a valid escape;
//   - scheme `https`, or `http` only with host `localhost`, `127.0.0.1` or
//     `[::1]` (case-insensitive), any port;
//   - a non-empty host (DNS name, IPv4 or bracketed IPv6) and an optional
//     numeric port 1-65535;
//   - no userinfo (`user@`) and no fragment (`#`).
// A native client (RFC 8252) may also use a private-use URI scheme in
// reverse domain name form (at least two dot-separated labels of letters,
// digits and `-`, starting with a letter, e.g. `com.example.app`), as
// `com.example.app:/path` (RFC 8252 §7.1) or `com.example.app://host/path`;
// web clients may not. `field` names the value in the message (e.g.
// "redirect_uris[0]").
absl::Status ValidateRedirectUri(absl::string_view field, absl::string_view uri,
                                 ApplicationType type = ApplicationType::kWeb);

// Field names used in messages: the admin API's camelCase or RFC 7591's
// snake_case.
enum class FieldNaming { kCamelCase, kSnakeCase };

// Validates `fields` in place and canonicalises list values (duplicates
// dropped, first occurrence kept). The caller applies defaults first.
// Rules:
//   - name: 1-100 characters (core::ValidateName); with kSnakeCase
//     (registration, where client_name is optional) it may be empty and
//     the caller names the client;
//   - application_type: "web" or "native" (checked before the URIs, whose
//     rules depend on it);
//   - redirect_uris, post_logout_redirect_uris: at most kMaxRedirectUris,
//     each ValidateRedirectUri for the application type; at least one
//     redirect URI when the grant types include authorization_code;
//   - client_uri, logo_uri: empty, or a URI under the same rules;
//   - scopes: at most kMaxClientScopes, each 1-100 characters of RFC 6749
//     scope-token characters (%x21 / %x23-5B / %x5D-7E);
//   - grant_types: non-empty, each in SupportedGrantTypes();
//   - response_types: each "code", and "code" present exactly when the
//     grant types include authorization_code (RFC 7591 §2.1);
//   - token_endpoint_auth_method: "client_secret_basic",
//     "client_secret_post" or "none";
//   - a public client ("none") cannot use client_credentials and must
//     require PKCE.
absl::Status ValidateClientFields(storage::ClientFields& fields,
                                  FieldNaming naming);

}  // namespace lumo::service

#endif  // LUMOKEYS_SERVER_SERVICE_CLIENT_VALIDATION_H_
