// Portal administrators: password login, browser sessions and CSRF tokens
// (product.md §3.4, docs/portal.md). No gRPC, no SQL.
//
// Login answers the same "invalid email or password" for an unknown tenant,
// an unknown user, a user without portal credential, a blocked user and a
// wrong password, after the same scrypt work (a dummy hash stands in when
// there is no stored one). Failed logins are throttled per account (tenant +
// email) and per source address, in this process (docs/portal.md: per
// replica). Each login creates a new random session token and CSRF token;
// only their SHA-256 is stored.
#ifndef LUMOKEYS_SERVER_SERVICE_PORTAL_SERVICE_H_
#define LUMOKEYS_SERVER_SERVICE_PORTAL_SERVICE_H_

#include <functional>
#include <optional>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "server/core/password.h"
#include "server/service/audit_writer.h"
#include "server/service/principal.h"
#include "server/storage/portal_store.h"

namespace lumo::service {

// Session tokens are "lps_" + 43 base62 characters (~256 bits); CSRF tokens
// 43 base62 characters.
inline constexpr absl::string_view kSessionTokenPrefix = "lps_";

struct LoginThrottleOptions {
  // After `max_failures` failed logins within `window`, further attempts
  // are refused until `window` has passed since the first of them.
  int max_failures_per_account = 5;
  int max_failures_per_address = 20;
  absl::Duration window = absl::Minutes(15);
  // Keys tracked at once; beyond it the oldest windows are dropped.
  size_t max_tracked = 100000;
  std::function<absl::Time()> now = [] { return absl::Now(); };
};

// Counts failures per key in fixed windows. Thread-safe.
class LoginThrottle {
 public:
  explicit LoginThrottle(LoginThrottleOptions options);
  // How long `key` must wait when it has `limit` or more failures in its
  // current window; nullopt when it may try.
  std::optional<absl::Duration> Blocked(absl::string_view key, int limit);
  void RecordFailure(absl::string_view key);
  void Reset(absl::string_view key);

 private:
  struct Window {
    absl::Time start;
    int failures = 0;
  };
  const LoginThrottleOptions options_;
  absl::Mutex mu_;
  absl::flat_hash_map<std::string, Window> windows_ ABSL_GUARDED_BY(mu_);
};

struct PortalOptions {
  core::ScryptParams scrypt;
  // A session ends after this long without a request...
  absl::Duration idle_ttl = absl::Minutes(30);
  // ...and this long after login whatever happens.
  absl::Duration absolute_ttl = absl::Hours(12);
  // last_seen_at is written at most this often per session.
  absl::Duration touch_every = absl::Seconds(30);
  LoginThrottleOptions throttle;
  // scrypt runs at most this many at once (each holds 128 MiB at the
  // default cost); more logins wait.
  int max_concurrent_hashes = 2;
};

struct LoginResult {
  // Given to the browser once (as a cookie, by the gateway); never stored.
  std::string session_token;
  std::string csrf_token;
  std::string user_id;
  std::string email;
  absl::Duration idle_ttl;
  absl::Duration absolute_ttl;
};

// Thread-safe.
class PortalService {
 public:
  PortalService(storage::PortalStore* store, PortalOptions options);

  // INVALID_ARGUMENT when the email or the password is empty.
  // UNAUTHENTICATED (invalid_token, "invalid email or password") for any bad
  // combination; RESOURCE_EXHAUSTED (rate_limit_exceeded, payload
  // kRetryAfterPayload) when throttled; UNAVAILABLE when the store cannot be
  // asked.
  absl::StatusOr<LoginResult> Login(absl::string_view tenant_slug,
                                    absl::string_view email,
                                    absl::string_view password,
                                    const RequestInfo& info);

  // The principal of a live session of `tenant_slug`. With `csrf_required`,
  // `csrf_token` must be the session's CSRF token. UNAUTHENTICATED
  // (invalid_token) for no, unknown, expired or other-tenant sessions;
  // PERMISSION_DENIED (permission_denied) for a missing or wrong CSRF token.
  absl::StatusOr<Principal> Authenticate(
      absl::string_view session_token, absl::string_view tenant_slug,
      bool csrf_required, std::optional<absl::string_view> csrf_token);

  // Ends the session server-side (idempotent).
  absl::Status Logout(const Principal& caller, absl::string_view session_token,
                      const RequestInfo& info);

  // Creates (or updates the password of) the portal admin `email` of the
  // tenant (operator bootstrap). INVALID_ARGUMENT for a bad email or
  // password; NOT_FOUND for an unknown tenant. Returns the user id.
  absl::StatusOr<std::string> SetAdmin(absl::string_view tenant_slug,
                                       absl::string_view email,
                                       absl::string_view password,
                                       const RequestInfo& info);

  const PortalOptions& options() const { return options_; }

  // Where failed and throttled logins are recorded (`portal.login.failed`,
  // through the batched writer); null (the default) records nothing. Set it
  // before serving; `writer` must outlive every call.
  void set_audit_writer(AuditWriter* writer) { audit_writer_ = writer; }

 private:
  absl::StatusOr<bool> CheckPassword(absl::string_view password,
                                     absl::string_view encoded);

  storage::PortalStore* const store_;
  const PortalOptions options_;
  void RecordFailure(absl::string_view tenant_slug, absl::string_view email,
                     absl::string_view user_id, absl::string_view reason,
                     bool suspicious, const RequestInfo& info);

  // A hash at options_.scrypt of a random password: what an unknown account
  // is checked against, so it costs what a real check costs.
  std::string dummy_hash_;
  AuditWriter* audit_writer_ = nullptr;
  LoginThrottle throttle_;
  absl::Mutex hash_mu_;
  int hashes_running_ ABSL_GUARDED_BY(hash_mu_) = 0;
};

}  // namespace lumo::service

#endif  // LUMOKEYS_SERVER_SERVICE_PORTAL_SERVICE_H_
