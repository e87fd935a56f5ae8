#include "server/service/key_service.h"

#include <chrono>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/cord.h"
#include "absl/strings/str_cat.h"
#include "server/core/crypto.h"
#include "server/core/key_format.h"
#include "server/core/net.h"
#include "server/core/scopes.h"
#include "server/core/validation.h"
#include "server/service/audit_json.h"
#include "server/service/limit_rules.h"
#include "server/service/page_token.h"
#include "server/service/paging.h"

namespace lumo::service {
namespace {

constexpr int kIdAttempts = 4;
// Edits re-read and re-check the key when it changed meanwhile.
constexpr int kEditAttempts = 4;

storage::AuditEvent KeyEvent(absl::string_view action, const Principal* caller,
                             const RequestInfo& info, absl::string_view key_id,
                             std::string metadata) {
  storage::AuditEvent event;
  event.action = std::string(action);
  event.category = "api_keys";
  if (caller == nullptr || caller->kind == Principal::Kind::kOperator) {
    event.actor_type = "system";
    event.actor_id = "operator";
  } else if (caller->kind == Principal::Kind::kSession) {
    event.actor_type = "user";
    event.actor_id = caller->user_id;
  } else {
    event.actor_type = "api_key";
    event.actor_id = caller->key_id;
  }
  event.target_type = "api_key";
  event.target_id = std::string(key_id);
  event.ip_address = info.ip_address;
  event.user_agent = info.user_agent;
  event.request_id = info.request_id;
  event.metadata_json = std::move(metadata);
  return event;
}

// An id that is not a well-formed key id cannot exist: NOT_FOUND without a
// query (and without echoing the id).
absl::Status CheckKeyId(absl::string_view id) {
  if (!core::IsValidKeyId(id)) {
    return WithErrorKind(absl::NotFoundError("API key not found"),
                         ErrorKind::kNotFound);
  }
  return absl::OkStatus();
}

// Store NOT_FOUND statuses get the documented REST code.
absl::Status Annotate(absl::Status status) {
  if (absl::IsNotFound(status)) {
    return WithErrorKind(absl::NotFoundError("API key not found"),
                         ErrorKind::kNotFound);
  }
  return status;
}

absl::Status RestrictionDenied(absl::string_view verb, absl::string_view field,
                               absl::string_view rule) {
  return WithErrorKind(absl::PermissionDeniedError(absl::StrCat(
                           field, ": a key can only ", verb, " keys ", rule)),
                       ErrorKind::kScopeExceeded);
}

// `named` with the per-minute limit (0: none) as the limit "default".
std::vector<storage::KeyRateLimit> WithPerMinute(
    int32_t per_minute, const std::vector<storage::KeyRateLimit>& named) {
  std::vector<storage::KeyRateLimit> all = named;
  if (per_minute > 0) {
    all.push_back({kDefaultLimitName, per_minute, absl::Minutes(1)});
  }
  return all;
}

// The no-escalation rule beyond scopes (docs/api-keys.md): a key may only
// create, rotate or edit keys that are at least as restricted as itself.
// `verb` is "create", "rotate", "edit" and the like. Portal sessions and
// the operator are not bound.
absl::Status CheckRestrictionsInherited(
    const Principal& caller, absl::string_view verb,
    const std::optional<absl::Time>& expires_at,
    const std::vector<std::string>& allowed_cidrs,
    int32_t rate_limit_per_minute,
    const std::vector<storage::KeyRateLimit>& rate_limits) {
  if (caller.kind != Principal::Kind::kApiKey) return absl::OkStatus();
  if (caller.key_expires_at.has_value() &&
      (!expires_at.has_value() || *expires_at > *caller.key_expires_at)) {
    return RestrictionDenied(
        verb, "expiresAt",
        absl::StrCat(
            "that expire no later than itself (",
            absl::FormatTime("%Y-%m-%dT%H:%M:%SZ", *caller.key_expires_at,
                             absl::UTCTimeZone()),
            ")"));
  }
  if (!caller.key_allowed_cidrs.empty()) {
    std::vector<core::Cidr> parents;
    for (const std::string& text : caller.key_allowed_cidrs) {
      absl::StatusOr<core::Cidr> parent = core::Cidr::Parse(text);
      if (parent.ok()) parents.push_back(*parent);
    }
    bool within = !allowed_cidrs.empty();
    for (const std::string& text : allowed_cidrs) {
      absl::StatusOr<core::Cidr> child = core::Cidr::Parse(text);
      bool covered = false;
      for (const core::Cidr& parent : parents) {
        covered |= child.ok() && parent.Covers(*child);
      }
      within &= covered;
    }
    if (!within) {
      return RestrictionDenied(
          verb, "allowedCidrs",
          "whose every CIDR lies within one of its own allowed CIDRs");
    }
  }
  // Every limit of the caller must be matched by a limit of the key at
  // least as tight (as a rate); the per-minute limit counts as a limit of
  // 60 s.
  const std::vector<storage::KeyRateLimit> own =
      WithPerMinute(caller.key_rate_limit_per_minute, caller.key_rate_limits);
  if (!RateLimitsWithin(WithPerMinute(rate_limit_per_minute, rate_limits),
                        own)) {
    if (caller.key_rate_limits.empty()) {
      return RestrictionDenied(
          verb, "rateLimitPerMinute",
          absl::StrCat("whose rate limit is at most its own (",
                       caller.key_rate_limit_per_minute, " per minute)"));
    }
    return RestrictionDenied(
        verb, "rateLimits",
        "with, for each of its own rate limits, one whose rate is no higher");
  }
  return absl::OkStatus();
}

// Whether a concurrent edit of the key can invalidate the caller's
// authority checks (CheckMayManage): true for a key without admin:write or
// with restrictions of its own. Only such callers' rotations, disables and
// enables are pinned to the version they checked, so that concurrent
// changes by unrestricted callers still serialise on the row lock instead
// of aborting each other.
bool BoundByItsAuthority(const Principal& caller) {
  return caller.kind == Principal::Kind::kApiKey &&
         (!core::IsSubset(caller.scopes, {"admin:write"}) ||
          caller.key_expires_at.has_value() ||
          !caller.key_allowed_cidrs.empty() ||
          caller.key_rate_limit_per_minute > 0 ||
          !caller.key_rate_limits.empty());
}

// JSON values for the before/after of an edited field.
std::string JsonValue(const std::string& s) {
  std::string out;
  JsonObject::AppendString(out, s);
  return out;
}
std::string JsonValue(const std::vector<std::string>& list) {
  std::string out = "[";
  for (size_t i = 0; i < list.size(); ++i) {
    if (i > 0) out.push_back(',');
    JsonObject::AppendString(out, list[i]);
  }
  return out + "]";
}
std::string JsonValue(const core::StringMap& map) {
  JsonObject object;
  for (const auto& [key, value] : map) object.Add(key, value);
  return object.Build();
}
std::string JsonValue(const std::vector<storage::KeyRateLimit>& limits) {
  return RateLimitsJson(limits);
}
std::string JsonTimeOrNull(const std::optional<absl::Time>& t) {
  if (!t.has_value()) return "null";
  return JsonValue(
      absl::FormatTime("%Y-%m-%dT%H:%M:%E*SZ", *t, absl::UTCTimeZone()));
}

}  // namespace

std::string KeyStatusName(const storage::ApiKeyRecord& record) {
  if (record.revoked) return "revoked";
  if (record.expires_at.has_value() && record.db_now >= *record.expires_at) {
    return "expired";
  }
  if (record.disabled) return "disabled";
  return "active";
}

KeyService::KeyService(storage::KeyStore* store,
                       std::shared_ptr<const core::PepperSet> peppers,
                       Verifier* verifier, ChangeBarrier* barrier)
    : store_(store),
      peppers_(std::move(peppers)),
      verifier_(verifier),
      barrier_(barrier) {}

absl::Status KeyService::AwaitReplicas(int64_t tenant_id, absl::string_view id,
                                       absl::string_view change_type,
                                       int64_t version, bool changed,
                                       absl::Duration took) {
  if (barrier_ == nullptr) return absl::OkStatus();
  ChangeRef change;
  change.tenant_id = tenant_id;
  change.key_id = std::string(id);
  change.change_type = std::string(change_type);
  change.key_version = version;
  change.wrote_feed_row = changed;
  absl::Status acked = barrier_->AwaitChange(change, took);
  if (acked.ok()) return acked;
  return WithErrorKind(acked, ErrorKind::kUnavailable);
}

absl::StatusOr<storage::NewKey> KeyService::ValidateNewKey(
    const CreateKeyParams& params) {
  storage::NewKey key;
  if (absl::Status s = ValidateKeyName(params.name); !s.ok()) return s;
  key.name = params.name;
  absl::StatusOr<std::vector<std::string>> scopes =
      CanonicalKeyScopes(params.scopes);
  if (!scopes.ok()) return scopes.status();
  key.scopes = *std::move(scopes);
  absl::StatusOr<std::vector<std::string>> cidrs =
      CanonicalAllowedCidrs(params.allowed_cidrs);
  if (!cidrs.ok()) return cidrs.status();
  key.allowed_cidrs = *std::move(cidrs);
  if (absl::Status s = ValidateRateLimit(params.rate_limit_per_minute);
      !s.ok()) {
    return s;
  }
  key.rate_limit_per_minute = params.rate_limit_per_minute;
  if (absl::Status s = ValidateRateLimits(params.rate_limits,
                                          params.rate_limit_per_minute > 0);
      !s.ok()) {
    return s;
  }
  key.rate_limits = params.rate_limits;
  if (params.credits.has_value()) {
    if (absl::Status s =
            ValidateCredits(*params.credits, "credits", "remaining");
        !s.ok()) {
      return s;
    }
    key.quota = params.credits;
  }
  if (absl::Status s = ValidateExternalId(params.external_id); !s.ok()) {
    return s;
  }
  key.external_id = params.external_id;
  if (absl::Status s = ValidateMetadata(params.metadata); !s.ok()) return s;
  key.metadata = params.metadata;
  key.decoy = params.decoy;
  if (params.expires_at.has_value()) {
    absl::StatusOr<absl::Time> now = store_->Now();
    if (!now.ok()) return now.status();
    absl::StatusOr<absl::Time> expiry =
        ValidateExpiry(*params.expires_at, *now);
    if (!expiry.ok()) return expiry.status();
    key.expires_at = *expiry;
  }
  return key;
}

absl::StatusOr<storage::KeyPolicy> KeyService::CheckNewKeyPolicy(
    storage::NewKey& key) {
  absl::StatusOr<storage::KeyPolicyAt> read =
      store_->GetKeyPolicyAt(key.tenant_id);
  if (!read.ok()) return read.status();
  key.created_at = read->db_now;
  if (absl::Status s =
          CheckExpiryPolicy(read->policy, key.expires_at, read->db_now);
      !s.ok()) {
    return s;
  }
  return read->policy;
}

absl::StatusOr<std::string> KeyService::AssignIdAndSecret(
    storage::NewKey& key) {
  absl::StatusOr<std::string> id = core::GenerateKeyId();
  if (!id.ok()) return id.status();
  absl::StatusOr<std::string> full = core::GenerateKey(*id);
  if (!full.ok()) return full.status();
  const int version = peppers_->current_version();
  absl::StatusOr<core::Digest> digest = peppers_->Mac(version, *full);
  if (!digest.ok()) return digest.status();
  key.id = *std::move(id);
  key.secret.digest = *digest;
  key.secret.pepper_version = version;
  return full;
}

absl::StatusOr<KeyWithSecret> KeyService::InsertWithRetry(
    storage::NewKey key, const storage::KeyPolicy& policy,
    const Principal* caller, const RequestInfo& info) {
  for (int attempt = 0; attempt < kIdAttempts; ++attempt) {
    absl::StatusOr<std::string> full = AssignIdAndSecret(key);
    if (!full.ok()) return full.status();
    JsonObject metadata;
    metadata.Add("name", key.name)
        .Add("scopes", key.scopes)
        .Add("expiresAt", key.expires_at.has_value()
                              ? absl::FormatTime(*key.expires_at)
                              : std::string())
        .Add("allowedCidrs", key.allowed_cidrs);
    if (key.decoy) metadata.Add("decoy", true);
    storage::AuditEvent event =
        KeyEvent("api_key.created", caller, info, key.id, metadata.Build());
    absl::Status inserted = store_->InsertKey(key, event);
    if (absl::IsAlreadyExists(inserted)) {
      core::Cleanse(*full);
      continue;  // id collision: draw again
    }
    if (!inserted.ok()) {
      core::Cleanse(*full);
      return inserted;
    }
    // A negative cache entry for this id (a guess made before it existed)
    // must not outlive the creation.
    verifier_->Evict(key.id);
    // The reply is what was written (no read-back: docs/benchmarks.md
    // "Statements per mutation").
    return KeyWithSecret{storage::RecordOfNewKey(key), *std::move(full),
                         policy};
  }
  return absl::InternalError("could not allocate a unique key id");
}

absl::StatusOr<KeyWithSecret> KeyService::CreateKey(
    const Principal& caller, const RequestInfo& info,
    const CreateKeyParams& params) {
  absl::StatusOr<storage::NewKey> key = ValidateNewKey(params);
  if (!key.ok()) return key.status();
  if (!core::IsSubset(caller.scopes, key->scopes)) {
    return WithErrorKind(
        absl::PermissionDeniedError(
            "a key can only create keys whose scopes it holds itself"),
        ErrorKind::kScopeExceeded);
  }
  if (absl::Status inherited = CheckRestrictionsInherited(
          caller, "create", key->expires_at, key->allowed_cidrs,
          key->rate_limit_per_minute, key->rate_limits);
      !inherited.ok()) {
    return inherited;
  }
  key->tenant_id = caller.tenant_id;
  absl::StatusOr<storage::KeyPolicy> policy = CheckNewKeyPolicy(*key);
  if (!policy.ok()) return policy.status();
  if (caller.kind == Principal::Kind::kSession) {
    key->created_by_type = "user";
    key->created_by_id = caller.user_id;
  } else {
    key->created_by_type = "api_key";
    key->created_by_id = caller.key_id;
  }
  return InsertWithRetry(*std::move(key), *policy, &caller, info);
}

absl::StatusOr<storage::ApiKeyRecord> KeyService::GetKey(
    const Principal& caller, absl::string_view id) {
  if (absl::Status s = CheckKeyId(id); !s.ok()) return s;
  absl::StatusOr<storage::ApiKeyRecord> record =
      store_->GetKey(caller.tenant_id, id);
  if (!record.ok()) return Annotate(record.status());
  return record;
}

namespace {

// What a key list's page token is bound to: the tenant, the order and every
// filter.
QueryParts KeyListParts(int64_t tenant_id, const storage::ListKeysQuery& q) {
  return {"keys",
          absl::StrCat(tenant_id),
          absl::StrCat(static_cast<int>(q.sort_by)),
          q.descending ? "DESC" : "ASC",
          q.search,
          absl::StrCat(static_cast<int>(q.status)),
          absl::StrCat(static_cast<int>(q.state)),
          q.decoys ? "decoys" : "keys"};
}

}  // namespace

absl::StatusOr<storage::KeyPage> KeyService::ListKeys(
    const Principal& caller, const ListKeysParams& params,
    storage::ListKeysQuery* query_out) {
  storage::ListKeysQuery query;
  absl::StatusOr<ListCommon> common = ParseListCommon(
      params.page, params.limit, params.search, params.sort_dir);
  if (!common.ok()) return common.status();
  query.page = common->paging.page;
  query.limit = common->paging.limit;
  query.descending = common->descending;
  query.search = params.search;
  static constexpr SortOption<storage::KeySortField> kSortOptions[] = {
      {"createdAt", storage::KeySortField::kCreatedAt},
      {"name", storage::KeySortField::kName},
      {"lastUsedAt", storage::KeySortField::kLastUsedAt},
      {"expiresAt", storage::KeySortField::kExpiresAt},
  };
  absl::StatusOr<storage::KeySortField> sort_by =
      ParseSortBy(params.sort_by, kSortOptions);
  if (!sort_by.ok()) return sort_by.status();
  query.sort_by = *sort_by;
  if (params.status.empty()) {
    query.status = storage::KeyStatusFilter::kAny;
  } else if (params.status == "active") {
    query.status = storage::KeyStatusFilter::kActive;
  } else if (params.status == "revoked") {
    query.status = storage::KeyStatusFilter::kRevoked;
  } else if (params.status == "expired") {
    query.status = storage::KeyStatusFilter::kExpired;
  } else if (params.status == "disabled") {
    query.status = storage::KeyStatusFilter::kDisabled;
  } else {
    return InvalidField("status", "one of active, revoked, expired, disabled");
  }
  static constexpr std::pair<absl::string_view, storage::KeyStateFilter>
      kStates[] = {
          {"rotation_due", storage::KeyStateFilter::kRotationDue},
          {"expiring", storage::KeyStateFilter::kExpiring},
          {"inactive", storage::KeyStateFilter::kInactive},
          {"disabled", storage::KeyStateFilter::kDisabled},
      };
  if (!params.state.empty()) {
    query.state = storage::KeyStateFilter::kAny;
    for (const auto& [name, filter] : kStates) {
      if (params.state == name) query.state = filter;
    }
    if (query.state == storage::KeyStateFilter::kAny) {
      return InvalidField("state",
                          "one of rotation_due, expiring, inactive, disabled");
    }
  }
  query.decoys = params.decoys;
  absl::StatusOr<std::optional<SortPosition>> start = SortedPageStart(
      params.page, params.page_token, params.include_total,
      KeyListParts(caller.tenant_id, query),
      query.sort_by == storage::KeySortField::kName, &query.count);
  if (!start.ok()) return start.status();
  if (const std::optional<SortPosition>& p = *start; p.has_value()) {
    query.after = storage::KeyPosition{p->time, p->text, p->id};
  }
  if (query_out != nullptr) *query_out = query;
  return store_->ListKeys(caller.tenant_id, query);
}

std::string KeyService::NextPageToken(int64_t tenant_id,
                                      const storage::ListKeysQuery& query,
                                      const storage::KeyPage& page) {
  if (!page.has_more || page.keys.empty()) return "";
  const storage::KeyPosition last =
      storage::PositionOf(page.keys.back(), query.sort_by);
  return EncodeSortPosition(KeyListParts(tenant_id, query),
                            query.sort_by == storage::KeySortField::kName,
                            {last.time, last.name, last.id});
}

absl::StatusOr<KeyWithSecret> KeyService::RotateKey(
    const Principal& caller, const RequestInfo& info, absl::string_view id,
    int64_t grace_period_seconds, const std::optional<absl::Time>& expires_at) {
  if (grace_period_seconds < 0 ||
      grace_period_seconds > kMaxGracePeriodSeconds) {
    return InvalidField(
        "gracePeriodSeconds",
        absl::StrCat("must be between 0 and ", kMaxGracePeriodSeconds));
  }
  if (absl::Status s = CheckKeyId(id); !s.ok()) return s;
  std::optional<absl::Time> requested;
  if (expires_at.has_value()) {
    absl::StatusOr<absl::Time> now = store_->Now();
    if (!now.ok()) return now.status();
    absl::StatusOr<absl::Time> valid = ValidateExpiry(*expires_at, *now);
    if (!valid.ok()) return valid.status();
    requested = *valid;
  }
  absl::StatusOr<std::string> full = core::GenerateKey(id);
  if (!full.ok()) return full.status();
  storage::StoredSecret secret;
  secret.pepper_version = peppers_->current_version();
  absl::StatusOr<core::Digest> digest =
      peppers_->Mac(secret.pepper_version, *full);
  if (!digest.ok()) {
    core::Cleanse(*full);
    return digest.status();
  }
  secret.digest = *digest;
  // The checks read the key; the rotation applies only at that version, so
  // a concurrent edit makes them run again.
  for (int attempt = 0; attempt < kEditAttempts; ++attempt) {
    absl::StatusOr<storage::KeyWithPolicy> read =
        store_->GetKeyWithPolicy(caller.tenant_id, id);
    absl::StatusOr<storage::RotateOptions> options =
        read.ok()
            ? RotationOptions(caller, read->key, read->policy, requested)
            : absl::StatusOr<storage::RotateOptions>(Annotate(read.status()));
    if (!options.ok()) {
      core::Cleanse(*full);
      return options.status();
    }
    const storage::ApiKeyRecord& current = read->key;
    const storage::KeyPolicy& policy = read->policy;
    const bool renewal = current.expires_at.has_value() &&
                         *current.expires_at <= current.db_now &&
                         options->expires_at;
    JsonObject metadata;
    metadata.Add("gracePeriodSeconds", grace_period_seconds);
    if (options->expires_at && *options->expires_at != current.expires_at) {
      metadata.AddRaw(
          "expiresAt",
          absl::StrCat("{\"before\":", JsonTimeOrNull(current.expires_at),
                       ",\"after\":", JsonTimeOrNull(*options->expires_at),
                       "}"));
    }
    storage::AuditEvent event =
        KeyEvent(renewal ? "api_key.renewed" : "api_key.rotated", &caller, info,
                 id, metadata.Build());
    const auto started = std::chrono::steady_clock::now();
    absl::StatusOr<storage::ApiKeyRecord> rotated =
        store_->RotateKey(caller.tenant_id, id, secret,
                          absl::Seconds(grace_period_seconds), *options, event);
    const absl::Duration took =
        absl::FromChrono(std::chrono::steady_clock::now() - started);
    // Evict even on failure: the outcome of a failed commit is unknown to us.
    verifier_->Evict(id);
    if (absl::IsAborted(rotated.status())) continue;
    if (!rotated.ok()) {
      core::Cleanse(*full);
      if (absl::IsFailedPrecondition(rotated.status())) {
        return WithErrorKind(rotated.status(), ErrorKind::kInvalidRequest);
      }
      return Annotate(rotated.status());
    }
    if (absl::Status acked =
            AwaitReplicas(caller.tenant_id, id, "rotated", rotated->version,
                          /*changed=*/true, took);
        !acked.ok()) {
      // The rotation stands; its new secret is not handed out by a failed
      // call (rotate again once the replicas are healthy).
      core::Cleanse(*full);
      return acked;
    }
    return KeyWithSecret{*std::move(rotated), *std::move(full), policy};
  }
  core::Cleanse(*full);
  return WithErrorKind(
      absl::AbortedError("the key kept changing during the rotation; try "
                         "again"),
      ErrorKind::kUnavailable);
}

absl::StatusOr<storage::RotateOptions> KeyService::RotationOptions(
    const Principal& caller, const storage::ApiKeyRecord& current,
    const storage::KeyPolicy& tenant_policy,
    const std::optional<absl::Time>& requested) {
  if (absl::Status may = CheckMayManage(caller, "rotate", current); !may.ok()) {
    return may;
  }
  const storage::KeyPolicy* policy = &tenant_policy;
  storage::RotateOptions options;
  if (BoundByItsAuthority(caller)) options.expected_version = current.version;
  const absl::Time now = current.db_now;
  if (requested.has_value()) {
    options.expires_at = requested;
  } else if (policy->max_lifetime_days > 0) {
    // The new secret gets the longest life the policy allows.
    options.expires_at = absl::FromUnixMicros(
        absl::ToUnixMicros(now + absl::Hours(24) * policy->max_lifetime_days));
  }
  if (options.expires_at.has_value()) {
    if (absl::Status s = CheckExpiryPolicy(*policy, *options.expires_at, now);
        !s.ok()) {
      return s;
    }
    storage::ApiKeyRecord after = current;
    after.expires_at = *options.expires_at;
    if (absl::Status may = CheckMayManage(caller, "rotate", after); !may.ok()) {
      return may;
    }
  } else if (policy->require_expiry && !current.expires_at.has_value()) {
    return InvalidField("expiresAt",
                        "required by the tenant's key policy: give the "
                        "rotated key an expiry");
  }
  return options;
}

absl::StatusOr<storage::ApiKeyRecord> KeyService::RevokeKey(
    const Principal& caller, const RequestInfo& info, absl::string_view id) {
  if (absl::Status s = CheckKeyId(id); !s.ok()) return s;
  storage::AuditEvent event =
      KeyEvent("api_key.revoked", &caller, info, id, "{}");
  const auto started = std::chrono::steady_clock::now();
  absl::StatusOr<storage::RevokeResult> revoked =
      store_->RevokeKey(caller.tenant_id, id, event);
  const absl::Duration took =
      absl::FromChrono(std::chrono::steady_clock::now() - started);
  verifier_->Evict(id);
  if (!revoked.ok()) return Annotate(revoked.status());
  // Also when it was revoked already: a retry after a failed wait
  // announces the revocation again and waits for it.
  if (absl::Status acked =
          AwaitReplicas(caller.tenant_id, id, "revoked", revoked->key.version,
                        revoked->changed, took);
      !acked.ok()) {
    return acked;
  }
  return std::move(revoked->key);
}

absl::StatusOr<storage::ApiKeyRecord> KeyService::ContainLeakedKey(
    int64_t tenant_id, const RequestInfo& info, absl::string_view id,
    bool revoke) {
  if (absl::Status s = CheckKeyId(id); !s.ok()) return s;
  storage::AuditEvent event =
      KeyEvent(revoke ? "api_key.revoked" : "api_key.disabled", nullptr, info,
               id, JsonObject().Add("reason", "leaked").Build());
  event.actor_id = "secret-scanning";
  const auto started = std::chrono::steady_clock::now();
  absl::StatusOr<storage::UpdateResult> result;
  if (revoke) {
    absl::StatusOr<storage::RevokeResult> revoked =
        store_->RevokeKey(tenant_id, id, event);
    if (revoked.ok()) {
      result = storage::UpdateResult{std::move(revoked->key), revoked->changed};
    } else {
      result = revoked.status();
    }
  } else {
    result = store_->SetKeyDisabled(tenant_id, id, true, event);
  }
  return FinishStateChange(
      tenant_id, id, revoke ? "revoked" : "disabled", std::move(result),
      absl::FromChrono(std::chrono::steady_clock::now() - started));
}

absl::StatusOr<bool> KeyService::EndLeakedSecretGrace(
    int64_t tenant_id, const RequestInfo& info, absl::string_view id,
    const core::Digest& digest) {
  if (absl::Status s = CheckKeyId(id); !s.ok()) return s;
  storage::AuditEvent event = KeyEvent("api_key.updated", nullptr, info, id,
                                       JsonObject()
                                           .Add("reason", "leaked")
                                           .Add("previousSecret", "ended")
                                           .Build());
  event.actor_id = "secret-scanning";
  const auto started = std::chrono::steady_clock::now();
  absl::StatusOr<storage::UpdateResult> result =
      store_->EndRetiredSecretGrace(tenant_id, id, digest, event);
  const absl::Duration took =
      absl::FromChrono(std::chrono::steady_clock::now() - started);
  verifier_->Evict(id);
  if (!result.ok()) return Annotate(result.status());
  if (result->changed) {
    if (absl::Status acked = AwaitReplicas(tenant_id, id, "updated",
                                           result->key.version, true, took);
        !acked.ok()) {
      return acked;
    }
  }
  return result->changed;
}

absl::Status KeyService::DeleteKey(const Principal& caller,
                                   const RequestInfo& info,
                                   absl::string_view id) {
  if (absl::Status s = CheckKeyId(id); !s.ok()) return s;
  storage::AuditEvent event =
      KeyEvent("api_key.deleted", &caller, info, id, "{}");
  const auto started = std::chrono::steady_clock::now();
  absl::StatusOr<storage::DeleteResult> deleted =
      store_->DeleteKey(caller.tenant_id, id, event);
  const absl::Duration took =
      absl::FromChrono(std::chrono::steady_clock::now() - started);
  verifier_->Evict(id);
  if (!deleted.ok()) return Annotate(deleted.status());
  // A key deleted already answers NOT_FOUND as before, but only once the
  // replicas acknowledged the deletion again: this may be the retry of a
  // call whose wait failed.
  if (absl::Status acked =
          AwaitReplicas(caller.tenant_id, id, "deleted", deleted->version,
                        deleted->changed, took);
      !acked.ok()) {
    return acked;
  }
  if (!deleted->changed) return Annotate(absl::NotFoundError("deleted"));
  return absl::OkStatus();
}

absl::Status KeyService::CheckMayManage(const Principal& caller,
                                        absl::string_view verb,
                                        const storage::ApiKeyRecord& key) {
  if (!core::IsSubset(caller.scopes, key.scopes)) {
    return WithErrorKind(
        absl::PermissionDeniedError(absl::StrCat(
            "a key can only ", verb, " keys whose scopes it holds itself")),
        ErrorKind::kScopeExceeded);
  }
  return CheckRestrictionsInherited(caller, verb, key.expires_at,
                                    key.allowed_cidrs,
                                    key.rate_limit_per_minute, key.rate_limits);
}

absl::StatusOr<storage::ApiKeyRecord> KeyService::UpdateKey(
    const Principal& caller, const RequestInfo& info, absl::string_view id,
    const UpdateKeyParams& params) {
  absl::StatusOr<std::vector<KeyField>> fields =
      ParseKeyUpdateMask(params.update_mask);
  if (!fields.ok()) return fields.status();
  if (absl::Status s = CheckKeyId(id); !s.ok()) return s;

  // The requested values of the fields in the mask, validated.
  storage::KeyEdit wanted;
  for (KeyField field : *fields) {
    switch (field) {
      case KeyField::kName:
        if (absl::Status s = ValidateKeyName(params.name); !s.ok()) return s;
        wanted.name = params.name;
        break;
      case KeyField::kScopes: {
        absl::StatusOr<std::vector<std::string>> scopes =
            CanonicalKeyScopes(params.scopes);
        if (!scopes.ok()) return scopes.status();
        wanted.scopes = *std::move(scopes);
        break;
      }
      case KeyField::kAllowedCidrs: {
        absl::StatusOr<std::vector<std::string>> cidrs =
            CanonicalAllowedCidrs(params.allowed_cidrs);
        if (!cidrs.ok()) return cidrs.status();
        wanted.allowed_cidrs = *std::move(cidrs);
        break;
      }
      case KeyField::kRateLimitPerMinute:
        if (absl::Status s = ValidateRateLimit(params.rate_limit_per_minute);
            !s.ok()) {
          return s;
        }
        wanted.rate_limit_per_minute = params.rate_limit_per_minute;
        break;
      case KeyField::kExpiresAt:
        if (params.expires_at.has_value()) {
          absl::StatusOr<absl::Time> now = store_->Now();
          if (!now.ok()) return now.status();
          absl::StatusOr<absl::Time> expiry =
              ValidateExpiry(*params.expires_at, *now);
          if (!expiry.ok()) return expiry.status();
          wanted.expires_at = std::optional<absl::Time>(*expiry);
        } else {
          wanted.expires_at = std::optional<absl::Time>();
        }
        break;
      case KeyField::kExternalId:
        if (absl::Status s = ValidateExternalId(params.external_id); !s.ok()) {
          return s;
        }
        wanted.external_id = params.external_id;
        break;
      case KeyField::kMetadata:
        if (absl::Status s = ValidateMetadata(params.metadata); !s.ok()) {
          return s;
        }
        wanted.metadata = params.metadata;
        break;
      case KeyField::kRateLimits:
        // The name "default" is checked against the per-minute limit once
        // the record after the edit is known.
        if (absl::Status s = ValidateRateLimits(params.rate_limits,
                                                /*has_per_minute=*/false);
            !s.ok()) {
          return s;
        }
        wanted.rate_limits = params.rate_limits;
        storage::SortByName(&*wanted.rate_limits);
        break;
    }
  }

  // Read, check and write at that version; a concurrent change (ABORTED)
  // makes the whole check run again on the new record.
  for (int attempt = 0; attempt < kEditAttempts; ++attempt) {
    absl::StatusOr<storage::ApiKeyRecord> current =
        store_->GetKey(caller.tenant_id, id);
    if (!current.ok()) return Annotate(current.status());
    if (current->revoked) {
      return WithErrorKind(
          absl::FailedPreconditionError("a revoked key cannot be edited"),
          ErrorKind::kInvalidRequest);
    }
    if (absl::Status may = CheckMayManage(caller, "edit", *current);
        !may.ok()) {
      return may;
    }
    storage::ApiKeyRecord after = *current;
    storage::ApplyEdit(wanted, &after);
    if (wanted.rate_limits || wanted.rate_limit_per_minute) {
      if (absl::Status s = ValidateRateLimits(after.rate_limits,
                                              after.rate_limit_per_minute > 0);
          !s.ok()) {
        return s;
      }
    }
    if (wanted.expires_at && *wanted.expires_at != current->expires_at) {
      absl::StatusOr<storage::KeyPolicy> policy =
          store_->GetKeyPolicy(caller.tenant_id);
      if (!policy.ok()) return policy.status();
      if (absl::Status s = CheckExpiryPolicy(
              *policy, after.expires_at,
              current->rotated_at.value_or(current->created_at));
          !s.ok()) {
        return s;
      }
    }
    if (absl::Status may = CheckMayManage(caller, "edit", after); !may.ok()) {
      return may;
    }
    // Only the fields that change go to the store and the audit event.
    storage::KeyEdit edit;
    JsonObject changes;
    const auto change = [&changes](const char* path, const std::string& b,
                                   const std::string& a) {
      changes.AddRaw(path,
                     absl::StrCat("{\"before\":", b, ",\"after\":", a, "}"));
    };
    if (wanted.name && *wanted.name != current->name) {
      edit.name = wanted.name;
      change("name", JsonValue(current->name), JsonValue(*wanted.name));
    }
    if (wanted.scopes && *wanted.scopes != current->scopes) {
      edit.scopes = wanted.scopes;
      change("scopes", JsonValue(current->scopes), JsonValue(*wanted.scopes));
    }
    if (wanted.allowed_cidrs &&
        *wanted.allowed_cidrs != current->allowed_cidrs) {
      edit.allowed_cidrs = wanted.allowed_cidrs;
      change("allowedCidrs", JsonValue(current->allowed_cidrs),
             JsonValue(*wanted.allowed_cidrs));
    }
    if (wanted.rate_limit_per_minute &&
        *wanted.rate_limit_per_minute != current->rate_limit_per_minute) {
      edit.rate_limit_per_minute = wanted.rate_limit_per_minute;
      change("rateLimitPerMinute", absl::StrCat(current->rate_limit_per_minute),
             absl::StrCat(*wanted.rate_limit_per_minute));
    }
    if (wanted.expires_at && *wanted.expires_at != current->expires_at) {
      edit.expires_at = wanted.expires_at;
      change("expiresAt", JsonTimeOrNull(current->expires_at),
             JsonTimeOrNull(*wanted.expires_at));
    }
    if (wanted.external_id && *wanted.external_id != current->external_id) {
      edit.external_id = wanted.external_id;
      change("externalId", JsonValue(current->external_id),
             JsonValue(*wanted.external_id));
    }
    if (wanted.metadata && *wanted.metadata != current->metadata) {
      edit.metadata = wanted.metadata;
      change("metadata", JsonValue(current->metadata),
             JsonValue(*wanted.metadata));
    }
    if (wanted.rate_limits && *wanted.rate_limits != current->rate_limits) {
      edit.rate_limits = wanted.rate_limits;
      change("rateLimits", JsonValue(current->rate_limits),
             JsonValue(*wanted.rate_limits));
    }

    if (edit.empty()) {
      // Nothing to write; announced again and waited for, so that retrying
      // an edit whose wait failed gives the guarantee.
      if (absl::Status acked =
              AwaitReplicas(caller.tenant_id, id, "updated", current->version,
                            /*changed=*/false, absl::ZeroDuration());
          !acked.ok()) {
        return acked;
      }
      return current;
    }
    storage::AuditEvent event =
        KeyEvent("api_key.updated", &caller, info, id,
                 JsonObject().AddRaw("changes", changes.Build()).Build());
    const auto started = std::chrono::steady_clock::now();
    absl::StatusOr<storage::UpdateResult> updated =
        store_->UpdateKey(caller.tenant_id, id, current->version, edit, event);
    const absl::Duration took =
        absl::FromChrono(std::chrono::steady_clock::now() - started);
    verifier_->Evict(id);
    if (absl::IsAborted(updated.status())) continue;
    if (!updated.ok()) {
      if (absl::IsFailedPrecondition(updated.status())) {
        return WithErrorKind(updated.status(), ErrorKind::kInvalidRequest);
      }
      return Annotate(updated.status());
    }
    if (absl::Status acked =
            AwaitReplicas(caller.tenant_id, id, "updated", updated->key.version,
                          /*changed=*/true, took);
        !acked.ok()) {
      return acked;
    }
    return std::move(updated->key);
  }
  return WithErrorKind(
      absl::AbortedError("the key kept changing during the edit; try again"),
      ErrorKind::kUnavailable);
}

absl::StatusOr<storage::ApiKeyRecord> KeyService::SetKeyDisabled(
    const Principal& caller, const RequestInfo& info, absl::string_view id,
    bool disabled) {
  if (absl::Status s = CheckKeyId(id); !s.ok()) return s;
  const char* verb = disabled ? "disable" : "enable";
  const char* change_type = disabled ? "disabled" : "enabled";
  storage::AuditEvent event =
      KeyEvent(disabled ? "api_key.disabled" : "api_key.enabled", &caller, info,
               id, "{}");
  // The authority check reads the key; for a caller bound by it the change
  // applies only at that version, so a concurrent edit makes it run again.
  absl::StatusOr<storage::UpdateResult> result =
      absl::AbortedError("the key kept changing");
  absl::Duration took;
  for (int attempt = 0;
       attempt < kEditAttempts && absl::IsAborted(result.status()); ++attempt) {
    absl::StatusOr<storage::ApiKeyRecord> current =
        store_->GetKey(caller.tenant_id, id);
    if (!current.ok()) return Annotate(current.status());
    if (absl::Status may = CheckMayManage(caller, verb, *current); !may.ok()) {
      return may;
    }
    std::optional<int64_t> pinned;
    if (BoundByItsAuthority(caller)) pinned = current->version;
    const auto started = std::chrono::steady_clock::now();
    result =
        store_->SetKeyDisabled(caller.tenant_id, id, disabled, pinned, event);
    took = absl::FromChrono(std::chrono::steady_clock::now() - started);
  }
  return FinishStateChange(caller.tenant_id, id, change_type, std::move(result),
                           took);
}

absl::StatusOr<storage::ApiKeyRecord> KeyService::FinishStateChange(
    int64_t tenant_id, absl::string_view id, absl::string_view change_type,
    absl::StatusOr<storage::UpdateResult> result, absl::Duration took) {
  verifier_->Evict(id);
  if (!result.ok()) {
    if (absl::IsFailedPrecondition(result.status())) {
      return WithErrorKind(result.status(), ErrorKind::kInvalidRequest);
    }
    return Annotate(result.status());
  }
  if (absl::Status acked =
          AwaitReplicas(tenant_id, id, change_type, result->key.version,
                        result->changed, took);
      !acked.ok()) {
    return acked;
  }
  return std::move(result->key);
}

absl::StatusOr<KeyService::TenantWithKey> KeyService::CreateTenant(
    const RequestInfo& info, absl::string_view slug, absl::string_view name,
    const std::optional<CreateKeyParams>& initial_key) {
  if (!core::IsValidSlug(slug)) {
    return InvalidField("slug",
                        "1-63 characters of a-z, 0-9 and '-', not starting or "
                        "ending with '-'");
  }
  std::string display = name.empty() ? std::string(slug) : std::string(name);
  absl::Status name_ok = core::ValidateName("name", display, 1, 200);
  if (!name_ok.ok()) return AsInvalidField(name_ok);

  std::vector<storage::AuditEvent> events;
  storage::AuditEvent tenant_event;
  tenant_event.action = "tenant.created";
  tenant_event.category = "configuration";
  tenant_event.actor_type = "system";
  tenant_event.actor_id = "operator";
  tenant_event.target_type = "tenant";
  tenant_event.target_id = std::string(slug);
  tenant_event.ip_address = info.ip_address;
  tenant_event.user_agent = info.user_agent;
  tenant_event.request_id = info.request_id;
  tenant_event.metadata_json = JsonObject().Add("name", display).Build();
  events.push_back(tenant_event);

  for (int attempt = 0; attempt < kIdAttempts; ++attempt) {
    std::optional<storage::NewKey> key;
    std::string full;
    std::vector<storage::AuditEvent> all = events;
    if (initial_key.has_value()) {
      absl::StatusOr<storage::NewKey> validated = ValidateNewKey(*initial_key);
      if (!validated.ok()) return validated.status();
      key = *std::move(validated);
      key->created_by_type = "system";
      key->created_by_id = "operator";
      absl::StatusOr<std::string> assigned = AssignIdAndSecret(*key);
      if (!assigned.ok()) return assigned.status();
      full = *std::move(assigned);
      all.push_back(KeyEvent("api_key.created", nullptr, info, key->id,
                             JsonObject()
                                 .Add("name", key->name)
                                 .Add("scopes", key->scopes)
                                 .Build()));
    }
    absl::StatusOr<storage::Tenant> tenant = store_->CreateTenant(
        slug, display, key.has_value() ? &*key : nullptr, all);
    if (!tenant.ok()) {
      core::Cleanse(full);
      if (absl::IsAlreadyExists(tenant.status())) {
        // A slug clash is final; a key-id clash is retried. Tell them
        // apart by asking for the slug.
        if (store_->GetTenantBySlug(slug).ok()) {
          return WithErrorKind(
              absl::AlreadyExistsError("a tenant with this slug exists"),
              ErrorKind::kDuplicate);
        }
        continue;
      }
      return tenant.status();
    }
    TenantWithKey result;
    result.tenant = *std::move(tenant);
    if (key.has_value()) {
      verifier_->Evict(key->id);
      absl::StatusOr<storage::ApiKeyRecord> record =
          store_->GetKey(result.tenant.id, key->id);
      if (!record.ok()) {
        core::Cleanse(full);
        return record.status();
      }
      result.initial_key =
          KeyWithSecret{*std::move(record), std::move(full), std::nullopt};
    }
    return result;
  }
  return absl::InternalError("could not allocate a unique key id");
}

absl::StatusOr<storage::Tenant> KeyService::GetTenant(absl::string_view slug) {
  if (!core::IsValidSlug(slug)) {
    return WithErrorKind(absl::NotFoundError("tenant not found"),
                         ErrorKind::kNotFound);
  }
  absl::StatusOr<storage::Tenant> tenant = store_->GetTenantBySlug(slug);
  if (absl::IsNotFound(tenant.status())) {
    return WithErrorKind(absl::NotFoundError("tenant not found"),
                         ErrorKind::kNotFound);
  }
  return tenant;
}

absl::StatusOr<KeyWithSecret> KeyService::CreateTenantKey(
    const RequestInfo& info, absl::string_view tenant_slug,
    const CreateKeyParams& params) {
  absl::StatusOr<storage::Tenant> tenant = GetTenant(tenant_slug);
  if (!tenant.ok()) return tenant.status();
  absl::StatusOr<storage::NewKey> key = ValidateNewKey(params);
  if (!key.ok()) return key.status();
  key->tenant_id = tenant->id;
  absl::StatusOr<storage::KeyPolicy> policy = CheckNewKeyPolicy(*key);
  if (!policy.ok()) return policy.status();
  key->created_by_type = "system";
  key->created_by_id = "operator";
  return InsertWithRetry(*std::move(key), *policy, nullptr, info);
}

}  // namespace lumo::service
