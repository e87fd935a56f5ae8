#include "gateway/transcoding/json_render.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "gateway/transcoding/time_format.h"
#include "gateway/transcoding/well_known.h"
#include "google/protobuf/descriptor.h"
#include "google/protobuf/dynamic_message.h"
#include "google/protobuf/message.h"
#include "server/core/field_error.h"

namespace lumo::gateway {
namespace {

using google::protobuf::Descriptor;
using google::protobuf::DescriptorPool;
using google::protobuf::DynamicMessageFactory;
using google::protobuf::EnumValueDescriptor;
using google::protobuf::FieldDescriptor;
using google::protobuf::Message;
using google::protobuf::MessageFactory;
using google::protobuf::Reflection;

constexpr int kMaxDepth = 64;
constexpr int64_t kMaxSafeInteger = int64_t{1} << 53;

// Length of the well-formed UTF-8 sequence at s[pos] (Unicode Table 3-7), or
// 0 with `*bad` set to the length of the maximal ill-formed subpart there.
size_t Utf8SequenceAt(absl::string_view s, size_t pos, size_t* bad) {
  const auto lead = static_cast<uint8_t>(s[pos]);
  if (lead < 0x80) return 1;
  size_t length;
  uint8_t lo = 0x80, hi = 0xBF;  // range of the second byte
  if (lead >= 0xC2 && lead <= 0xDF) {
    length = 2;
  } else if (lead >= 0xE0 && lead <= 0xEF) {
    length = 3;
    if (lead == 0xE0) lo = 0xA0;
    if (lead == 0xED) hi = 0x9F;
  } else if (lead >= 0xF0 && lead <= 0xF4) {
    length = 4;
    if (lead == 0xF0) lo = 0x90;
    if (lead == 0xF4) hi = 0x8F;
  } else {
    *bad = 1;
    return 0;
  }
  for (size_t i = 1; i < length; ++i) {
    if (pos + i >= s.size()) {
      *bad = i;
      return 0;
    }
    const auto b = static_cast<uint8_t>(s[pos + i]);
    const uint8_t min = i == 1 ? lo : 0x80;
    const uint8_t max = i == 1 ? hi : 0xBF;
    if (b < min || b > max) {
      *bad = i;
      return 0;
    }
  }
  return length;
}

void AppendInt64(int64_t v, std::string* out) {
  if (v >= -kMaxSafeInteger && v <= kMaxSafeInteger) {
    absl::StrAppend(out, v);
  } else {
    absl::StrAppend(out, "\"", v, "\"");
  }
}

void AppendUInt64(uint64_t v, std::string* out) {
  if (v <= static_cast<uint64_t>(kMaxSafeInteger)) {
    absl::StrAppend(out, v);
  } else {
    absl::StrAppend(out, "\"", v, "\"");
  }
}

// Shortest round-trip text; NaN and infinities as protobuf's strings.
template <typename T>
void AppendFloating(T v, std::string* out) {
  if (std::isnan(v)) {
    out->append("\"NaN\"");
  } else if (std::isinf(v)) {
    out->append(v > 0 ? "\"Infinity\"" : "\"-Infinity\"");
  } else {
    char buffer[64];
    const std::to_chars_result result =
        std::to_chars(buffer, buffer + sizeof(buffer), v);
    out->append(buffer, result.ptr);
  }
}

// snake_case -> lowerCamelCase, as protobuf does for FieldMask paths.
std::string ToCamelCase(absl::string_view path) {
  std::string camel;
  bool upper_next = false;
  for (char c : path) {
    if (c == '_') {
      upper_next = true;
    } else if (upper_next && c >= 'a' && c <= 'z') {
      camel.push_back(static_cast<char>(c - 'a' + 'A'));
      upper_next = false;
    } else {
      camel.push_back(c);
      upper_next = false;
    }
  }
  return camel;
}

class Renderer {
 public:
  explicit Renderer(const RenderOptions& options) : options_(options) {}

