#include "server/rpc/audit_services.h"

#include <atomic>
#include <chrono>
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

// A unary export file larger than this is refused like one with too many
// rows (the gateway accepts replies up to 64 MiB).
constexpr size_t kMaxExportBytes = 32 << 20;
// A streamed export: rows read per page, and the size at which a message
// is sent (a message ends at the first row boundary past it).
constexpr int kExportPageRows = 5000;
constexpr size_t kExportMessageBytes = 256 << 10;

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

// The filter fields every audit request names alike (ListAuditLogsRequest,
// GetAuditSummaryRequest, ExportAuditLogsRequest), and its time range
// (named `start` and `end` as the request's fields, for the error).
template <typename Request>
absl::StatusOr<service::AuditFilterParams> FilterFields(
    const Request& r, bool has_start, const google::protobuf::Timestamp& start,
    absl::string_view start_name, bool has_end,
    const google::protobuf::Timestamp& end, absl::string_view end_name) {
  service::AuditFilterParams f;
  f.action = r.action();
  f.category = r.category();
  f.actor_id = r.actor_id();
  f.target_id = r.target_id();
  f.outcome = r.outcome();
  if (r.has_suspicious()) f.suspicious = r.suspicious();
  if (absl::Status s = OptionalTime(has_start, start, start_name, &f.start);
      !s.ok()) {
    return s;
  }
  if (absl::Status s = OptionalTime(has_end, end, end_name, &f.end); !s.ok()) {
    return s;
  }
  return f;
}

// The filters of ListAuditLogsRequest and GetAuditSummaryRequest (same
// names and numbers): the range is startDate / endDate.
template <typename Request>
absl::StatusOr<service::AuditFilterParams> Filters(const Request& r) {
  return FilterFields(r, r.has_start_date(), r.start_date(), "startDate",
                      r.has_end_date(), r.end_date(), "endDate");
}

// What an export request asks for: its format ("csv" or "json") and
// filters (`from` / `to` as the range).
struct ExportRequestParams {
  std::string format;
  service::AuditFilterParams filters;
};

absl::StatusOr<ExportRequestParams> ExportParams(
    const lumo::audit::v1::ExportAuditLogsRequest& r) {
  ExportRequestParams p;
  p.format = absl::AsciiStrToLower(r.format());
  if (p.format.empty()) p.format = "csv";
  if (p.format != "csv" && p.format != "json") {
    return service::InvalidField("format", "csv or json");
  }
  absl::StatusOr<service::AuditFilterParams> filters =
      FilterFields(r, r.has_from(), r.from(), "from", r.has_to(), r.to(), "to");
  if (!filters.ok()) return filters.status();
  p.filters = *std::move(filters);
  return p;
}

// The name of an export file: audit-<tenant>-<UTC time>.<csv|json|jsonl>.
// The tenant slug passed the authenticator's check against the caller's
// tenant; the gateway still keeps filenames to a safe alphabet.
std::string ExportFilename(const service::Principal& caller,
                           absl::string_view extension) {
  return absl::StrCat(
      "audit-", caller.tenant_slug, "-",
      absl::FormatTime("%Y%m%dT%H%M%SZ", absl::Now(), absl::UTCTimeZone()), ".",
      extension);
}

