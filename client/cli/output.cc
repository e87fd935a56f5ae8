#include "cli/output.h"

#include <algorithm>
#include <cstdint>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/time.h"
#include "google/protobuf/util/json_util.h"

namespace lumo::cli {
namespace {

constexpr absl::string_view kNone = "-";

// "-" for an unset timestamp, else FormatTimestamp.
std::string TimeOr(bool set, const google::protobuf::Timestamp& timestamp,
                   absl::string_view unset = kNone) {
  return set ? FormatTimestamp(timestamp) : std::string(unset);
}

std::string JoinOr(const google::protobuf::RepeatedPtrField<std::string>& list,
                   absl::string_view separator) {
  if (list.empty()) return std::string(kNone);
  std::vector<std::string> cleaned;
  cleaned.reserve(list.size());
  for (const std::string& item : list) cleaned.push_back(Sanitize(item));
  return absl::StrJoin(cleaned, separator);
}

// "page P of N (T things in total)"; a count that stopped at its cap says
// "at least", one that was not made says nothing of the total.
std::string PageFooter(const lumo::api::PageMeta& meta, absl::string_view one,
                       absl::string_view many) {
  if (meta.total_relation() == "unknown") {
    return absl::StrCat(meta.has_next_page() ? "more " : "no more ", many,
                        " after this page\n");
  }
  const char* bound = meta.total_relation() == "gte" ? "at least " : "";
  return absl::StrCat("page ", meta.page(), " of ", bound,
                      std::max(meta.total_pages(), 1), " (", bound,
                      meta.total(), " ", meta.total() == 1 ? one : many,
                      " in total)\n");
}

std::string TextOr(absl::string_view text) {
  return text.empty() ? std::string(kNone) : Sanitize(text);
}

// Display width in columns, counting UTF-8 code points (good enough for
// names; wide characters are rare in key names).
size_t Width(absl::string_view text) {
  size_t width = 0;
  for (char c : text) {
    if ((static_cast<unsigned char>(c) & 0xC0) != 0x80) ++width;
  }
  return width;
}

}  // namespace

std::string Sanitize(absl::string_view text) {
  std::string out(text);
  for (char& c : out) {
    const unsigned char u = static_cast<unsigned char>(c);
    if (u < 0x20 || u == 0x7f) c = '?';
  }
  return out;
}

std::string FormatTimestamp(const google::protobuf::Timestamp& timestamp) {
  const absl::Time time = absl::FromUnixSeconds(timestamp.seconds());
  return absl::FormatTime("%Y-%m-%dT%H:%M:%SZ", time, absl::UTCTimeZone());
}

std::string FormatFields(
    const std::vector<std::pair<std::string, std::string>>& fields) {
  size_t width = 0;
  for (const auto& [label, value] : fields) {
    width = std::max(width, Width(label) + 1);
  }
  std::string out;
  for (const auto& [label, value] : fields) {
    // Values start one column after the widest "label:".
    std::string line = absl::StrCat(label, ":");
    line.append(width - Width(label), ' ');
    absl::StrAppend(&out, line, value, "\n");
  }
  return out;
}

std::string FormatTable(const std::vector<std::vector<std::string>>& rows) {
  std::vector<size_t> widths;
  for (const auto& row : rows) {
    if (widths.size() < row.size()) widths.resize(row.size(), 0);
    for (size_t i = 0; i < row.size(); ++i) {
      widths[i] = std::max(widths[i], Width(row[i]));
    }
  }
  std::string out;
  for (const auto& row : rows) {
    std::string line;
    for (size_t i = 0; i < row.size(); ++i) {
      absl::StrAppend(&line, row[i]);
      if (i + 1 < row.size()) line.append(widths[i] - Width(row[i]) + 2, ' ');
    }
    absl::StrAppend(&out, line, "\n");
  }
  return out;
}

namespace {

// "k=v, k2=v2" in key order, each part sanitized; "-" when empty.
std::string FormatMetadata(
    const google::protobuf::Map<std::string, std::string>& metadata) {
  google::protobuf::RepeatedPtrField<std::string> parts;
  for (const auto& [key, value] : metadata) {
    parts.Add(absl::StrCat(key, "=", value));
  }
  std::sort(parts.begin(), parts.end());
  return JoinOr(parts, ", ");
}

// "burst 5/1s, hourly 500/3600s" (names sanitized), or "-".
std::string FormatRateLimits(
    const google::protobuf::RepeatedPtrField<lumo::keys::v1::RateLimit>&
        limits) {
  google::protobuf::RepeatedPtrField<std::string> parts;
  for (const lumo::keys::v1::RateLimit& l : limits) {
    parts.Add(
        absl::StrCat(l.name(), " ", l.limit(), "/", l.duration_seconds(), "s"));
  }
  return JoinOr(parts, ", ");
}

// "1000 left, refilled to 1000 every 3600s", "none".
std::string FormatQuota(bool has_quota, int64_t remaining, bool has_refill,
                        const lumo::keys::v1::CreditRefill& refill) {
  if (!has_quota) return std::string(kNone);
  std::string out = absl::StrCat(remaining, " left");
  if (has_refill && refill.interval_seconds() > 0) {
    absl::StrAppend(&out, ", refilled to ", refill.amount(), " every ",
                    refill.interval_seconds(), "s");
  }
  return out;
}

// The states that hold ("rotation due, inactive"), or "-"; for either
// KeyState message (admin API or verify reply: the same members).
template <typename KeyStateMessage>
std::string FormatStates(const KeyStateMessage& state) {
  google::protobuf::RepeatedPtrField<std::string> on;
  if (state.rotation_due()) on.Add("rotation due");
  if (state.expiring_soon()) on.Add("expiring");
  if (state.inactive()) on.Add("inactive");
  if (state.disabled()) on.Add("disabled");
  return JoinOr(on, ", ");
}

}  // namespace

std::string FormatApiKey(const lumo::keys::v1::ApiKey& key, bool show_key) {
  std::vector<std::pair<std::string, std::string>> fields = {
      {"id", TextOr(key.id())},
      {"prefix", TextOr(key.prefix())},
      {"name", TextOr(key.name())},
      {"status", TextOr(key.status())},
      {"scopes", JoinOr(key.scopes(), ", ")},
      {"created", TimeOr(key.has_created_at(), key.created_at())},
      {"created by", key.has_created_by()
                         ? TextOr(absl::StrCat(key.created_by().type(), " ",
                                               key.created_by().id()))
                         : std::string(kNone)},
      {"last used",
       TimeOr(key.has_last_used_at(), key.last_used_at(), "never")},
      {"expires", TimeOr(key.has_expires_at(), key.expires_at(), "never")},
      {"rotated", TimeOr(key.has_rotated_at(), key.rotated_at())},
      {"revoked", TimeOr(key.has_revoked_at(), key.revoked_at())},
      {"allowed cidrs", JoinOr(key.allowed_cidrs(), ", ")},
      {"rate limit", key.rate_limit_per_minute() > 0
                         ? absl::StrCat(key.rate_limit_per_minute(), "/min")
                         : "none"},
      {"rate limits", FormatRateLimits(key.rate_limits())},
      {"credits",
       FormatQuota(key.has_credits(), key.credits().remaining(),
                   key.credits().has_refill(), key.credits().refill())},
      {"version", absl::StrCat(key.version())},
      {"external id", TextOr(key.external_id())},
      {"metadata", FormatMetadata(key.metadata())},
      {"states", FormatStates(key.state())},
      {"rotation due", TimeOr(key.state().has_rotation_due_at(),
                              key.state().rotation_due_at(), "never")},
  };
  if (key.has_disabled_at()) {
    fields.emplace_back("disabled", FormatTimestamp(key.disabled_at()));
  }
  if (key.has_previous_secret_valid_until()) {
    fields.emplace_back("old secret valid until",
                        FormatTimestamp(key.previous_secret_valid_until()));
  }
  if (show_key && !key.key().empty()) {
    fields.emplace_back("key", Sanitize(key.key()));
  }
  return FormatFields(fields);
}

std::string FormatCredits(const lumo::keys::v1::ApiKeyCredits& credits) {
  std::vector<std::pair<std::string, std::string>> fields = {
      {"id", TextOr(credits.id())},
      {"credits", FormatQuota(credits.has_quota(), credits.remaining(),
                              credits.has_refill(), credits.refill())},
  };
  if (credits.has_next_refill()) {
    fields.emplace_back("next refill", FormatTimestamp(credits.next_refill()));
  }
  return FormatFields(fields);
}

std::string FormatIdentityLimits(const lumo::keys::v1::IdentityLimits& limits) {
  return FormatFields(
      {{"external id", TextOr(limits.external_id())},
       {"rate limits", FormatRateLimits(limits.rate_limits())}});
}

std::string FormatApiKeyList(const lumo::keys::v1::ListApiKeysResponse& list) {
  std::vector<std::vector<std::string>> rows = {{"PREFIX", "NAME", "STATUS",
                                                 "SCOPES", "CREATED",
                                                 "LAST USED", "EXPIRES"}};
  for (const lumo::keys::v1::ApiKey& key : list.data()) {
    rows.push_back({TextOr(key.prefix().empty() ? absl::StrCat("lmk_", key.id())
                                                : key.prefix()),
                    TextOr(key.name()), TextOr(key.status()),
                    JoinOr(key.scopes(), ","),
                    TimeOr(key.has_created_at(), key.created_at()),
                    TimeOr(key.has_last_used_at(), key.last_used_at(), "never"),
                    TimeOr(key.has_expires_at(), key.expires_at(), "never")});
  }
  std::string out = list.data().empty() ? "no keys\n" : FormatTable(rows);
  if (list.has_meta()) {
    absl::StrAppend(&out, PageFooter(list.meta(), "key", "keys"));
  }
  return out;
}

std::string FormatTenant(const lumo::ops::v1::Tenant& tenant) {
  return FormatFields({
      {"tenant id", absl::StrCat(tenant.id())},
      {"slug", TextOr(tenant.slug())},
      {"name", TextOr(tenant.name())},
      {"created", TimeOr(tenant.has_created_at(), tenant.created_at())},
  });
}

std::string FormatVerify(const lumo::auth::v1::VerifyApiKeyResponse& reply) {
  std::string reason = lumo::auth::v1::VerifyReason_Name(reply.reason());
  if (reason.empty()) reason = absl::StrCat(reply.reason());  // newer server
  std::vector<std::pair<std::string, std::string>> fields = {
      {"valid", reply.valid() ? "yes" : "no"},
      {"reason", reason},
  };
  if (reply.has_key()) {
    const lumo::auth::v1::KeyMetadata& key = reply.key();
    fields.emplace_back("id", TextOr(key.id()));
    fields.emplace_back("tenant", TextOr(key.tenant_slug()));
    fields.emplace_back("name", TextOr(key.name()));
    fields.emplace_back("scopes", JoinOr(key.scopes(), ", "));
    fields.emplace_back(
        "expires", TimeOr(key.has_expires_at(), key.expires_at(), "never"));
    // Labels of at most 7 characters keep the columns of this output.
    fields.emplace_back("owner", TextOr(key.external_id()));
    fields.emplace_back("states", FormatStates(key.state()));
  }
  return FormatFields(fields);
}

namespace {

// "type:id", or "-" when both are empty.
std::string Party(absl::string_view type, absl::string_view id) {
  if (type.empty() && id.empty()) return std::string(kNone);
  return Sanitize(absl::StrCat(type, ":", id));
}

// The event's time with microseconds, UTC.
std::string EventTime(const lumo::audit::v1::AuditEvent& e) {
  if (!e.has_timestamp()) return std::string(kNone);
  const absl::Time time = absl::FromUnixSeconds(e.timestamp().seconds()) +
                          absl::Nanoseconds(e.timestamp().nanos());
  return absl::FormatTime("%Y-%m-%dT%H:%M:%E6SZ", time, absl::UTCTimeZone());
}

}  // namespace

std::string FormatAuditList(
    const lumo::audit::v1::ListAuditLogsResponse& list) {
  std::vector<std::vector<std::string>> rows = {{"ID", "TIME", "ACTION",
                                                 "OUTCOME", "SUSPICIOUS",
                                                 "ACTOR", "TARGET", "IP"}};
  for (const lumo::audit::v1::AuditEvent& e : list.data()) {
    rows.push_back(
        {TextOr(e.id()), EventTime(e), TextOr(e.action()), TextOr(e.outcome()),
         e.suspicious() ? "yes" : "no", Party(e.actor().type(), e.actor().id()),
         Party(e.target().type(), e.target().id()), TextOr(e.ip_address())});
  }
  std::string out = list.data().empty() ? "no events\n" : FormatTable(rows);
  if (list.has_meta()) {
    absl::StrAppend(&out, PageFooter(list.meta(), "event", "events"));
  }
  return out;
}

namespace {

std::string TimestampText(const google::protobuf::Timestamp& t) {
  return absl::FormatTime("%Y-%m-%dT%H:%MZ", absl::FromUnixSeconds(t.seconds()),
                          absl::UTCTimeZone());
}

std::vector<std::string> CountCells(const lumo::audit::v1::UsageCounts& c,
                                    const std::set<std::string>& outcomes) {
  std::vector<std::string> cells = {
      absl::StrCat(c.calls()), absl::StrCat(c.verifications()),
      absl::StrCat(c.api_calls()), absl::StrCat(c.failures())};
  for (const std::string& o : outcomes) {
    auto it = c.outcomes().find(o);
    cells.push_back(absl::StrCat(it == c.outcomes().end() ? 0 : it->second));
  }
  return cells;
}

template <typename Usage>
std::string FormatSeries(const Usage& u) {
  std::set<std::string> outcomes;
  for (const auto& [o, n] : u.totals().outcomes()) outcomes.insert(o);
  std::vector<std::vector<std::string>> rows;
  rows.push_back({"START (UTC)", "CALLS", "VERIFY", "API", "FAILURES"});
  for (const std::string& o : outcomes) {
    rows.back().push_back(absl::AsciiStrToUpper(Sanitize(o)));
  }
  for (const lumo::audit::v1::UsageBucket& b : u.buckets()) {
    rows.push_back({TimestampText(b.start())});
    for (std::string& cell : CountCells(b.counts(), outcomes)) {
      rows.back().push_back(std::move(cell));
    }
  }
  rows.push_back({"total"});
  for (std::string& cell : CountCells(u.totals(), outcomes)) {
    rows.back().push_back(std::move(cell));
  }
  return FormatTable(rows);
}

std::string FormatTopKeys(
    absl::string_view title,
    const google::protobuf::RepeatedPtrField<lumo::audit::v1::KeyUsageSummary>&
        keys) {
  std::string out = absl::StrCat("\n", title, "\n");
  if (keys.empty()) return out + "none\n";
  std::vector<std::vector<std::string>> rows = {
      {"KEY", "NAME", "CALLS", "FAILURES"}};
  for (const lumo::audit::v1::KeyUsageSummary& k : keys) {
    rows.push_back({k.key_id().empty() ? "(unattributed)" : TextOr(k.key_id()),
                    k.deleted() ? "(deleted)" : TextOr(k.name()),
                    absl::StrCat(k.calls()), absl::StrCat(k.failures())});
  }
  return out + FormatTable(rows);
}

}  // namespace

std::string FormatKeyUsage(const lumo::audit::v1::ApiKeyUsage& usage) {
  return absl::StrCat("usage of key ", Sanitize(usage.key_id()), " per ",
                      Sanitize(usage.granularity()), "\n", FormatSeries(usage));
}

std::string FormatTenantUsage(const lumo::audit::v1::TenantUsage& usage) {
  return absl::StrCat(
      "usage per ", Sanitize(usage.granularity()), "\n", FormatSeries(usage),
      FormatTopKeys("top keys by calls", usage.top_keys_by_calls()),
      FormatTopKeys("top keys by failures", usage.top_keys_by_failures()));
}

std::string FormatAuditLine(const lumo::audit::v1::AuditEvent& e) {
  return absl::StrCat(EventTime(e), "  ", TextOr(e.id()), "  ",
                      TextOr(e.action()), "  ", TextOr(e.outcome()),
                      e.suspicious() ? "  SUSPICIOUS" : "",
                      "  actor=", Party(e.actor().type(), e.actor().id()),
                      "  target=", Party(e.target().type(), e.target().id()),
                      "  ip=", TextOr(e.ip_address()), "\n");
}

std::string FormatChainVerification(
    absl::string_view tenant,
    const lumo::ops::v1::VerifyAuditChainResponse& reply) {
  if (reply.ok()) {
    return absl::StrCat("audit chain of ", Sanitize(tenant), ": intact (",
                        reply.rows_checked(), " rows in ",
                        reply.lanes_checked(), " lanes, last seq ",
                        reply.last_seq(), ")\n");
  }
  std::string where =
      reply.first_broken_id() != 0
          ? absl::StrCat("row id ", reply.first_broken_id(), " (seq ",
                         reply.first_broken_seq(), ", lane ",
                         reply.first_broken_lane(), ")")
          : absl::StrCat("seq ", reply.first_broken_seq(), " of lane ",
                         reply.first_broken_lane());
  return absl::StrCat("audit chain of ", Sanitize(tenant), ": BROKEN at ",
                      where, ": ", Sanitize(reply.reason()), " (",
                      reply.rows_checked(), " rows verified before it)\n");
}

std::string FormatWebhook(const lumo::webhooks::v1::Webhook& w,
                          bool show_secret) {
  std::vector<std::pair<std::string, std::string>> fields = {
      {"id", TextOr(w.id())},
      {"url", TextOr(w.url())},
      {"description", TextOr(w.description())},
      {"events",
       w.event_types().empty() ? "every type" : JoinOr(w.event_types(), ", ")},
      {"enabled", w.enabled() ? "yes" : "no"},
      {"consecutive failures", absl::StrCat(w.consecutive_failures())},
      {"secret prefix", TextOr(w.secret_prefix())},
      {"created", TimeOr(w.has_created_at(), w.created_at())},
      {"secret rotated",
       TimeOr(w.has_secret_rotated_at(), w.secret_rotated_at())},
  };
  if (w.has_disabled_reason()) {
    fields.emplace_back("disabled reason", TextOr(w.disabled_reason()));
  }
  if (w.has_previous_secret_valid_until()) {
    fields.emplace_back("old secret signs until",
                        FormatTimestamp(w.previous_secret_valid_until()));
  }
  if (show_secret && w.has_secret()) {
    fields.emplace_back("secret", Sanitize(w.secret()));
  }
  return FormatFields(fields);
}

std::string FormatWebhookList(
    const lumo::webhooks::v1::ListWebhooksResponse& list) {
  std::vector<std::vector<std::string>> rows = {
      {"ID", "URL", "ENABLED", "EVENTS", "FAILURES"}};
  for (const lumo::webhooks::v1::Webhook& w : list.data()) {
    rows.push_back(
        {TextOr(w.id()), TextOr(w.url()), w.enabled() ? "yes" : "no",
         w.event_types().empty() ? "*" : JoinOr(w.event_types(), ","),
         absl::StrCat(w.consecutive_failures())});
  }
  std::string out = list.data().empty() ? "no webhooks\n" : FormatTable(rows);
  if (list.has_meta()) {
    absl::StrAppend(&out, PageFooter(list.meta(), "webhook", "webhooks"));
  }
  return out;
}

std::string FormatWebhookDelivery(
    const lumo::webhooks::v1::WebhookDelivery& d) {
  return FormatFields({
      {"delivery", TextOr(d.id())},
      {"event", TextOr(d.event_id())},
      {"type", TextOr(d.event_type())},
      {"status", TextOr(d.status())},
      {"attempts", absl::StrCat(d.attempts())},
      {"created", TimeOr(d.has_created_at(), d.created_at())},
      {"next attempt", TimeOr(d.has_next_attempt_at(), d.next_attempt_at())},
      {"last attempt", TimeOr(d.has_last_attempt_at(), d.last_attempt_at())},
      {"delivered", TimeOr(d.has_delivered_at(), d.delivered_at())},
      {"last http status", d.last_http_status() == 0
                               ? std::string(kNone)
                               : absl::StrCat(d.last_http_status())},
      {"last error", TextOr(d.last_error())},
  });
}

std::string FormatWebhookDeliveryList(
    const lumo::webhooks::v1::ListWebhookDeliveriesResponse& list) {
  std::vector<std::vector<std::string>> rows = {{"ID", "EVENT", "TYPE",
                                                 "STATUS", "ATTEMPTS", "HTTP",
                                                 "LATENCY", "LAST ERROR"}};
  for (const lumo::webhooks::v1::WebhookDelivery& d : list.data()) {
    rows.push_back(
        {TextOr(d.id()), TextOr(d.event_id()), TextOr(d.event_type()),
         TextOr(d.status()), absl::StrCat(d.attempts()),
         d.last_http_status() == 0 ? std::string(kNone)
                                   : absl::StrCat(d.last_http_status()),
         d.attempts() == 0 ? std::string(kNone)
                           : absl::StrCat(d.last_latency_ms(), " ms"),
         TextOr(d.last_error())});
  }
  std::string out = list.data().empty() ? "no deliveries\n" : FormatTable(rows);
  if (list.has_meta()) {
    absl::StrAppend(&out, PageFooter(list.meta(), "delivery", "deliveries"));
  }
  return out;
}

absl::StatusOr<std::string> ToJsonLine(
    const google::protobuf::Message& message) {
  std::string json;
  google::protobuf::util::JsonPrintOptions options;
  options.add_whitespace = false;
  const auto status =
      google::protobuf::util::MessageToJsonString(message, &json, options);
  if (!status.ok()) {
    return absl::InternalError(
        absl::StrCat("cannot render JSON: ", status.message().as_string()));
  }
  return json;
}

}  // namespace lumo::cli
