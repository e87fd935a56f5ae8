#include "server/service/portal_service.h"

#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/cord.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "server/core/crypto.h"
#include "server/core/scopes.h"
#include "server/service/audit_json.h"
#include "server/service/key_service.h"
#include "server/service/registration_service.h"
#include "server/service/user_service.h"

namespace lumo::service {
namespace {

constexpr size_t kTokenChars = 43;
constexpr size_t kUserIdRandomChars = 16;

absl::Status InvalidCredentials() {
  return WithErrorCode(absl::UnauthenticatedError("invalid email or password"),
                       "invalid_token");
}

absl::Status InvalidSession() {
  return WithErrorCode(
      absl::UnauthenticatedError("missing, invalid or expired session"),
      "invalid_token");
}

absl::Status BadCsrf() {
  return WithErrorCode(
      absl::PermissionDeniedError("missing or invalid CSRF token"),
      "permission_denied");
}

absl::Status Throttled(absl::Duration wait) {
  const int64_t seconds = std::max<int64_t>(
      1, absl::ToInt64Seconds(absl::Ceil(wait, absl::Seconds(1))));
  absl::Status status = WithErrorCode(
      absl::ResourceExhaustedError("too many failed logins; try again later"),
      "rate_limit_exceeded");
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

// ------------------------------------------------------------ LoginThrottle

LoginThrottle::LoginThrottle(LoginThrottleOptions options)
    : options_(std::move(options)) {}

std::optional<absl::Duration> LoginThrottle::Blocked(absl::string_view key,
                                                     int limit) {
  const absl::Time now = options_.now();
  absl::MutexLock lock(&mu_);
  auto it = windows_.find(key);
  if (it == windows_.end()) return std::nullopt;
  const absl::Time end = it->second.start + options_.window;
  if (now >= end) {
    windows_.erase(it);
    return std::nullopt;
  }
  if (it->second.failures < limit) return std::nullopt;
  return end - now;
}

void LoginThrottle::RecordFailure(absl::string_view key) {
  const absl::Time now = options_.now();
  absl::MutexLock lock(&mu_);
  if (windows_.size() >= options_.max_tracked && !windows_.contains(key)) {
    // Forget windows that are over; if none is, the oldest one.
    for (auto it = windows_.begin(); it != windows_.end();) {
      if (now >= it->second.start + options_.window) {
        windows_.erase(it++);
      } else {
        ++it;
      }
    }
    if (windows_.size() >= options_.max_tracked) {
      auto oldest = windows_.begin();
      for (auto it = windows_.begin(); it != windows_.end(); ++it) {
        if (it->second.start < oldest->second.start) oldest = it;
      }
      windows_.erase(oldest);
    }
  }
  Window& w = windows_[key];
  if (w.failures == 0 || now >= w.start + options_.window) {
    w.start = now;
    w.failures = 0;
  }
  ++w.failures;
}

void LoginThrottle::Reset(absl::string_view key) {
  absl::MutexLock lock(&mu_);
  windows_.erase(key);
}

// ------------------------------------------------------------ PortalService

PortalService::PortalService(storage::PortalStore* store, PortalOptions options)
    : store_(store),
      options_(std::move(options)),
      throttle_(options_.throttle) {
  // Computed now, so the first unknown-user login is not the slow one.
  absl::StatusOr<std::string> random = core::RandomBase62(kTokenChars);
  absl::StatusOr<std::string> dummy = core::HashPassword(
      random.ok() ? *random : "unknown-account-password", options_.scrypt);
  dummy_hash_ = dummy.ok() ? *dummy : core::DummyPasswordHash();
}

absl::StatusOr<bool> PortalService::CheckPassword(absl::string_view password,
                                                  absl::string_view encoded) {
  {
    absl::MutexLock lock(&hash_mu_);
    auto can_run = [this]() ABSL_SHARED_LOCKS_REQUIRED(hash_mu_) {
      return hashes_running_ < options_.max_concurrent_hashes;
    };
    hash_mu_.Await(absl::Condition(&can_run));
    ++hashes_running_;
  }
  absl::StatusOr<bool> ok = core::VerifyPassword(password, encoded);
  {
    absl::MutexLock lock(&hash_mu_);
    --hashes_running_;
  }
  return ok;
}

absl::StatusOr<LoginResult> PortalService::Login(absl::string_view tenant_slug,
                                                 absl::string_view email,
                                                 absl::string_view password,
                                                 const RequestInfo& info) {
  // A form sent without email or password is a client error, not an
  // attempt at an account (says nothing about any account).
  if (email.empty() || password.empty()) {
    return WithErrorCode(
        absl::InvalidArgumentError("email and password are required"),
        "validation_error");
  }
  const std::string account =
      absl::StrCat("a:", tenant_slug, "/", absl::AsciiStrToLower(email));
  const std::string address = absl::StrCat("i:", info.ip_address);
  if (auto wait = throttle_.Blocked(
          account, options_.throttle.max_failures_per_account)) {
    RecordFailure(tenant_slug, email, "", "throttled", true, info);
    return Throttled(*wait);
  }
  if (auto wait = throttle_.Blocked(
          address, options_.throttle.max_failures_per_address)) {
    RecordFailure(tenant_slug, email, "", "throttled", true, info);
    return Throttled(*wait);
  }
  std::string failed_user_id;
  std::string reason = "unknown_user";
  auto fail = [&]() {
    throttle_.RecordFailure(account);
    throttle_.RecordFailure(address);
    RecordFailure(tenant_slug, email, failed_user_id, reason, false, info);
    return InvalidCredentials();
  };

  // Inputs that cannot name an admin still cost one scrypt run.
  const bool plausible = !tenant_slug.empty() && tenant_slug.size() <= 63 &&
                         !email.empty() && email.size() <= kMaxEmailLength &&
                         !password.empty() &&
                         password.size() <= core::kMaxPasswordBytes;
  absl::StatusOr<storage::PortalAdmin> admin =
      plausible ? store_->FindAdmin(tenant_slug, email)
                : absl::NotFoundError("implausible");
  if (!admin.ok() && !absl::IsNotFound(admin.status())) {
    return absl::UnavailableError("cannot check credentials right now");
  }
  const std::string& encoded = admin.ok() ? admin->password_hash : dummy_hash_;
  absl::StatusOr<bool> match = CheckPassword(
      password.size() <= core::kMaxPasswordBytes ? password : "", encoded);
  if (admin.ok()) {
    failed_user_id = admin->user_id;
    reason = admin->blocked ? "blocked" : "wrong_password";
  }
  if (!match.ok() && admin.ok()) {
    // A stored hash we cannot read: refuse, but like any other failure.
    reason = "unreadable_hash";
    return fail();
  }
  if (!admin.ok() || !match.ok() || !*match || admin->blocked) return fail();

  LoginResult result;
  absl::StatusOr<std::string> token = core::RandomBase62(kTokenChars);
  absl::StatusOr<std::string> csrf = core::RandomBase62(kTokenChars);
  if (!token.ok()) return token.status();
  if (!csrf.ok()) return csrf.status();
  result.session_token = absl::StrCat(kSessionTokenPrefix, *token);
  result.csrf_token = *std::move(csrf);
  core::Cleanse(*token);
  storage::AuditEvent event = PortalEvent("portal.login", admin->user_id, info);
  if (absl::Status st = store_->InsertSession(
          admin->tenant_id, admin->user_id, core::Sha256(result.session_token),
          core::Sha256(result.csrf_token), options_.absolute_ttl, event);
      !st.ok()) {
    return absl::UnavailableError("cannot create a session right now");
  }
  throttle_.Reset(account);
  result.user_id = admin->user_id;
  result.email = admin->email;
  result.idle_ttl = options_.idle_ttl;
  result.absolute_ttl = options_.absolute_ttl;
  return result;
}

void PortalService::RecordFailure(absl::string_view tenant_slug,
                                  absl::string_view email,
                                  absl::string_view user_id,
                                  absl::string_view reason, bool suspicious,
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
  event.suspicious = suspicious;
  event.ip_address = info.ip_address;
  event.user_agent = info.user_agent;
  event.request_id = info.request_id;
  // The email as typed (cut), never the password.
  event.metadata_json = JsonObject()
                            .Add("email", std::string(email.substr(0, 254)))
                            .Add("reason", std::string(reason))
                            .Build();
  audit_writer_->Enqueue(std::move(pending));
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
    return WithErrorCode(st, "validation_error");
  }
  if (absl::Status st = core::ValidatePassword(password); !st.ok()) {
    return WithErrorCode(st, "validation_error");
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
    return WithErrorCode(absl::NotFoundError("tenant not found"),
                         "resource_not_found");
  }
  return user_id;
}

}  // namespace lumo::service
