#include "server/rpc/client_services.h"

#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "google/protobuf/struct.pb.h"
#include "server/core/crypto.h"
#include "server/rpc/call.h"
#include "server/rpc/convert.h"
#include "server/rpc/paging.h"
#include "server/service/key_service.h"

namespace lumo::rpc {
namespace {

using lumo::admin::v1::OAuthClient;
using service::Principal;
using service::RequestInfo;

std::vector<std::string> ToVector(
    const google::protobuf::RepeatedPtrField<std::string>& values) {
  return std::vector<std::string>(values.begin(), values.end());
}

void ToProto(const storage::ClientRecord& r, OAuthClient* out) {
  out->set_id(r.id);
  out->set_name(r.fields.name);
  out->set_client_id(r.client_id);
  for (const std::string& s : r.fields.redirect_uris) out->add_redirect_uris(s);
  for (const std::string& s : r.fields.scopes) out->add_scopes(s);
  for (const std::string& s : r.fields.grant_types) out->add_grant_types(s);
  out->set_is_public(r.fields.is_public());
  out->set_pkce_required(r.fields.pkce_required);
  out->set_is_active(r.is_active);
  ToTimestamp(r.created_at, out->mutable_created_at());
  ToTimestamp(r.updated_at, out->mutable_updated_at());
  for (const std::string& s : r.fields.post_logout_redirect_uris) {
    out->add_post_logout_redirect_uris(s);
  }
  for (const std::string& s : r.fields.response_types) {
    out->add_response_types(s);
  }
  out->set_application_type(r.fields.application_type);
  out->set_token_endpoint_auth_method(r.fields.token_endpoint_auth_method);
  out->set_client_uri(r.fields.client_uri);
  out->set_logo_uri(r.fields.logo_uri);
  out->set_created_via(r.created_via);
  if (r.secret_rotated_at.has_value()) {
    ToTimestamp(*r.secret_rotated_at, out->mutable_secret_rotated_at());
  }
}

// Moves the secret (if any) into the reply and wipes our copy.
void ToProtoWithSecret(service::ClientWithSecret& created, OAuthClient* out) {
  ToProto(created.record, out);
  if (created.secret.has_value()) {
    out->set_client_secret(*created.secret);
    core::Cleanse(*created.secret);
  }
}

void ToProto(const storage::TenantSettings& s,
             lumo::admin::v1::TenantSettings* out) {
  auto* dr = out->mutable_dynamic_registration();
  dr->set_enabled(s.dynamic_registration.enabled);
  dr->set_require_api_key(s.dynamic_registration.require_api_key);
  if (s.updated_at.has_value()) {
    ToTimestamp(*s.updated_at, out->mutable_updated_at());
  }
  auto* kp = out->mutable_key_policy();
  kp->set_require_expiry(s.key_policy.require_expiry);
  kp->set_max_lifetime_days(s.key_policy.max_lifetime_days);
  kp->set_rotation_period_days(s.key_policy.rotation_period_days);
  kp->set_expiry_warning_days(s.key_policy.expiry_warning_days);
  kp->set_inactive_after_days(s.key_policy.inactive_after_days);
  out->set_leak_response(s.leak_response);
}

template <typename Request>
service::ClientParams ParamsFrom(const Request& r) {
  service::ClientParams p;
  p.name = r.name();
  p.redirect_uris = ToVector(r.redirect_uris());
  p.post_logout_redirect_uris = ToVector(r.post_logout_redirect_uris());
  p.scopes = ToVector(r.scopes());
  p.grant_types = ToVector(r.grant_types());
  if (r.has_pkce_required()) p.pkce_required = r.pkce_required();
  p.client_uri = r.client_uri();
  p.logo_uri = r.logo_uri();
  p.token_endpoint_auth_method = r.token_endpoint_auth_method();
  p.application_type = r.application_type();
  return p;
}

absl::StatusOr<service::ClientPatch> PatchFrom(
    const lumo::admin::v1::PatchClientRequest& r) {
  service::ClientPatch p;
  if (r.has_name()) p.name = r.name();
  struct List {
    bool present;
    const google::protobuf::ListValue& value;
    const char* field;
    std::optional<std::vector<std::string>>* out;
  } lists[] = {
      {r.has_redirect_uris(), r.redirect_uris(), "redirectUris",
       &p.redirect_uris},
      {r.has_scopes(), r.scopes(), "scopes", &p.scopes},
      {r.has_grant_types(), r.grant_types(), "grantTypes", &p.grant_types},
      {r.has_post_logout_redirect_uris(), r.post_logout_redirect_uris(),
       "postLogoutRedirectUris", &p.post_logout_redirect_uris},
  };
  for (const List& list : lists) {
    if (!list.present) continue;
    absl::StatusOr<std::vector<std::string>> values =
        StringsFromListValue(list.value, list.field);
    if (!values.ok()) return values.status();
    *list.out = *std::move(values);
  }
  if (r.has_pkce_required()) p.pkce_required = r.pkce_required();
  if (r.has_client_uri()) p.client_uri = r.client_uri();
  if (r.has_logo_uri()) p.logo_uri = r.logo_uri();
  if (r.has_token_endpoint_auth_method()) {
    p.token_endpoint_auth_method = r.token_endpoint_auth_method();
  }
  if (r.has_application_type()) p.application_type = r.application_type();
  return p;
}

}  // namespace

// ------------------------------------------------------------- ClientService

grpc::ServerUnaryReactor* ClientServiceImpl::ListClients(
    grpc::CallbackServerContext* context,
    const lumo::admin::v1::ListClientsRequest* request,
    lumo::admin::v1::ListClientsResponse* response) {
  static const auto& method = Method("lumo.admin.v1.ClientService.ListClients");
  return RunAuthenticated(
      *ctx_.auth, *ctx_.workers, context, method, request->tenant_slug(), true,
      [this, request, response](const Principal& caller,
                                const RequestInfo&) -> absl::Status {
        service::ListClientsParams params;
        if (request->has_page()) params.page = request->page();
        if (request->has_limit()) params.limit = request->limit();
        params.search = request->search();
        params.sort_by = request->sort_by();
        params.sort_dir = request->sort_dir();
        params.page_token = request->page_token();
        if (request->has_include_total()) {
          params.include_total = request->include_total();
        }
        storage::ListClientsQuery query;
        absl::StatusOr<storage::ClientPage> page =
            ctx_.clients->ListClients(caller, params, &query);
        if (!page.ok()) return page.status();
        for (const storage::ClientRecord& record : page->clients) {
          ToProto(record, response->add_data());
        }
        FillPageMeta(
            KeysetPageMeta{page->total, page->total_kind, query.page,
                           query.after.has_value(), query.limit, page->has_more,
                           service::ClientService::NextPageToken(
                               caller.tenant_id, query, *page)},
            response->mutable_meta());
        return absl::OkStatus();
      });
}

grpc::ServerUnaryReactor* ClientServiceImpl::CreateClient(
    grpc::CallbackServerContext* context,
    const lumo::admin::v1::CreateClientRequest* request,
    OAuthClient* response) {
  static const auto& method =
      Method("lumo.admin.v1.ClientService.CreateClient");
  return RunAuthenticated(
      *ctx_.auth, *ctx_.workers, context, method, request->tenant_slug(), true,
      [this, request, response](const Principal& caller,
                                const RequestInfo& info) -> absl::Status {
        service::ClientParams params = ParamsFrom(*request);
        if (request->has_is_public()) params.is_public = request->is_public();
        absl::StatusOr<service::ClientWithSecret> created =
            ctx_.clients->CreateClient(caller, info, params);
        if (!created.ok()) return created.status();
        ToProtoWithSecret(*created, response);
        return absl::OkStatus();
      });
}

grpc::ServerUnaryReactor* ClientServiceImpl::GetClient(
    grpc::CallbackServerContext* context,
    const lumo::admin::v1::GetClientRequest* request, OAuthClient* response) {
  static const auto& method = Method("lumo.admin.v1.ClientService.GetClient");
  return RunAuthenticated(
      *ctx_.auth, *ctx_.workers, context, method, request->tenant_slug(), true,
      [this, request, response](const Principal& caller,
                                const RequestInfo&) -> absl::Status {
        absl::StatusOr<storage::ClientRecord> record =
            ctx_.clients->GetClient(caller, request->id());
        if (!record.ok()) return record.status();
        ToProto(*record, response);
        return absl::OkStatus();
      });
}

grpc::ServerUnaryReactor* ClientServiceImpl::ReplaceClient(
    grpc::CallbackServerContext* context,
    const lumo::admin::v1::ReplaceClientRequest* request,
    OAuthClient* response) {
  static const auto& method =
      Method("lumo.admin.v1.ClientService.ReplaceClient");
  return RunAuthenticated(
      *ctx_.auth, *ctx_.workers, context, method, request->tenant_slug(), true,
      [this, request, response](const Principal& caller,
                                const RequestInfo& info) -> absl::Status {
        absl::StatusOr<storage::ClientRecord> record =
            ctx_.clients->ReplaceClient(caller, info, request->id(),
                                        ParamsFrom(*request));
        if (!record.ok()) return record.status();
        ToProto(*record, response);
        return absl::OkStatus();
      });
}

grpc::ServerUnaryReactor* ClientServiceImpl::PatchClient(
    grpc::CallbackServerContext* context,
    const lumo::admin::v1::PatchClientRequest* request, OAuthClient* response) {
  static const auto& method = Method("lumo.admin.v1.ClientService.PatchClient");
  return RunAuthenticated(
      *ctx_.auth, *ctx_.workers, context, method, request->tenant_slug(), true,
      [this, request, response](const Principal& caller,
                                const RequestInfo& info) -> absl::Status {
        absl::StatusOr<service::ClientPatch> patch = PatchFrom(*request);
        if (!patch.ok()) return patch.status();
        absl::StatusOr<storage::ClientRecord> record =
            ctx_.clients->PatchClient(caller, info, request->id(), *patch);
        if (!record.ok()) return record.status();
        ToProto(*record, response);
        return absl::OkStatus();
      });
}

grpc::ServerUnaryReactor* ClientServiceImpl::DeleteClient(
    grpc::CallbackServerContext* context,
    const lumo::admin::v1::DeleteClientRequest* request,
    google::protobuf::Empty* /*response*/) {
  static const auto& method =
      Method("lumo.admin.v1.ClientService.DeleteClient");
  return RunAuthenticated(
      *ctx_.auth, *ctx_.workers, context, method, request->tenant_slug(), true,
      [this, request](const Principal& caller,
                      const RequestInfo& info) -> absl::Status {
        return ctx_.clients->DeleteClient(caller, info, request->id());
      });
}

grpc::ServerUnaryReactor* ClientServiceImpl::RotateClientSecret(
    grpc::CallbackServerContext* context,
    const lumo::admin::v1::RotateClientSecretRequest* request,
    OAuthClient* response) {
  static const auto& method =
      Method("lumo.admin.v1.ClientService.RotateClientSecret");
  return RunAuthenticated(
      *ctx_.auth, *ctx_.workers, context, method, request->tenant_slug(), true,
      [this, request, response](const Principal& caller,
                                const RequestInfo& info) -> absl::Status {
        absl::StatusOr<service::ClientWithSecret> rotated =
            ctx_.clients->RotateClientSecret(caller, info, request->id());
        if (!rotated.ok()) return rotated.status();
        ToProtoWithSecret(*rotated, response);
        return absl::OkStatus();
      });
}

grpc::ServerUnaryReactor* ClientServiceImpl::EnableClient(
    grpc::CallbackServerContext* context,
    const lumo::admin::v1::SetClientActiveRequest* request,
    OAuthClient* response) {
  static const auto& method =
      Method("lumo.admin.v1.ClientService.EnableClient");
  return RunAuthenticated(
      *ctx_.auth, *ctx_.workers, context, method, request->tenant_slug(), true,
      [this, request, response](const Principal& caller,
                                const RequestInfo& info) -> absl::Status {
        absl::StatusOr<storage::ClientRecord> record =
            ctx_.clients->SetClientActive(caller, info, request->id(), true);
        if (!record.ok()) return record.status();
        ToProto(*record, response);
        return absl::OkStatus();
      });
}

grpc::ServerUnaryReactor* ClientServiceImpl::DisableClient(
    grpc::CallbackServerContext* context,
    const lumo::admin::v1::SetClientActiveRequest* request,
    OAuthClient* response) {
  static const auto& method =
      Method("lumo.admin.v1.ClientService.DisableClient");
  return RunAuthenticated(
      *ctx_.auth, *ctx_.workers, context, method, request->tenant_slug(), true,
      [this, request, response](const Principal& caller,
                                const RequestInfo& info) -> absl::Status {
        absl::StatusOr<storage::ClientRecord> record =
            ctx_.clients->SetClientActive(caller, info, request->id(), false);
        if (!record.ok()) return record.status();
        ToProto(*record, response);
        return absl::OkStatus();
      });
}

// ----------------------------------------------------------- SettingsService

grpc::ServerUnaryReactor* SettingsServiceImpl::GetSettings(
    grpc::CallbackServerContext* context,
    const lumo::admin::v1::GetSettingsRequest* request,
    lumo::admin::v1::TenantSettings* response) {
  static const auto& method =
      Method("lumo.admin.v1.SettingsService.GetSettings");
  return RunAuthenticated(*ctx_.auth, *ctx_.workers, context, method,
                          request->tenant_slug(), true,
                          [this, response](const Principal& caller,
                                           const RequestInfo&) -> absl::Status {
                            absl::StatusOr<storage::TenantSettings> settings =
                                ctx_.clients->GetSettings(caller);
                            if (!settings.ok()) return settings.status();
                            ToProto(*settings, response);
                            return absl::OkStatus();
                          });
}

grpc::ServerUnaryReactor* SettingsServiceImpl::UpdateSettings(
    grpc::CallbackServerContext* context,
    const lumo::admin::v1::UpdateSettingsRequest* request,
    lumo::admin::v1::TenantSettings* response) {
  static const auto& method =
      Method("lumo.admin.v1.SettingsService.UpdateSettings");
  return RunAuthenticated(
      *ctx_.auth, *ctx_.workers, context, method, request->tenant_slug(), true,
      [this, request, response](const Principal& caller,
                                const RequestInfo& info) -> absl::Status {
        storage::SettingsUpdate update;
        const auto& dr = request->dynamic_registration();
        if (dr.has_enabled())
          update.dynamic_registration_enabled = dr.enabled();
        if (dr.has_require_api_key()) {
          update.dynamic_registration_require_api_key = dr.require_api_key();
        }
        const auto& kp = request->key_policy();
        if (kp.has_require_expiry()) {
          update.key_require_expiry = kp.require_expiry();
        }
        if (kp.has_max_lifetime_days()) {
          update.key_max_lifetime_days = kp.max_lifetime_days();
        }
        if (kp.has_rotation_period_days()) {
          update.key_rotation_period_days = kp.rotation_period_days();
        }
        if (kp.has_expiry_warning_days()) {
          update.key_expiry_warning_days = kp.expiry_warning_days();
        }
        if (kp.has_inactive_after_days()) {
          update.key_inactive_after_days = kp.inactive_after_days();
        }
        if (request->has_leak_response()) {
          update.leak_response = request->leak_response();
        }
        absl::StatusOr<storage::TenantSettings> settings =
            ctx_.clients->UpdateSettings(caller, info, update);
        if (!settings.ok()) return settings.status();
        ToProto(*settings, response);
        return absl::OkStatus();
      });
}

// ------------------------------------------------------- RegistrationService

grpc::ServerUnaryReactor* RegistrationServiceImpl::RegisterClient(
    grpc::CallbackServerContext* context,
    const lumo::admin::v1::RegisterClientRequest* request,
    lumo::admin::v1::RegisterClientResponse* response) {
  static const auto& method =
      Method("lumo.admin.v1.RegistrationService.RegisterClient");
  return RunAuthenticated(
      *ctx_.auth, *ctx_.workers, context, method, request->tenant_slug(), true,
      [this, context, request, response](
          const Principal& caller, const RequestInfo& info) -> absl::Status {
        service::RegistrationRequest r;
        r.redirect_uris = ToVector(request->redirect_uris());
        r.client_name = request->client_name();
        r.client_uri = request->client_uri();
        r.logo_uri = request->logo_uri();
        r.grant_types = ToVector(request->grant_types());
        r.response_types = ToVector(request->response_types());
        r.application_type = request->application_type();
        r.token_endpoint_auth_method = request->token_endpoint_auth_method();
        r.scope = request->scope();
        r.post_logout_redirect_uris =
            ToVector(request->post_logout_redirect_uris());
        absl::StatusOr<service::ClientWithSecret> created =
            ctx_.registration->Register(caller, info, request->tenant_slug(),
                                        r);
        if (!created.ok()) {
          if (auto wait =
                  created.status().GetPayload(service::kRetryAfterPayload)) {
            AddTrailingMetadataSafely(context, "retry-after",
                                      std::string(*wait));
          }
          return created.status();
        }
        const storage::ClientRecord& c = created->record;
        response->set_client_id(c.client_id);
        if (created->secret.has_value()) {
          response->set_client_secret(*created->secret);
          core::Cleanse(*created->secret);
        }
        response->set_client_id_issued_at(
            static_cast<uint32_t>(absl::ToUnixSeconds(c.created_at)));
        response->set_client_secret_expires_at(0);
        for (const std::string& s : c.fields.redirect_uris) {
          response->add_redirect_uris(s);
        }
        if (!request->client_name().empty()) {
          response->set_client_name(c.fields.name);
        }
        if (!c.fields.client_uri.empty()) {
          response->set_client_uri(c.fields.client_uri);
        }
        if (!c.fields.logo_uri.empty()) {
          response->set_logo_uri(c.fields.logo_uri);
        }
        for (const std::string& s : c.fields.grant_types) {
          response->add_grant_types(s);
        }
        for (const std::string& s : c.fields.response_types) {
          response->add_response_types(s);
        }
        response->set_application_type(c.fields.application_type);
        response->set_token_endpoint_auth_method(
            c.fields.token_endpoint_auth_method);
        if (!c.fields.scopes.empty()) {
          response->set_scope(absl::StrJoin(c.fields.scopes, " "));
        }
        for (const std::string& s : c.fields.post_logout_redirect_uris) {
          response->add_post_logout_redirect_uris(s);
        }
        return absl::OkStatus();
      });
}

}  // namespace lumo::rpc
