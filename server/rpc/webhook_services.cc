#include "server/rpc/webhook_services.h"

#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "server/core/crypto.h"
#include "server/rpc/call.h"
#include "server/rpc/convert.h"
#include "server/rpc/paging.h"

namespace lumo::rpc {
namespace {

using lumo::webhooks::v1::Webhook;
using lumo::webhooks::v1::WebhookDelivery;
using service::Principal;
using service::RequestInfo;

void ToProto(const storage::WebhookEndpointRecord& r, Webhook* out) {
  out->set_id(r.id);
  out->set_url(r.url);
  out->set_description(r.description);
  for (const std::string& t : r.event_types) out->add_event_types(t);
  out->set_enabled(r.enabled);
  if (!r.disabled_reason.empty()) out->set_disabled_reason(r.disabled_reason);
  out->set_consecutive_failures(r.consecutive_failures);
  out->set_secret_prefix(r.secret_prefix);
  ToTimestamp(r.created_at, out->mutable_created_at());
  ToTimestamp(r.updated_at, out->mutable_updated_at());
  if (r.secret_rotated_at.has_value()) {
    ToTimestamp(*r.secret_rotated_at, out->mutable_secret_rotated_at());
  }
  if (r.previous_secret_valid_until.has_value()) {
    ToTimestamp(*r.previous_secret_valid_until,
                out->mutable_previous_secret_valid_until());
  }
}

// Moves the secret into the reply and wipes our copy.
void ToProtoWithSecret(service::WebhookWithSecret& w, Webhook* out) {
  ToProto(w.record, out);
  out->set_secret(w.secret);
  core::Cleanse(w.secret);
}

void ToProto(const storage::WebhookDeliveryRecord& d, WebhookDelivery* out) {
  out->set_id(absl::StrCat(d.id));
  out->set_event_id(d.event_id);
  out->set_event_type(d.event_type);
  out->set_status(std::string(storage::DeliveryStateName(d.state)));
  out->set_attempts(d.attempts);
  ToTimestamp(d.created_at, out->mutable_created_at());
  ToTimestamp(d.next_attempt_at, out->mutable_next_attempt_at());
  if (d.last_attempt_at.has_value()) {
    ToTimestamp(*d.last_attempt_at, out->mutable_last_attempt_at());
  }
  if (d.delivered_at.has_value()) {
    ToTimestamp(*d.delivered_at, out->mutable_delivered_at());
  }
  out->set_last_http_status(d.last_http_status);
  out->set_last_latency_ms(d.last_latency_ms);
  out->set_last_error(d.last_error);
}

}  // namespace

grpc::ServerUnaryReactor* WebhookServiceImpl::ListWebhooks(
    grpc::CallbackServerContext* context,
    const lumo::webhooks::v1::ListWebhooksRequest* request,
    lumo::webhooks::v1::ListWebhooksResponse* response) {
  static const auto& method =
      Method("lumo.webhooks.v1.WebhookService.ListWebhooks");
  return RunAuthenticated(
      *ctx_.auth, *ctx_.workers, context, method, request->tenant_slug(), true,
      [this, request, response](const Principal& caller,
                                const RequestInfo&) -> absl::Status {
        std::optional<int32_t> page, limit;
        if (request->has_page()) page = request->page();
        if (request->has_limit()) limit = request->limit();
        absl::StatusOr<storage::WebhookEndpointPage> listed =
            ctx_.webhooks->List(caller, page, limit);
        if (!listed.ok()) return listed.status();
        for (const storage::WebhookEndpointRecord& r : listed->endpoints) {
          ToProto(r, response->add_data());
        }
        FillPageMeta(listed->total, page.value_or(1), limit.value_or(25),
                     response->mutable_meta());
        return absl::OkStatus();
      });
}

grpc::ServerUnaryReactor* WebhookServiceImpl::CreateWebhook(
    grpc::CallbackServerContext* context,
    const lumo::webhooks::v1::CreateWebhookRequest* request,
    Webhook* response) {
  static const auto& method =
      Method("lumo.webhooks.v1.WebhookService.CreateWebhook");
  return RunAuthenticated(
      *ctx_.auth, *ctx_.workers, context, method, request->tenant_slug(), true,
      [this, request, response](const Principal& caller,
                                const RequestInfo& info) -> absl::Status {
        service::WebhookParams params;
        params.url = request->url();
        params.description = request->description();
        params.event_types.assign(request->event_types().begin(),
                                  request->event_types().end());
        if (request->has_enabled()) params.enabled = request->enabled();
        absl::StatusOr<service::WebhookWithSecret> created =
            ctx_.webhooks->Create(caller, info, params);
        if (!created.ok()) return created.status();
        ToProtoWithSecret(*created, response);
        return absl::OkStatus();
      });
}

grpc::ServerUnaryReactor* WebhookServiceImpl::GetWebhook(
    grpc::CallbackServerContext* context,
    const lumo::webhooks::v1::GetWebhookRequest* request, Webhook* response) {
  static const auto& method =
      Method("lumo.webhooks.v1.WebhookService.GetWebhook");
  return RunAuthenticated(
      *ctx_.auth, *ctx_.workers, context, method, request->tenant_slug(), true,
      [this, request, response](const Principal& caller,
                                const RequestInfo&) -> absl::Status {
        absl::StatusOr<storage::WebhookEndpointRecord> got =
            ctx_.webhooks->Get(caller, request->id());
        if (!got.ok()) return got.status();
        ToProto(*got, response);
        return absl::OkStatus();
      });
}

grpc::ServerUnaryReactor* WebhookServiceImpl::UpdateWebhook(
    grpc::CallbackServerContext* context,
    const lumo::webhooks::v1::UpdateWebhookRequest* request,
    Webhook* response) {
  static const auto& method =
      Method("lumo.webhooks.v1.WebhookService.UpdateWebhook");
  return RunAuthenticated(
      *ctx_.auth, *ctx_.workers, context, method, request->tenant_slug(), true,
      [this, request, response](const Principal& caller,
                                const RequestInfo& info) -> absl::Status {
        service::WebhookPatch patch;
        if (request->has_url()) patch.url = request->url();
        if (request->has_description()) {
          patch.description = request->description();
        }
        if (request->has_event_types()) {
          absl::StatusOr<std::vector<std::string>> types =
              StringsFromListValue(request->event_types(), "eventTypes");
          if (!types.ok()) return types.status();
          patch.event_types = *std::move(types);
        }
        if (request->has_enabled()) patch.enabled = request->enabled();
        absl::StatusOr<storage::WebhookEndpointRecord> updated =
            ctx_.webhooks->Update(caller, info, request->id(), patch);
        if (!updated.ok()) return updated.status();
        ToProto(*updated, response);
        return absl::OkStatus();
      });
}

grpc::ServerUnaryReactor* WebhookServiceImpl::DeleteWebhook(
    grpc::CallbackServerContext* context,
    const lumo::webhooks::v1::DeleteWebhookRequest* request,
    google::protobuf::Empty*) {
  static const auto& method =
      Method("lumo.webhooks.v1.WebhookService.DeleteWebhook");
  return RunAuthenticated(
      *ctx_.auth, *ctx_.workers, context, method, request->tenant_slug(), true,
      [this, request](const Principal& caller,
                      const RequestInfo& info) -> absl::Status {
        return ctx_.webhooks->Delete(caller, info, request->id());
      });
}

grpc::ServerUnaryReactor* WebhookServiceImpl::RotateWebhookSecret(
    grpc::CallbackServerContext* context,
    const lumo::webhooks::v1::RotateWebhookSecretRequest* request,
    Webhook* response) {
  static const auto& method =
      Method("lumo.webhooks.v1.WebhookService.RotateWebhookSecret");
  return RunAuthenticated(
      *ctx_.auth, *ctx_.workers, context, method, request->tenant_slug(), true,
      [this, request, response](const Principal& caller,
                                const RequestInfo& info) -> absl::Status {
        std::optional<int64_t> overlap;
        if (request->has_grace_period_seconds()) {
          overlap = request->grace_period_seconds();
        }
        absl::StatusOr<service::WebhookWithSecret> rotated =
            ctx_.webhooks->RotateSecret(caller, info, request->id(), overlap);
        if (!rotated.ok()) return rotated.status();
        ToProtoWithSecret(*rotated, response);
        return absl::OkStatus();
      });
}

grpc::ServerUnaryReactor* WebhookServiceImpl::TestWebhook(
    grpc::CallbackServerContext* context,
    const lumo::webhooks::v1::TestWebhookRequest* request,
    WebhookDelivery* response) {
  static const auto& method =
      Method("lumo.webhooks.v1.WebhookService.TestWebhook");
  return RunAuthenticated(
      *ctx_.auth, *ctx_.workers, context, method, request->tenant_slug(), true,
      [this, request, response](const Principal& caller,
                                const RequestInfo& info) -> absl::Status {
        absl::StatusOr<storage::WebhookDeliveryRecord> ping =
            ctx_.webhooks->Test(caller, info, request->id());
        if (!ping.ok()) return ping.status();
        ToProto(*ping, response);
        return absl::OkStatus();
      });
}

grpc::ServerUnaryReactor* WebhookServiceImpl::ListWebhookDeliveries(
    grpc::CallbackServerContext* context,
    const lumo::webhooks::v1::ListWebhookDeliveriesRequest* request,
    lumo::webhooks::v1::ListWebhookDeliveriesResponse* response) {
  static const auto& method =
      Method("lumo.webhooks.v1.WebhookService.ListWebhookDeliveries");
  return RunAuthenticated(
      *ctx_.auth, *ctx_.workers, context, method, request->tenant_slug(), true,
      [this, request, response](const Principal& caller,
                                const RequestInfo&) -> absl::Status {
        service::DeliveryListParams params;
        if (request->has_page()) params.page = request->page();
        if (request->has_limit()) params.limit = request->limit();
        params.status = request->status();
        params.page_token = request->page_token();
        if (request->has_include_total()) {
          params.include_total = request->include_total();
        }
        storage::DeliveryQuery applied;
        absl::StatusOr<storage::DeliveryPage> listed =
            ctx_.webhooks->ListDeliveries(caller, request->id(), params,
                                          &applied);
        if (!listed.ok()) return listed.status();
        for (const storage::WebhookDeliveryRecord& d : listed->deliveries) {
          ToProto(d, response->add_data());
        }
        KeysetPageMeta meta;
        meta.total = listed->total;
        meta.total_kind = listed->total_kind;
        meta.page = applied.page;
        meta.by_token = applied.before_id.has_value();
        meta.limit = applied.limit;
        meta.has_more = listed->has_more;
        meta.next_page_token = service::WebhookService::NextDeliveryPageToken(
            caller.tenant_id, request->id(), applied, *listed);
        FillPageMeta(meta, response->mutable_meta());
        return absl::OkStatus();
      });
}

}  // namespace lumo::rpc