  // Any message, well-known types included.
  void AppendMessage(const Message& message, int depth, std::string* out) {
    if (depth > kMaxDepth) {
      out->append("null");
      return;
    }
    const Descriptor* descriptor = message.GetDescriptor();
    if (HasSpecialJsonForm(descriptor->full_name())) {
      AppendSpecialForm(message, depth, out);
      return;
    }
    out->push_back('{');
    bool first = true;
    AppendFields(message, depth, &first, out);
    out->push_back('}');
  }

  // The value of one field: array, object, message or scalar.
  void AppendFieldValue(const Message& message, const FieldDescriptor* field,
                        int depth, std::string* out) {
    const Reflection* reflection = message.GetReflection();
    if (field->is_map()) {
      AppendMap(message, field, depth, out);
    } else if (field->is_repeated()) {
      out->push_back('[');
      const int size = reflection->FieldSize(message, field);
      for (int i = 0; i < size; ++i) {
        if (i > 0) out->push_back(',');
        AppendValue(message, field, i, depth, out);
      }
      out->push_back(']');
    } else if (!reflection->HasField(message, field) &&
               (field->cpp_type() == FieldDescriptor::CPPTYPE_MESSAGE ||
                field->has_presence())) {
      out->append("null");
    } else {
      AppendValue(message, field, -1, depth, out);
    }
  }

 private:
  // "name":value pairs for every rendered field, comma-separated.
  void AppendFields(const Message& message, int depth, bool* first,
                    std::string* out) {
    const Descriptor* descriptor = message.GetDescriptor();
    const Reflection* reflection = message.GetReflection();
    for (int i = 0; i < descriptor->field_count(); ++i) {
      const FieldDescriptor* field = descriptor->field(i);
      if (options_.omit_fields.contains(field->full_name())) continue;
      const bool set = field->is_repeated()
                           ? reflection->FieldSize(message, field) > 0
                           : reflection->HasField(message, field);
      if (!set &&
          (field->real_containing_oneof() != nullptr ||
           options_.omit_fields_when_unset.contains(field->full_name()))) {
        continue;
      }
      if (!*first) out->push_back(',');
      *first = false;
      AppendJsonString(field->json_name(), out);
      out->push_back(':');
      AppendFieldValue(message, field, depth, out);
    }
  }

  // One value of a field: element `index` of a repeated field, or the
  // singular value when `index` is -1.
  void AppendValue(const Message& message, const FieldDescriptor* field,
                   int index, int depth, std::string* out) {
    const Reflection* r = message.GetReflection();
    const bool rep = index >= 0;
    switch (field->cpp_type()) {
      case FieldDescriptor::CPPTYPE_INT32:
        absl::StrAppend(out, rep ? r->GetRepeatedInt32(message, field, index)
                                 : r->GetInt32(message, field));
        return;
      case FieldDescriptor::CPPTYPE_UINT32:
        absl::StrAppend(out, rep ? r->GetRepeatedUInt32(message, field, index)
                                 : r->GetUInt32(message, field));
        return;
      case FieldDescriptor::CPPTYPE_INT64:
        AppendInt64(rep ? r->GetRepeatedInt64(message, field, index)
                        : r->GetInt64(message, field),
                    out);
        return;
      case FieldDescriptor::CPPTYPE_UINT64:
        AppendUInt64(rep ? r->GetRepeatedUInt64(message, field, index)
                         : r->GetUInt64(message, field),
                     out);
        return;
      case FieldDescriptor::CPPTYPE_DOUBLE:
        AppendFloating(rep ? r->GetRepeatedDouble(message, field, index)
                           : r->GetDouble(message, field),
                       out);
        return;
      case FieldDescriptor::CPPTYPE_FLOAT:
        AppendFloating(rep ? r->GetRepeatedFloat(message, field, index)
                           : r->GetFloat(message, field),
                       out);
        return;
      case FieldDescriptor::CPPTYPE_BOOL:
        out->append((rep ? r->GetRepeatedBool(message, field, index)
                         : r->GetBool(message, field))
                        ? "true"
                        : "false");
        return;
      case FieldDescriptor::CPPTYPE_ENUM: {
        const int number = rep ? r->GetRepeatedEnumValue(message, field, index)
                               : r->GetEnumValue(message, field);
        if (field->enum_type()->full_name() == "google.protobuf.NullValue") {
          out->append("null");
          return;
        }
        const EnumValueDescriptor* value =
            field->enum_type()->FindValueByNumber(number);
        if (value == nullptr) {
          absl::StrAppend(out, number);
        } else {
          AppendJsonString(value->name(), out);
        }
        return;
      }
      case FieldDescriptor::CPPTYPE_STRING: {
        std::string scratch;
        const std::string& value =
            rep ? r->GetRepeatedStringReference(message, field, index, &scratch)
                : r->GetStringReference(message, field, &scratch);
        if (field->type() == FieldDescriptor::TYPE_BYTES) {
          out->push_back('"');
          out->append(absl::Base64Escape(value));
          out->push_back('"');
        } else {
          AppendJsonString(value, out);
        }
        return;
      }
      case FieldDescriptor::CPPTYPE_MESSAGE:
        AppendMessage(rep ? r->GetRepeatedMessage(message, field, index)
                          : r->GetMessage(message, field),
                      depth + 1, out);
        return;
    }
  }

