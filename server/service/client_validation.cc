#include "server/service/client_validation.h"

#include <algorithm>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "server/core/net.h"
#include "server/core/validation.h"
#include "server/service/errors.h"

namespace lumo::service {
namespace {

absl::Status UriError(absl::string_view field, absl::string_view rule) {
  return WithErrorKind(InvalidField(field, rule),
                       ErrorKind::kInvalidRedirectUri);
}

absl::Status MetadataError(absl::string_view field, absl::string_view rule) {
  return WithErrorKind(InvalidField(field, rule),
                       ErrorKind::kInvalidClientMetadata);
}

bool IsSchemeChar(char c) {
  return absl::ascii_isalnum(static_cast<unsigned char>(c)) || c == '+' ||
         c == '-' || c == '.';
}

// A DNS name or IPv4 literal: letters, digits, '-' and '.', no empty label.
bool IsRegName(absl::string_view host) {
  if (host.empty() || host.size() > 253) return false;
  size_t label = 0;
  for (char c : host) {
    if (c == '.') {
      if (label == 0) return false;
      label = 0;
    } else if (absl::ascii_isalnum(static_cast<unsigned char>(c)) || c == '-') {
      if (++label > 63) return false;
    } else {
      return false;
    }
  }
  return label > 0 || host.back() == '.';
}

// RFC 8252 §7.1: a private-use scheme in reverse domain name form, e.g.
// "com.example.app" (already lower case).
bool IsPrivateUseScheme(absl::string_view scheme) {
  const std::vector<absl::string_view> labels = absl::StrSplit(scheme, '.');
  if (labels.size() < 2) return false;
  for (absl::string_view label : labels) {
    if (label.empty() || label.size() > 63 ||
        !absl::ascii_isalpha(static_cast<unsigned char>(label[0]))) {
      return false;
    }
    for (char c : label) {
      if (!absl::ascii_isalnum(static_cast<unsigned char>(c)) && c != '-') {
        return false;
      }
    }
  }
  return true;
}

bool IsLoopbackHost(absl::string_view host) {
  return absl::EqualsIgnoreCase(host, "localhost") || host == "127.0.0.1" ||
         host == "[::1]";
}

// RFC 6749 §3.3 scope-token characters.
bool IsScopeChar(char c) {
  const auto u = static_cast<unsigned char>(c);
  return u == 0x21 || (u >= 0x23 && u <= 0x5B) || (u >= 0x5D && u <= 0x7E);
}

// Drops repeated values, keeping the first occurrence.
void Dedupe(std::vector<std::string>& values) {
  std::vector<std::string> out;
  out.reserve(values.size());
  for (std::string& v : values) {
    if (std::find(out.begin(), out.end(), v) == out.end()) {
      out.push_back(std::move(v));
    }
  }
  values = std::move(out);
}

bool Contains(const std::vector<std::string>& values, absl::string_view v) {
  return std::find(values.begin(), values.end(), v) != values.end();
}

struct Names {
  const char* name;
  const char* redirect_uris;
  const char* post_logout_redirect_uris;
  const char* client_uri;
  const char* logo_uri;
  const char* scopes;
  const char* grant_types;
  const char* response_types;
  const char* application_type;
  const char* token_endpoint_auth_method;
  const char* pkce_required;
};

constexpr Names kCamel = {"name",
                          "redirectUris",
                          "postLogoutRedirectUris",
                          "clientUri",
                          "logoUri",
                          "scopes",
                          "grantTypes",
                          "responseTypes",
                          "applicationType",
                          "tokenEndpointAuthMethod",
                          "pkceRequired"};
constexpr Names kSnake = {"client_name",
                          "redirect_uris",
                          "post_logout_redirect_uris",
                          "client_uri",
                          "logo_uri",
                          "scope",
                          "grant_types",
                          "response_types",
                          "application_type",
                          "token_endpoint_auth_method",
                          "pkce_required"};

absl::Status ValidateUriList(const char* field, std::vector<std::string>& uris,
                             ApplicationType type) {
  if (uris.size() > kMaxRedirectUris) {
    return UriError(field, absl::StrCat("at most ", kMaxRedirectUris, " URIs"));
  }
  for (size_t i = 0; i < uris.size(); ++i) {
    if (absl::Status s = ValidateRedirectUri(absl::StrCat(field, "[", i, "]"),
                                             uris[i], type);
        !s.ok()) {
      return s;
    }
  }
  Dedupe(uris);
  return absl::OkStatus();
}

// client_uri / logo_uri: the redirect-URI rules, but a metadata error.
absl::Status ValidateInfoUri(const char* field, absl::string_view uri) {
  if (uri.empty()) return absl::OkStatus();
  absl::Status s = ValidateRedirectUri(field, uri);
  if (s.ok()) return s;
  return WithErrorKind(s, ErrorKind::kInvalidClientMetadata);
}

}  // namespace

const std::vector<std::string>& SupportedGrantTypes() {
  static const std::vector<std::string>* const kTypes =
      new std::vector<std::string>{
          "authorization_code", "refresh_token", "client_credentials",
          "urn:ietf:params:oauth:grant-type:device_code"};
  return *kTypes;
}

absl::Status ValidateRedirectUri(absl::string_view field, absl::string_view uri,
                                 ApplicationType type) {
  const bool native = type == ApplicationType::kNative;
  if (uri.empty()) return UriError(field, "must not be empty");
  if (uri.size() > kMaxUriLength) {
    return UriError(field,
                    absl::StrCat("at most ", kMaxUriLength, " characters"));
  }
  for (size_t i = 0; i < uri.size(); ++i) {
    const auto c = static_cast<unsigned char>(uri[i]);
    if (c <= 0x20 || c >= 0x7F) {
      return UriError(field,
                      "only printable ASCII without spaces (percent-encode "
                      "anything else)");
    }
    if (c == '%' &&
        (i + 2 >= uri.size() ||
         !absl::ascii_isxdigit(static_cast<unsigned char>(uri[i + 1])) ||
         !absl::ascii_isxdigit(static_cast<unsigned char>(uri[i + 2])))) {
      return UriError(field, "invalid percent-encoding");
    }
  }
  if (absl::StrContains(uri, '#')) {
    return UriError(field, "must not contain a fragment");
  }
  const size_t scheme_end = uri.find("://");
  if (scheme_end == absl::string_view::npos) {
    // `com.example.app:/path`: a private-use scheme without authority.
    const size_t colon = uri.find(':');
    if (colon != absl::string_view::npos && colon > 0 &&
        IsPrivateUseScheme(absl::AsciiStrToLower(uri.substr(0, colon)))) {
      if (!native) {
        return UriError(field,
                        "private-use URI schemes are for native clients "
                        "(application type native)");
      }
      if (uri.size() == colon + 1 || uri[colon + 1] != '/') {
        return UriError(field,
                        "a private-use scheme must be followed by a path "
                        "(e.g. com.example.app:/callback)");
      }
      return absl::OkStatus();
    }
  }
  if (scheme_end == absl::string_view::npos || scheme_end == 0 ||
      !absl::ascii_isalpha(static_cast<unsigned char>(uri[0])) ||
      !std::all_of(uri.begin(), uri.begin() + scheme_end, IsSchemeChar)) {
    return UriError(field, "must be an absolute URI with a host");
  }
  const std::string scheme = absl::AsciiStrToLower(uri.substr(0, scheme_end));
  absl::string_view rest = uri.substr(scheme_end + 3);
  const absl::string_view authority = rest.substr(0, rest.find_first_of("/?"));
  if (absl::StrContains(authority, '@')) {
    return UriError(field, "must not contain user information");
  }
  absl::string_view host = authority;
  absl::string_view port;
  if (absl::StartsWith(authority, "[")) {
    const size_t close = authority.find(']');
    if (close == absl::string_view::npos) {
      return UriError(field, "malformed IPv6 host");
    }
    host = authority.substr(0, close + 1);
    absl::string_view after = authority.substr(close + 1);
    if (!after.empty()) {
      if (after[0] != ':') return UriError(field, "malformed host");
      port = after.substr(1);
    }
    const absl::string_view literal = host.substr(1, host.size() - 2);
    if (!absl::StrContains(literal, ':') ||
        !core::IpAddress::Parse(literal).ok()) {
      return UriError(field, "malformed IPv6 host");
    }
  } else if (const size_t colon = authority.rfind(':');
             colon != absl::string_view::npos) {
    host = authority.substr(0, colon);
    port = authority.substr(colon + 1);
  }
  if (host.empty()) return UriError(field, "must have a host");
  if (!absl::StartsWith(host, "[") && !IsRegName(host)) {
    return UriError(field, "malformed host");
  }
  if (!port.empty() || authority.size() > host.size()) {
    uint32_t number = 0;
    if (port.empty() || port.size() > 5 ||
        !std::all_of(port.begin(), port.end(),
                     [](char c) { return absl::ascii_isdigit(c); }) ||
        !absl::SimpleAtoi(port, &number) || number < 1 || number > 65535) {
      return UriError(field, "port must be a number from 1 to 65535");
    }
  }
  if (scheme == "https") return absl::OkStatus();
  if (scheme == "http") {
    if (IsLoopbackHost(host)) return absl::OkStatus();
    return UriError(field,
                    "http is allowed only for localhost, 127.0.0.1 and "
                    "[::1]; use https");
  }
  if (IsPrivateUseScheme(scheme)) {
    if (native) return absl::OkStatus();
    return UriError(field,
                    "private-use URI schemes are for native clients "
                    "(application type native)");
  }
  if (native) {
    return UriError(field,
                    "must use https, http for localhost, 127.0.0.1, [::1], "
                    "or a private-use scheme in reverse domain name form "
                    "(e.g. com.example.app:/callback)");
  }
  return UriError(field,
                  "must use https (or http for localhost, 127.0.0.1, [::1])");
}

absl::Status ValidateClientFields(storage::ClientFields& fields,
                                  FieldNaming naming) {
  const Names& n = naming == FieldNaming::kCamelCase ? kCamel : kSnake;

  if (!(naming == FieldNaming::kSnakeCase && fields.name.empty())) {
    if (absl::Status s = core::ValidateName(n.name, fields.name, 1, 100);
        !s.ok()) {
      return WithErrorKind(s, ErrorKind::kInvalidClientMetadata);
    }
  }

  // Grant and response types first: they decide whether a redirect URI is
  // required.
  if (fields.grant_types.empty()) {
    return MetadataError(n.grant_types, "at least one grant type");
  }
  for (const std::string& g : fields.grant_types) {
    if (!Contains(SupportedGrantTypes(), g)) {
      return MetadataError(
          n.grant_types,
          "unsupported grant type (supported: authorization_code, "
          "refresh_token, client_credentials, "
          "urn:ietf:params:oauth:grant-type:device_code)");
    }
  }
  Dedupe(fields.grant_types);
  for (const std::string& r : fields.response_types) {
    if (r != "code") {
      return MetadataError(n.response_types,
                           "unsupported response type (supported: code)");
    }
  }
  Dedupe(fields.response_types);
  const bool code_flow = Contains(fields.grant_types, "authorization_code");
  if (code_flow != Contains(fields.response_types, "code")) {
    return MetadataError(n.response_types,
                         "\"code\" must be listed exactly when grant types "
                         "include authorization_code");
  }

  if (fields.application_type != "web" && fields.application_type != "native") {
    return MetadataError(n.application_type, "must be \"web\" or \"native\"");
  }
  const ApplicationType type = fields.application_type == "native"
                                   ? ApplicationType::kNative
                                   : ApplicationType::kWeb;
  if (absl::Status s =
          ValidateUriList(n.redirect_uris, fields.redirect_uris, type);
      !s.ok()) {
    return s;
  }
  if (code_flow && fields.redirect_uris.empty()) {
    return UriError(n.redirect_uris,
                    "at least one redirect URI is required for "
                    "authorization_code");
  }
  if (absl::Status s = ValidateUriList(n.post_logout_redirect_uris,
                                       fields.post_logout_redirect_uris, type);
      !s.ok()) {
    return s;
  }
  if (absl::Status s = ValidateInfoUri(n.client_uri, fields.client_uri);
      !s.ok()) {
    return s;
  }
  if (absl::Status s = ValidateInfoUri(n.logo_uri, fields.logo_uri); !s.ok()) {
    return s;
  }

  if (fields.scopes.size() > kMaxClientScopes) {
    return MetadataError(n.scopes,
                         absl::StrCat("at most ", kMaxClientScopes, " scopes"));
  }
  for (const std::string& scope : fields.scopes) {
    if (scope.empty() || scope.size() > kMaxScopeLength ||
        !std::all_of(scope.begin(), scope.end(), IsScopeChar)) {
      return MetadataError(
          n.scopes,
          absl::StrCat("each scope is 1-", kMaxScopeLength,
                       " printable ASCII characters without spaces, '\"' "
                       "or '\\'"));
    }
  }
  Dedupe(fields.scopes);

  const std::string& method = fields.token_endpoint_auth_method;
  if (method != "client_secret_basic" && method != "client_secret_post" &&
      method != "none") {
    return MetadataError(n.token_endpoint_auth_method,
                         "must be client_secret_basic, client_secret_post "
                         "or none");
  }
  if (fields.is_public()) {
    if (Contains(fields.grant_types, "client_credentials")) {
      return MetadataError(n.grant_types,
                           "a public client cannot use client_credentials");
    }
    if (!fields.pkce_required) {
      return MetadataError(n.pkce_required,
                           "a public client must require PKCE");
    }
  }
  return absl::OkStatus();
}

}  // namespace lumo::service
