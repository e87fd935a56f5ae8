#include "server/service/portal_service.h"

#include <memory>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/cord.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "absl/synchronization/notification.h"
#include "server/core/crypto.h"
#include "server/core/net.h"
#include "server/core/scopes.h"
#include "server/service/audit_json.h"
#include "server/service/key_service.h"
#include "server/service/registration_service.h"
#include "server/service/user_service.h"
#include "server/storage/call_deadline.h"

namespace lumo::service {
namespace {

constexpr size_t kTokenChars = 43;
constexpr size_t kUserIdRandomChars = 16;

absl::Status InvalidCredentials() {
  return WithErrorKind(absl::UnauthenticatedError("invalid email or password"),
                       ErrorKind::kUnauthenticated);
}

absl::Status InvalidSession() {
  return WithErrorKind(
      absl::UnauthenticatedError("missing, invalid or expired session"),
      ErrorKind::kUnauthenticated);
}

absl::Status BadCsrf() {
  return WithErrorKind(
      absl::PermissionDeniedError("missing or invalid CSRF token"),
      ErrorKind::kPermissionDenied);
}

// No hashing slot within the bound: the attempt was not made (and is not
// counted); the client may retry at once.
absl::Status Busy() {
  absl::Status status =
      WithErrorKind(absl::ResourceExhaustedError(
                        "too many logins in progress; try again in a moment"),
                    ErrorKind::kRateLimited);
  status.SetPayload(kRetryAfterPayload, absl::Cord("1"));
  return status;
}

absl::Status Throttled(absl::Duration wait) {
  const int64_t seconds = std::max<int64_t>(
      1, absl::ToInt64Seconds(absl::Ceil(wait, absl::Seconds(1))));
  absl::Status status = WithErrorKind(
      absl::ResourceExhaustedError("too many failed logins; try again later"),
      ErrorKind::kRateLimited);
  status.SetPayload(kRetryAfterPayload, absl::Cord(absl::StrCat(seconds)));
  return status;
}

bool IsTokenText(absl::string_view s, size_t n) {
  if (s.size() != n) return false;
  for (char c : s) {
    if (!absl::ascii_isalnum(static_cast<unsigned char>(c))) return false;
  }
  return true;
}

storage::AuditEvent PortalEvent(absl::string_view action,
                                absl::string_view user_id,
                                const RequestInfo& info) {
  storage::AuditEvent event;
  event.action = std::string(action);
  event.category = "authentication";
  event.actor_type = "user";
  event.actor_id = std::string(user_id);
  event.target_type = "user";
  event.target_id = std::string(user_id);
  event.ip_address = info.ip_address;
  event.user_agent = info.user_agent;
  event.request_id = info.request_id;
  return event;
}

}  // namespace

// ------------------------------------------------------------ PortalService

std::string NormalizeEmail(absl::string_view email) {
  return absl::AsciiStrToLower(absl::StripAsciiWhitespace(email));
}

PortalService::PortalService(storage::PortalStore* store, PortalOptions options)
    : store_(store),
      options_(std::move(options)),
      throttle_(options_.throttle),
      hash_pool_(options_.hashing) {
  // Computed now, so the first unknown-user login is not the slow one.
  absl::StatusOr<std::string> random = core::RandomBase62(kTokenChars);
  absl::StatusOr<std::string> dummy = core::HashPassword(
      random.ok() ? *random : "unknown-account-password", options_.scrypt);
  dummy_hash_ = dummy.ok() ? *dummy : core::DummyPasswordHash();
  absl::StatusOr<std::string> marker_key = core::RandomBase62(kTokenChars);
  audit_marker_key_ = marker_key.ok() ? *marker_key : "";
}

PortalService::~PortalService() { Stop(); }

void PortalService::Stop() { hash_pool_.Stop(); }

absl::StatusOr<LoginResult> PortalService::Login(absl::string_view tenant_slug,
                                                 absl::string_view email,
                                                 absl::string_view password,
                                                 const RequestInfo& info) {
  absl::Notification answered;
  absl::StatusOr<LoginResult> out;
  LoginAsync(tenant_slug, email, password, info,
             [&](absl::StatusOr<LoginResult> result) {
               out = std::move(result);
               answered.Notify();
             });
  answered.WaitForNotification();
  return out;
}

void PortalService::LoginAsync(absl::string_view tenant_slug,
                               absl::string_view email,
                               absl::string_view password,
                               const RequestInfo& info, LoginCallback done) {
  // A form sent without email or password is a client error, not an
  // attempt at an account (says nothing about any account).
  if (email.empty() || password.empty()) {
    done(WithErrorKind(
        absl::InvalidArgumentError("email and password are required"),
        ErrorKind::kInvalidField));
    return;
  }
  const std::string account =
      absl::StrCat(tenant_slug.substr(0, 63), "/",
                   NormalizeEmail(email.substr(0, kMaxEmailLength + 64)));
  absl::StatusOr<core::IpAddress> ip = core::IpAddress::Parse(info.ip_address);
  const std::string network =
      ip.ok() ? core::ClientNetwork(*ip, options_.throttle.ipv6_prefix_len)
              : info.ip_address;
  // Reserved before anything is checked: parallel attempts cannot pass a
  // limit between a check and a record.
  const LoginReservation reservation = throttle_.Reserve(account, network);
  if (!reservation.ok()) {
    RecordThrottled(tenant_slug, email, reservation, info);
    done(Throttled(reservation.retry_after));
    return;
  }

  // Everything else - the account lookup, the password check and, on
  // success, the session - runs on the hashing pool: this thread (an RPC
  // worker) is free again at once, and a login refused for capacity has
  // cost no database query.
  auto secret = std::make_shared<std::string>(
      password.size() <= core::kMaxPasswordBytes ? password : "");
  HashPool::Job job = [this, reservation, slug = std::string(tenant_slug),
                       typed = std::string(email), secret, info, done,
                       deadline =
                           storage::CurrentCallDeadline()](bool in_time) {
    if (!in_time) {
      throttle_.Cancel(reservation);
      core::Cleanse(*secret);
      done(Busy());
      return;
    }
    storage::ScopedCallDeadline call_deadline(deadline);
    // The replicas' shared counters (database statements: on this pool,
    // not on the RPC worker).
    LoginReservation shared = reservation;
    throttle_.ReserveShared(shared);
    if (!shared.ok()) {
      core::Cleanse(*secret);
      RecordThrottled(slug, typed, shared, info);
      done(Throttled(shared.retry_after));
      return;
    }
    absl::StatusOr<LoginResult> result =
        CheckAndStartSession(shared, slug, typed, *secret, info);
    core::Cleanse(*secret);
    done(std::move(result));
  };
  if (!hash_pool_.Submit(std::move(job))) {
    throttle_.Cancel(reservation);
    core::Cleanse(*secret);
    done(Busy());
  }
}

absl::StatusOr<LoginResult> PortalService::CheckAndStartSession(
    const LoginReservation& reservation, absl::string_view tenant_slug,
    absl::string_view email, absl::string_view password,
    const RequestInfo& info) {
  // Inputs that cannot name an admin still cost one scrypt run.
  const bool plausible = !tenant_slug.empty() && tenant_slug.size() <= 63 &&
                         email.size() <= kMaxEmailLength;
  const absl::StatusOr<storage::PortalAdmin> admin =
      plausible ? store_->FindAdmin(tenant_slug, email)
                : absl::NotFoundError("implausible");
  if (!admin.ok() && !absl::IsNotFound(admin.status())) {
    throttle_.Cancel(reservation);
    return absl::UnavailableError("cannot check credentials right now");
  }
  const std::string& encoded = admin.ok() ? admin->password_hash : dummy_hash_;
  absl::StatusOr<bool> match = core::VerifyPassword(password, encoded);
  // A failure keeps its reservation: it is the counted failure.
  if (!admin.ok()) {
    RecordFailure(tenant_slug, email, "", "unknown_user", info);
    return InvalidCredentials();
  }
  if (!match.ok()) {
    // A stored hash we cannot read: refuse, but like any other failure.
    RecordFailure(tenant_slug, email, admin->user_id, "unreadable_hash", info);
    return InvalidCredentials();
  }
  if (!*match || admin->blocked) {
    RecordFailure(tenant_slug, email, admin->user_id,
                  admin->blocked ? "blocked" : "wrong_password", info);
    return InvalidCredentials();
  }

  LoginResult result;
  absl::StatusOr<std::string> token = core::RandomBase62(kTokenChars);
  absl::StatusOr<std::string> csrf = core::RandomBase62(kTokenChars);
  if (!token.ok() || !csrf.ok()) {
    throttle_.Cancel(reservation);
    return !token.ok() ? token.status() : csrf.status();
  }
  result.session_token = absl::StrCat(kSessionTokenPrefix, *token);
  result.csrf_token = *std::move(csrf);
  core::Cleanse(*token);
  storage::AuditEvent event = PortalEvent("portal.login", admin->user_id, info);
  if (absl::Status st = store_->InsertSession(
          admin->tenant_id, admin->user_id, core::Sha256(result.session_token),
          core::Sha256(result.csrf_token), options_.absolute_ttl, event);
      !st.ok()) {
    // The password was right; not a failure of the account.
    throttle_.Cancel(reservation);
    core::Cleanse(result.session_token);
    return absl::UnavailableError("cannot create a session right now");
  }
  throttle_.Succeeded(reservation);
  result.user_id = admin->user_id;
  result.email = admin->email;
  result.idle_ttl = options_.idle_ttl;
  result.absolute_ttl = options_.absolute_ttl;
  return result;
}

std::string PortalService::AuditEmail(absl::string_view email) const {
  const std::string normalized = NormalizeEmail(email);
  if (normalized.size() <= kMaxEmailLength &&
      ValidateEmail("email", normalized).ok()) {
    return normalized;
  }
  // Not an address (perhaps a password typed into the wrong field): a
  // marker that tells repeated values apart within this process, from which
  // the value cannot be recovered or guessed offline.
  return absl::StrCat("not-an-email:",
                      core::HexEncode(core::AsStringView(core::HmacSha256(
                                          audit_marker_key_, normalized)))
                          .substr(0, 16));
}

void PortalService::RecordFailure(absl::string_view tenant_slug,
                                  absl::string_view email,
                                  absl::string_view user_id,
                                  absl::string_view reason,
                                  const RequestInfo& info) {
  if (audit_writer_ == nullptr) return;
  storage::PendingAuditEvent pending;
  // Resolved by the writer's store; an unknown slug is filed under the
  // platform pseudo-tenant (never reveals tenants to other tenants).
  pending.tenant_slug = std::string(tenant_slug.substr(0, 63));
  storage::AuditEvent& event = pending.event;
  event.action = "portal.login.failed";
  event.category = "authentication";
  event.actor_type = user_id.empty() ? "anonymous" : "user";
  event.actor_id = std::string(user_id);
  if (!user_id.empty()) {
    event.target_type = "user";
    event.target_id = std::string(user_id);
  }
  event.outcome = "failure";
  event.ip_address = info.ip_address;
  event.user_agent = info.user_agent;
  event.request_id = info.request_id;
  event.metadata_json = JsonObject()
                            .Add("email", AuditEmail(email))
                            .Add("reason", std::string(reason))
                            .Build();
  audit_writer_->Enqueue(pending);
}

void PortalService::RecordThrottled(absl::string_view tenant_slug,
                                    absl::string_view email,
                                    const LoginReservation& reservation,
                                    const RequestInfo& info) {
  if (audit_writer_ == nullptr) return;
  // One summary per throttle key and summary window (its metadata `count`
  // says how many attempts it stands for), so a flood of refused attempts
  // costs a lookup and an increment each, not a row. Refusals of one
  // account (pair, account) are the tenant's; refusals of a whole network
  // (or for a full table) name no account and go to the platform
  // pseudo-tenant, so that attempts at made-up tenants open no summaries.
  const LoginThrottleScope scope = reservation.refused_by;
  const bool per_account = scope == LoginThrottleScope::kPair ||
                           scope == LoginThrottleScope::kAccount;
  const std::string summary_key = absl::StrCat(
      "portal.login.throttled\x1f", LoginThrottleScopeName(scope), "\x1f",
      per_account ? reservation.account : "", "\x1f",
      scope == LoginThrottleScope::kAccount ? "" : reservation.network);
  audit_writer_->EnqueueSummarized(summary_key, [&] {
    storage::PendingAuditEvent pending;
    if (per_account) {
      pending.tenant_slug = std::string(tenant_slug.substr(0, 63));
    }
    storage::AuditEvent& event = pending.event;
    event.action = "portal.login.failed";
    event.category = "authentication";
    event.actor_type = "anonymous";
    event.outcome = "failure";
    event.suspicious = true;
    event.ip_address = info.ip_address;
    event.user_agent = info.user_agent;
    event.request_id = info.request_id;
    JsonObject meta;
    if (per_account) meta.Add("email", AuditEmail(email));
    meta.Add("reason", "throttled");
    meta.Add("throttle", std::string(LoginThrottleScopeName(scope)));
    if (scope != LoginThrottleScope::kAccount) {
      meta.Add("network", reservation.network);
    }
    event.metadata_json = meta.Build();
    return pending;
  });
}

absl::StatusOr<Principal> PortalService::Authenticate(
    absl::string_view session_token, absl::string_view tenant_slug,
    bool csrf_required, std::optional<absl::string_view> csrf_token) {
  if (!absl::StartsWith(session_token, kSessionTokenPrefix) ||
      !IsTokenText(session_token.substr(kSessionTokenPrefix.size()),
                   kTokenChars)) {
    return InvalidSession();
  }
  absl::StatusOr<storage::PortalSessionRecord> record = store_->TouchSession(
      core::Sha256(session_token), options_.idle_ttl, options_.touch_every);
  if (absl::IsNotFound(record.status())) return InvalidSession();
  if (!record.ok()) {
    return absl::UnavailableError("cannot check the session right now");
  }
  // A session authorizes its own tenant only (no hint that others exist).
  if (record->tenant_slug != tenant_slug) return InvalidSession();
  if (csrf_required) {
    if (!csrf_token.has_value() || csrf_token->empty() ||
        !core::ConstantTimeEquals(core::Sha256(*csrf_token),
                                  record->csrf_sha256)) {
      return BadCsrf();
    }
  }
  Principal principal;
  principal.kind = Principal::Kind::kSession;
  principal.tenant_id = record->tenant_id;
  principal.tenant_slug = record->tenant_slug;
  principal.user_id = record->user_id;
  principal.user_email = record->email;
  principal.scopes = core::AllScopes();
  return principal;
}

absl::Status PortalService::Logout(const Principal& caller,
                                   absl::string_view session_token,
                                   const RequestInfo& info) {
  storage::AuditEvent event =
      PortalEvent("portal.logout", caller.user_id, info);
  absl::Status st = store_->DeleteSession(core::Sha256(session_token), &event);
  if (!st.ok()) return absl::UnavailableError("cannot end the session now");
  return absl::OkStatus();
}

absl::StatusOr<std::string> PortalService::SetAdmin(
    absl::string_view tenant_slug, absl::string_view email,
    absl::string_view password, const RequestInfo& info) {
  if (absl::Status st = ValidateEmail("email", email); !st.ok()) {
    return WithErrorKind(st, ErrorKind::kInvalidField);
  }
  if (absl::Status st = core::ValidatePassword(password); !st.ok()) {
    return WithErrorKind(st, ErrorKind::kInvalidField);
  }
  absl::StatusOr<std::string> hash =
      core::HashPassword(password, options_.scrypt);
  if (!hash.ok()) return hash.status();
  absl::StatusOr<std::string> random = core::RandomBase62(kUserIdRandomChars);
  if (!random.ok()) return random.status();
  storage::AuditEvent event;
  event.action = "portal.admin.password_set";
  event.category = "user_management";
  event.actor_type = "system";
  event.actor_id = "operator";
  event.ip_address = info.ip_address;
  event.user_agent = info.user_agent;
  event.request_id = info.request_id;
  event.metadata_json = JsonObject().Add("email", std::string(email)).Build();
  absl::StatusOr<std::string> user_id = store_->UpsertAdmin(
      tenant_slug, email, absl::StrCat("usr_", *random), *hash, event);
  if (absl::IsNotFound(user_id.status())) {
    return WithErrorKind(absl::NotFoundError("tenant not found"),
                         ErrorKind::kNotFound);
  }
  return user_id;
}

}  // namespace lumo::service
