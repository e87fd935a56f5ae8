// Portal administrators: password login, browser sessions and CSRF tokens
// (docs/product.md §3.4, docs/portal.md). No gRPC, no SQL.
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
#include "server/service/hash_pool.h"
#include "server/service/login_throttle.h"
#include "server/service/principal.h"
#include "server/storage/portal_store.h"

namespace lumo::service {

// Session tokens are "lps_" + 43 base62 characters (~256 bits); CSRF tokens
// 43 base62 characters.
inline constexpr absl::string_view kSessionTokenPrefix = "lps_";

struct PortalOptions {
  core::ScryptParams scrypt;
  // A session ends after this long without a request...
  absl::Duration idle_ttl = absl::Minutes(30);
  // ...and this long after login whatever happens.
  absl::Duration absolute_ttl = absl::Hours(12);
  // last_seen_at is written at most this often per session.
  absl::Duration touch_every = absl::Seconds(30);
  LoginThrottleOptions throttle;
  // Where password checks run (each scrypt holds 128 MiB at the default
  // cost): a few threads of their own, a short queue, and a bound on how
  // long a login may wait for a slot before it is refused as busy.
  HashPoolOptions hashing;
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
  // Stop()s the hashing pool.
  ~PortalService();

  using LoginCallback = std::function<void(absl::StatusOr<LoginResult>)>;

  // Starts a login and returns without waiting for the password check:
  // `done` is called exactly once, either before LoginAsync returns (a
  // refusal decided without hashing) or later on a hashing thread.
  // Only the throttle reservation happens on the calling thread; the
  // account lookup and the password check run on the hashing pool, never on
  // the caller's thread.
  // Answers: INVALID_ARGUMENT when the email or the password is empty;
  // UNAUTHENTICATED (invalid_token, "invalid email or password") for any
  // bad combination; RESOURCE_EXHAUSTED (rate_limit_exceeded, payload
  // kRetryAfterPayload) when throttled, or when no hashing slot is free
  // within options().hashing.max_wait (Retry-After 1 s; the attempt is not
  // counted); UNAVAILABLE when the store cannot be asked.
  void LoginAsync(absl::string_view tenant_slug, absl::string_view email,
                  absl::string_view password, const RequestInfo& info,
                  LoginCallback done);

  // LoginAsync, waiting for the answer (blocks the calling thread for the
  // password check: tests and tools, not RPC workers).
  absl::StatusOr<LoginResult> Login(absl::string_view tenant_slug,
                                    absl::string_view email,
                                    absl::string_view password,
                                    const RequestInfo& info);

  // Runs (as busy refusals) the logins still waiting for a hashing slot and
  // joins the hashing threads. Call after the RPC workers have stopped.
  void Stop();

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
  const LoginThrottle& throttle() const { return throttle_; }

  // Where failed and throttled logins are recorded (`portal.login.failed`,
  // through the batched writer; throttled ones as one summary per throttle
  // key and summary window); null (the default) records nothing. Set it
  // before serving; `writer` must outlive every call.
  void set_audit_writer(AuditWriter* writer) { audit_writer_ = writer; }

 private:
  // The part of a login that runs on a hashing thread: the account lookup,
  // the password check and, on success, the session.
  absl::StatusOr<LoginResult> CheckAndStartSession(
      const LoginReservation& reservation, absl::string_view tenant_slug,
      absl::string_view email, absl::string_view password,
      const RequestInfo& info);
  void RecordFailure(absl::string_view tenant_slug, absl::string_view email,
                     absl::string_view user_id, absl::string_view reason,
                     const RequestInfo& info);
  void RecordThrottled(absl::string_view tenant_slug, absl::string_view email,
                       const LoginReservation& reservation,
                       const RequestInfo& info);
  // The email field as audit metadata (docs/portal.md): trimmed,
  // lower-cased and cut when it is an email address; otherwise a keyed hash
  // marker, so that a password typed into the field is never shown.
  std::string AuditEmail(absl::string_view email) const;

  storage::PortalStore* const store_;
  const PortalOptions options_;

  // A hash at options_.scrypt of a random password: what an unknown account
  // is checked against, so it costs what a real check costs.
  std::string dummy_hash_;
  // Random per process: keys the marker of a non-email email field.
  std::string audit_marker_key_;
  AuditWriter* audit_writer_ = nullptr;
  LoginThrottle throttle_;
  HashPool hash_pool_;
};

// Trimmed (ASCII white space) and lower-cased: how an email names an account
// for throttling and in audit metadata.
std::string NormalizeEmail(absl::string_view email);

}  // namespace lumo::service

#endif  // LUMOKEYS_SERVER_SERVICE_PORTAL_SERVICE_H_
