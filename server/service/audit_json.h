// A minimal JSON object writer for audit metadata (strings through
// log::AppendJsonString). Thread-compatible.
#ifndef LUMOKEYS_SERVER_SERVICE_AUDIT_JSON_H_
#define LUMOKEYS_SERVER_SERVICE_AUDIT_JSON_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/strings/string_view.h"

namespace lumo::service {

// `object_json` (a JSON object's text, as JsonObject::Build makes it) with
// the member "count": `count` added at its end.
std::string WithCountMember(absl::string_view object_json, int64_t count);

class JsonObject {
 public:
  JsonObject& Add(absl::string_view key, absl::string_view value);
  JsonObject& Add(absl::string_view key, const char* value) {
    return Add(key, absl::string_view(value));
  }
  JsonObject& Add(absl::string_view key, int64_t value);
  JsonObject& Add(absl::string_view key, bool value);
  JsonObject& Add(absl::string_view key, const std::vector<std::string>& list);
  // `json`, a complete JSON value this process built (or a stored object it
  // wrote), as it is.
  JsonObject& AddRaw(absl::string_view key, absl::string_view json);
  std::string Build() const { return body_ + "}"; }
  // Appends `s` as a JSON string.
  static void AppendString(std::string& out, absl::string_view s);

 private:
  void Key(absl::string_view key);
  std::string body_ = "{";
};

}  // namespace lumo::service

#endif  // LUMOKEYS_SERVER_SERVICE_AUDIT_JSON_H_
