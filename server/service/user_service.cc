#include "server/service/user_service.h"

#include <algorithm>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "server/core/crypto.h"
#include "server/core/scopes.h"
#include "server/core/validation.h"
#include "server/service/audit_json.h"
#include "server/service/key_service.h"
#include "server/service/page_token.h"

namespace lumo::service {
namespace {

using storage::RoleRef;
using storage::UserRef;

constexpr int kIdAttempts = 4;
constexpr size_t kIdRandomChars = 16;
constexpr absl::string_view kUserIdPrefix = "usr_";
constexpr absl::string_view kRoleIdPrefix = "rol_";
constexpr char kCategory[] = "user_management";

// ----------------------------------------------------------------- statuses

absl::Status UserNotFound() {
  return WithErrorKind(absl::NotFoundError("user not found"),
                       ErrorKind::kNotFound);
}
absl::Status RoleNotFound() {
  return WithErrorKind(absl::NotFoundError("role not found"),
                       ErrorKind::kNotFound);
}

// Gives store statuses their documented REST codes. `not_found` is the
// status for NOT_FOUND, `duplicate` the message for ALREADY_EXISTS.
absl::Status Annotate(absl::Status status, absl::Status not_found,
                      absl::string_view duplicate) {
  if (status.GetPayload(storage::kLastPortalAdminPayload).has_value()) {
    return WithErrorKind(std::move(status), ErrorKind::kInvalidRequest);
  }
  switch (status.code()) {
    case absl::StatusCode::kPermissionDenied:
      // A portal admin written by a caller without admin:write.
      return WithErrorKind(std::move(status), ErrorKind::kScopeExceeded);
    case absl::StatusCode::kNotFound:
      return not_found;
    case absl::StatusCode::kAlreadyExists:
      return WithErrorKind(absl::AlreadyExistsError(duplicate),
                           ErrorKind::kDuplicate);
    case absl::StatusCode::kFailedPrecondition:
      // From a user write: a role reference that names no role.
      return InvalidFieldMessage("roles", status.message());
    default:
      return status;
  }
}
absl::Status AnnotateUser(absl::Status status) {
  return Annotate(std::move(status), UserNotFound(),
                  "email: a user with this email exists in the tenant");
}
absl::Status AnnotateRole(absl::Status status) {
  return Annotate(std::move(status), RoleNotFound(),
                  "slug: a role with this slug exists in the tenant");
}

// Portal admins hold every scope, so only callers that hold every scope
// themselves may block, unblock or delete one: keys with admin:write,
// portal sessions and the operator (docs/admin-api.md "Portal admins").
storage::PortalAdminGuard PortalAdminGuardFor(const Principal& caller) {
  storage::PortalAdminGuard guard;
  guard.may_manage_admins = caller.kind != Principal::Kind::kApiKey ||
                            core::Grants(caller.scopes, "admin:write");
  return guard;
}

// ---------------------------------------------------------------- ids, refs

absl::StatusOr<std::string> NewId(absl::string_view prefix) {
  absl::StatusOr<std::string> random = core::RandomBase62(kIdRandomChars);
  if (!random.ok()) return random.status();
  return absl::StrCat(prefix, *random);
}

bool IsPublicId(absl::string_view id, absl::string_view prefix) {
  if (!absl::ConsumePrefix(&id, prefix) || id.size() != kIdRandomChars) {
    return false;
  }
  return std::all_of(id.begin(), id.end(), [](char c) {
    return absl::ascii_isalnum(static_cast<unsigned char>(c));
  });
}

// A path `{id}` of a user: an id, or an email (contains '@'). Anything else
// cannot name a user: NOT_FOUND without a query (and without echoing it).
absl::StatusOr<UserRef> ParseUserRef(absl::string_view ref) {
  if (absl::StrContains(ref, '@')) {
    if (!ValidateEmail("email", ref).ok()) return UserNotFound();
    return UserRef::Email(ref);
  }
  if (!IsPublicId(ref, kUserIdPrefix)) return UserNotFound();
  return UserRef::Id(ref);
}

// A role id (`rol_...`) or a slug; nullopt when it is neither.
std::optional<RoleRef> ParseRoleRef(absl::string_view ref) {
  if (IsPublicId(ref, kRoleIdPrefix)) return RoleRef::Id(ref);
  if (core::IsValidSlug(ref)) return RoleRef::Slug(ref);
  return std::nullopt;
}

absl::StatusOr<RoleRef> ParseRolePathRef(absl::string_view ref) {
  std::optional<RoleRef> parsed = ParseRoleRef(ref);
  if (!parsed.has_value()) return RoleNotFound();
  return *std::move(parsed);
}

absl::StatusOr<std::vector<RoleRef>> ParseRoleList(
    const std::vector<std::string>& roles) {
  if (roles.size() > kMaxRolesPerUser) {
    return InvalidField("roles", absl::StrCat("at most ", kMaxRolesPerUser));
  }
  std::vector<RoleRef> refs;
  for (const std::string& role : roles) {
    std::optional<RoleRef> ref = ParseRoleRef(role);
    if (!ref.has_value()) {
      return InvalidField("roles",
                          "each entry must be a role slug or a role id");
    }
    refs.push_back(*std::move(ref));
  }
  return refs;
}

// --------------------------------------------------------------- validation

bool IsAtext(char c) {
  return absl::ascii_isalnum(static_cast<unsigned char>(c)) ||
         absl::StrContains("!#$%&'*+/=?^_`{|}~-", c);
}

bool IsDomainLabel(absl::string_view label) {
  if (label.empty() || label.size() > 63) return false;
  if (label.front() == '-' || label.back() == '-') return false;
  return std::all_of(label.begin(), label.end(), [](char c) {
    return absl::ascii_isalnum(static_cast<unsigned char>(c)) || c == '-';
  });
}

absl::Status ValidateUserName(absl::string_view name) {
  absl::Status ok = core::ValidateName("name", name, 0, 200);
  return AsInvalidField(ok);
}

absl::Status ValidateUserParams(const UserParams& params) {
  if (absl::Status s = ValidateEmail("email", params.email); !s.ok()) return s;
  return ValidateUserName(params.name);
}

// Validates `params` into the stored fields; permissions are deduplicated
// keeping their first position.
absl::StatusOr<storage::RoleFields> ValidateRole(const RoleParams& params) {
  if (!core::IsValidSlug(params.slug)) {
    return InvalidField("slug",
                        "1-63 characters of a-z, 0-9 and '-', not starting or "
                        "ending with '-'");
  }
  if (absl::Status s = core::ValidateName("name", params.name, 1, 100);
      !s.ok()) {
    return AsInvalidField(s);
  }
  if (absl::Status s =
          core::ValidateName("description", params.description, 0, 500);
      !s.ok()) {
    return AsInvalidField(s);
  }
  if (params.permissions.size() > kMaxPermissionsPerRole) {
    return InvalidField("permissions",
                        absl::StrCat("at most ", kMaxPermissionsPerRole));
  }
  storage::RoleFields fields;
  fields.slug = params.slug;
  fields.name = params.name;
  fields.description = params.description;
  for (const std::string& p : params.permissions) {
    if (!IsValidPermission(p)) {
      return InvalidField("permissions",
                          "each entry must be 1-100 characters of A-Z, a-z, "
                          "0-9 and : . _ * / -");
    }
    if (std::find(fields.permissions.begin(), fields.permissions.end(), p) ==
        fields.permissions.end()) {
      fields.permissions.push_back(p);
    }
  }
  return fields;
}

// Page, limit, search and direction, shared by every list.
absl::Status ParseListCommon(std::optional<int32_t> page,
                             std::optional<int32_t> limit,
                             absl::string_view search,
                             absl::string_view sort_dir, Paging* paging,
                             bool* descending) {
  absl::StatusOr<ListCommon> common =
      service::ParseListCommon(page, limit, search, sort_dir);
  if (!common.ok()) return common.status();
  *paging = common->paging;
  *descending = common->descending;
  return absl::OkStatus();
}

absl::StatusOr<storage::ListUsersQuery> ToUsersQuery(
    const ListUsersParams& params, Paging* paging) {
  storage::ListUsersQuery query;
  Paging applied;
  if (absl::Status s =
          ParseListCommon(params.page, params.limit, params.search,
                          params.sort_dir, &applied, &query.descending);
      !s.ok()) {
    return s;
  }
  query.page = applied.page;
  query.limit = applied.limit;
  query.search = params.search;
  static constexpr SortOption<storage::UserSortField> kSortOptions[] = {
      {"createdAt", storage::UserSortField::kCreatedAt},
      {"updatedAt", storage::UserSortField::kUpdatedAt},
      {"email", storage::UserSortField::kEmail},
      {"name", storage::UserSortField::kName},
  };
  absl::StatusOr<storage::UserSortField> sort_by =
      ParseSortBy(params.sort_by, kSortOptions);
  if (!sort_by.ok()) return sort_by.status();
  query.sort_by = *sort_by;
  if (!params.role.empty()) {
    query.role = ParseRoleRef(params.role);
    if (!query.role.has_value()) {
      return InvalidField("role", "a role slug or a role id");
    }
  }
  query.blocked = params.blocked;
  const bool has_token = !params.page_token.empty();
  if (absl::Status s = CheckPagingForm(params.page, has_token); !s.ok()) {
    return s;
  }
  query.count = CountFor(params.include_total, has_token);
  applied.by_token = has_token;
  if (paging != nullptr) *paging = applied;
  return query;
}

// What a user list's page token is bound to: the tenant, the order and
// every filter.
QueryParts UserListParts(int64_t tenant_id, const storage::ListUsersQuery& q) {
  return {"users",
          absl::StrCat(tenant_id),
          absl::StrCat(static_cast<int>(q.sort_by)),
          q.descending ? "DESC" : "ASC",
          q.search,
          q.role.has_value()
              ? absl::StrCat(static_cast<int>(q.role->kind), ":", q.role->value)
              : "-",
          q.blocked.has_value() ? (*q.blocked ? "1" : "0") : "-"};
}

bool SortsByText(storage::UserSortField sort_by) {
  return sort_by == storage::UserSortField::kEmail ||
         sort_by == storage::UserSortField::kName;
}

// ------------------------------------------------------------------- audit

storage::AuditEvent Event(absl::string_view action, absl::string_view type,
                          const Principal& caller, const RequestInfo& info,
                          std::string metadata) {
  storage::AuditEvent event;
  event.action = std::string(action);
  event.category = kCategory;
  if (caller.kind == Principal::Kind::kApiKey) {
    event.actor_type = "api_key";
    event.actor_id = caller.key_id;
  } else if (caller.kind == Principal::Kind::kSession) {
    event.actor_type = "user";
    event.actor_id = caller.user_id;
  } else {
    event.actor_type = "system";
    event.actor_id = "operator";
  }
  // target_id: set by the store (the caller may have used an email/slug).
  event.target_type = std::string(type);
  event.ip_address = info.ip_address;
  event.user_agent = info.user_agent;
  event.request_id = info.request_id;
  event.metadata_json = std::move(metadata);
  return event;
}

storage::AuditEvent UserEvent(absl::string_view action, const Principal& caller,
                              const RequestInfo& info,
                              std::string metadata = "{}") {
  return Event(action, "user", caller, info, std::move(metadata));
}
storage::AuditEvent RoleEvent(absl::string_view action, const Principal& caller,
                              const RequestInfo& info,
                              std::string metadata = "{}") {
  return Event(action, "role", caller, info, std::move(metadata));
}

}  // namespace

// ------------------------------------------------------------ free checks

absl::Status ValidateEmail(absl::string_view field, absl::string_view email) {
  const auto invalid = [&] {
    return InvalidField(field, "not a valid email address");
  };
  if (email.empty()) {
    return InvalidFieldMessage(field, absl::StrCat(field, " is required"));
  }
  if (email.size() > kMaxEmailLength) {
    return InvalidField(
        field, absl::StrCat("at most ", kMaxEmailLength, " characters"));
  }
  const size_t at = email.rfind('@');
  if (at == absl::string_view::npos) return invalid();
  const absl::string_view local = email.substr(0, at);
  const absl::string_view domain = email.substr(at + 1);
  if (local.empty() || local.size() > 64) return invalid();
  for (absl::string_view atom : absl::StrSplit(local, '.')) {
    if (atom.empty() || !std::all_of(atom.begin(), atom.end(), IsAtext)) {
      return invalid();
    }
  }
  if (domain.size() > 253) return invalid();
  const std::vector<absl::string_view> labels = absl::StrSplit(domain, '.');
  if (labels.size() < 2) return invalid();
  for (absl::string_view label : labels) {
    if (!IsDomainLabel(label)) return invalid();
  }
  const absl::string_view tld = labels.back();
  if (std::all_of(tld.begin(), tld.end(), [](char c) {
        return absl::ascii_isdigit(static_cast<unsigned char>(c));
      })) {
    return invalid();
  }
  return absl::OkStatus();
}

bool IsValidPermission(absl::string_view permission) {
  if (permission.empty() || permission.size() > 100) return false;
  return std::all_of(permission.begin(), permission.end(), [](char c) {
    return absl::ascii_isalnum(static_cast<unsigned char>(c)) ||
           absl::StrContains(":._*/-", c);
  });
}

// -------------------------------------------------------------------- users

UserService::UserService(storage::UserStore* store) : store_(store) {}

absl::StatusOr<storage::UserRecord> UserService::CreateUser(
    const Principal& caller, const RequestInfo& info,
    const UserParams& params) {
  if (absl::Status s = ValidateUserParams(params); !s.ok()) return s;
  absl::StatusOr<std::vector<RoleRef>> roles = ParseRoleList(params.roles);
  if (!roles.ok()) return roles.status();
  storage::NewUser user;
  user.tenant_id = caller.tenant_id;
  user.email = params.email;
  user.name = params.name;
  user.blocked = params.blocked;
  user.roles = *std::move(roles);
  const storage::AuditEvent event =
      UserEvent("user.created", caller, info,
                JsonObject()
                    .Add("email", params.email)
                    .Add("blocked", params.blocked)
                    .Add("roles", params.roles)
                    .Build());
  for (int attempt = 0; attempt < kIdAttempts; ++attempt) {
    absl::StatusOr<std::string> id = NewId(kUserIdPrefix);
    if (!id.ok()) return id.status();
    user.id = *std::move(id);
    absl::StatusOr<storage::UserRecord> created =
        store_->InsertUser(user, event);
    if (!absl::IsAlreadyExists(created.status())) {
      return created.ok() ? created : AnnotateUser(created.status());
    }
    // The email is taken, or (astronomically rarely) the id: ask which.
    absl::StatusOr<storage::UserRecord> holder =
        store_->GetUser(caller.tenant_id, UserRef::Email(params.email));
    if (holder.ok()) return AnnotateUser(created.status());
    if (!absl::IsNotFound(holder.status())) return holder.status();
  }
  return absl::InternalError("could not allocate a unique user id");
}

absl::StatusOr<storage::UserRecord> UserService::GetUser(
    const Principal& caller, absl::string_view ref) {
  absl::StatusOr<UserRef> parsed = ParseUserRef(ref);
  if (!parsed.ok()) return parsed.status();
  absl::StatusOr<storage::UserRecord> user =
      store_->GetUser(caller.tenant_id, *parsed);
  if (!user.ok()) return AnnotateUser(user.status());
  return user;
}

absl::StatusOr<storage::UserPage> UserService::ListUsers(
    const Principal& caller, const ListUsersParams& params, Paging* paging) {
  Paging applied;
  absl::StatusOr<storage::ListUsersQuery> query =
      ToUsersQuery(params, &applied);
  if (!query.ok()) return query.status();
  const QueryParts parts = UserListParts(caller.tenant_id, *query);
  if (applied.by_token) {
    absl::StatusOr<SortPosition> position = DecodeSortPosition(
        params.page_token, parts, SortsByText(query->sort_by));
    if (!position.ok()) return position.status();
    query->after =
        storage::UserPosition{position->time, position->text, position->id};
  }
  absl::StatusOr<storage::UserPage> page =
      store_->ListUsers(caller.tenant_id, *query);
  if (!page.ok()) return page.status();
  if (page->has_more && !page->users.empty()) {
    const storage::UserPosition last =
        storage::PositionOf(page->users.back(), query->sort_by);
    applied.next_page_token = EncodeSortPosition(
        parts, SortsByText(query->sort_by), {last.time, last.text, last.id});
  }
  if (paging != nullptr) *paging = applied;
  return page;
}

absl::StatusOr<storage::UserRecord> UserService::Update(
    const Principal& caller, absl::string_view ref, storage::UserUpdate update,
    const storage::AuditEvent& event) {
  absl::StatusOr<UserRef> parsed = ParseUserRef(ref);
  if (!parsed.ok()) return parsed.status();
  update.guard = PortalAdminGuardFor(caller);
  absl::StatusOr<storage::UserWrite> written =
      store_->UpdateUser(caller.tenant_id, *parsed, update, event);
  if (!written.ok()) return AnnotateUser(written.status());
  return std::move(written->user);
}

absl::StatusOr<storage::UserRecord> UserService::ReplaceUser(
    const Principal& caller, const RequestInfo& info, absl::string_view ref,
    const UserParams& params) {
  if (absl::Status s = ValidateUserParams(params); !s.ok()) return s;
  absl::StatusOr<std::vector<RoleRef>> roles = ParseRoleList(params.roles);
  if (!roles.ok()) return roles.status();
  storage::UserUpdate update;
  update.email = params.email;
  update.name = params.name;
  update.blocked = params.blocked;
  update.roles = *std::move(roles);
  return Update(caller, ref, update,
                UserEvent("user.updated", caller, info,
                          JsonObject()
                              .Add("replace", true)
                              .Add("email", params.email)
                              .Add("blocked", params.blocked)
                              .Add("roles", params.roles)
                              .Build()));
}

absl::StatusOr<storage::UserRecord> UserService::PatchUser(
    const Principal& caller, const RequestInfo& info, absl::string_view ref,
    const UserPatch& patch) {
  std::vector<std::string> fields;
  JsonObject metadata;
  if (patch.email.has_value()) {
    if (absl::Status s = ValidateEmail("email", *patch.email); !s.ok()) {
      return s;
    }
    fields.push_back("email");
    metadata.Add("email", *patch.email);
  }
  if (patch.name.has_value()) {
    if (absl::Status s = ValidateUserName(*patch.name); !s.ok()) return s;
    fields.push_back("name");
  }
  if (patch.blocked.has_value()) {
    fields.push_back("blocked");
    metadata.Add("blocked", *patch.blocked);
  }
  metadata.Add("fields", fields);
  storage::UserUpdate update;
  update.email = patch.email;
  update.name = patch.name;
  update.blocked = patch.blocked;
  return Update(caller, ref, update,
                UserEvent("user.updated", caller, info, metadata.Build()));
}

absl::Status UserService::DeleteUser(const Principal& caller,
                                     const RequestInfo& info,
                                     absl::string_view ref) {
  absl::StatusOr<UserRef> parsed = ParseUserRef(ref);
  if (!parsed.ok()) return parsed.status();
  return AnnotateUser(store_
                          ->DeleteUser(caller.tenant_id, *parsed,
                                       UserEvent("user.deleted", caller, info),
                                       PortalAdminGuardFor(caller))
                          .status());
}

absl::StatusOr<storage::UserRecord> UserService::SetBlocked(
    const Principal& caller, const RequestInfo& info, absl::string_view ref,
    bool blocked) {
  storage::UserUpdate update;
  update.blocked = blocked;
  return Update(
      caller, ref, update,
      UserEvent(blocked ? "user.blocked" : "user.unblocked", caller, info));
}

absl::StatusOr<storage::UserRecord> UserService::SetRoles(
    const Principal& caller, const RequestInfo& info, absl::string_view ref,
    const std::vector<std::string>& roles) {
  absl::StatusOr<std::vector<RoleRef>> refs = ParseRoleList(roles);
  if (!refs.ok()) return refs.status();
  storage::UserUpdate update;
  update.roles = *std::move(refs);
  return Update(caller, ref, update,
                UserEvent("user.roles_updated", caller, info,
                          JsonObject().Add("roles", roles).Build()));
}

// -------------------------------------------------------------------- roles

absl::StatusOr<storage::RoleRecord> UserService::CreateRole(
    const Principal& caller, const RequestInfo& info,
    const RoleParams& params) {
  absl::StatusOr<storage::RoleFields> role = ValidateRole(params);
  if (!role.ok()) return role.status();
  role->tenant_id = caller.tenant_id;
  const storage::AuditEvent event =
      RoleEvent("role.created", caller, info,
                JsonObject()
                    .Add("slug", role->slug)
                    .Add("permissions", role->permissions)
                    .Build());
  for (int attempt = 0; attempt < kIdAttempts; ++attempt) {
    absl::StatusOr<std::string> id = NewId(kRoleIdPrefix);
    if (!id.ok()) return id.status();
    role->id = *std::move(id);
    absl::StatusOr<storage::RoleRecord> created =
        store_->InsertRole(*role, event);
    if (!absl::IsAlreadyExists(created.status())) {
      return created.ok() ? created : AnnotateRole(created.status());
    }
    absl::StatusOr<storage::RoleRecord> holder =
        store_->GetRole(caller.tenant_id, RoleRef::Slug(role->slug));
    if (holder.ok()) return AnnotateRole(created.status());
    if (!absl::IsNotFound(holder.status())) return holder.status();
  }
  return absl::InternalError("could not allocate a unique role id");
}

absl::StatusOr<storage::RoleRecord> UserService::GetRole(
    const Principal& caller, absl::string_view ref) {
  absl::StatusOr<RoleRef> parsed = ParseRolePathRef(ref);
  if (!parsed.ok()) return parsed.status();
  absl::StatusOr<storage::RoleRecord> role =
      store_->GetRole(caller.tenant_id, *parsed);
  if (!role.ok()) return AnnotateRole(role.status());
  return role;
}

absl::StatusOr<storage::RolePage> UserService::ListRoles(
    const Principal& caller, const ListRolesParams& params, Paging* paging) {
  storage::ListRolesQuery query;
  Paging applied;
  if (absl::Status s =
          ParseListCommon(params.page, params.limit, params.search,
                          params.sort_dir, &applied, &query.descending);
      !s.ok()) {
    return s;
  }
  query.page = applied.page;
  query.limit = applied.limit;
  query.search = params.search;
  static constexpr SortOption<storage::RoleSortField> kSortOptions[] = {
      {"createdAt", storage::RoleSortField::kCreatedAt},
      {"slug", storage::RoleSortField::kSlug},
      {"name", storage::RoleSortField::kName},
  };
  absl::StatusOr<storage::RoleSortField> sort_by =
      ParseSortBy(params.sort_by, kSortOptions);
  if (!sort_by.ok()) return sort_by.status();
  query.sort_by = *sort_by;
  if (paging != nullptr) *paging = applied;
  return store_->ListRoles(caller.tenant_id, query);
}

absl::StatusOr<storage::RoleRecord> UserService::UpdateRole(
    const Principal& caller, const RequestInfo& info, absl::string_view ref,
    const RoleParams& params) {
  absl::StatusOr<RoleRef> parsed = ParseRolePathRef(ref);
  if (!parsed.ok()) return parsed.status();
  absl::StatusOr<storage::RoleFields> fields = ValidateRole(params);
  if (!fields.ok()) return fields.status();
  absl::StatusOr<storage::RoleRecord> role =
      store_->UpdateRole(caller.tenant_id, *parsed, *fields,
                         RoleEvent("role.updated", caller, info,
                                   JsonObject()
                                       .Add("slug", fields->slug)
                                       .Add("permissions", fields->permissions)
                                       .Build()));
  if (!role.ok()) return AnnotateRole(role.status());
  return role;
}

absl::Status UserService::DeleteRole(const Principal& caller,
                                     const RequestInfo& info,
                                     absl::string_view ref) {
  absl::StatusOr<RoleRef> parsed = ParseRolePathRef(ref);
  if (!parsed.ok()) return parsed.status();
  absl::Status deleted =
      store_
          ->DeleteRole(caller.tenant_id, *parsed,
                       RoleEvent("role.deleted", caller, info))
          .status();
  if (absl::IsFailedPrecondition(deleted)) {
    // Still assigned: the caller must unassign it first.
    return WithErrorKind(deleted, ErrorKind::kInvalidRequest);
  }
  return AnnotateRole(deleted);
}

absl::StatusOr<storage::UserPage> UserService::ListRoleUsers(
    const Principal& caller, absl::string_view ref,
    const ListUsersParams& params, Paging* paging) {
  absl::StatusOr<storage::RoleRecord> role = GetRole(caller, ref);
  if (!role.ok()) return role.status();
  ListUsersParams own = params;
  own.role.clear();
  absl::StatusOr<storage::ListUsersQuery> query = ToUsersQuery(own, paging);
  if (!query.ok()) return query.status();
  query->role = RoleRef::Id(role->id);
  return store_->ListUsers(caller.tenant_id, *query);
}

}  // namespace lumo::service
