#include "server/rpc/services.h"

#include <chrono>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "google/protobuf/descriptor.h"
#include "server/core/crypto.h"
#include "server/rpc/call.h"
#include "server/rpc/convert.h"
#include "server/rpc/paging.h"
#include "server/rpc/status.h"
#include "server/service/limit_rules.h"

namespace lumo::rpc {
namespace {

using service::Principal;
using service::RequestInfo;

// The key a request asks for, field by field. Each request type that
// describes a key has its own overload; fields a type lacks keep their
// defaults (no expiry, no CIDRs, no rate limit).
template <typename Request>
service::CreateKeyParams NameAndScopesOf(const Request& request) {
  service::CreateKeyParams params;
  params.name = request.name();
  params.scopes.assign(request.scopes().begin(), request.scopes().end());
  return params;
}

// Sets params.expires_at from the request's expires_at when it has one;
// kInvalidField "expiresAt" when the timestamp is out of range.
template <typename Request>
absl::Status SetExpiry(const Request& request,
                       service::CreateKeyParams& params) {
  if (!request.has_expires_at()) return absl::OkStatus();
  absl::StatusOr<absl::Time> t = FromTimestamp(request.expires_at());
  if (!t.ok()) return service::InvalidField("expiresAt", "out of range");
  params.expires_at = *t;
  return absl::OkStatus();
}

// Named rate limits from their API form (validated by the service).
std::vector<storage::KeyRateLimit> RateLimitsOf(
    const google::protobuf::RepeatedPtrField<lumo::keys::v1::RateLimit>&
        limits) {
  std::vector<storage::KeyRateLimit> out;
  out.reserve(limits.size());
  for (const lumo::keys::v1::RateLimit& l : limits) {
    out.push_back({l.name(), l.limit(), absl::Seconds(l.duration_seconds())});
  }
  return out;
}

// A quota from its API form (validated by the service).
storage::KeyQuota QuotaOf(int64_t remaining,
                          const lumo::keys::v1::CreditRefill& refill) {
  storage::KeyQuota quota;
  quota.remaining = remaining;
  quota.refill_amount = refill.amount();
  quota.refill_interval = absl::Seconds(refill.interval_seconds());
  return quota;
}

absl::StatusOr<service::CreateKeyParams> CreateKeyParamsOf(
    const lumo::keys::v1::CreateApiKeyRequest& request) {
  service::CreateKeyParams params = NameAndScopesOf(request);
  if (absl::Status s = SetExpiry(request, params); !s.ok()) return s;
  params.allowed_cidrs.assign(request.allowed_cidrs().begin(),
                              request.allowed_cidrs().end());
  params.rate_limit_per_minute = request.rate_limit_per_minute();
  params.rate_limits = RateLimitsOf(request.rate_limits());
  params.external_id = request.external_id();
  params.metadata.insert(request.metadata().begin(), request.metadata().end());
  params.decoy = request.decoy();
  if (request.has_credits()) {
    params.credits =
        QuotaOf(request.credits().remaining(), request.credits().refill());
  }
  return params;
}

absl::StatusOr<service::UpdateKeyParams> UpdateKeyParamsOf(
    const lumo::keys::v1::UpdateApiKeyRequest& request) {
  service::UpdateKeyParams params;
  params.update_mask.assign(request.update_mask().paths().begin(),
                            request.update_mask().paths().end());
  params.name = request.name();
  params.scopes.assign(request.scopes().begin(), request.scopes().end());
  params.allowed_cidrs.assign(request.allowed_cidrs().begin(),
                              request.allowed_cidrs().end());
  params.rate_limit_per_minute = request.rate_limit_per_minute();
  params.rate_limits = RateLimitsOf(request.rate_limits());
  if (request.has_expires_at()) {
    absl::StatusOr<absl::Time> t = FromTimestamp(request.expires_at());
    if (!t.ok()) return service::InvalidField("expiresAt", "out of range");
    params.expires_at = *t;
  }
  params.external_id = request.external_id();
  params.metadata.insert(request.metadata().begin(), request.metadata().end());
  return params;
}

absl::StatusOr<service::CreateKeyParams> CreateKeyParamsOf(
    const lumo::ops::v1::CreateTenantKeyRequest& request) {
  service::CreateKeyParams params = NameAndScopesOf(request);
  if (absl::Status s = SetExpiry(request, params); !s.ok()) return s;
  return params;
}

service::CreateKeyParams CreateKeyParamsOf(
    const lumo::ops::v1::InitialKey& request) {
  return NameAndScopesOf(request);
}

service::ListKeysParams ListKeysParamsOf(
    const lumo::keys::v1::ListApiKeysRequest& request) {
  service::ListKeysParams params;
  if (request.has_page()) params.page = request.page();
  if (request.has_limit()) params.limit = request.limit();
  params.search = request.search();
  params.sort_by = request.sort_by();
  params.sort_dir = request.sort_dir();
  params.status = request.status();
  params.decoys = request.decoy();
  params.state = request.state();
  params.page_token = request.page_token();
  if (request.has_include_total())
    params.include_total = request.include_total();
  return params;
}

// The key with its states; the tenant's policy is read once per reply.
absl::Status ToProtoWithPolicy(service::KeyService& keys,
                               const storage::ApiKeyRecord& record,
                               lumo::keys::v1::ApiKey* out) {
  absl::StatusOr<storage::KeyPolicy> policy =
      keys.KeyPolicyOf(record.tenant_id);
  if (!policy.ok()) return policy.status();
  ToProto(record, *policy, out);
  return absl::OkStatus();
}

// The key with its states (under the policy the call was checked against,
// else the tenant's current one) and its full text.
absl::Status ToProtoWithSecret(service::KeyService& keys,
                               service::KeyWithSecret& created,
                               lumo::keys::v1::ApiKey* out) {
  if (created.policy.has_value()) {
    ToProto(created.record, *created.policy, out);
  } else if (absl::Status s = ToProtoWithPolicy(keys, created.record, out);
             !s.ok()) {
    core::Cleanse(created.full_key);
    return s;
  }
  out->set_key(created.full_key);
  core::Cleanse(created.full_key);
  return absl::OkStatus();
}

}  // namespace

// ---------------------------------------------------------------- KeyService

grpc::ServerUnaryReactor* KeyServiceImpl::ListApiKeys(
    grpc::CallbackServerContext* context,
    const lumo::keys::v1::ListApiKeysRequest* request,
    lumo::keys::v1::ListApiKeysResponse* response) {
  static const auto& method = Method("lumo.keys.v1.KeyService.ListApiKeys");
  return RunAuthenticated(
      *ctx_.auth, *ctx_.workers, context, method, request->tenant_slug(), true,
      [this, request, response](const Principal& caller,
                                const RequestInfo&) -> absl::Status {
        storage::ListKeysQuery query;
        absl::StatusOr<storage::KeyPage> page =
            ctx_.keys->ListKeys(caller, ListKeysParamsOf(*request), &query);
        if (!page.ok()) return page.status();
        absl::StatusOr<storage::KeyPolicy> policy =
            ctx_.keys->KeyPolicyOf(caller.tenant_id);
        if (!policy.ok()) return policy.status();
        for (const storage::ApiKeyRecord& record : page->keys) {
          ToProto(record, *policy, response->add_data());
        }
        FillPageMeta(
            KeysetPageMeta{page->total, page->total_kind, query.page,
                           query.after.has_value(), query.limit, page->has_more,
                           service::KeyService::NextPageToken(caller.tenant_id,
                                                              query, *page)},
            response->mutable_meta());
        return absl::OkStatus();
      });
}

grpc::ServerUnaryReactor* KeyServiceImpl::CreateApiKey(
    grpc::CallbackServerContext* context,
    const lumo::keys::v1::CreateApiKeyRequest* request,
    lumo::keys::v1::ApiKey* response) {
  static const auto& method = Method("lumo.keys.v1.KeyService.CreateApiKey");
  return RunAuthenticated(
      *ctx_.auth, *ctx_.workers, context, method, request->tenant_slug(), true,
      [this, request, response](const Principal& caller,
                                const RequestInfo& info) -> absl::Status {
        absl::StatusOr<service::CreateKeyParams> params =
            CreateKeyParamsOf(*request);
        if (!params.ok()) return params.status();
        absl::StatusOr<service::KeyWithSecret> created =
            ctx_.keys->CreateKey(caller, info, *params);
        if (!created.ok()) return created.status();
        return ToProtoWithSecret(*ctx_.keys, *created, response);
      });
}

grpc::ServerUnaryReactor* KeyServiceImpl::GetApiKey(
    grpc::CallbackServerContext* context,
    const lumo::keys::v1::GetApiKeyRequest* request,
    lumo::keys::v1::ApiKey* response) {
  static const auto& method = Method("lumo.keys.v1.KeyService.GetApiKey");
  return RunAuthenticated(
      *ctx_.auth, *ctx_.workers, context, method, request->tenant_slug(), true,
      [this, request, response](const Principal& caller,
                                const RequestInfo&) -> absl::Status {
        absl::StatusOr<storage::ApiKeyRecord> record =
            ctx_.keys->GetKey(caller, request->id());
        if (!record.ok()) return record.status();
        if (absl::Status s = ToProtoWithPolicy(*ctx_.keys, *record, response);
            !s.ok()) {
          return s;
        }
        if (ctx_.audit == nullptr) return absl::OkStatus();
        absl::StatusOr<std::vector<storage::PreviousSecretUser>> users =
            ctx_.audit->PreviousSecretUsers(caller, *record);
        if (!users.ok()) return users.status();
        for (const storage::PreviousSecretUser& u : *users) {
          lumo::keys::v1::PreviousSecretUser* out =
              response->add_previous_secret_users();
          out->set_ip_address(u.ip_address);
          out->set_user_agent(u.user_agent);
          ToTimestamp(u.last_seen_at, out->mutable_last_seen_at());
          out->set_count(u.count);
        }
        return absl::OkStatus();
      });
}

grpc::ServerUnaryReactor* KeyServiceImpl::RotateApiKey(
    grpc::CallbackServerContext* context,
    const lumo::keys::v1::RotateApiKeyRequest* request,
    lumo::keys::v1::ApiKey* response) {
  static const auto& method = Method("lumo.keys.v1.KeyService.RotateApiKey");
  return RunAuthenticated(
      *ctx_.auth, *ctx_.workers, context, method, request->tenant_slug(), true,
      [this, request, response](const Principal& caller,
                                const RequestInfo& info) -> absl::Status {
        std::optional<absl::Time> expires_at;
        if (request->has_expires_at()) {
          absl::StatusOr<absl::Time> t = FromTimestamp(request->expires_at());
          if (!t.ok())
            return service::InvalidField("expiresAt", "out of range");
          expires_at = *t;
        }
        absl::StatusOr<service::KeyWithSecret> rotated =
            ctx_.keys->RotateKey(caller, info, request->id(),
                                 request->grace_period_seconds(), expires_at);
        if (!rotated.ok()) return rotated.status();
        return ToProtoWithSecret(*ctx_.keys, *rotated, response);
      });
}

grpc::ServerUnaryReactor* KeyServiceImpl::RevokeApiKey(
    grpc::CallbackServerContext* context,
    const lumo::keys::v1::RevokeApiKeyRequest* request,
    lumo::keys::v1::ApiKey* response) {
  static const auto& method = Method("lumo.keys.v1.KeyService.RevokeApiKey");
  return RunAuthenticated(
      *ctx_.auth, *ctx_.workers, context, method, request->tenant_slug(), true,
      [this, request, response](const Principal& caller,
                                const RequestInfo& info) -> absl::Status {
        absl::StatusOr<storage::ApiKeyRecord> record =
            ctx_.keys->RevokeKey(caller, info, request->id());
        if (!record.ok()) return record.status();
        return ToProtoWithPolicy(*ctx_.keys, *record, response);
      });
}

grpc::ServerUnaryReactor* KeyServiceImpl::UpdateApiKey(
    grpc::CallbackServerContext* context,
    const lumo::keys::v1::UpdateApiKeyRequest* request,
    lumo::keys::v1::ApiKey* response) {
  static const auto& method = Method("lumo.keys.v1.KeyService.UpdateApiKey");
  return RunAuthenticated(
      *ctx_.auth, *ctx_.workers, context, method, request->tenant_slug(), true,
      [this, request, response](const Principal& caller,
                                const RequestInfo& info) -> absl::Status {
        absl::StatusOr<service::UpdateKeyParams> params =
            UpdateKeyParamsOf(*request);
        if (!params.ok()) return params.status();
        absl::StatusOr<storage::ApiKeyRecord> record =
            ctx_.keys->UpdateKey(caller, info, request->id(), *params);
        if (!record.ok()) return record.status();
        return ToProtoWithPolicy(*ctx_.keys, *record, response);
      });
}

grpc::ServerUnaryReactor* KeyServiceImpl::SetDisabled(
    grpc::CallbackServerContext* context,
    const google::protobuf::MethodDescriptor& method,
    const lumo::keys::v1::SetApiKeyDisabledRequest* request,
    lumo::keys::v1::ApiKey* response, bool disabled) {
  return RunAuthenticated(
      *ctx_.auth, *ctx_.workers, context, method, request->tenant_slug(), true,
      [this, request, response, disabled](
          const Principal& caller, const RequestInfo& info) -> absl::Status {
        absl::StatusOr<storage::ApiKeyRecord> record =
            ctx_.keys->SetKeyDisabled(caller, info, request->id(), disabled);
        if (!record.ok()) return record.status();
        return ToProtoWithPolicy(*ctx_.keys, *record, response);
      });
}

grpc::ServerUnaryReactor* KeyServiceImpl::DisableApiKey(
    grpc::CallbackServerContext* context,
    const lumo::keys::v1::SetApiKeyDisabledRequest* request,
    lumo::keys::v1::ApiKey* response) {
  static const auto& method = Method("lumo.keys.v1.KeyService.DisableApiKey");
  return SetDisabled(context, method, request, response, true);
}

grpc::ServerUnaryReactor* KeyServiceImpl::EnableApiKey(
    grpc::CallbackServerContext* context,
    const lumo::keys::v1::SetApiKeyDisabledRequest* request,
    lumo::keys::v1::ApiKey* response) {
  static const auto& method = Method("lumo.keys.v1.KeyService.EnableApiKey");
  return SetDisabled(context, method, request, response, false);
}

grpc::ServerUnaryReactor* KeyServiceImpl::DeleteApiKey(
    grpc::CallbackServerContext* context,
    const lumo::keys::v1::DeleteApiKeyRequest* request,
    google::protobuf::Empty* /*response*/) {
  static const auto& method = Method("lumo.keys.v1.KeyService.DeleteApiKey");
  return RunAuthenticated(
      *ctx_.auth, *ctx_.workers, context, method, request->tenant_slug(), true,
      [this, request](const Principal& caller,
                      const RequestInfo& info) -> absl::Status {
        return ctx_.keys->DeleteKey(caller, info, request->id());
      });
}

namespace {

void CreditsToProto(absl::string_view id, const service::CreditBalance& balance,
                    lumo::keys::v1::ApiKeyCredits* out) {
  out->set_id(std::string(id));
  out->set_has_quota(balance.has_quota);
  if (!balance.has_quota) return;
  out->set_remaining(balance.state.remaining);
  if (balance.state.refill.has_value()) {
    out->mutable_refill()->set_amount(balance.state.refill->amount);
    out->mutable_refill()->set_interval_seconds(static_cast<int32_t>(
        absl::ToInt64Seconds(balance.state.refill->interval)));
  }
  if (balance.state.next_refill.has_value()) {
    ToTimestamp(*balance.state.next_refill, out->mutable_next_refill());
  }
}

}  // namespace

grpc::ServerUnaryReactor* KeyServiceImpl::GetApiKeyCredits(
    grpc::CallbackServerContext* context,
    const lumo::keys::v1::GetApiKeyCreditsRequest* request,
    lumo::keys::v1::ApiKeyCredits* response) {
  static const auto& method =
      Method("lumo.keys.v1.KeyService.GetApiKeyCredits");
  return RunAuthenticated(
      *ctx_.auth, *ctx_.workers, context, method, request->tenant_slug(), true,
      [this, request, response](const Principal& caller,
                                const RequestInfo&) -> absl::Status {
        if (ctx_.credits == nullptr) {
          return absl::UnimplementedError("no credits API in this server");
        }
        absl::StatusOr<service::CreditBalance> balance =
            ctx_.credits->Get(caller, request->id());
        if (!balance.ok()) return balance.status();
        CreditsToProto(request->id(), *balance, response);
        return absl::OkStatus();
      });
}

grpc::ServerUnaryReactor* KeyServiceImpl::UpdateApiKeyCredits(
    grpc::CallbackServerContext* context,
    const lumo::keys::v1::UpdateApiKeyCreditsRequest* request,
    lumo::keys::v1::ApiKeyCredits* response) {
  static const auto& method =
      Method("lumo.keys.v1.KeyService.UpdateApiKeyCredits");
  return RunAuthenticated(
      *ctx_.auth, *ctx_.workers, context, method, request->tenant_slug(), true,
      [this, request, response](const Principal& caller,
                                const RequestInfo&) -> absl::Status {
        using Op = lumo::keys::v1::UpdateApiKeyCreditsRequest;
        service::CreditChange change;
        switch (request->op()) {
          case Op::SET:
            change.op = service::CreditOp::kSet;
            break;
          case Op::ADD:
            change.op = service::CreditOp::kAdd;
            break;
          case Op::REMOVE:
            change.op = service::CreditOp::kRemove;
            break;
          default:
            change.op = service::CreditOp::kUnspecified;
        }
        change.value = request->value();
        change.refill_amount = request->refill().amount();
        change.refill_interval =
            absl::Seconds(request->refill().interval_seconds());
        if (ctx_.credits == nullptr) {
          return absl::UnimplementedError("no credits API in this server");
        }
        absl::StatusOr<service::CreditBalance> balance =
            ctx_.credits->Update(caller, request->id(), change);
        if (!balance.ok()) return balance.status();
        CreditsToProto(request->id(), *balance, response);
        return absl::OkStatus();
      });
}

grpc::ServerUnaryReactor* KeyServiceImpl::GetIdentityLimits(
    grpc::CallbackServerContext* context,
    const lumo::keys::v1::GetIdentityLimitsRequest* request,
    lumo::keys::v1::IdentityLimits* response) {
  static const auto& method =
      Method("lumo.keys.v1.KeyService.GetIdentityLimits");
  return RunAuthenticated(
      *ctx_.auth, *ctx_.workers, context, method, request->tenant_slug(), true,
      [this, request, response](const Principal& caller,
                                const RequestInfo&) -> absl::Status {
        if (ctx_.identity_limits == nullptr) {
          return absl::UnimplementedError("no identity limits in this server");
        }
        absl::StatusOr<std::vector<storage::KeyRateLimit>> limits =
            ctx_.identity_limits->Get(caller, request->external_id());
        if (!limits.ok()) return limits.status();
        response->set_external_id(request->external_id());
        AddRateLimits(*limits, response->mutable_rate_limits());
        return absl::OkStatus();
      });
}

grpc::ServerUnaryReactor* KeyServiceImpl::SetIdentityLimits(
    grpc::CallbackServerContext* context,
    const lumo::keys::v1::SetIdentityLimitsRequest* request,
    lumo::keys::v1::IdentityLimits* response) {
  static const auto& method =
      Method("lumo.keys.v1.KeyService.SetIdentityLimits");
  return RunAuthenticated(
      *ctx_.auth, *ctx_.workers, context, method, request->tenant_slug(), true,
      [this, request, response](const Principal& caller,
                                const RequestInfo& info) -> absl::Status {
        if (ctx_.identity_limits == nullptr) {
          return absl::UnimplementedError("no identity limits in this server");
        }
        absl::StatusOr<std::vector<storage::KeyRateLimit>> limits =
            ctx_.identity_limits->Set(caller, info, request->external_id(),
                                      RateLimitsOf(request->rate_limits()));
        if (!limits.ok()) return limits.status();
        response->set_external_id(request->external_id());
        AddRateLimits(*limits, response->mutable_rate_limits());
        return absl::OkStatus();
      });
}

// --------------------------------------------------------------- AuthService

namespace {

lumo::auth::v1::VerifyReason ToProtoReason(service::VerifyReason reason) {
  using R = service::VerifyReason;
  switch (reason) {
    case R::kValid:
      return lumo::auth::v1::VALID;
    case R::kMalformed:
      return lumo::auth::v1::MALFORMED;
    case R::kNotFound:
      return lumo::auth::v1::NOT_FOUND;
    case R::kRevoked:
      return lumo::auth::v1::REVOKED;
    case R::kExpired:
      return lumo::auth::v1::EXPIRED;
    case R::kRotated:
      return lumo::auth::v1::ROTATED;
    case R::kWrongTenant:
      return lumo::auth::v1::WRONG_TENANT;
    case R::kInsufficientScope:
      return lumo::auth::v1::INSUFFICIENT_SCOPE;
    case R::kIpNotAllowed:
      return lumo::auth::v1::IP_NOT_ALLOWED;
    case R::kRateLimited:
      return lumo::auth::v1::RATE_LIMITED;
    case R::kDisabled:
      return lumo::auth::v1::DISABLED;
    case R::kUsageExceeded:
      return lumo::auth::v1::USAGE_EXCEEDED;
  }
  return lumo::auth::v1::VERIFY_REASON_UNSPECIFIED;
}

void FillVerifyResponse(const service::VerifyOutcome& outcome,
                        lumo::auth::v1::VerifyApiKeyResponse* response) {
  response->set_valid(outcome.reason == service::VerifyReason::kValid);
  response->set_reason(ToProtoReason(outcome.reason));
  if (outcome.secret_matched && !outcome.tenant_slug.empty()) {
    lumo::auth::v1::KeyMetadata* key = response->mutable_key();
    key->set_id(outcome.key_id);
    key->set_tenant_slug(outcome.tenant_slug);
    key->set_name(outcome.name);
    for (const std::string& s : outcome.scopes) key->add_scopes(s);
    if (outcome.expires_at)
      ToTimestamp(*outcome.expires_at, key->mutable_expires_at());
    key->set_external_id(outcome.external_id);
    key->mutable_metadata()->insert(outcome.metadata.begin(),
                                    outcome.metadata.end());
    if (outcome.states_computed) ToProto(outcome.states, key->mutable_state());
  }
  if (outcome.rate_limit > 0 &&
      (outcome.reason == service::VerifyReason::kValid ||
       outcome.reason == service::VerifyReason::kRateLimited)) {
    lumo::auth::v1::RateLimitState* limit = response->mutable_rate_limit();
    limit->set_name(outcome.rate_limit_name);
    limit->set_limit(outcome.rate_limit);
    limit->set_remaining(outcome.rate_remaining);
    ToTimestamp(outcome.rate_reset, limit->mutable_reset());
  }
  if (outcome.credits_remaining.has_value()) {
    lumo::auth::v1::CreditsState* credits = response->mutable_credits();
    credits->set_remaining(*outcome.credits_remaining);
    if (outcome.credits_reset.has_value()) {
      ToTimestamp(*outcome.credits_reset, credits->mutable_next_refill());
    }
  }
}

}  // namespace

grpc::ServerUnaryReactor* AuthServiceImpl::VerifyApiKey(
    grpc::CallbackServerContext* context,
    const lumo::auth::v1::VerifyApiKeyRequest* request,
    lumo::auth::v1::VerifyApiKeyResponse* response) {
  static const auto& method = Method("lumo.auth.v1.AuthService.VerifyApiKey");
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  RequestInfo info = ctx_.auth->DescribeRequest(*context);
  // Only service tokens are admitted here, so this never touches the store.
  absl::StatusOr<Principal> caller =
      ctx_.auth->Authenticate(*context, method, "", info);
  if (!caller.ok()) {
    Finish(context, reactor, info, caller.status());
    return reactor;
  }
  service::VerifyParams params;
  params.tenant_slug = request->tenant_slug();
  params.required_scopes.assign(request->required_scopes().begin(),
                                request->required_scopes().end());
  params.client_ip = request->client_ip();
  if (request->has_cost()) {
    if (absl::Status s = service::ValidateCost(request->cost()); !s.ok()) {
      Finish(context, reactor, info, s);
      return reactor;
    }
    params.cost = request->cost();
  }
  // When the caller names the end client's
  // address, failures are throttled per address and per key id; a
  // throttled attempt gets RESOURCE_EXHAUSTED with `retry-after` instead
  // of a response. Refused addresses are not verified and not audited.
  // Without an address nothing is throttled: the calling service answers
  // for its own clients.
  service::FailureThrottle* throttle =
      params.client_ip.empty() ? nullptr : ctx_.auth->failure_throttle();
  if (throttle != nullptr) {
    if (std::optional<absl::Duration> wait =
            throttle->CheckAddress(params.client_ip)) {
      service::VerifyOutcome refused;
      refused.retry_after = *wait;
      Finish(context, reactor, info, service::FailureThrottle::ThrottledError(),
             &refused);
      return reactor;
    }
  }
  // Audits `outcome`, then answers it (or its throttling).
  auto reply = [this, context, reactor, response, info, throttle](
                   const service::VerifyParams& params,
                   service::VerifyOutcome outcome) {
    if (service::UsageAuditor* usage = ctx_.auth->usage_auditor()) {
      usage->RecordVerify(info, params.tenant_slug, params.client_ip, outcome);
    }
    if (throttle != nullptr) {
      if (std::optional<absl::Duration> wait =
              throttle->AfterVerify(params.client_ip, outcome)) {
        service::VerifyOutcome refused;
        refused.retry_after = *wait;
        Finish(context, reactor, info,
               service::FailureThrottle::ThrottledError(), &refused);
        return;
      }
    }
    FillVerifyResponse(outcome, response);
    Finish(context, reactor, info, absl::OkStatus());
  };
  if (std::optional<service::VerifyOutcome> outcome =
          ctx_.verifier->VerifyCached(request->key(), params)) {
    // Internal verification is a use of the key: enqueue only.
    reply(params, *std::move(outcome));
    return reactor;
  }
  auto task = [this, context, reactor, request, info, reply,
               params = std::move(params)] {
    storage::ScopedCallDeadline call_deadline(CallDeadline(*context));
    absl::StatusOr<service::VerifyOutcome> outcome =
        ctx_.verifier->Verify(request->key(), params);
    if (!outcome.ok()) {
      // Fail closed: nothing unproven is accepted.
      Finish(context, reactor, info,
             absl::UnavailableError("key store unavailable"));
      return;
    }
    reply(params, *std::move(outcome));
  };
  if (!ctx_.workers->Submit(std::move(task))) {
    Finish(context, reactor, info, ServerBusy());
  }
  return reactor;
}

// ----------------------------------------------------------- OperatorService

grpc::ServerUnaryReactor* OperatorServiceImpl::CreateTenant(
    grpc::CallbackServerContext* context,
    const lumo::ops::v1::CreateTenantRequest* request,
    lumo::ops::v1::CreateTenantResponse* response) {
  static const auto& method =
      Method("lumo.ops.v1.OperatorService.CreateTenant");
  return RunAuthenticated(
      *ctx_.auth, *ctx_.workers, context, method, "", false,
      [this, request, response](const Principal&,
                                const RequestInfo& info) -> absl::Status {
        std::optional<service::CreateKeyParams> initial;
        if (request->has_initial_key()) {
          initial = CreateKeyParamsOf(request->initial_key());
        }
        absl::StatusOr<service::KeyService::TenantWithKey> created =
            ctx_.keys->CreateTenant(info, request->slug(), request->name(),
                                    initial);
        if (!created.ok()) return created.status();
        ToProto(created->tenant, response->mutable_tenant());
        if (created->initial_key) {
          if (absl::Status st =
                  ToProtoWithSecret(*ctx_.keys, *created->initial_key,
                                    response->mutable_initial_key());
              !st.ok()) {
            return st;
          }
        }
        return absl::OkStatus();
      });
}

grpc::ServerUnaryReactor* OperatorServiceImpl::GetTenant(
    grpc::CallbackServerContext* context,
    const lumo::ops::v1::GetTenantRequest* request,
    lumo::ops::v1::Tenant* response) {
  static const auto& method = Method("lumo.ops.v1.OperatorService.GetTenant");
  return RunAuthenticated(
      *ctx_.auth, *ctx_.workers, context, method, "", false,
      [this, request, response](const Principal&,
                                const RequestInfo&) -> absl::Status {
        absl::StatusOr<storage::Tenant> tenant =
            ctx_.keys->GetTenant(request->slug());
        if (!tenant.ok()) return tenant.status();
        ToProto(*tenant, response);
        return absl::OkStatus();
      });
}

grpc::ServerUnaryReactor* OperatorServiceImpl::CreateTenantKey(
    grpc::CallbackServerContext* context,
    const lumo::ops::v1::CreateTenantKeyRequest* request,
    lumo::keys::v1::ApiKey* response) {
  static const auto& method =
      Method("lumo.ops.v1.OperatorService.CreateTenantKey");
  return RunAuthenticated(
      *ctx_.auth, *ctx_.workers, context, method, "", false,
      [this, request, response](const Principal&,
                                const RequestInfo& info) -> absl::Status {
        absl::StatusOr<service::CreateKeyParams> params =
            CreateKeyParamsOf(*request);
        if (!params.ok()) return params.status();
        absl::StatusOr<service::KeyWithSecret> created =
            ctx_.keys->CreateTenantKey(info, request->tenant_slug(), *params);
        if (!created.ok()) return created.status();
        return ToProtoWithSecret(*ctx_.keys, *created, response);
      });
}

grpc::ServerUnaryReactor* OperatorServiceImpl::VerifyAuditChain(
    grpc::CallbackServerContext* context,
    const lumo::ops::v1::VerifyAuditChainRequest* request,
    lumo::ops::v1::VerifyAuditChainResponse* response) {
  static const auto& method =
      Method("lumo.ops.v1.OperatorService.VerifyAuditChain");
  return RunAuthenticated(
      *ctx_.auth, *ctx_.workers, context, method, "", false,
      [this, request, response](const Principal&,
                                const RequestInfo&) -> absl::Status {
        if (ctx_.audit == nullptr) {
          return absl::UnimplementedError("audit is not configured");
        }
        absl::StatusOr<storage::ChainVerification> result =
            ctx_.audit->VerifyChain(request->tenant_slug());
        if (!result.ok()) return result.status();
        response->set_ok(result->ok);
        response->set_rows_checked(result->rows_checked);
        response->set_first_broken_seq(result->broken_seq);
        response->set_first_broken_id(result->broken_id);
        response->set_reason(result->problem);
        response->set_last_seq(result->last_seq);
        response->set_lanes_checked(result->lanes_checked);
        response->set_first_broken_lane(result->broken_lane);
        return absl::OkStatus();
      });
}

}  // namespace lumo::rpc
