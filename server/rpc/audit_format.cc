#include "server/rpc/audit_format.h"

#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "google/protobuf/util/json_util.h"
#include "server/observability/log.h"
#include "server/rpc/convert.h"
#include "server/service/audit_json.h"

namespace lumo::rpc {
namespace {

using lumo::audit::v1::AuditEvent;

std::string TimestampText(const google::protobuf::Timestamp& t) {
  // RFC 3339 in UTC with microseconds (the database clock's precision).
  const absl::Time time =
      absl::FromUnixSeconds(t.seconds()) + absl::Nanoseconds(t.nanos());
  return absl::FormatTime("%Y-%m-%dT%H:%M:%E6SZ", time, absl::UTCTimeZone());
}

std::string MetadataText(const AuditEvent& e) {
  std::string json;
  if (!google::protobuf::util::MessageToJsonString(e.metadata(), &json).ok()) {
    return "{}";
  }
  return json;
}

void AppendJsonEvent(std::string& out, const AuditEvent& e) {
  using log::AppendJsonString;
  out += "{\"id\":";
  AppendJsonString(out, e.id());
  out += ",\"action\":";
  AppendJsonString(out, e.action());
  out += ",\"category\":";
  AppendJsonString(out, e.category());
  out += ",\"actor\":{\"type\":";
  AppendJsonString(out, e.actor().type());
  out += ",\"id\":";
  AppendJsonString(out, e.actor().id());
  out += ",\"email\":";
  if (e.actor().has_email()) {
    AppendJsonString(out, e.actor().email());
  } else {
    out += "null";
  }
  out += "},\"target\":";
  if (e.has_target()) {
    out += "{\"type\":";
    AppendJsonString(out, e.target().type());
    out += ",\"id\":";
    AppendJsonString(out, e.target().id());
    out += "}";
  } else {
    out += "null";
  }
  out += ",\"outcome\":";
  AppendJsonString(out, e.outcome());
  absl::StrAppend(&out, ",\"suspicious\":", e.suspicious() ? "true" : "false",
                  ",\"ipAddress\":");
  AppendJsonString(out, e.ip_address());
  out += ",\"userAgent\":";
  AppendJsonString(out, e.user_agent());
  out += ",\"requestId\":";
  AppendJsonString(out, e.request_id());
  absl::StrAppend(&out, ",\"metadata\":", MetadataText(e), ",\"timestamp\":");
  AppendJsonString(out, TimestampText(e.timestamp()));
  out += "}";
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
       value[0] == '@' || value[0] == '\t' || value[0] == '\r')) {
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

std::string RenderAuditCsv(const std::vector<AuditEvent>& events) {
  std::string out =
      "id,timestamp,action,category,actor_type,actor_id,actor_email,"
      "target_type,target_id,outcome,suspicious,ip_address,user_agent,"
      "request_id,metadata\r\n";
  for (const AuditEvent& e : events) {
    const std::string cells[] = {
        e.id(),
        TimestampText(e.timestamp()),
        e.action(),
        e.category(),
        e.actor().type(),
        e.actor().id(),
        e.actor().email(),
        e.target().type(),
        e.target().id(),
        e.outcome(),
        e.suspicious() ? "true" : "false",
        e.ip_address(),
        e.user_agent(),
        e.request_id(),
        MetadataText(e),
    };
    bool first = true;
    for (const std::string& cell : cells) {
      if (!first) out += ',';
      first = false;
      out += CsvCell(cell);
    }
    out += "\r\n";
  }
  return out;
}

std::string RenderAuditJson(const std::vector<AuditEvent>& events) {
  std::string out = "[";
  for (size_t i = 0; i < events.size(); ++i) {
    if (i != 0) out += ",";
    AppendJsonEvent(out, events[i]);
  }
  out += "]";
  return out;
}

}  // namespace lumo::rpc
