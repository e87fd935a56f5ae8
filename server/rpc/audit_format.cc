#include "server/rpc/audit_format.h"

#include <optional>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "google/protobuf/util/json_util.h"
#include "server/core/crypto.h"
#include "server/observability/log.h"
#include "server/rpc/convert.h"
#include "server/service/audit_json.h"

namespace lumo::rpc {
namespace {

using lumo::audit::v1::AuditEvent;

std::string TimestampText(absl::Time time) {
  // RFC 3339 in UTC with microseconds (the database clock's precision).
  return absl::FormatTime("%Y-%m-%dT%H:%M:%E6SZ", time, absl::UTCTimeZone());
}

std::string HexOf(const std::optional<core::Digest>& digest) {
  if (!digest.has_value()) return "";
  return absl::BytesToHexString(core::AsStringView(*digest));
}

// The stored metadata text, which the writers keep a JSON object; anything
// else (never written by this service) is shown as {}.
absl::string_view MetadataObjectText(const storage::AuditEvent& e) {
  absl::string_view text = absl::StripAsciiWhitespace(e.metadata_json);
  if (text.size() < 2 || text.front() != '{' || text.back() != '}') {
    return "{}";
  }
  return e.metadata_json;
}

}  // namespace

void ToProto(const storage::StoredAuditEvent& stored, AuditEvent* out) {
  const storage::AuditEvent& e = stored.event;
  out->set_id(absl::StrCat(stored.id));
  out->set_action(e.action);
  out->set_category(e.category);
  out->mutable_actor()->set_type(e.actor_type);
  out->mutable_actor()->set_id(e.actor_id);
  if (!e.target_type.empty() || !e.target_id.empty()) {
    out->mutable_target()->set_type(e.target_type);
    out->mutable_target()->set_id(e.target_id);
  }
  out->set_outcome(e.outcome);
  out->set_suspicious(e.suspicious);
  out->set_ip_address(e.ip_address);
  out->set_user_agent(e.user_agent);
  out->set_request_id(e.request_id);
  if (!google::protobuf::util::JsonStringToMessage(e.metadata_json,
                                                   out->mutable_metadata())
           .ok()) {
    out->mutable_metadata()->Clear();
  }
  ToTimestamp(stored.created_at, out->mutable_timestamp());
}

std::string CsvCell(absl::string_view value) {
  std::string cell;
  if (!value.empty() &&
      (value[0] == '=' || value[0] == '+' || value[0] == '-' ||
       value[0] == '@' || value[0] == '\t' || value[0] == '\r' ||
       value[0] == '\'')) {
    cell = "'";
  }
  cell.append(value.data(), value.size());
  if (cell.find_first_of(",\"\r\n") == std::string::npos) return cell;
  std::string quoted = "\"";
  for (char c : cell) {
    if (c == '"') quoted += '"';
    quoted += c;
  }
  quoted += '"';
  return quoted;
}

std::string AuditCsvHeader() {
  return "id,timestamp,action,category,actor_type,actor_id,actor_email,"
         "target_type,target_id,outcome,suspicious,ip_address,user_agent,"
         "request_id,metadata,tenant_id,chain_lane,seq,prev_hash,hash,"
         "hash_version\r\n";
}

void AppendAuditCsvRow(const storage::StoredChainRow& row,
                       const std::string* actor_email, std::string* out) {
  const storage::StoredAuditEvent& s = row.row;
  const storage::AuditEvent& e = s.event;
  const bool chained = s.seq != 0;
  const std::string cells[] = {
      absl::StrCat(s.id),
      TimestampText(s.created_at),
      e.action,
      e.category,
      e.actor_type,
      e.actor_id,
      actor_email != nullptr ? *actor_email : std::string(),
      e.target_type,
      e.target_id,
      e.outcome,
      e.suspicious ? "true" : "false",
      e.ip_address,
      e.user_agent,
      e.request_id,
      std::string(MetadataObjectText(e)),
      absl::StrCat(s.tenant_id),
      absl::StrCat(s.lane),
      chained ? absl::StrCat(s.seq) : std::string(),
      HexOf(row.prev_hash),
      HexOf(row.hash),
      absl::StrCat(row.hash_version),
  };
  bool first = true;
  for (const std::string& cell : cells) {
    if (!first) *out += ',';
    first = false;
    *out += CsvCell(cell);
  }
  *out += "\r\n";
}

void AppendAuditJsonObject(const storage::StoredChainRow& row,
                           const std::string* actor_email, std::string* out) {
  using log::AppendJsonString;
  const storage::StoredAuditEvent& s = row.row;
  const storage::AuditEvent& e = s.event;
  std::string& o = *out;
  o += "{\"id\":";
  AppendJsonString(o, absl::StrCat(s.id));
  o += ",\"action\":";
  AppendJsonString(o, e.action);
  o += ",\"category\":";
  AppendJsonString(o, e.category);
  o += ",\"actor\":{\"type\":";
  AppendJsonString(o, e.actor_type);
  o += ",\"id\":";
  AppendJsonString(o, e.actor_id);
  o += ",\"email\":";
  if (actor_email != nullptr) {
    AppendJsonString(o, *actor_email);
  } else {
    o += "null";
  }
  o += "},\"target\":";
  if (!e.target_type.empty() || !e.target_id.empty()) {
    o += "{\"type\":";
    AppendJsonString(o, e.target_type);
    o += ",\"id\":";
    AppendJsonString(o, e.target_id);
    o += "}";
  } else {
    o += "null";
  }
  o += ",\"outcome\":";
  AppendJsonString(o, e.outcome);
  absl::StrAppend(&o, ",\"suspicious\":", e.suspicious ? "true" : "false",
                  ",\"ipAddress\":");
  AppendJsonString(o, e.ip_address);
  o += ",\"userAgent\":";
  AppendJsonString(o, e.user_agent);
  o += ",\"requestId\":";
  AppendJsonString(o, e.request_id);
  absl::StrAppend(&o, ",\"metadata\":", MetadataObjectText(e),
                  ",\"timestamp\":");
  AppendJsonString(o, TimestampText(s.created_at));
  absl::StrAppend(&o, ",\"chain\":{\"tenantId\":", s.tenant_id,
                  ",\"lane\":", s.lane, ",\"seq\":", s.seq, ",\"prevHash\":\"",
                  HexOf(row.prev_hash), "\",\"hash\":\"", HexOf(row.hash),
                  "\",\"hashVersion\":", row.hash_version, "}}");
}

}  // namespace lumo::rpc