  // A map as an object with the keys sorted (numerically for integer keys,
  // false before true, byte-wise for strings).
  void AppendMap(const Message& message, const FieldDescriptor* field,
                 int depth, std::string* out) {
    const Reflection* reflection = message.GetReflection();
    const FieldDescriptor* key = field->message_type()->map_key();
    const FieldDescriptor* value = field->message_type()->map_value();
    std::vector<const Message*> entries;
    const int size = reflection->FieldSize(message, field);
    for (int i = 0; i < size; ++i) {
      entries.push_back(&reflection->GetRepeatedMessage(message, field, i));
    }
    std::sort(entries.begin(), entries.end(),
              [key](const Message* a, const Message* b) {
                return KeyLess(*a, *b, key);
              });
    out->push_back('{');
    for (size_t i = 0; i < entries.size(); ++i) {
      if (i > 0) out->push_back(',');
      AppendJsonString(KeyText(*entries[i], key), out);
      out->push_back(':');
      AppendValue(*entries[i], value, -1, depth, out);
    }
    out->push_back('}');
  }

  static bool KeyLess(const Message& a, const Message& b,
                      const FieldDescriptor* key) {
    const Reflection* ra = a.GetReflection();
    const Reflection* rb = b.GetReflection();
    switch (key->cpp_type()) {
      case FieldDescriptor::CPPTYPE_INT32:
        return ra->GetInt32(a, key) < rb->GetInt32(b, key);
      case FieldDescriptor::CPPTYPE_INT64:
        return ra->GetInt64(a, key) < rb->GetInt64(b, key);
      case FieldDescriptor::CPPTYPE_UINT32:
        return ra->GetUInt32(a, key) < rb->GetUInt32(b, key);
      case FieldDescriptor::CPPTYPE_UINT64:
        return ra->GetUInt64(a, key) < rb->GetUInt64(b, key);
      case FieldDescriptor::CPPTYPE_BOOL:
        return ra->GetBool(a, key) < rb->GetBool(b, key);
      default:
        return ra->GetString(a, key) < rb->GetString(b, key);
    }
  }