// Appends `rows` to `out` in `format` (CSV rows, or JSON objects each
// followed by `json_separator`).
void AppendExportRows(const std::vector<storage::StoredChainRow>& rows,
                      size_t begin, size_t end,
                      const service::ActorEmails& emails,
                      absl::string_view format,
                      absl::string_view json_separator, std::string* out) {
  for (size_t i = begin; i < end; ++i) {
    const storage::StoredChainRow& r = rows[i];
    const std::string* email = nullptr;
    if (r.row.event.actor_type == "user") {
      auto it = emails.find(r.row.event.actor_id);
      if (it != emails.end()) email = &it->second;
    }
    if (format == "json") {
      AppendAuditJsonObject(r, email, out);
      out->append(json_separator.data(), json_separator.size());
    } else {
      AppendAuditCsvRow(r, email, out);
    }
  }
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
        for (const storage::DayCount& d : usage->suspicious_per_day) {
          lumo::audit::v1::DayCount* day = response->add_suspicious_per_day();
          ToTimestamp(d.day_start, day->mutable_day());
          day->set_count(d.count);
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
        params.page_token = request->page_token();
        if (request->has_include_total()) {
          params.include_total = request->include_total();
        }
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
        FillPageMeta(KeysetPageMeta{page->total, page->total_kind, applied.page,
                                    applied.after_position.has_value(),
                                    applied.limit, page->has_more,
                                    service::AuditService::NextPageToken(
                                        caller.tenant_id, applied, *page)},
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
        absl::StatusOr<ExportRequestParams> params = ExportParams(*request);
        if (!params.ok()) return params.status();
        absl::StatusOr<std::vector<storage::StoredChainRow>> rows =
            ctx_.audit->Export(caller, params->filters);
        if (!rows.ok()) return rows.status();
        absl::StatusOr<service::ActorEmails> emails =
            ctx_.audit->EmailsOfActors(caller, *rows);
        if (!emails.ok()) return emails.status();
        std::string data;
        if (params->format == "json") {
          response->set_content_type("application/json; charset=utf-8");
          response->set_filename(ExportFilename(caller, "json"));
          data = "[";
          AppendExportRows(*rows, 0, rows->size(), *emails, "json", ",", &data);
          if (data.size() > 1) data.pop_back();  // the last separator
          data += "]";
        } else {
          response->set_content_type("text/csv; charset=utf-8");
          response->set_filename(ExportFilename(caller, "csv"));
          data = AuditCsvHeader();
          AppendExportRows(*rows, 0, rows->size(), *emails, "csv", "", &data);
        }
        if (data.size() > kMaxExportBytes) {
          response->Clear();
          return service::InvalidField(
              "from",
              "the export would exceed 32 MiB; narrow it with from and to "
              "(RFC 3339)");
        }
        response->set_data(std::move(data));
        return absl::OkStatus();
      });
}

