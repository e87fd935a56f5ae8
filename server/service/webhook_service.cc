#include "server/service/webhook_service.h"

#include <algorithm>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "server/core/address_rules.h"
#include "server/core/crypto.h"
#include "server/core/key_format.h"
#include "server/core/validation.h"
#include "server/core/webhook_crypto.h"
#include "server/service/audit_json.h"
#include "server/service/client_service.h"
#include "server/service/client_validation.h"
#include "server/service/errors.h"
#include "server/service/page_token.h"
#include "server/service/paging.h"
#include "server/storage/webhook_outbox.h"

namespace lumo::service {
namespace {

constexpr int kIdAttempts = 4;
// What the sealing key is derived for (docs/webhooks.md "The signing
// secret"); changing it makes every stored secret unreadable.
constexpr absl::string_view kSealingKeyInfo = "lumokeys webhook secret key v1";

absl::Status EndpointNotFound() {
  return WithErrorKind(absl::NotFoundError("webhook endpoint not found"),
                       ErrorKind::kNotFound);
}

// Store statuses get the documented REST codes.
absl::Status Annotate(absl::Status status) {
  if (absl::IsNotFound(status)) return EndpointNotFound();
  if (absl::IsInvalidArgument(status)) {
    return WithErrorKind(std::move(status), ErrorKind::kInvalidField);
  }
  if (absl::IsFailedPrecondition(status)) {
    return WithErrorKind(std::move(status), ErrorKind::kInvalidRequest);
  }
  return status;
}

// The host of a URL that passed ValidateRedirectUri, without brackets.
absl::string_view HostOf(absl::string_view url) {
  absl::string_view rest = url.substr(url.find("://") + 3);
  absl::string_view authority = rest.substr(0, rest.find_first_of("/?"));
  if (absl::StartsWith(authority, "[")) {
    return authority.substr(1, authority.find(']') - 1);
  }
  return authority.substr(0, authority.rfind(':'));
}

bool Allowed(const core::IpAddress& ip, const WebhookAddressPolicy& policy) {
  return std::any_of(policy.allowed_cidrs.begin(), policy.allowed_cidrs.end(),
                     [&](const core::Cidr& c) { return c.Contains(ip); });
}

// Event types: each known, at most kMaxWebhookEventTypes; deduplicated and
// in canonical order.
absl::Status CanonicalTypes(std::vector<std::string>& types) {
  if (types.size() > static_cast<size_t>(kMaxWebhookEventTypes)) {
    return InvalidField(
        "eventTypes",
        absl::StrCat("at most ", kMaxWebhookEventTypes, " types"));
  }
  for (const std::string& t : types) {
    if (!storage::IsWebhookEventType(t)) {
      return InvalidField("eventTypes",
                          "unknown event type (see docs/webhooks.md)");
    }
  }
  std::sort(types.begin(), types.end());
  types.erase(std::unique(types.begin(), types.end()), types.end());
  return absl::OkStatus();
}

absl::Status CheckDescription(absl::string_view description) {
  if (description.empty()) return absl::OkStatus();
  return AsInvalidField(core::ValidateName("description", description, 1,
                                           kMaxWebhookDescription));
}

storage::AuditEvent WebhookEvent(const Principal& caller,
                                 const RequestInfo& info,
                                 absl::string_view action,
                                 absl::string_view endpoint_id,
                                 std::string metadata) {
  storage::AuditEvent event = ActorEvent(caller, info);
  event.action = std::string(action);
  event.category = "webhooks";
  event.target_type = "webhook";
  event.target_id = std::string(endpoint_id);
  event.metadata_json = std::move(metadata);
  return event;
}

std::string Rfc3339(absl::Time t) {
  return absl::FormatTime("%Y-%m-%dT%H:%M:%E6SZ", t, absl::UTCTimeZone());
}

// A stored metadata text that is a JSON object, or "{}".
absl::string_view ObjectOrEmpty(absl::string_view json) {
  absl::string_view trimmed = absl::StripAsciiWhitespace(json);
  if (trimmed.size() >= 2 && trimmed.front() == '{' && trimmed.back() == '}') {
    return trimmed;
  }
  return "{}";
}

}  // namespace

absl::Status ValidateWebhookUrl(absl::string_view url,
                                const WebhookAddressPolicy& policy) {
  absl::Status syntax = ValidateRedirectUri("url", url);
  if (!syntax.ok()) return WithErrorKind(syntax, ErrorKind::kInvalidField);
  const bool http = absl::StartsWithIgnoreCase(url, "http://");
  if (http && !policy.allow_http) {
    return InvalidField("url",
                        "must use https (plain http to loopback needs the "
                        "operator's --webhook_allow_http)");
  }
  absl::StatusOr<core::IpAddress> literal = core::IpAddress::Parse(HostOf(url));
  if (!literal.ok()) return absl::OkStatus();  // a name: checked at send time
  const core::AddressClass cls = core::ClassifyAddress(*literal);
  if (cls != core::AddressClass::kPublic && !Allowed(*literal, policy)) {
    return InvalidField(
        "url", absl::StrCat("the host is a ", core::AddressClassName(cls),
                            " address, which deliveries may not reach"));
  }
  return absl::OkStatus();
}

std::string WebhookPayload(const storage::WebhookEventRecord& event,
                           absl::string_view endpoint_id) {
  std::string data;
  if (event.type == storage::kWebhookPingType) {
    data = JsonObject().Add("webhookId", endpoint_id).Build();
  } else {
    const storage::AuditEvent& a = event.audit;
    JsonObject actor;
    actor.Add("type", a.actor_type).Add("id", a.actor_id);
    std::string target = "null";
    if (!a.target_type.empty()) {
      JsonObject t;
      t.Add("type", a.target_type).Add("id", a.target_id);
      if (a.target_type == "api_key") {
        t.Add("prefix", core::DisplayPrefix(a.target_id));
      }
      target = t.Build();
    }
    data = JsonObject()
               .Add("action", a.action)
               .Add("category", a.category)
               .AddRaw("actor", actor.Build())
               .AddRaw("target", target)
               .Add("outcome", a.outcome)
               .Add("suspicious", a.suspicious)
               .Add("ipAddress", a.ip_address)
               .Add("userAgent", a.user_agent)
               .Add("requestId", a.request_id)
               .AddRaw("metadata", ObjectOrEmpty(a.metadata_json))
               .Build();
  }
  return JsonObject()
      .Add("id", event.event_id)
      .Add("type", event.type)
      .Add("createdAt", Rfc3339(event.created_at))
      .Add("tenant", event.tenant_slug)
      .AddRaw("data", data)
      .Build();
}

WebhookService::WebhookService(storage::WebhookStore* store,
                               std::shared_ptr<const core::PepperSet> peppers,
                               WebhookOptions options)
    : store_(store),
      peppers_(std::move(peppers)),
      options_(std::move(options)) {}

absl::StatusOr<std::string> WebhookService::SealingKey(
    int pepper_version) const {
  absl::StatusOr<core::Digest> key =
      peppers_->Mac(pepper_version, kSealingKeyInfo);
  if (!key.ok()) return key.status();
  return std::string(core::AsStringView(*key));
}

absl::StatusOr<std::string> WebhookService::NewSecret(
    absl::string_view endpoint_id, storage::SealedSecret* sealed) const {
  absl::StatusOr<std::string> random =
      core::RandomBase62(kWebhookSecretRandomLength);
  if (!random.ok()) return random.status();
  std::string secret = absl::StrCat(kWebhookSecretPrefix, *random);
  const int version = peppers_->current_version();
  absl::StatusOr<std::string> key = SealingKey(version);
  if (!key.ok()) return key.status();
  absl::StatusOr<std::string> box = core::Seal(*key, secret, endpoint_id);
  core::Cleanse(*key);
  if (!box.ok()) return box.status();
  sealed->sealed = *std::move(box);
  sealed->pepper_version = version;
  return secret;
}

absl::StatusOr<std::string> WebhookService::OpenSecret(
    const storage::SealedSecret& sealed, absl::string_view endpoint_id) const {
  absl::StatusOr<std::string> key = SealingKey(sealed.pepper_version);
  if (!key.ok()) return key.status();
  absl::StatusOr<std::string> secret =
      core::Open(*key, sealed.sealed, endpoint_id);
  core::Cleanse(*key);
  return secret;
}

absl::StatusOr<WebhookWithSecret> WebhookService::Create(
    const Principal& caller, const RequestInfo& info,
    const WebhookParams& params) {
  if (absl::Status s = ValidateWebhookUrl(params.url, options_.addresses);
      !s.ok()) {
    return s;
  }
  if (absl::Status s = CheckDescription(params.description); !s.ok()) return s;
  storage::NewWebhookEndpoint endpoint;
  endpoint.tenant_id = caller.tenant_id;
  endpoint.url = params.url;
  endpoint.description = params.description;
  endpoint.event_types = params.event_types;
  if (absl::Status s = CanonicalTypes(endpoint.event_types); !s.ok()) return s;
  endpoint.enabled = params.enabled.value_or(true);
  for (int attempt = 0;; ++attempt) {
    absl::StatusOr<std::string> random = core::RandomBase62(16);
    if (!random.ok()) return random.status();
    endpoint.id = absl::StrCat("whk_", *random);
    absl::StatusOr<std::string> secret =
        NewSecret(endpoint.id, &endpoint.secret);
    if (!secret.ok()) return secret.status();
    endpoint.secret_prefix = secret->substr(0, kWebhookSecretPrefix.size() + 4);
    const storage::AuditEvent event =
        WebhookEvent(caller, info, "webhook.created", endpoint.id,
                     JsonObject()
                         .Add("url", endpoint.url)
                         .Add("eventTypes", endpoint.event_types)
                         .Add("enabled", endpoint.enabled)
                         .Build());
    absl::StatusOr<storage::WebhookEndpointRecord> created =
        store_->CreateEndpoint(endpoint, options_.max_endpoints, event);
    if (absl::IsAlreadyExists(created.status()) && attempt + 1 < kIdAttempts) {
      continue;
    }
    if (!created.ok()) return Annotate(created.status());
    return WebhookWithSecret{*std::move(created), *std::move(secret)};
  }
}

absl::StatusOr<storage::WebhookEndpointRecord> WebhookService::Get(
    const Principal& caller, absl::string_view id) {
  absl::StatusOr<storage::WebhookEndpointRecord> got =
      store_->GetEndpoint(caller.tenant_id, id);
  if (!got.ok()) return Annotate(got.status());
  return got;
}

absl::StatusOr<storage::WebhookEndpointPage> WebhookService::List(
    const Principal& caller, std::optional<int32_t> page,
    std::optional<int32_t> limit) {
  absl::StatusOr<ListCommon> common = ParseListCommon(page, limit, "", "");
  if (!common.ok()) return common.status();
  absl::StatusOr<storage::WebhookEndpointPage> listed = store_->ListEndpoints(
      caller.tenant_id, common->paging.page, common->paging.limit);
  if (!listed.ok()) return Annotate(listed.status());
  return listed;
}

absl::StatusOr<storage::WebhookEndpointRecord> WebhookService::Update(
    const Principal& caller, const RequestInfo& info, absl::string_view id,
    const WebhookPatch& patch) {
  storage::WebhookEndpointUpdate update;
  JsonObject changed;
  if (patch.url.has_value()) {
    if (absl::Status s = ValidateWebhookUrl(*patch.url, options_.addresses);
        !s.ok()) {
      return s;
    }
    update.url = *patch.url;
    changed.Add("url", *patch.url);
  }
  if (patch.description.has_value()) {
    if (absl::Status s = CheckDescription(*patch.description); !s.ok()) {
      return s;
    }
    update.description = *patch.description;
    changed.Add("description", true);
  }
  if (patch.event_types.has_value()) {
    std::vector<std::string> types = *patch.event_types;
    if (absl::Status s = CanonicalTypes(types); !s.ok()) return s;
    changed.Add("eventTypes", types);
    update.event_types = std::move(types);
  }
  if (patch.enabled.has_value()) {
    update.enabled = *patch.enabled;
    changed.Add("enabled", *patch.enabled);
  }
  bool did_change = false;  // a change that changes nothing writes nothing
  absl::StatusOr<storage::WebhookEndpointRecord> updated =
      store_->UpdateEndpoint(
          caller.tenant_id, id, update,
          WebhookEvent(caller, info, "webhook.updated", id, changed.Build()),
          &did_change);
  if (!updated.ok()) return Annotate(updated.status());
  return updated;
}

absl::StatusOr<WebhookWithSecret> WebhookService::RotateSecret(
    const Principal& caller, const RequestInfo& info, absl::string_view id,
    std::optional<int64_t> overlap_seconds) {
  absl::Duration overlap = kDefaultSecretOverlap;
  if (overlap_seconds.has_value()) {
    if (*overlap_seconds < 0 ||
        *overlap_seconds > absl::ToInt64Seconds(kMaxSecretOverlap)) {
      return InvalidField(
          "gracePeriodSeconds",
          absl::StrCat("must be between 0 and ",
                       absl::ToInt64Seconds(kMaxSecretOverlap)));
    }
    overlap = absl::Seconds(*overlap_seconds);
  }
  if (!storage::IsWebhookEndpointId(id)) return EndpointNotFound();
  storage::SealedSecret sealed;
  absl::StatusOr<std::string> secret = NewSecret(id, &sealed);
  if (!secret.ok()) return secret.status();
  absl::StatusOr<storage::WebhookEndpointRecord> rotated = store_->RotateSecret(
      caller.tenant_id, id, sealed,
      secret->substr(0, kWebhookSecretPrefix.size() + 4), overlap,
      WebhookEvent(caller, info, "webhook.secret_rotated", id,
                   JsonObject()
                       .Add("gracePeriodSeconds", absl::ToInt64Seconds(overlap))
                       .Build()));
  if (!rotated.ok()) return Annotate(rotated.status());
  return WebhookWithSecret{*std::move(rotated), *std::move(secret)};
}

absl::Status WebhookService::Delete(const Principal& caller,
                                    const RequestInfo& info,
                                    absl::string_view id) {
  return Annotate(store_->DeleteEndpoint(
      caller.tenant_id, id,
      WebhookEvent(caller, info, "webhook.deleted", id, "{}")));
}

absl::StatusOr<storage::WebhookDeliveryRecord> WebhookService::Test(
    const Principal& caller, const RequestInfo& info, absl::string_view id) {
  absl::StatusOr<storage::WebhookDeliveryRecord> ping = store_->EnqueuePing(
      caller.tenant_id, id,
      WebhookEvent(caller, info, "webhook.tested", id, "{}"));
  if (!ping.ok()) return Annotate(ping.status());
  return ping;
}

namespace {

// What a delivery-log token is bound to: the tenant, the endpoint and the
// status filter.
QueryParts DeliveryListParts(int64_t tenant_id, absl::string_view id,
                             const storage::DeliveryQuery& q) {
  return {"webhook_deliveries", absl::StrCat(tenant_id), std::string(id),
          q.state.has_value() ? std::string(DeliveryStateName(*q.state))
                              : std::string("-")};
}

}  // namespace

absl::StatusOr<storage::DeliveryPage> WebhookService::ListDeliveries(
    const Principal& caller, absl::string_view id,
    const DeliveryListParams& params, storage::DeliveryQuery* applied) {
  absl::StatusOr<ListCommon> common =
      ParseListCommon(params.page, params.limit, "", "");
  if (!common.ok()) return common.status();
  const bool has_token = !params.page_token.empty();
  if (absl::Status s = CheckPagingForm(params.page, has_token); !s.ok()) {
    return s;
  }
  storage::DeliveryQuery query;
  query.page = common->paging.page;
  query.limit = common->paging.limit;
  query.count = CountFor(params.include_total, has_token);
  if (!params.status.empty()) {
    for (storage::DeliveryState s :
         {storage::DeliveryState::kPending, storage::DeliveryState::kDelivered,
          storage::DeliveryState::kFailed,
          storage::DeliveryState::kCancelled}) {
      if (storage::DeliveryStateName(s) == params.status) query.state = s;
    }
    if (!query.state.has_value()) {
      return InvalidField("status",
                          "must be pending, delivered, failed or cancelled");
    }
  }
  if (has_token) {
    absl::StatusOr<std::vector<PositionField>> position = DecodePageToken(
        params.page_token, DeliveryListParts(caller.tenant_id, id, query), 1);
    if (!position.ok()) return position.status();
    absl::StatusOr<int64_t> before = ParseIntField((*position)[0]);
    if (!before.ok()) return before.status();
    query.before_id = *before;
  }
  *applied = query;
  absl::StatusOr<storage::DeliveryPage> listed =
      store_->ListDeliveries(caller.tenant_id, id, query);
  if (!listed.ok()) return Annotate(listed.status());
  return listed;
}

std::string WebhookService::NextDeliveryPageToken(
    int64_t tenant_id, absl::string_view id,
    const storage::DeliveryQuery& applied, const storage::DeliveryPage& page) {
  if (!page.has_more || page.deliveries.empty()) return "";
  return EncodePageToken(
      DeliveryListParts(tenant_id, id, applied),
      {PositionField(absl::StrCat(page.deliveries.back().id))});
}

}  // namespace lumo::service
