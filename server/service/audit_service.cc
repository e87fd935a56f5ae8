#include "server/service/audit_service.h"

#include <algorithm>
#include <set>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "server/service/audit_json.h"
#include "server/service/errors.h"
#include "server/service/page_token.h"
#include "server/service/paging.h"

namespace lumo::service {
namespace {

// Column widths of audit_events (sql/migrations): a longer filter value
// cannot match anything, so it is refused as malformed.
constexpr size_t kMaxActionLength = 64;
constexpr size_t kMaxCategoryLength = 32;
constexpr size_t kMaxIdLength = 128;

// Printable ASCII without spaces: the alphabet of actions, categories and
// ids. Values are never echoed in errors.
bool IsToken(absl::string_view value, size_t max_length) {
  if (value.size() > max_length) return false;
  for (char c : value) {
    if (!absl::ascii_isgraph(static_cast<unsigned char>(c))) return false;
  }
  return true;
}

absl::StatusOr<storage::AuditQuery> ToQuery(const AuditFilterParams& f) {
  storage::AuditQuery q;
  if (!IsToken(f.action, kMaxActionLength)) {
    return InvalidField("action", "at most 64 printable characters");
  }
  if (!IsToken(f.category, kMaxCategoryLength)) {
    return InvalidField("category", "at most 32 printable characters");
  }
  if (!IsToken(f.actor_id, kMaxIdLength)) {
    return InvalidField("actorId", "at most 128 printable characters");
  }
  if (!IsToken(f.target_id, kMaxIdLength)) {
    return InvalidField("targetId", "at most 128 printable characters");
  }
  if (!f.outcome.empty() && f.outcome != "success" && f.outcome != "failure" &&
      f.outcome != "error") {
    return InvalidField("outcome", "success, failure or error");
  }
  if (f.start.has_value() && f.end.has_value() && *f.start >= *f.end) {
    return InvalidField("startDate", "must be before endDate");
  }
  q.action = f.action;
  q.category = f.category;
  q.actor_id = f.actor_id;
  q.target_id = f.target_id;
  q.outcome = f.outcome;
  q.suspicious = f.suspicious;
  q.start = f.start;
  q.end = f.end;
  return q;
}

// A positive decimal event id, or nullopt.
std::optional<int64_t> ParseEventId(absl::string_view text) {
  int64_t id = 0;
  if (text.empty() || text.size() > 19 || !absl::ascii_isdigit(text[0]) ||
      !absl::SimpleAtoi(text, &id) || id <= 0) {
    return std::nullopt;
  }
  return id;
}

// The version prefix of cursor texts, and a bound on their length (far
// above any real cursor: 17 lanes of at most 19 digits).
constexpr absl::string_view kCursorPrefix = "c1.";
constexpr size_t kMaxCursorLength = 1024;

}  // namespace

std::string EncodeAuditCursor(const storage::AuditCursor& cursor) {
  return absl::StrCat(kCursorPrefix, absl::StrJoin(cursor.lane_seqs, "."));
}

std::optional<storage::AuditCursor> DecodeAuditCursor(absl::string_view text) {
  if (text.size() > kMaxCursorLength ||
      !absl::ConsumePrefix(&text, kCursorPrefix)) {
    return std::nullopt;
  }
  storage::AuditCursor cursor;
  for (absl::string_view part : absl::StrSplit(text, '.')) {
    int64_t seq = 0;
    if (part.empty() || part.size() > 19 || !absl::ascii_isdigit(part[0]) ||
        !absl::SimpleAtoi(part, &seq) || seq < 0) {
      return std::nullopt;
    }
    cursor.lane_seqs.push_back(seq);
  }
  return cursor;
}

namespace {

// What an audit list's page token is bound to: the tenant, the order and
// every filter.
QueryParts AuditListParts(int64_t tenant_id, const storage::AuditQuery& q) {
  auto time = [](const std::optional<absl::Time>& t) {
    return t.has_value() ? TimeField(*t) : std::string("-");
  };
  return {"audit",
          absl::StrCat(tenant_id),
          q.oldest_first ? "ASC" : "DESC",
          q.action,
          q.category,
          q.actor_id,
          q.target_id,
          q.outcome,
          q.suspicious.has_value() ? (*q.suspicious ? "1" : "0") : "-",
          time(q.start),
          time(q.end),
          q.after_id.has_value() ? absl::StrCat(*q.after_id) : "-"};
}

}  // namespace

AuditService::AuditService(storage::AuditStore* audit, storage::KeyStore* keys,
                           storage::UserStore* users)
    : audit_(audit), keys_(keys), users_(users) {}

absl::StatusOr<ActorEmails> AuditService::EmailsOfActors(
    const Principal& caller,
    const std::vector<storage::StoredAuditEvent>& events) {
  std::set<std::string> users;
  for (const storage::StoredAuditEvent& e : events) {
    if (e.event.actor_type == "user" && !e.event.actor_id.empty()) {
      users.insert(e.event.actor_id);
    }
  }
  return EmailsOfUsers(caller, users);
}

absl::StatusOr<ActorEmails> AuditService::EmailsOfActors(
    const Principal& caller, const std::vector<storage::StoredChainRow>& rows) {
  std::set<std::string> users;
  for (const storage::StoredChainRow& r : rows) {
    const storage::AuditEvent& e = r.row.event;
    if (e.actor_type == "user" && !e.actor_id.empty()) users.insert(e.actor_id);
  }
  return EmailsOfUsers(caller, users);
}

absl::StatusOr<ActorEmails> AuditService::EmailsOfUsers(
    const Principal& caller, const std::set<std::string>& user_ids) {
  ActorEmails emails;
  for (const std::string& id : user_ids) {
    absl::StatusOr<storage::UserRecord> user =
        users_->GetUser(caller.tenant_id, storage::UserRef::Id(id));
    if (user.ok()) {
      emails[id] = user->email;
    } else if (!absl::IsNotFound(user.status())) {
      return user.status();
    }
  }
  return emails;
}

absl::StatusOr<storage::AuditPage> AuditService::List(
    const Principal& caller, const AuditListParams& params,
    storage::AuditQuery* applied) {
  absl::StatusOr<storage::AuditQuery> q = ToQuery(params.filters);
  if (!q.ok()) return q.status();
  absl::StatusOr<ListCommon> common =
      ParseListCommon(params.page, params.limit, "", params.sort_dir);
  if (!common.ok()) return common.status();
  q->page = common->paging.page;
  q->limit = common->paging.limit;
  q->oldest_first = !common->descending;
  if (!params.after_id.empty()) {
    std::optional<int64_t> after = ParseEventId(params.after_id);
    if (!after.has_value())
      return InvalidField("afterId", "a positive event id");
    q->after_id = *after;
  }
  if (!params.after_cursor.empty()) {
    std::optional<storage::AuditCursor> after =
        DecodeAuditCursor(params.after_cursor);
    if (!after.has_value()) {
      return InvalidField("afterCursor",
                          "a meta.nextCursor of an earlier reply");
    }
    if (q->page != 1) return InvalidField("page", "must be 1 with afterCursor");
    if (common->descending && !params.sort_dir.empty()) {
      return InvalidField("sortDir", "afterCursor reads oldest first (ASC)");
    }
    q->after_cursor = *std::move(after);
    q->oldest_first = true;
  }
  q->want_cursor = params.return_cursor;
  const bool has_token = !params.page_token.empty();
  if (absl::Status s = CheckPagingForm(params.page, has_token); !s.ok()) {
    return s;
  }
  q->count = CountFor(params.include_total, has_token);
  if (has_token) {
    if (q->after_cursor.has_value()) {
      return InvalidField("pageToken", "not with afterCursor");
    }
    absl::StatusOr<std::vector<PositionField>> position = DecodePageToken(
        params.page_token, AuditListParts(caller.tenant_id, *q), 1);
    if (!position.ok()) return position.status();
    absl::StatusOr<int64_t> id = ParseIntField((*position)[0]);
    if (!id.ok()) return id.status();
    q->after_position = *id;
  }
  *applied = *q;
  return audit_->ListEvents(caller.tenant_id, *q);
}

std::string AuditService::NextPageToken(int64_t tenant_id,
                                        const storage::AuditQuery& applied,
                                        const storage::AuditPage& page) {
  if (!page.has_more || page.events.empty() ||
      applied.after_cursor.has_value()) {
    return "";
  }
  return EncodePageToken(AuditListParts(tenant_id, applied),
                         {PositionField(absl::StrCat(page.events.back().id))});
}

absl::StatusOr<AuditSummaryCounts> AuditService::Summarize(
    const Principal& caller, const AuditFilterParams& params) {
  absl::StatusOr<storage::AuditQuery> q = ToQuery(params);
  if (!q.ok()) return q.status();
  q->limit = 0;  // counts only
  absl::StatusOr<storage::AuditPage> page =
      audit_->ListEvents(caller.tenant_id, *q);
  if (!page.ok()) return page.status();
  return AuditSummaryCounts{page->total, page->suspicious_total};
}

absl::StatusOr<storage::StoredAuditEvent> AuditService::Get(
    const Principal& caller, absl::string_view id) {
  std::optional<int64_t> parsed = ParseEventId(id);
  if (!parsed.has_value()) return absl::NotFoundError("no such audit event");
  return audit_->GetEvent(caller.tenant_id, *parsed);
}

absl::StatusOr<std::vector<storage::PreviousSecretUser>>
AuditService::PreviousSecretUsers(const Principal& caller,
                                  const storage::ApiKeyRecord& key) {
  if (!key.previous_secret_valid_until.has_value() || key.revoked ||
      !key.rotated_at.has_value()) {
    return std::vector<storage::PreviousSecretUser>();
  }
  return audit_->ListPreviousSecretUsers(
      caller.tenant_id, key.id, *key.rotated_at, kMaxPreviousSecretUsers);
}

absl::StatusOr<AuditExportPlan> AuditService::BeginExport(
    const Principal& caller, const AuditFilterParams& filters) {
  if (filters.start.has_value() && filters.end.has_value() &&
      *filters.start >= *filters.end) {
    return InvalidField("from", "must be before to");
  }
  absl::StatusOr<storage::AuditQuery> q = ToQuery(filters);
  if (!q.ok()) return q.status();
  absl::StatusOr<storage::ExportBound> bound =
      audit_->ReadExportBound(caller.tenant_id);
  if (!bound.ok()) return bound.status();
  return AuditExportPlan{*std::move(q), *std::move(bound)};
}

absl::StatusOr<storage::ExportPageRows> AuditService::ExportPage(
    const Principal& caller, const AuditExportPlan& plan, int64_t after_id,
    int limit) {
  return audit_->ExportPage(caller.tenant_id, plan.filters, plan.bound,
                            after_id, limit);
}

absl::StatusOr<std::vector<storage::StoredChainRow>> AuditService::Export(
    const Principal& caller, const AuditFilterParams& filters) {
  absl::StatusOr<AuditExportPlan> plan = BeginExport(caller, filters);
  if (!plan.ok()) return plan.status();
  // One more than the cap tells "too many" from "exactly the cap".
  std::vector<storage::StoredChainRow> events;
  int64_t after_id = 0;
  for (;;) {
    // Pages of at most 5,000 rows, as the streamed export reads them.
    absl::StatusOr<storage::ExportPageRows> page = ExportPage(
        caller, *plan, after_id,
        std::min(5000, kMaxExportRows + 1 - static_cast<int>(events.size())));
    if (!page.ok()) return page.status();
    for (storage::StoredChainRow& row : page->rows) {
      events.push_back(std::move(row));
    }
    if (events.size() > static_cast<size_t>(kMaxExportRows)) {
      return InvalidField(
          "from", absl::StrCat("the range holds more than ", kMaxExportRows,
                               " events; narrow it with from and to (RFC "
                               "3339), or use the streamed export"));
    }
    if (page->done) return events;
    after_id = page->next_after_id;
  }
}

void AuditService::RecordExport(const Principal& caller,
                                const RequestInfo& info,
                                const AuditExportPlan& plan,
                                const ExportOutcome& outcome) {
  if (writer_ == nullptr) return;
  storage::PendingAuditEvent pending;
  pending.tenant_id = caller.tenant_id;
  storage::AuditEvent& e = pending.event;
  e.action = "audit_log.exported";
  e.category = "audit";
  if (caller.kind == Principal::Kind::kSession) {
    e.actor_type = "user";
    e.actor_id = caller.user_id;
  } else {
    e.actor_type = "api_key";
    e.actor_id = caller.key_id;
  }
  e.outcome = outcome.status.ok() ? "success" : "error";
  e.ip_address = info.ip_address;
  e.user_agent = info.user_agent;
  e.request_id = info.request_id;
  const storage::AuditQuery& f = plan.filters;
  JsonObject filters;
  for (const auto& [name, value] :
       {std::pair<const char*, const std::string*>{"action", &f.action},
        {"category", &f.category},
        {"actorId", &f.actor_id},
        {"targetId", &f.target_id},
        {"outcome", &f.outcome}}) {
    if (!value->empty()) filters.Add(name, *value);
  }
  if (f.suspicious.has_value()) filters.Add("suspicious", *f.suspicious);
  auto time_text = [](absl::Time t) {
    return absl::FormatTime("%Y-%m-%dT%H:%M:%E6SZ", t, absl::UTCTimeZone());
  };
  if (f.start.has_value()) filters.Add("from", time_text(*f.start));
  if (f.end.has_value()) filters.Add("to", time_text(*f.end));
  e.metadata_json =
      JsonObject()
          .Add("format", outcome.format)
          .AddRaw("filters", filters.Build())
          .Add("boundMaxId", plan.bound.max_id)
          .Add("rows", outcome.rows)
          .Add("bytes", outcome.bytes)
          .Add("complete", outcome.status.ok())
          .Add("status",
               std::string(absl::StatusCodeToString(outcome.status.code())))
          .Build();
  writer_->Enqueue(pending);
}

absl::StatusOr<storage::ChainVerification> AuditService::VerifyChain(
    absl::string_view tenant_slug) {
  if (tenant_slug.empty()) {
    return InvalidFieldMessage("tenant_slug", "tenant_slug is required");
  }
  absl::StatusOr<storage::Tenant> tenant = keys_->GetTenantBySlug(tenant_slug);
  if (!tenant.ok()) return tenant.status();
  return audit_->VerifyChain(tenant->id);
}

}  // namespace lumo::service
