#include "server/rpc/audit_services.h"

#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "server/rpc/audit_format.h"
#include "server/rpc/call.h"
#include "server/rpc/convert.h"
#include "server/rpc/paging.h"

namespace lumo::rpc {
namespace {

using service::Principal;
using service::RequestInfo;

// An export file larger than this is refused like one with too many rows
// (the gateway accepts replies up to 64 MiB).
constexpr size_t kMaxExportBytes = 32 << 20;

// An optional time from a Timestamp field; INVALID_ARGUMENT names `field`.
absl::Status OptionalTime(bool has, const google::protobuf::Timestamp& t,
                          absl::string_view field,
                          std::optional<absl::Time>* out) {
  if (!has) return absl::OkStatus();
  absl::StatusOr<absl::Time> time = FromTimestamp(t);
  if (!time.ok()) {
    return service::InvalidField(field, "out of range");
  }
  *out = *time;
  return absl::OkStatus();
}

// The filter fields shared by ListAuditLogsRequest and
// GetAuditSummaryRequest (same names and numbers).
template <typename Request>
absl::StatusOr<service::AuditFilterParams> Filters(const Request& r) {
  service::AuditFilterParams f;
  f.action = r.action();
  f.category = r.category();
  f.actor_id = r.actor_id();
  f.target_id = r.target_id();
  f.outcome = r.outcome();
  if (r.has_suspicious()) f.suspicious = r.suspicious();
  if (absl::Status s = OptionalTime(r.has_start_date(), r.start_date(),
                                    "startDate", &f.start);
      !s.ok()) {
    return s;
  }
  if (absl::Status s =
          OptionalTime(r.has_end_date(), r.end_date(), "endDate", &f.end);
      !s.ok()) {
    return s;
  }
  return f;
}

// The range fields shared by the usage requests (same names and numbers).
template <typename Request>
absl::StatusOr<service::UsageRangeParams> UsageRange(const Request& r) {
  service::UsageRangeParams p;
  p.granularity = r.granularity();
  if (absl::Status s = OptionalTime(r.has_from(), r.from(), "from", &p.from);
      !s.ok()) {
    return s;
  }
  if (absl::Status s = OptionalTime(r.has_to(), r.to(), "to", &p.to); !s.ok()) {
    return s;
  }
  return p;
}

// Sets actor.email of every reply event whose actor has one in `emails`.
void AddActorEmails(const service::ActorEmails& emails,
                    lumo::audit::v1::AuditEvent* event) {
  if (event->actor().type() != "user") return;
  auto it = emails.find(event->actor().id());
  if (it != emails.end()) event->mutable_actor()->set_email(it->second);
}

void ToProto(const service::UsageCounts& c, lumo::audit::v1::UsageCounts* out) {
  out->set_calls(c.calls);
  out->set_verifications(c.verifications);
  out->set_api_calls(c.api_calls);
  out->set_failures(c.failures);
  for (const auto& [outcome, count] : c.outcomes) {
    (*out->mutable_outcomes())[outcome] = count;
  }
}

// The series fields shared by ApiKeyUsage and TenantUsage.
template <typename Reply>
void SeriesToProto(const service::UsageSeries& s, Reply* out) {
  out->set_granularity(service::GranularityName(s.granularity));
  ToTimestamp(s.from, out->mutable_from());
  ToTimestamp(s.to, out->mutable_to());
  ToProto(s.totals, out->mutable_totals());
  for (const service::UsageBucket& b : s.buckets) {
    lumo::audit::v1::UsageBucket* bucket = out->add_buckets();
    ToTimestamp(b.start, bucket->mutable_start());
    ToProto(b.counts, bucket->mutable_counts());
  }
}

void ToProto(const service::KeyUsageSummary& k,
             lumo::audit::v1::KeyUsageSummary* out) {
  out->set_key_id(k.key_id);
  out->set_name(k.name);
  out->set_deleted(k.deleted);
  out->set_calls(k.calls);
  out->set_failures(k.failures);
}

}  // namespace

grpc::ServerUnaryReactor* AuditServiceImpl::GetApiKeyUsage(
    grpc::CallbackServerContext* context,
    const lumo::audit::v1::GetApiKeyUsageRequest* request,
    lumo::audit::v1::ApiKeyUsage* response) {
  static const auto& method =
      Method("lumo.audit.v1.AuditService.GetApiKeyUsage");
  return RunAuthenticated(
      *ctx_.auth, *ctx_.workers, context, method, request->tenant_slug(), true,
      [this, request, response](const Principal& caller,
                                const RequestInfo&) -> absl::Status {
        absl::StatusOr<service::UsageRangeParams> range = UsageRange(*request);
        if (!range.ok()) return range.status();
        absl::StatusOr<service::UsageSeries> series =
            ctx_.usage->KeyUsage(caller, request->id(), *range);
        if (!series.ok()) return series.status();
        response->set_key_id(request->id());
        SeriesToProto(*series, response);
        return absl::OkStatus();
      });
}

grpc::ServerUnaryReactor* AuditServiceImpl::GetTenantUsage(
    grpc::CallbackServerContext* context,
    const lumo::audit::v1::GetTenantUsageRequest* request,
    lumo::audit::v1::TenantUsage* response) {
  static const auto& method =
      Method("lumo.audit.v1.AuditService.GetTenantUsage");
  return RunAuthenticated(
      *ctx_.auth, *ctx_.workers, context, method, request->tenant_slug(), true,
      [this, request, response](const Principal& caller,
                                const RequestInfo&) -> absl::Status {
        absl::StatusOr<service::UsageRangeParams> range = UsageRange(*request);
        if (!range.ok()) return range.status();
        std::optional<int32_t> limit;
        if (request->has_limit()) limit = request->limit();
        absl::StatusOr<service::TenantUsage> usage =
            ctx_.usage->TenantOverview(caller, *range, limit);
        if (!usage.ok()) return usage.status();
        SeriesToProto(usage->series, response);
        for (const service::KeyUsageSummary& k : usage->top_by_calls) {
          ToProto(k, response->add_top_keys_by_calls());
        }
        for (const service::KeyUsageSummary& k : usage->top_by_failures) {
          ToProto(k, response->add_top_keys_by_failures());
        }
        return absl::OkStatus();
      });
}

grpc::ServerUnaryReactor* AuditServiceImpl::ListAuditLogs(
    grpc::CallbackServerContext* context,
    const lumo::audit::v1::ListAuditLogsRequest* request,
    lumo::audit::v1::ListAuditLogsResponse* response) {
  static const auto& method =
      Method("lumo.audit.v1.AuditService.ListAuditLogs");
  return RunAuthenticated(
      *ctx_.auth, *ctx_.workers, context, method, request->tenant_slug(), true,
      [this, request, response](const Principal& caller,
                                const RequestInfo&) -> absl::Status {
        absl::StatusOr<service::AuditFilterParams> filters = Filters(*request);
        if (!filters.ok()) return filters.status();
        service::AuditListParams params;
        params.filters = *std::move(filters);
        if (request->has_page()) params.page = request->page();
        if (request->has_limit()) params.limit = request->limit();
        params.sort_dir = request->sort_dir();
        params.after_id = request->after_id();
        params.after_cursor = request->after_cursor();
        params.return_cursor = request->return_cursor();
        storage::AuditQuery applied;
        absl::StatusOr<storage::AuditPage> page =
            ctx_.audit->List(caller, params, &applied);
        if (!page.ok()) return page.status();
        absl::StatusOr<service::ActorEmails> emails =
            ctx_.audit->EmailsOfActors(caller, page->events);
        if (!emails.ok()) return emails.status();
        for (const storage::StoredAuditEvent& e : page->events) {
          lumo::audit::v1::AuditEvent* event = response->add_data();
          ToProto(e, event);
          AddActorEmails(*emails, event);
        }
        FillPageMeta(page->total, applied.page, applied.limit,
                     response->mutable_meta());
        if (page->next_cursor.has_value()) {
          response->mutable_meta()->set_next_cursor(
              service::EncodeAuditCursor(*page->next_cursor));
        }
        return absl::OkStatus();
      });
}

grpc::ServerUnaryReactor* AuditServiceImpl::GetAuditSummary(
    grpc::CallbackServerContext* context,
    const lumo::audit::v1::GetAuditSummaryRequest* request,
    lumo::audit::v1::AuditSummary* response) {
  static const auto& method =
      Method("lumo.audit.v1.AuditService.GetAuditSummary");
  return RunAuthenticated(
      *ctx_.auth, *ctx_.workers, context, method, request->tenant_slug(), true,
      [this, request, response](const Principal& caller,
                                const RequestInfo&) -> absl::Status {
        absl::StatusOr<service::AuditFilterParams> filters = Filters(*request);
        if (!filters.ok()) return filters.status();
        absl::StatusOr<service::AuditSummaryCounts> counts =
            ctx_.audit->Summarize(caller, *filters);
        if (!counts.ok()) return counts.status();
        response->set_total(counts->total);
        response->set_suspicious_count(counts->suspicious);
        return absl::OkStatus();
      });
}

grpc::ServerUnaryReactor* AuditServiceImpl::ExportAuditLogs(
    grpc::CallbackServerContext* context,
    const lumo::audit::v1::ExportAuditLogsRequest* request,
    lumo::api::HttpBody* response) {
  static const auto& method =
      Method("lumo.audit.v1.AuditService.ExportAuditLogs");
  return RunAuthenticated(
      *ctx_.auth, *ctx_.workers, context, method, request->tenant_slug(), true,
      [this, request, response](const Principal& caller,
                                const RequestInfo&) -> absl::Status {
        const std::string format = absl::AsciiStrToLower(request->format());
        if (!format.empty() && format != "csv" && format != "json") {
          return service::InvalidField("format", "csv or json");
        }
        std::optional<absl::Time> from, to;
        if (absl::Status s = OptionalTime(request->has_from(), request->from(),
                                          "from", &from);
            !s.ok()) {
          return s;
        }
        if (absl::Status s =
                OptionalTime(request->has_to(), request->to(), "to", &to);
            !s.ok()) {
          return s;
        }
        absl::StatusOr<std::vector<storage::StoredAuditEvent>> stored =
            ctx_.audit->Export(caller, from, to);
        if (!stored.ok()) return stored.status();
        absl::StatusOr<service::ActorEmails> emails =
            ctx_.audit->EmailsOfActors(caller, *stored);
        if (!emails.ok()) return emails.status();
        std::vector<lumo::audit::v1::AuditEvent> events(stored->size());
        for (size_t i = 0; i < stored->size(); ++i) {
          ToProto((*stored)[i], &events[i]);
          AddActorEmails(*emails, &events[i]);
        }
        // The tenant slug passed the authenticator's check against the
        // key's tenant; the filename still keeps to a safe alphabet.
        const std::string stamp = absl::FormatTime(
            "%Y%m%dT%H%M%SZ", absl::Now(), absl::UTCTimeZone());
        const std::string base =
            absl::StrCat("audit-", caller.tenant_slug, "-", stamp);
        if (format == "json") {
          response->set_content_type("application/json; charset=utf-8");
          response->set_data(RenderAuditJson(events));
          response->set_filename(base + ".json");
        } else {
          response->set_content_type("text/csv; charset=utf-8");
          response->set_data(RenderAuditCsv(events));
          response->set_filename(base + ".csv");
        }
        if (response->data().size() > kMaxExportBytes) {
          response->Clear();
          return service::InvalidField(
              "from",
              "the export would exceed 32 MiB; narrow it with from and to "
              "(RFC 3339)");
        }
        return absl::OkStatus();
      });
}

grpc::ServerUnaryReactor* AuditServiceImpl::GetAuditLog(
    grpc::CallbackServerContext* context,
    const lumo::audit::v1::GetAuditLogRequest* request,
    lumo::audit::v1::AuditEvent* response) {
  static const auto& method = Method("lumo.audit.v1.AuditService.GetAuditLog");
  return RunAuthenticated(
      *ctx_.auth, *ctx_.workers, context, method, request->tenant_slug(), true,
      [this, request, response](const Principal& caller,
                                const RequestInfo&) -> absl::Status {
        absl::StatusOr<storage::StoredAuditEvent> event =
            ctx_.audit->Get(caller, request->id());
        if (!event.ok()) return event.status();
        absl::StatusOr<service::ActorEmails> emails =
            ctx_.audit->EmailsOfActors(caller, {*event});
        if (!emails.ok()) return emails.status();
        ToProto(*event, response);
        AddActorEmails(*emails, response);
        return absl::OkStatus();
      });
}

}  // namespace lumo::rpc
