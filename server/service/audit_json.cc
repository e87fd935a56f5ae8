#include "server/service/audit_json.h"

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "server/observability/log.h"

namespace lumo::service {

void JsonObject::Key(absl::string_view key) {
  if (body_.size() > 1) body_.push_back(',');
  log::AppendJsonString(body_, key);
  body_.push_back(':');
}

JsonObject& JsonObject::Add(absl::string_view key, absl::string_view value) {
  Key(key);
  log::AppendJsonString(body_, value);
  return *this;
}

JsonObject& JsonObject::Add(absl::string_view key, int64_t value) {
  Key(key);
  absl::StrAppend(&body_, value);
  return *this;
}

JsonObject& JsonObject::Add(absl::string_view key, bool value) {
  Key(key);
  body_ += value ? "true" : "false";
  return *this;
}

JsonObject& JsonObject::Add(absl::string_view key,
                            const std::vector<std::string>& list) {
  Key(key);
  body_.push_back('[');
  for (size_t i = 0; i < list.size(); ++i) {
    if (i > 0) body_.push_back(',');
    log::AppendJsonString(body_, list[i]);
  }
  body_.push_back(']');
  return *this;
}

JsonObject& JsonObject::AddRaw(absl::string_view key, absl::string_view json) {
  Key(key);
  body_.append(json.data(), json.size());
  return *this;
}

void JsonObject::AppendString(std::string& out, absl::string_view s) {
  log::AppendJsonString(out, s);
}

std::string WithCountMember(absl::string_view object_json, int64_t count) {
  absl::string_view body = absl::StripTrailingAsciiWhitespace(object_json);
  if (body.size() < 2 || body.front() != '{' || body.back() != '}') {
    // Not an object (never produced by JsonObject): a fresh one.
    return JsonObject().Add("count", count).Build();
  }
  body.remove_suffix(1);
  const bool empty = absl::StripAsciiWhitespace(body.substr(1)).empty();
  return absl::StrCat(body, empty ? "" : ",", "\"count\":", count, "}");
}

}  // namespace lumo::service