  static std::string KeyText(const Message& entry, const FieldDescriptor* key) {
    const Reflection* r = entry.GetReflection();
    switch (key->cpp_type()) {
      case FieldDescriptor::CPPTYPE_INT32:
        return absl::StrCat(r->GetInt32(entry, key));
      case FieldDescriptor::CPPTYPE_INT64:
        return absl::StrCat(r->GetInt64(entry, key));
      case FieldDescriptor::CPPTYPE_UINT32:
        return absl::StrCat(r->GetUInt32(entry, key));
      case FieldDescriptor::CPPTYPE_UINT64:
        return absl::StrCat(r->GetUInt64(entry, key));
      case FieldDescriptor::CPPTYPE_BOOL:
        return r->GetBool(entry, key) ? "true" : "false";
      default:
        return r->GetString(entry, key);
    }
  }

  void AppendSpecialForm(const Message& message, int depth, std::string* out) {
    const Descriptor* descriptor = message.GetDescriptor();
    const Reflection* r = message.GetReflection();
    const std::string& name = descriptor->full_name();
    if (name == "google.protobuf.Timestamp" ||
        name == "google.protobuf.Duration") {
      const int64_t seconds =
          r->GetInt64(message, descriptor->FindFieldByNumber(1));
      const int32_t nanos =
          r->GetInt32(message, descriptor->FindFieldByNumber(2));
      std::string text;
      const bool ok = name == "google.protobuf.Timestamp"
                          ? AppendRfc3339(seconds, nanos, &text)
                          : AppendDuration(seconds, nanos, &text);
      if (ok) {
        AppendJsonString(text, out);
      } else {
        out->append("null");
      }
    } else if (IsWrapperType(name)) {
      AppendValue(message, descriptor->FindFieldByNumber(1), -1, depth, out);
    } else if (name == "google.protobuf.FieldMask") {
      const FieldDescriptor* paths = descriptor->FindFieldByNumber(1);
      std::string joined;
      for (int i = 0; i < r->FieldSize(message, paths); ++i) {
        if (i > 0) joined.push_back(',');
        joined.append(ToCamelCase(r->GetRepeatedString(message, paths, i)));
      }
      AppendJsonString(joined, out);
    } else if (name == "google.protobuf.Struct") {
      AppendMap(message, descriptor->FindFieldByNumber(1), depth, out);
    } else if (name == "google.protobuf.ListValue") {
      AppendFieldValue(message, descriptor->FindFieldByNumber(1), depth, out);
    } else if (name == "google.protobuf.Value") {
      AppendStructValue(message, depth, out);
    } else {  // google.protobuf.Any
      AppendAny(message, depth, out);
    }
  }

  void AppendStructValue(const Message& message, int depth, std::string* out) {
    const Reflection* r = message.GetReflection();
    const google::protobuf::OneofDescriptor* kind =
        message.GetDescriptor()->FindOneofByName("kind");
    const FieldDescriptor* set =
        kind == nullptr ? nullptr : r->GetOneofFieldDescriptor(message, kind);
    if (set == nullptr || set->name() == "null_value") {
      out->append("null");
    } else if (set->cpp_type() == FieldDescriptor::CPPTYPE_DOUBLE &&
               !std::isfinite(r->GetDouble(message, set))) {
      out->append("null");
    } else {
      AppendValue(message, set, -1, depth, out);
    }
  }

  // {"@type": url, ...fields} or {"@type": url, "value": special form}.
  void AppendAny(const Message& message, int depth, std::string* out) {
    const Descriptor* descriptor = message.GetDescriptor();
    const Reflection* r = message.GetReflection();
    const std::string type_url =
        r->GetString(message, descriptor->FindFieldByNumber(1));
    const size_t slash = type_url.rfind('/');
    const std::string type_name =
        slash == std::string::npos ? type_url : type_url.substr(slash + 1);
    const DescriptorPool* pool = descriptor->file()->pool();
    const Descriptor* inner_type = pool->FindMessageTypeByName(type_name);
    if (inner_type == nullptr) {
      out->append("null");
      return;
    }
    DynamicMessageFactory dynamic_factory(pool);
    const Message* prototype =
        pool == DescriptorPool::generated_pool()
            ? MessageFactory::generated_factory()->GetPrototype(inner_type)
            : dynamic_factory.GetPrototype(inner_type);
    if (prototype == nullptr) {
      out->append("null");
      return;
    }
    std::unique_ptr<Message> inner(prototype->New());
    if (!inner->ParseFromString(
            r->GetString(message, descriptor->FindFieldByNumber(2)))) {
      out->append("null");
      return;
    }
    out->append("{\"@type\":");
    AppendJsonString(type_url, out);
    if (HasSpecialJsonForm(inner_type->full_name())) {
      out->append(",\"value\":");
      AppendMessage(*inner, depth + 1, out);
    } else {
      bool first = false;
      AppendFields(*inner, depth + 1, &first, out);
    }
    out->push_back('}');
  }

