// The tenant portal's web side in the gateway (docs/portal.md): the static
// pages and assets (plain files from --portal_dir, loaded once at start-up),
// the browser-session cookies, and the checks on cookie-authenticated
// requests (Origin, X-Requested-With). No business logic: sessions and CSRF
// tokens are verified by the server; the gateway only moves the cookie into
// `x-lumo-session` metadata and the X-CSRF-Token header into
// `x-lumo-csrf-token`.
//
// Cookies (per tenant):
//   plain HTTP: `lumo_session` (HttpOnly) and `lumo_csrf` (readable by the
//               page's script), Path=/t/{slug}, SameSite=Strict
//   over TLS:   `__Host-lumo_session-{slug}` / `__Host-lumo_csrf-{slug}`,
//               Path=/ (required by the __Host- prefix), Secure,
//               SameSite=Strict
#ifndef LUMOKEYS_GATEWAY_PORTAL_H_
#define LUMOKEYS_GATEWAY_PORTAL_H_

#include <memory>
#include <optional>
#include <string>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "gateway/http/http_message.h"
#include "google/protobuf/descriptor.h"
#include "google/protobuf/message.h"

namespace lumo::gateway {

struct PortalOptions {
  // Directory with the portal's files (login.html, api-keys.html,
  // audit-logs.html, portal.js, portal.css, ...). Empty: no portal pages.
  std::string dir;
  // The browser reaches the gateway over TLS (directly or through a
  // terminating proxy): Secure, __Host- cookies and an https Origin.
  bool secure_cookies = false;
};

// The headers of every portal page and asset: a strict CSP (scripts and
// styles only from this origin, nothing inline, no framing), DENY framing,
// nosniff, no referrer.
HttpHeaders PortalPageHeaders();

// Thread-safe after Load (immutable).
class Portal {
 public:
  // Reads every regular file of `options.dir` (FAILED_PRECONDITION when the
  // directory or a page is missing).
  static absl::StatusOr<std::unique_ptr<Portal>> Load(PortalOptions options);

  // The response for a portal page or asset, or nullopt when `request` is
  // not one (GET/HEAD only).
  std::optional<HttpResponse> Serve(const HttpRequest& request) const;

  const PortalOptions& options() const { return options_; }

 private:
  explicit Portal(PortalOptions options) : options_(std::move(options)) {}
  PortalOptions options_;
  absl::flat_hash_map<std::string, std::string> files_;
};

// The tenant slug of a `/t/{slug}/...` path, or "" when the path has none or
// it is not a valid slug ([a-z0-9-], 1-63).
std::string TenantSlugOfPath(absl::string_view path);

// The session-cookie names for `slug`.
std::string SessionCookieName(absl::string_view slug, bool secure);
std::string CsrfCookieName(absl::string_view slug, bool secure);

// The value of cookie `name` in the request's Cookie headers, or nullopt.
std::optional<std::string> CookieValue(const HttpRequest& request,
                                       absl::string_view name);

// For a cookie-authenticated (or session-creating) request that changes
// state: "" when it carries `X-Requested-With: XMLHttpRequest` and an
// Origin equal to its own (scheme from `secure`, host from Host), else why
// not (for the 403 message).
std::string CheckBrowserWrite(const HttpRequest& request, bool secure);

// Sets the cookies from a SESSION_COOKIE_SET reply (its `session_token` and
// `csrf_token` string fields, then cleared from `reply`), or expires them
// (SESSION_COOKIE_CLEAR).
void SetSessionCookies(absl::string_view slug, bool secure,
                       google::protobuf::Message& reply,
                       HttpResponse& response);
void ClearSessionCookies(absl::string_view slug, bool secure,
                         HttpResponse& response);

}  // namespace lumo::gateway

#endif  // LUMOKEYS_GATEWAY_PORTAL_H_
