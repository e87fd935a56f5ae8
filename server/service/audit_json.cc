#include "server/service/audit_json.h"

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "server/core/validation.h"

namespace lumo::service {

void AppendJsonString(std::string& out, absl::string_view s) {
  out.push_back('"');
  size_t i = 0;
  while (i < s.size()) {
    unsigned char c = static_cast<unsigned char>(s[i]);
    if (c < 0x80) {
      switch (c) {
        case '"':
          out += "\\\"";
          break;
        case '\\':
          out += "\\\\";
          break;
        case '\n':
          out += "\\n";
          break;
        case '\r':
          out += "\\r";
          break;
        case '\t':
          out += "\\t";
          break;
        default:
          if (c < 0x20 || c == 0x7f) {
            absl::StrAppendFormat(&out, "\\u%04x", c);
          } else {
            out.push_back(static_cast<char>(c));
          }
      }
      ++i;
      continue;
    }
    // Copy one whole UTF-8 sequence if it is valid, else U+FFFD.
    size_t len = c >= 0xF0 ? 4 : c >= 0xE0 ? 3 : c >= 0xC0 ? 2 : 1;
    if (len > 1 && i + len <= s.size() && core::IsValidUtf8(s.substr(i, len))) {
      out.append(s.data() + i, len);
      i += len;
    } else {
      out += "\xEF\xBF\xBD";
      ++i;
    }
  }
  out.push_back('"');
}

void JsonObject::Key(absl::string_view key) {
  if (body_.size() > 1) body_.push_back(',');
  AppendJsonString(body_, key);
  body_.push_back(':');
}

JsonObject& JsonObject::Add(absl::string_view key, absl::string_view value) {
  Key(key);
  AppendJsonString(body_, value);
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
    AppendJsonString(body_, list[i]);
  }
  body_.push_back(']');
  return *this;
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
