#include "server/service/client_service.h"

#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "server/core/crypto.h"
#include "server/core/validation.h"
#include "server/service/audit_json.h"
#include "server/service/client_validation.h"
#include "server/service/key_service.h"
#include "server/service/page_token.h"
#include "server/service/paging.h"

namespace lumo::service {
namespace {

constexpr int kIdAttempts = 4;
constexpr int kUpdateAttempts = 4;

absl::Status ClientNotFound() {
  return WithErrorKind(absl::NotFoundError("OAuth client not found"),
                       ErrorKind::kNotFound);
}

// Store statuses get the documented REST codes.
absl::Status Annotate(absl::Status status) {
  if (absl::IsNotFound(status)) return ClientNotFound();
  if (absl::IsInvalidArgument(status)) {
    return WithErrorKind(std::move(status), ErrorKind::kInvalidField);
  }
  if (absl::IsFailedPrecondition(status)) {
    return WithErrorKind(std::move(status), ErrorKind::kInvalidRequest);
  }
  return status;
}

// Validation for the admin API: the RFC 7591 kinds become kInvalidField
// (the REST code validation_error).
absl::Status ValidateAdmin(storage::ClientFields& fields) {
  absl::Status s = ValidateClientFields(fields, FieldNaming::kCamelCase);
  if (s.ok()) return s;
  return WithErrorKind(std::move(s), ErrorKind::kInvalidField);
}

// The admin API has no response_types input: only "code" exists, and it
// follows the grant types.
void DeriveResponseTypes(storage::ClientFields& fields) {
  fields.response_types.clear();
  for (const std::string& g : fields.grant_types) {
    if (g == "authorization_code") fields.response_types.push_back("code");
  }
}

// Fields from create/replace parameters with the defaults applied.
absl::StatusOr<storage::ClientFields> FieldsFromParams(
    const ClientParams& params, bool is_public) {
  storage::ClientFields f;
  f.name = params.name;
  f.redirect_uris = params.redirect_uris;
  f.post_logout_redirect_uris = params.post_logout_redirect_uris;
  f.scopes = params.scopes;
  f.grant_types = params.grant_types.empty()
                      ? std::vector<std::string>{"authorization_code"}
                      : params.grant_types;
  DeriveResponseTypes(f);
  f.application_type =
      params.application_type.empty() ? "web" : params.application_type;
  f.client_uri = params.client_uri;
  f.logo_uri = params.logo_uri;
  f.pkce_required = params.pkce_required.value_or(true);
  const std::string& method = params.token_endpoint_auth_method;
  if (is_public) {
    if (!method.empty() && method != "none") {
      return InvalidField("tokenEndpointAuthMethod",
                          "a public client uses \"none\"");
    }
    f.token_endpoint_auth_method = "none";
  } else {
    if (method == "none") {
      return InvalidField("tokenEndpointAuthMethod",
                          "\"none\" is only for public clients");
    }
    f.token_endpoint_auth_method =
        method.empty() ? "client_secret_basic" : method;
  }
  return f;
}

// Names of the fields that differ, for audit metadata.
std::vector<std::string> ChangedFields(const storage::ClientFields& a,
                                       const storage::ClientFields& b) {
  std::vector<std::string> out;
  if (a.name != b.name) out.push_back("name");
  if (a.redirect_uris != b.redirect_uris) out.push_back("redirectUris");
  if (a.post_logout_redirect_uris != b.post_logout_redirect_uris) {
    out.push_back("postLogoutRedirectUris");
  }
  if (a.scopes != b.scopes) out.push_back("scopes");
  if (a.grant_types != b.grant_types) out.push_back("grantTypes");
  if (a.pkce_required != b.pkce_required) out.push_back("pkceRequired");
  if (a.client_uri != b.client_uri) out.push_back("clientUri");
  if (a.logo_uri != b.logo_uri) out.push_back("logoUri");
  if (a.token_endpoint_auth_method != b.token_endpoint_auth_method) {
    out.push_back("tokenEndpointAuthMethod");
  }
  if (a.application_type != b.application_type) {
    out.push_back("applicationType");
  }
  return out;
}

storage::AuditEvent ClientEvent(absl::string_view action,
                                const Principal& caller,
                                const RequestInfo& info,
                                absl::string_view client_id,
                                std::string metadata) {
  storage::AuditEvent event = ActorEvent(caller, info);
  event.action = std::string(action);
  event.category = "clients";
  event.target_type = "oauth_client";
  event.target_id = std::string(client_id);
  event.metadata_json = std::move(metadata);
  return event;
}

}  // namespace

storage::AuditEvent ActorEvent(const Principal& caller,
                               const RequestInfo& info) {
  storage::AuditEvent event;
  switch (caller.kind) {
    case Principal::Kind::kApiKey:
      event.actor_type = "api_key";
      event.actor_id = caller.key_id;
      break;
    case Principal::Kind::kAnonymous:
      event.actor_type = "anonymous";
      break;
    case Principal::Kind::kOperator:
      event.actor_type = "system";
      event.actor_id = "operator";
      break;
    case Principal::Kind::kService:
      event.actor_type = "system";
      event.actor_id = "service";
      break;
    case Principal::Kind::kSession:
      event.actor_type = "user";
      event.actor_id = caller.user_id;
      break;
  }
  event.ip_address = info.ip_address;
  event.user_agent = info.user_agent;
  event.request_id = info.request_id;
  return event;
}

ClientService::ClientService(storage::ClientStore* store,
                             std::shared_ptr<const core::PepperSet> peppers)
    : store_(store), peppers_(std::move(peppers)) {}

absl::StatusOr<std::string> ClientService::NewSecret(
    storage::StoredSecret* stored) {
  absl::StatusOr<std::string> random =
      core::RandomBase62(kClientSecretRandomLength);
  if (!random.ok()) return random.status();
  std::string secret = absl::StrCat(kClientSecretPrefix, *random);
  core::Cleanse(*random);
  stored->pepper_version = peppers_->current_version();
  absl::StatusOr<core::Digest> digest =
      peppers_->Mac(stored->pepper_version, secret);
  if (!digest.ok()) {
    core::Cleanse(secret);
    return digest.status();
  }
  stored->digest = *digest;
  return secret;
}

absl::StatusOr<ClientWithSecret> ClientService::Insert(
    const Principal& caller, const RequestInfo& info, int64_t tenant_id,
    storage::ClientFields fields,
    std::optional<storage::RegistrationAuth> registration) {
  const bool default_name = fields.name.empty();
  for (int attempt = 0; attempt < kIdAttempts; ++attempt) {
    storage::NewClient client;
    client.tenant_id = tenant_id;
    absl::StatusOr<std::string> id = core::RandomBase62(kClientRecordIdLength);
    if (!id.ok()) return id.status();
    client.id = *std::move(id);
    absl::StatusOr<std::string> random =
        core::RandomBase62(kClientIdRandomLength);
    if (!random.ok()) return random.status();
    client.client_id = absl::StrCat(kClientIdPrefix, *random);
    client.fields = fields;
    if (default_name) client.fields.name = client.client_id;
    client.created_via = registration.has_value() ? "registration" : "admin";
    const storage::AuditEvent actor = ActorEvent(caller, info);
    client.created_by_type = actor.actor_type;
    client.created_by_id = actor.actor_id;

    std::optional<std::string> secret;
    if (!client.fields.is_public()) {
      storage::StoredSecret stored;
      absl::StatusOr<std::string> drawn = NewSecret(&stored);
      if (!drawn.ok()) return drawn.status();
      secret = *std::move(drawn);
      client.secret = stored;
    }
    storage::AuditEvent event = ClientEvent(
        registration.has_value() ? "client.registered" : "client.created",
        caller, info, client.client_id,
        JsonObject()
            .Add("id", client.id)
            .Add("name", client.fields.name)
            .Add("isPublic", client.fields.is_public())
            .Add("grantTypes", client.fields.grant_types)
            .Add("redirectUris", client.fields.redirect_uris)
            .Add("scopes", client.fields.scopes)
            .Build());
    absl::Status inserted =
        registration.has_value()
            ? store_->InsertRegisteredClient(client, *registration, event)
            : store_->InsertClient(client, event);
    if (!inserted.ok()) {
      if (secret.has_value()) core::Cleanse(*secret);
      if (absl::IsAlreadyExists(inserted)) continue;  // id clash: draw again
      if (registration.has_value() && absl::IsFailedPrecondition(inserted)) {
        return inserted;  // the caller maps the settings refusal
      }
      return Annotate(inserted);
    }
    absl::StatusOr<storage::ClientRecord> record =
        store_->GetClient(tenant_id, client.id);
    if (!record.ok()) {
      if (secret.has_value()) core::Cleanse(*secret);
      return record.status();
    }
    return ClientWithSecret{*std::move(record), std::move(secret)};
  }
  return absl::InternalError("could not allocate a unique client id");
}

absl::StatusOr<ClientWithSecret> ClientService::CreateClient(
    const Principal& caller, const RequestInfo& info,
    const ClientParams& params) {
  const bool is_public =
      params.is_public.value_or(params.token_endpoint_auth_method == "none");
  absl::StatusOr<storage::ClientFields> fields =
      FieldsFromParams(params, is_public);
  if (!fields.ok()) return fields.status();
  if (absl::Status s = ValidateAdmin(*fields); !s.ok()) return s;
  return Insert(caller, info, caller.tenant_id, *std::move(fields),
                std::nullopt);
}

absl::StatusOr<ClientWithSecret> ClientService::InsertRegistered(
    const Principal& caller, const RequestInfo& info, int64_t tenant_id,
    storage::ClientFields fields) {
  return Insert(caller, info, tenant_id, std::move(fields),
                caller.kind == Principal::Kind::kAnonymous
                    ? storage::RegistrationAuth::kAnonymous
                    : storage::RegistrationAuth::kApiKey);
}

absl::StatusOr<storage::ClientRecord> ClientService::GetClient(
    const Principal& caller, absl::string_view id) {
  absl::StatusOr<storage::ClientRecord> record =
      store_->GetClient(caller.tenant_id, id);
  if (!record.ok()) return Annotate(record.status());
  return record;
}

namespace {

// What a client list's page token is bound to: the tenant, the order and
// the search.
QueryParts ClientListParts(int64_t tenant_id,
                           const storage::ListClientsQuery& q) {
  return {"clients", absl::StrCat(tenant_id),
          absl::StrCat(static_cast<int>(q.sort_by)),
          q.descending ? "DESC" : "ASC", q.search};
}

}  // namespace

absl::StatusOr<storage::ClientPage> ClientService::ListClients(
    const Principal& caller, const ListClientsParams& params,
    storage::ListClientsQuery* query_out) {
  storage::ListClientsQuery query;
  absl::StatusOr<ListCommon> common = ParseListCommon(
      params.page, params.limit, params.search, params.sort_dir);
  if (!common.ok()) return common.status();
  query.page = common->paging.page;
  query.limit = common->paging.limit;
  query.descending = common->descending;
  query.search = params.search;
  static constexpr SortOption<storage::ClientSortField> kSortOptions[] = {
      {"createdAt", storage::ClientSortField::kCreatedAt},
      {"name", storage::ClientSortField::kName},
      {"updatedAt", storage::ClientSortField::kUpdatedAt},
  };
  absl::StatusOr<storage::ClientSortField> sort_by =
      ParseSortBy(params.sort_by, kSortOptions);
  if (!sort_by.ok()) return sort_by.status();
  query.sort_by = *sort_by;
  absl::StatusOr<std::optional<SortPosition>> start = SortedPageStart(
      params.page, params.page_token, params.include_total,
      ClientListParts(caller.tenant_id, query),
      query.sort_by == storage::ClientSortField::kName, &query.count);
  if (!start.ok()) return start.status();
  if (const std::optional<SortPosition>& p = *start; p.has_value()) {
    query.after = storage::ClientPosition{p->time, p->text, p->id};
  }
  if (query_out != nullptr) *query_out = query;
  return store_->ListClients(caller.tenant_id, query);
}

std::string ClientService::NextPageToken(int64_t tenant_id,
                                         const storage::ListClientsQuery& query,
                                         const storage::ClientPage& page) {
  if (!page.has_more || page.clients.empty()) return "";
  const storage::ClientPosition last =
      storage::PositionOf(page.clients.back(), query.sort_by);
  return EncodeSortPosition(ClientListParts(tenant_id, query),
                            query.sort_by == storage::ClientSortField::kName,
                            {last.time, last.name, last.id});
}

template <typename Change>
absl::StatusOr<storage::ClientRecord> ClientService::Update(
    const Principal& caller, const RequestInfo& info, absl::string_view id,
    Change change) {
  absl::Status last = absl::AbortedError("the client kept changing");
  for (int attempt = 0; attempt < kUpdateAttempts; ++attempt) {
    absl::StatusOr<storage::ClientRecord> current =
        store_->GetClient(caller.tenant_id, id);
    if (!current.ok()) return Annotate(current.status());
    absl::StatusOr<storage::ClientFields> next = change(current->fields);
    if (!next.ok()) return next.status();
    if (absl::Status s = ValidateAdmin(*next); !s.ok()) return s;
    const std::vector<std::string> changed =
        ChangedFields(current->fields, *next);
    if (changed.empty()) return current;  // nothing to write
    storage::AuditEvent event =
        ClientEvent("client.updated", caller, info, current->client_id,
                    JsonObject()
                        .Add("id", current->id)
                        .Add("changedFields", changed)
                        .Build());
    absl::StatusOr<storage::ClientRecord> updated = store_->UpdateClient(
        caller.tenant_id, current->id, current->version, *next, event);
    if (absl::IsAborted(updated.status())) {
      last = updated.status();
      continue;  // lost a race (or a deadlock): re-read and re-apply
    }
    if (!updated.ok()) return Annotate(updated.status());
    return updated;
  }
  return last;
}

absl::StatusOr<storage::ClientRecord> ClientService::ReplaceClient(
    const Principal& caller, const RequestInfo& info, absl::string_view id,
    const ClientParams& params) {
  return Update(caller, info, id,
                [&params](const storage::ClientFields& current)
                    -> absl::StatusOr<storage::ClientFields> {
                  if (params.is_public.has_value() &&
                      *params.is_public != current.is_public()) {
                    return InvalidField("isPublic",
                                        "cannot change; create a new client");
                  }
                  return FieldsFromParams(params, current.is_public());
                });
}

absl::StatusOr<storage::ClientRecord> ClientService::PatchClient(
    const Principal& caller, const RequestInfo& info, absl::string_view id,
    const ClientPatch& patch) {
  return Update(
      caller, info, id,
      [&patch](const storage::ClientFields& current)
          -> absl::StatusOr<storage::ClientFields> {
        storage::ClientFields f = current;
        if (patch.name) f.name = *patch.name;
        if (patch.redirect_uris) f.redirect_uris = *patch.redirect_uris;
        if (patch.post_logout_redirect_uris) {
          f.post_logout_redirect_uris = *patch.post_logout_redirect_uris;
        }
        if (patch.scopes) f.scopes = *patch.scopes;
        if (patch.grant_types) {
          f.grant_types = *patch.grant_types;
          DeriveResponseTypes(f);
        }
        if (patch.pkce_required) f.pkce_required = *patch.pkce_required;
        if (patch.client_uri) f.client_uri = *patch.client_uri;
        if (patch.logo_uri) f.logo_uri = *patch.logo_uri;
        if (patch.application_type)
          f.application_type = *patch.application_type;
        if (patch.token_endpoint_auth_method) {
          const std::string& method = *patch.token_endpoint_auth_method;
          if ((method == "none") != current.is_public()) {
            return InvalidField("tokenEndpointAuthMethod",
                                "whether a client is public cannot change");
          }
          f.token_endpoint_auth_method = method;
        }
        return f;
      });
}

absl::Status ClientService::DeleteClient(const Principal& caller,
                                         const RequestInfo& info,
                                         absl::string_view id) {
  // The event names the client_id, so read it first; the store deletes
  // under the row lock and answers NOT_FOUND if it went away meanwhile.
  absl::StatusOr<storage::ClientRecord> current =
      store_->GetClient(caller.tenant_id, id);
  if (!current.ok()) return Annotate(current.status());
  storage::AuditEvent event =
      ClientEvent("client.deleted", caller, info, current->client_id,
                  JsonObject()
                      .Add("id", current->id)
                      .Add("name", current->fields.name)
                      .Build());
  return Annotate(store_->DeleteClient(caller.tenant_id, current->id, event));
}

absl::StatusOr<ClientWithSecret> ClientService::RotateClientSecret(
    const Principal& caller, const RequestInfo& info, absl::string_view id) {
  absl::StatusOr<storage::ClientRecord> current =
      store_->GetClient(caller.tenant_id, id);
  if (!current.ok()) return Annotate(current.status());
  if (!current->has_secret) {
    return WithErrorKind(
        absl::FailedPreconditionError("a public client has no secret"),
        ErrorKind::kInvalidRequest);
  }
  storage::StoredSecret stored;
  absl::StatusOr<std::string> secret = NewSecret(&stored);
  if (!secret.ok()) return secret.status();
  storage::AuditEvent event =
      ClientEvent("client.secret_rotated", caller, info, current->client_id,
                  JsonObject().Add("id", current->id).Build());
  absl::StatusOr<storage::ClientRecord> rotated =
      store_->RotateClientSecret(caller.tenant_id, current->id, stored, event);
  if (!rotated.ok()) {
    core::Cleanse(*secret);
    return Annotate(rotated.status());
  }
  return ClientWithSecret{*std::move(rotated), *std::move(secret)};
}

absl::StatusOr<storage::ClientRecord> ClientService::SetClientActive(
    const Principal& caller, const RequestInfo& info, absl::string_view id,
    bool active) {
  absl::StatusOr<storage::ClientRecord> current =
      store_->GetClient(caller.tenant_id, id);
  if (!current.ok()) return Annotate(current.status());
  storage::AuditEvent event = ClientEvent(
      active ? "client.enabled" : "client.disabled", caller, info,
      current->client_id, JsonObject().Add("id", current->id).Build());
  absl::StatusOr<storage::ClientRecord> record = store_->SetClientActive(
      caller.tenant_id, current->id, active, event, nullptr);
  if (!record.ok()) return Annotate(record.status());
  return record;
}

absl::StatusOr<storage::TenantSettings> ClientService::GetSettings(
    const Principal& caller) {
  return store_->GetSettings(caller.tenant_id);
}

absl::StatusOr<storage::TenantSettings> ClientService::UpdateSettings(
    const Principal& caller, const RequestInfo& info,
    const storage::SettingsUpdate& update) {
  storage::AuditEvent event = ActorEvent(caller, info);
  event.action = "settings.updated";
  event.category = "configuration";
  event.target_type = "tenant_settings";
  event.target_id = caller.tenant_slug;
  JsonObject metadata;
  const std::pair<const char*, const std::optional<int32_t>*> numbers[] = {
      {"keyPolicy.maxLifetimeDays", &update.key_max_lifetime_days},
      {"keyPolicy.rotationPeriodDays", &update.key_rotation_period_days},
      {"keyPolicy.expiryWarningDays", &update.key_expiry_warning_days},
      {"keyPolicy.inactiveAfterDays", &update.key_inactive_after_days},
  };
  if (update.key_require_expiry) {
    metadata.Add("keyPolicy.requireExpiry", *update.key_require_expiry);
  }
  for (const auto& [name, value] : numbers) {
    if (value->has_value()) metadata.Add(name, int64_t{**value});
  }
  if (update.dynamic_registration_enabled) {
    metadata.Add("dynamicRegistration.enabled",
                 *update.dynamic_registration_enabled);
  }
  if (update.dynamic_registration_require_api_key) {
    metadata.Add("dynamicRegistration.requireApiKey",
                 *update.dynamic_registration_require_api_key);
  }
  if (update.leak_response) {
    if (*update.leak_response != "revoke" &&
        *update.leak_response != "disable" &&
        *update.leak_response != "notify") {
      return InvalidField("leakResponse",
                          "one of \"revoke\", \"disable\" or \"notify\"");
    }
    metadata.Add("leakResponse", *update.leak_response);
  }
  event.metadata_json = metadata.Build();
  // The policy is checked as it will be after the change (its members
  // depend on each other), and the change applies only to the version it
  // was checked against: two concurrent changes, each valid alone, cannot
  // combine into an invalid policy.
  absl::StatusOr<storage::TenantSettings> settings =
      absl::AbortedError("the settings kept changing");
  for (int attempt = 0; attempt < 4 && absl::IsAborted(settings.status());
       ++attempt) {
    absl::StatusOr<storage::TenantSettings> current =
        store_->GetSettings(caller.tenant_id);
    if (!current.ok()) return current.status();
    if (absl::Status valid = ValidateKeyPolicy(
            storage::ApplySettingsUpdate(*current, update).key_policy);
        !valid.ok()) {
      return valid;
    }
    storage::SettingsUpdate pinned = update;
    pinned.expected_version = current->version;
    settings = store_->UpdateSettings(caller.tenant_id, pinned, event, nullptr);
  }
  return settings;
}

}  // namespace lumo::service