namespace {

// One streamed export (StreamAuditExport): authenticates on a worker,
// reads the bound, then alternates between a worker filling one message
// (reading a page of rows when the last one is used up) and gRPC sending
// it, so at most one page and one message are held, and the next message
// is made only once gRPC has taken the previous one (flow control reaches
// back to the database reads). Exactly one of "a worker task is queued or
// running" and "a write is pending" holds until the call ends, so every
// member below is touched by one thread at a time (handed over through the
// worker pool's queue and gRPC's callbacks); `cancelled_` is the only
// state OnCancel writes. Deletes itself in OnDone.
class ExportStream final
    : public grpc::ServerWriteReactor<lumo::api::HttpBody> {
 public:
  ExportStream(const AuditRpcContext& ctx, grpc::CallbackServerContext* context,
               const lumo::audit::v1::ExportAuditLogsRequest* request)
      : ctx_(ctx),
        context_(context),
        request_(request),
        info_(ctx.auth->DescribeRequest(*context)) {}

  void Start() {
    if (!ctx_.workers->Submit([this] { Begin(); })) End(ServerBusy());
  }

  void OnWriteDone(bool ok) override {
    if (!ok) {
      End(absl::CancelledError("the client went away"));
      return;
    }
    message_.Clear();
    if (exhausted_) {
      End(absl::OkStatus());
      return;
    }
    if (!ctx_.workers->Submit([this] { Produce(); })) End(ServerBusy());
  }
  void OnCancel() override { cancelled_.store(true); }
  void OnDone() override { delete this; }

 private:
  static const google::protobuf::MethodDescriptor& TheMethod() {
    static const auto& method =
        Method("lumo.audit.v1.AuditService.StreamAuditExport");
    return method;
  }

  // On a worker: the caller, the request, the bound, the first message.
  void Begin() {
    storage::ScopedCallDeadline call_deadline(CallDeadline(*context_));
    if (context_->deadline() <= std::chrono::system_clock::now()) {
      End(absl::DeadlineExceededError("deadline exceeded before start"));
      return;
    }
    if (request_->tenant_slug().empty()) {
      End(service::InvalidFieldMessage("tenant_slug",
                                       "tenant_slug is required"));
      return;
    }
    absl::StatusOr<Principal> principal = ctx_.auth->Authenticate(
        *context_, TheMethod(), request_->tenant_slug(), info_, &outcome_);
    if (!principal.ok()) {
      End(principal.status());
      return;
    }
    principal_ = *std::move(principal);
    absl::StatusOr<ExportRequestParams> params = ExportParams(*request_);
    if (!params.ok()) {
      End(params.status());
      return;
    }
    format_ = params->format;
    absl::StatusOr<service::AuditExportPlan> plan =
        ctx_.audit->BeginExport(*principal_, params->filters);
    if (!plan.ok()) {
      End(plan.status());
      return;
    }
    plan_ = *std::move(plan);
    if (format_ == "json") {
      message_.set_content_type("application/x-ndjson; charset=utf-8");
      message_.set_filename(ExportFilename(*principal_, "jsonl"));
    } else {
      message_.set_content_type("text/csv; charset=utf-8");
      message_.set_filename(ExportFilename(*principal_, "csv"));
      message_.set_data(AuditCsvHeader());
      bytes_ = static_cast<int64_t>(message_.data().size());
    }
    AddReplyInitialMetadata(context_, info_, &outcome_);
    metadata_sent_ = true;
    Produce();
  }

  // On a worker: fills message_ up to kExportMessageBytes (or the end) and
  // starts writing it.
  void Produce() {
    storage::ScopedCallDeadline call_deadline(CallDeadline(*context_));
    std::string* data = message_.mutable_data();
    while (!exhausted_ && data->size() < kExportMessageBytes) {
      if (cancelled_.load()) {
        End(absl::CancelledError("the export was cancelled"));
        return;
      }
      if (next_row_ == page_.size()) {
        if (last_page_) {
          exhausted_ = true;
          break;
        }
        absl::StatusOr<storage::ExportPageRows> page = ctx_.audit->ExportPage(
            *principal_, *plan_, last_id_, kExportPageRows);
        if (!page.ok()) {
          End(page.status());
          return;
        }
        page_ = std::move(page->rows);
        next_row_ = 0;
        last_id_ = page->next_after_id;
        last_page_ = page->done;
        absl::StatusOr<service::ActorEmails> emails =
            ctx_.audit->EmailsOfActors(*principal_, page_);
        if (!emails.ok()) {
          End(emails.status());
          return;
        }
        emails_ = *std::move(emails);
        continue;
      }
      const size_t before = data->size();
      AppendExportRows(page_, next_row_, next_row_ + 1, emails_, format_, "\n",
                       data);
      ++next_row_;
      ++rows_;
      bytes_ += static_cast<int64_t>(data->size() - before);
    }
    if (exhausted_) {
      page_.clear();
      page_.shrink_to_fit();
    }
    if (data->empty() && !first_message_) {
      End(absl::OkStatus());  // nothing after the last full message
      return;
    }
    first_message_ = false;
    StartWrite(&message_);
  }

  // Ends the call with `status` (once): records the key's use and, for an
  // export that began, the export itself; any thread.
  void End(const absl::Status& status) {
    if (ended_) return;
    ended_ = true;
    if (principal_.has_value() &&
        principal_->kind == Principal::Kind::kApiKey) {
      if (service::UsageAuditor* usage = ctx_.auth->usage_auditor()) {
        usage->RecordKeyUse(*principal_, info_, TheMethod().full_name(),
                            status);
      }
    }
    if (plan_.has_value()) {
      service::AuditService::ExportOutcome outcome;
      outcome.format = format_;
      outcome.rows = rows_;
      outcome.bytes = bytes_;
      outcome.status = status;
      ctx_.audit->RecordExport(*principal_, info_, *plan_, outcome);
    }
    if (!metadata_sent_) AddReplyInitialMetadata(context_, info_, &outcome_);
    Finish(FinalStatus(context_, info_, status, &outcome_));
  }

  const AuditRpcContext ctx_;
  grpc::CallbackServerContext* const context_;
  const lumo::audit::v1::ExportAuditLogsRequest* const request_;
  const RequestInfo info_;
  std::atomic<bool> cancelled_{false};

  service::VerifyOutcome outcome_;
  std::optional<Principal> principal_;
  std::string format_;
  std::optional<service::AuditExportPlan> plan_;
  lumo::api::HttpBody message_;
  bool metadata_sent_ = false;
  bool first_message_ = true;
  std::vector<storage::StoredChainRow> page_;
  service::ActorEmails emails_;
  size_t next_row_ = 0;
  bool last_page_ = false;
  bool exhausted_ = false;
  bool ended_ = false;
  int64_t last_id_ = 0;
  int64_t rows_ = 0;
  int64_t bytes_ = 0;
};

}  // namespace

grpc::ServerWriteReactor<lumo::api::HttpBody>*
AuditServiceImpl::StreamAuditExport(
    grpc::CallbackServerContext* context,
    const lumo::audit::v1::ExportAuditLogsRequest* request) {
  auto* stream = new ExportStream(ctx_, context, request);
  stream->Start();
  return stream;
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
