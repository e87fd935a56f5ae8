#include "server/service/usage_auditor.h"

#include <optional>
#include <utility>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "server/service/audit_json.h"

namespace lumo::service {
namespace {

// "error" when the server failed the call, "failure" when the caller did.
const char* OutcomeOf(const absl::Status& status) {
  switch (status.code()) {
    case absl::StatusCode::kOk:
      return "success";
    case absl::StatusCode::kInternal:
    case absl::StatusCode::kUnknown:
    case absl::StatusCode::kDataLoss:
    case absl::StatusCode::kUnavailable:
    case absl::StatusCode::kDeadlineExceeded:
    case absl::StatusCode::kUnimplemented:
      return "error";
    default:
      return "failure";
  }
}

void AddHttp(JsonObject& meta, const RequestInfo& info) {
  if (!info.http_method.empty()) meta.Add("httpMethod", info.http_method);
  if (!info.http_route.empty()) meta.Add("httpRoute", info.http_route);
}

constexpr absl::string_view kVerifyRpc =
    "lumo.auth.v1.AuthService.VerifyApiKey";

const char* ChannelOf(absl::string_view rpc) {
  return rpc == kVerifyRpc ? storage::kUsageChannelVerify
                           : storage::kUsageChannelApi;
}

// True for the refusal reasons that are about a key (the verify reasons)
// or about a call that presented no usable key.
bool IsKeyUseRefusal(absl::string_view reason) {
  static constexpr absl::string_view kReasons[] = {"not_found",
                                                   "malformed",
                                                   "revoked",
                                                   "rotated",
                                                   "expired",
                                                   "disabled",
                                                   "wrong_tenant",
                                                   "ip_not_allowed",
                                                   "insufficient_scope",
                                                   "rate_limited",
                                                   "usage_exceeded",
                                                   "missing_credential",
                                                   "conflicting_credentials",
                                                   "unsupported_authorization"};
  for (absl::string_view r : kReasons) {
    if (r == reason) return true;
  }
  return false;
}

storage::AuditEvent BaseEvent(const RequestInfo& info) {
  storage::AuditEvent e;
  e.ip_address = info.ip_address;
  e.user_agent = info.user_agent;
  e.request_id = info.request_id;
  return e;
}

// A refused use of the key `outcome` names, filed in the key's tenant:
// actor and target the key, outcome `failure`; the caller adds metadata.
storage::PendingAuditEvent KeyRefusalEvent(const RequestInfo& info,
                                           const VerifyOutcome& outcome,
                                           absl::string_view action,
                                           absl::string_view category) {
  storage::PendingAuditEvent p;
  p.tenant_id = outcome.tenant_id;
  storage::AuditEvent& e = p.event = BaseEvent(info);
  e.action = std::string(action);
  e.category = std::string(category);
  e.actor_type = "api_key";
  e.actor_id = outcome.key_id;
  e.target_type = "api_key";
  e.target_id = outcome.key_id;
  e.outcome = "failure";
  return p;
}

// `api_key.used` for a call to `rpc` authenticated by `key_id` that ended
// with `status`; `previous_secret_of` as VerifyOutcome::previous_secret_of.
storage::PendingAuditEvent KeyUseEvent(
    int64_t tenant_id, absl::string_view key_id,
    std::optional<absl::Time> previous_secret_of, const RequestInfo& info,
    absl::string_view rpc, const absl::Status& status, bool rollups) {
  storage::PendingAuditEvent p;
  p.tenant_id = tenant_id;
  p.used_key_id = std::string(key_id);
  if (previous_secret_of.has_value()) {
    p.previous_secret_use =
        storage::PreviousSecretUse{std::string(key_id), *previous_secret_of, 1};
  }
  // The key authenticated: a valid use, whatever the call's own result.
  if (rollups) {
    p.usage = storage::UsageCount{std::string(key_id), ChannelOf(rpc),
                                  storage::kUsageOutcomeValid, 1};
  }
  storage::AuditEvent& e = p.event = BaseEvent(info);
  e.action = "api_key.used";
  e.category = "authentication";
  e.actor_type = "api_key";
  e.actor_id = std::string(key_id);
  e.outcome = OutcomeOf(status);
  JsonObject meta;
  meta.Add("rpc", rpc);
  AddHttp(meta, info);
  meta.Add("status", absl::StatusCodeToString(status.code()));
  if (previous_secret_of.has_value()) meta.Add("secret", "previous");
  e.metadata_json = meta.Build();
  return p;
}

}  // namespace

std::string ReasonSlug(VerifyReason reason) {
  return absl::AsciiStrToLower(VerifyReasonName(reason));
}

UsageAuditor::UsageAuditor(AuditWriter* writer, UsageAuditorOptions options)
    : writer_(writer), options_(options) {}

void UsageAuditor::RecordKeyUse(const Principal& caller,
                                const RequestInfo& info, absl::string_view rpc,
                                const absl::Status& status) {
  writer_->Enqueue(KeyUseEvent(caller.tenant_id, caller.key_id,
                               caller.key_previous_secret_of, info, rpc, status,
                               options_.rollups));
}

void UsageAuditor::RecordAuthFailure(const RequestInfo& info,
                                     absl::string_view rpc,
                                     absl::string_view tenant_slug,
                                     absl::string_view reason,
                                     const VerifyOutcome* outcome) {
  if (outcome != nullptr && outcome->decoy) {
    RecordDecoyUse(info, rpc, *outcome);
    return;
  }
  if (outcome != nullptr && outcome->report_usage_exceeded) {
    RecordUsageExceeded(info, rpc, *outcome);
  }
  storage::PendingAuditEvent p;
  // Another tenant's key id is that tenant's business: the failure is
  // recorded in the addressed tenant without it (docs/audit.md).
  const bool foreign_key = outcome != nullptr && outcome->other_tenant_key &&
                           outcome->tenant_id == 0;
  const std::string key_id =
      outcome != nullptr && !foreign_key ? outcome->key_id : "";
  p.tenant_id = outcome != nullptr ? outcome->tenant_id : 0;
  if (p.tenant_id == 0) p.tenant_slug = std::string(tenant_slug);
  storage::AuditEvent& e = p.event = BaseEvent(info);
  e.action = "auth.api_key.failed";
  const bool authorization = reason == "insufficient_scope" ||
                             reason == "ip_not_allowed" ||
                             reason == "principal_not_allowed";
  e.category = authorization ? "authorization" : "authentication";
  e.actor_type = "api_key";
  e.actor_id = key_id;
  if (!key_id.empty()) {
    e.target_type = "api_key";
    e.target_id = key_id;
  }
  e.outcome = "failure";
  std::vector<std::string> why;
  if (outcome != nullptr && outcome->known_dead) why.push_back("dead_key");
  if (outcome != nullptr && outcome->decoy_blocked) {
    why.push_back("decoy_block");
  }
  if (reason == "insufficient_scope") why.push_back("scope_denied");
  if (reason == "ip_not_allowed") why.push_back("ip_not_allowed");
  // A key over its rate limit or its quota is used too much, not guessed
  // at: no burst of failures.
  if (reason != "rate_limited" && reason != "usage_exceeded" &&
      CountFailure(key_id, info.ip_address)) {
    why.push_back("burst");
  }
  e.suspicious = !why.empty();
  JsonObject meta;
  meta.Add("rpc", rpc);
  AddHttp(meta, info);
  meta.Add("reason", reason);
  if (!tenant_slug.empty()) meta.Add("tenantSlug", tenant_slug);
  if (!why.empty()) meta.Add("suspiciousReasons", why);
  e.metadata_json = meta.Build();
  // Refusals of a key, or of a call to the key API without a usable key,
  // count, under the key when it is one of this tenant's (docs/usage.md
  // "Which key"); token and portal-session refusals are not key uses.
  if (options_.rollups && IsKeyUseRefusal(reason)) {
    // Filed under the key's own tenant (the secret matched), or under the
    // addressed tenant, which the key must then belong to.
    const bool attributed =
        outcome != nullptr && outcome->key_found &&
        (outcome->tenant_id != 0 ||
         (!outcome->other_tenant_key && !tenant_slug.empty()));
    p.usage = storage::UsageCount{attributed ? key_id : std::string(),
                                  ChannelOf(rpc), std::string(reason), 1};
  }
  writer_->Enqueue(p);
}

void UsageAuditor::RecordDecoyUse(const RequestInfo& info,
                                  absl::string_view rpc,
                                  const VerifyOutcome& outcome) {
  // The decoy's tenant, whichever tenant the call addressed: it is the one
  // that set the trap.
  storage::PendingAuditEvent p =
      KeyRefusalEvent(info, outcome, "api_key.decoy_used", "authentication");
  p.event.suspicious = true;
  JsonObject meta;
  meta.Add("severity", "critical");
  meta.Add("rpc", rpc);
  AddHttp(meta, info);
  meta.Add("suspiciousReasons", std::vector<std::string>{"decoy"});
  p.event.metadata_json = meta.Build();
  writer_->Enqueue(p);
}

void UsageAuditor::RecordUsageExceeded(const RequestInfo& info,
                                       absl::string_view rpc,
                                       const VerifyOutcome& outcome) {
  storage::PendingAuditEvent p =
      KeyRefusalEvent(info, outcome, "api_key.usage_exceeded", "api_keys");
  JsonObject meta;
  meta.Add("rpc", rpc);
  AddHttp(meta, info);
  meta.Add("remaining", outcome.credits_remaining.value_or(0));
  if (outcome.credits_reset.has_value()) {
    meta.Add("nextRefill", absl::ToUnixSeconds(*outcome.credits_reset));
  } else {
    meta.AddRaw("nextRefill", "null");
  }
  p.event.metadata_json = meta.Build();
  writer_->Enqueue(p);
}

void UsageAuditor::RecordVerify(const RequestInfo& info,
                                absl::string_view tenant_slug,
                                absl::string_view client_ip,
                                const VerifyOutcome& outcome) {
  auto end_client = [&info, client_ip] {
    RequestInfo copy = info;
    copy.ip_address = std::string(client_ip);
    return copy;
  };
  if (outcome.reason == VerifyReason::kValid) {
    // One summary per key, end-client address and calling agent per
    // window (docs/audit.md "Verification summaries"); the first call's
    // request id and the count are recorded. The event is built only when
    // a summary opens. Uses of a previous secret are summarized apart.
    const std::string summary_key = absl::StrCat(
        outcome.tenant_id, "\x1f", outcome.key_id, "\x1f", client_ip, "\x1f",
        info.user_agent,
        outcome.previous_secret_of.has_value() ? "\x1fprevious" : "");
    writer_->EnqueueSummarized(summary_key, [&] {
      return KeyUseEvent(outcome.tenant_id, outcome.key_id,
                         outcome.previous_secret_of, end_client(), kVerifyRpc,
                         absl::OkStatus(), options_.rollups);
    });
    return;
  }
  RecordAuthFailure(end_client(), kVerifyRpc, tenant_slug,
                    ReasonSlug(outcome.reason), &outcome);
}

bool UsageAuditor::CountFailure(absl::string_view key_id,
                                absl::string_view ip) {
  const int64_t window =
      absl::ToUnixSeconds(absl::Now()) /
      std::max<int64_t>(1, absl::ToInt64Seconds(options_.burst_window));
  absl::MutexLock lock(&mu_);
  if (window != window_) {
    window_ = window;
    failures_.clear();
  }
  bool burst = false;
  for (const std::string& k :
       {key_id.empty() ? std::string() : absl::StrCat("k:", key_id),
        ip.empty() ? std::string() : absl::StrCat("i:", ip)}) {
    if (k.empty()) continue;
    auto it = failures_.find(k);
    if (it == failures_.end()) {
      if (failures_.size() >= options_.burst_max_tracked) continue;
      it = failures_.emplace(k, 0).first;
    }
    if (++it->second >= options_.burst_threshold) burst = true;
  }
  return burst;
}

}  // namespace lumo::service