  const RenderOptions& options_;
};

}  // namespace

void AppendJsonString(absl::string_view s, std::string* out) {
  static constexpr char kHex[] = "0123456789abcdef";
  out->push_back('"');
  size_t pos = 0;
  while (pos < s.size()) {
    size_t bad = 0;
    const size_t length = Utf8SequenceAt(s, pos, &bad);
    if (length == 0) {
      out->append("\xEF\xBF\xBD");  // U+FFFD
      pos += bad;
      continue;
    }
    if (length > 1) {
      out->append(s.data() + pos, length);
      pos += length;
      continue;
    }
    const char c = s[pos++];
    if (c == '"' || c == '\\') {
      out->push_back('\\');
      out->push_back(c);
    } else if (static_cast<unsigned char>(c) < 0x20 || c == 0x7F) {
      const auto byte = static_cast<unsigned char>(c);
      out->append("\\u00");
      out->push_back(kHex[byte >> 4]);
      out->push_back(kHex[byte & 0xF]);
    } else {
      out->push_back(c);
    }
  }
  out->push_back('"');
}

std::string QuoteForMessage(absl::string_view s, size_t max_bytes) {
  const bool truncated = s.size() > max_bytes;
  if (truncated) {
    size_t cut = max_bytes;
    // Back off to a character boundary (continuation bytes are 10xxxxxx).
    while (cut > 0 && (static_cast<unsigned char>(s[cut]) & 0xC0) == 0x80) {
      --cut;
    }
    s = s.substr(0, cut);
  }
  std::string quoted;
  AppendJsonString(s, &quoted);
  if (truncated) quoted.insert(quoted.size() - 1, "...");
  return quoted;
}

absl::Status WithQuotedField(absl::Status status, absl::string_view name,
                             size_t max_bytes) {
  if (name.empty() || name.size() > max_bytes) return status;
  return core::WithInvalidField(std::move(status), name);
}

std::string RenderJson(const Message& message, const RenderOptions& options) {
  std::string out;
  Renderer(options).AppendMessage(message, 0, &out);
  return out;
}

std::string RenderEnvelope(const Route& route, const Message& reply,
                           const RenderOptions& options) {
  Renderer renderer(options);
  const Descriptor* descriptor = reply.GetDescriptor();
  const FieldDescriptor* data = descriptor->FindFieldByName("data");
  const FieldDescriptor* meta = descriptor->FindFieldByName("meta");
  std::string out;
  if (descriptor->field_count() == 2 && data != nullptr && meta != nullptr &&
      data->is_repeated() && !data->is_map() && !meta->is_repeated() &&
      meta->cpp_type() == FieldDescriptor::CPPTYPE_MESSAGE) {
    out.append("{\"data\":");
    renderer.AppendFieldValue(reply, data, 0, &out);
    out.append(",\"meta\":");
    renderer.AppendFieldValue(reply, meta, 0, &out);
    out.push_back('}');
    return out;
  }
  out.append("{\"data\":");
  renderer.AppendMessage(reply, 0, &out);
  if (!route.success_message.empty()) {
    out.append(",\"message\":");
    AppendJsonString(route.success_message, &out);
  }
  out.push_back('}');
  return out;
}

}  // namespace lumo::gateway
