#include "gateway/transcoding/transcoder.h"

#include <algorithm>
#include <cfloat>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/string_view.h"
#include "gateway/transcoding/field_path.h"
#include "gateway/transcoding/json_render.h"
#include "gateway/transcoding/json_scan.h"
#include "gateway/transcoding/time_format.h"
#include "gateway/transcoding/well_known.h"
#include "google/protobuf/descriptor.h"
#include "google/protobuf/message.h"
#include "google/protobuf/struct.pb.h"
#include "google/protobuf/util/json_util.h"
#include "server/core/validation.h"

namespace lumo::gateway {
namespace {

using google::protobuf::Descriptor;
using google::protobuf::EnumValueDescriptor;
using google::protobuf::FieldDescriptor;
using google::protobuf::Message;
using google::protobuf::OneofDescriptor;
using google::protobuf::Reflection;

// How much of a protobuf parser message (which may quote input) is kept.
constexpr size_t kMaxLibraryMessageBytes = 200;

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// Query-string component decoding: '+' is a space, %XX a byte.
bool DecodeComponent(absl::string_view in, std::string* out) {
  out->clear();
  out->reserve(in.size());
  for (size_t i = 0; i < in.size(); ++i) {
    const char c = in[i];
    if (c == '+') {
      out->push_back(' ');
    } else if (c != '%') {
      out->push_back(c);
    } else {
      if (i + 2 >= in.size()) return false;
      const int hi = HexValue(in[i + 1]);
      const int lo = HexValue(in[i + 2]);
      if (hi < 0 || lo < 0) return false;
      out->push_back(static_cast<char>(hi * 16 + lo));
      i += 2;
    }
  }
  return true;
}

bool IsJsonWhitespaceOnly(absl::string_view s) {
  for (char c : s) {
    if (c != ' ' && c != '\t' && c != '\n' && c != '\r') return false;
  }
  return true;
}

// A protobuf parser message made safe to return: at most
// kMaxLibraryMessageBytes, printable ASCII or valid UTF-8, no controls.
std::string SanitizeLibraryMessage(absl::string_view message) {
  if (message.size() > kMaxLibraryMessageBytes) {
    size_t cut = kMaxLibraryMessageBytes;
    while (cut > 0 &&
           (static_cast<unsigned char>(message[cut]) & 0xC0) == 0x80) {
      --cut;
    }
    message = message.substr(0, cut);
  }
  const bool utf8 = lumo::core::IsValidUtf8(message);
  std::string out;
  for (char c : message) {
    const auto byte = static_cast<unsigned char>(c);
    if (byte < 0x20 || byte == 0x7F) {
      out.push_back(' ');
    } else if (byte >= 0x80 && !utf8) {
      out.push_back('?');
    } else {
      out.push_back(c);
    }
  }
  return out;
}

// The error for a message of protobuf's JSON parser, which typically reads
// "(inner.count): invalid value \"abc\" for type TYPE_INT32" and so quotes
// input. "invalid value" errors become `invalid value for field "<path>"`
// (no value); anything else is kept, sanitised and capped.
absl::Status LibraryError(absl::string_view message) {
  if (absl::StartsWith(message, "(")) {
    const size_t close = message.find("): ");
    if (close != absl::string_view::npos &&
        absl::StartsWith(message.substr(close + 3), "invalid value")) {
      const absl::string_view path = message.substr(1, close - 1);
      return WithQuotedField(
          absl::InvalidArgumentError(absl::StrCat("invalid value for field ",
                                                  QuoteForMessage(path, 100),
                                                  " in the request body")),
          path, 100);
    }
  }
  return absl::InvalidArgumentError(
      absl::StrCat("invalid request body: ", SanitizeLibraryMessage(message)));
}

// Strict decimal: -?[0-9]+ (sign only when `allow_negative`), no spaces or
// '+'. Returns the magnitude; false on syntax errors or above 2^64-1.
bool ParseDecimal(absl::string_view s, bool allow_negative, bool* negative,
                  uint64_t* magnitude, bool* overflow) {
  *negative = false;
  *overflow = false;
  if (!s.empty() && s[0] == '-' && allow_negative) {
    *negative = true;
    s.remove_prefix(1);
  }
  if (s.empty()) return false;
  uint64_t v = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return false;
    const uint64_t digit = static_cast<uint64_t>(c - '0');
    if (v > (std::numeric_limits<uint64_t>::max() - digit) / 10) {
      *overflow = true;
    } else {
      v = v * 10 + digit;
    }
  }
  *magnitude = v;
  return true;
}

absl::Status ValueError(absl::string_view what, absl::string_view why) {
  return absl::InvalidArgumentError(absl::StrCat(what, ": ", why));
}

absl::StatusOr<int64_t> ParseSigned(absl::string_view text,
                                    absl::string_view what, int64_t min,
                                    int64_t max) {
  bool negative, overflow;
  uint64_t magnitude;
  if (!ParseDecimal(text, /*allow_negative=*/true, &negative, &magnitude,
                    &overflow)) {
    return ValueError(what, "not a valid integer");
  }
  const uint64_t limit = negative ? static_cast<uint64_t>(-(min + 1)) + 1
                                  : static_cast<uint64_t>(max);
  if (overflow || magnitude > limit) {
    return ValueError(what,
                      absl::StrCat("out of range (", min, " to ", max, ")"));
  }
  if (!negative) return static_cast<int64_t>(magnitude);
  // -magnitude without overflow, also for min itself.
  return magnitude == 0 ? 0 : -static_cast<int64_t>(magnitude - 1) - 1;
}

absl::StatusOr<uint64_t> ParseUnsigned(absl::string_view text,
                                       absl::string_view what, uint64_t max) {
  bool negative, overflow;
  uint64_t magnitude;
  if (!ParseDecimal(text, /*allow_negative=*/false, &negative, &magnitude,
                    &overflow)) {
    return ValueError(what, "not a valid unsigned integer");
  }
  if (overflow || magnitude > max) {
    return ValueError(what, absl::StrCat("out of range (0 to ", max, ")"));
  }
  return magnitude;
}

// -?[0-9]+(\.[0-9]+)?([eE][+-]?[0-9]+)?, finite, within `max`.
absl::StatusOr<double> ParseFloating(absl::string_view text,
                                     absl::string_view what, double max) {
  size_t pos = 0;
  auto digits = [&]() {
    const size_t start = pos;
    while (pos < text.size() && text[pos] >= '0' && text[pos] <= '9') ++pos;
    return pos > start;
  };
  bool ok = true;
  if (pos < text.size() && text[pos] == '-') ++pos;
  ok = digits();
  if (ok && pos < text.size() && text[pos] == '.') {
    ++pos;
    ok = digits();
  }
  if (ok && pos < text.size() && (text[pos] == 'e' || text[pos] == 'E')) {
    ++pos;
    if (pos < text.size() && (text[pos] == '+' || text[pos] == '-')) ++pos;
    ok = digits();
  }
  double value = 0;
  if (!ok || pos != text.size() || !absl::SimpleAtod(text, &value)) {
    return ValueError(what, "not a valid number");
  }
  if (!std::isfinite(value) || std::fabs(value) > max) {
    return ValueError(what, "number out of range");
  }
  return value;
}

absl::Status CheckString(absl::string_view text, absl::string_view what) {
  if (!lumo::core::IsValidUtf8(text)) {
    return ValueError(what, "not valid UTF-8");
  }
  if (text.find('\0') != absl::string_view::npos) {
    return ValueError(what, "contains a NUL character");
  }
  if (text.size() > kMaxStringValueBytes) {
    return ValueError(
        what, absl::StrCat("longer than ", kMaxStringValueBytes, " bytes"));
  }
  return absl::OkStatus();
}

// True when values of `field` can be given as text (query or path).
bool IsTextSettable(const FieldDescriptor* field) {
  if (field->is_map()) return false;
  if (field->type() == FieldDescriptor::TYPE_BYTES) return false;
  if (field->cpp_type() != FieldDescriptor::CPPTYPE_MESSAGE) return true;
  const std::string& name = field->message_type()->full_name();
  return name == "google.protobuf.Timestamp" ||
         (IsWrapperType(name) && name != "google.protobuf.BytesValue");
}

// Parses `text` as a value of `field` and sets it on `parent` (appends when
// the field is repeated). `what` names the source in error messages.
absl::Status SetFromText(Message* parent, const FieldDescriptor* field,
                         absl::string_view text, absl::string_view what) {
  const Reflection* r = parent->GetReflection();
  const bool rep = field->is_repeated();
  switch (field->cpp_type()) {
    case FieldDescriptor::CPPTYPE_STRING: {
      absl::Status status = CheckString(text, what);
      if (!status.ok()) return status;
      if (rep) {
        r->AddString(parent, field, std::string(text));
      } else {
        r->SetString(parent, field, std::string(text));
      }
      return absl::OkStatus();
    }
    case FieldDescriptor::CPPTYPE_INT32: {
      absl::StatusOr<int64_t> v =
          ParseSigned(text, what, std::numeric_limits<int32_t>::min(),
                      std::numeric_limits<int32_t>::max());
      if (!v.ok()) return v.status();
      const auto value = static_cast<int32_t>(*v);
      rep ? r->AddInt32(parent, field, value)
          : r->SetInt32(parent, field, value);
      return absl::OkStatus();
    }
    case FieldDescriptor::CPPTYPE_INT64: {
      absl::StatusOr<int64_t> v =
          ParseSigned(text, what, std::numeric_limits<int64_t>::min(),
                      std::numeric_limits<int64_t>::max());
      if (!v.ok()) return v.status();
      rep ? r->AddInt64(parent, field, *v) : r->SetInt64(parent, field, *v);
      return absl::OkStatus();
    }
    case FieldDescriptor::CPPTYPE_UINT32: {
      absl::StatusOr<uint64_t> v =
          ParseUnsigned(text, what, std::numeric_limits<uint32_t>::max());
      if (!v.ok()) return v.status();
      const auto value = static_cast<uint32_t>(*v);
      rep ? r->AddUInt32(parent, field, value)
          : r->SetUInt32(parent, field, value);
      return absl::OkStatus();
    }
    case FieldDescriptor::CPPTYPE_UINT64: {
      absl::StatusOr<uint64_t> v =
          ParseUnsigned(text, what, std::numeric_limits<uint64_t>::max());
      if (!v.ok()) return v.status();
      rep ? r->AddUInt64(parent, field, *v) : r->SetUInt64(parent, field, *v);
      return absl::OkStatus();
    }
    case FieldDescriptor::CPPTYPE_DOUBLE: {
      absl::StatusOr<double> v =
          ParseFloating(text, what, std::numeric_limits<double>::max());
      if (!v.ok()) return v.status();
      rep ? r->AddDouble(parent, field, *v) : r->SetDouble(parent, field, *v);
      return absl::OkStatus();
    }
    case FieldDescriptor::CPPTYPE_FLOAT: {
      absl::StatusOr<double> v = ParseFloating(text, what, FLT_MAX);
      if (!v.ok()) return v.status();
      const auto value = static_cast<float>(*v);
      rep ? r->AddFloat(parent, field, value)
          : r->SetFloat(parent, field, value);
      return absl::OkStatus();
    }
    case FieldDescriptor::CPPTYPE_BOOL: {
      bool value;
      if (text == "true" || text == "1") {
        value = true;
      } else if (text == "false" || text == "0") {
        value = false;
      } else {
        return ValueError(what, "not a boolean (true, false, 1 or 0)");
      }
      rep ? r->AddBool(parent, field, value) : r->SetBool(parent, field, value);
      return absl::OkStatus();
    }
    case FieldDescriptor::CPPTYPE_ENUM: {
      const EnumValueDescriptor* value =
          field->enum_type()->FindValueByName(std::string(text));
      if (value == nullptr) {
        bool negative, overflow;
        uint64_t magnitude;
        if (ParseDecimal(text, true, &negative, &magnitude, &overflow) &&
            !overflow && magnitude <= 0x7FFFFFFF) {
          const int number = negative ? -static_cast<int>(magnitude)
                                      : static_cast<int>(magnitude);
          value = field->enum_type()->FindValueByNumber(number);
        }
      }
      if (value == nullptr) {
        std::string names;
        for (int i = 0; i < field->enum_type()->value_count(); ++i) {
          absl::StrAppend(&names, i == 0 ? "" : ", ",
                          field->enum_type()->value(i)->name());
        }
        return ValueError(what, absl::StrCat("not one of ", names));
      }
      rep ? r->AddEnumValue(parent, field, value->number())
          : r->SetEnumValue(parent, field, value->number());
      return absl::OkStatus();
    }
    case FieldDescriptor::CPPTYPE_MESSAGE: {
      const Descriptor* type = field->message_type();
      if (type->full_name() == "google.protobuf.Timestamp") {
        int64_t seconds;
        int32_t nanos;
        absl::Status status = ParseRfc3339(text, &seconds, &nanos);
        if (!status.ok()) return ValueError(what, status.message());
        Message* ts = rep ? r->AddMessage(parent, field)
                          : r->MutableMessage(parent, field);
        ts->GetReflection()->SetInt64(ts, type->FindFieldByNumber(1), seconds);
        ts->GetReflection()->SetInt32(ts, type->FindFieldByNumber(2), nanos);
        return absl::OkStatus();
      }
      if (IsTextSettable(field)) {  // a wrapper: set its `value`
        Message* wrapper = rep ? r->AddMessage(parent, field)
                               : r->MutableMessage(parent, field);
        return SetFromText(wrapper, type->FindFieldByNumber(1), text, what);
      }
      break;
    }
  }
  return ValueError(what, "cannot be set from text");
}

// The message holding the last field of `path`, creating the messages on
// the way.
Message* MutableParent(Message* root, const FieldPath& path) {
  Message* message = root;
  for (size_t i = 0; i + 1 < path.size(); ++i) {
    message = message->GetReflection()->MutableMessage(message, path[i]);
  }
  return message;
}

// PATCH without an update mask (AIP-134): when the request has an
// `update_mask` (google.protobuf.FieldMask) that the body did not set, it
// names the body's top-level members (as proto field names). The body was
// checked by ScanJsonBody, so every member names a field.
absl::Status DeriveUpdateMask(const Route& route, absl::string_view body,
                              Message* request) {
  const google::protobuf::Descriptor* type = request->GetDescriptor();
  const FieldDescriptor* mask_field = type->FindFieldByName("update_mask");
  if (mask_field == nullptr ||
      mask_field->type() != FieldDescriptor::TYPE_MESSAGE ||
      mask_field->message_type()->full_name() != "google.protobuf.FieldMask" ||
      request->GetReflection()->HasField(*request, mask_field)) {
    return absl::OkStatus();
  }
  google::protobuf::Struct members;
  const auto parsed = google::protobuf::util::JsonStringToMessage(
      google::protobuf::StringPiece(body.data(), body.size()), &members);
  if (!parsed.ok()) return LibraryError(parsed.message().as_string());
  std::vector<std::string> paths;
  for (const auto& [name, value] : members.fields()) {
    const FieldDescriptor* field = type->FindFieldByName(name);
    for (int i = 0; field == nullptr && i < type->field_count(); ++i) {
      if (type->field(i)->json_name() == name) field = type->field(i);
    }
    if (field == nullptr || field == mask_field) continue;
    bool from_path = false;
    for (const FieldPath& variable : route.variable_fields) {
      from_path |= !variable.empty() && variable.front() == field;
    }
    if (!from_path) paths.push_back(field->name());
  }
  // Field order, not the map's: the mask is deterministic.
  std::sort(paths.begin(), paths.end(),
            [type](const std::string& a, const std::string& b) {
              return type->FindFieldByName(a)->index() <
                     type->FindFieldByName(b)->index();
            });
  if (paths.empty()) return absl::OkStatus();  // the server refuses it
  Message* mask = request->GetReflection()->MutableMessage(request, mask_field);
  const FieldDescriptor* paths_field =
      mask->GetDescriptor()->FindFieldByName("paths");
  if (paths_field == nullptr) {
    return absl::InternalError("google.protobuf.FieldMask has no paths");
  }
  for (std::string& path : paths) {
    mask->GetReflection()->AddString(mask, paths_field, std::move(path));
  }
  return absl::OkStatus();
}

absl::Status ParseBody(const Route& route, absl::string_view body,
                       Message* request) {
  const bool empty = IsJsonWhitespaceOnly(body);
  if (route.body.empty()) {
    if (!empty) {
      return absl::InvalidArgumentError(
          "this endpoint does not take a request body");
    }
    return absl::OkStatus();
  }
  Message* target = request;
  if (route.body_field != nullptr) {
    if (empty) return absl::OkStatus();
    target =
        request->GetReflection()->MutableMessage(request, route.body_field);
  }
  const absl::string_view text = empty ? absl::string_view("{}") : body;
  absl::Status scan = ScanJsonBody(text, target->GetDescriptor());
  if (!scan.ok()) return scan;
  google::protobuf::util::JsonParseOptions options;
  options.ignore_unknown_fields = false;
  const auto parsed = google::protobuf::util::JsonStringToMessage(
      google::protobuf::StringPiece(text.data(), text.size()), target, options);
  if (!parsed.ok()) return LibraryError(parsed.message().as_string());
  if (route.verb == "PATCH" && target == request) {
    return DeriveUpdateMask(route, text, request);
  }
  return absl::OkStatus();
}

// Where the query parameters set so far went: the fields they set, and the
// oneofs they set a member of (per parent message, as the same oneof type may
// be reached twice).
struct BoundQuery {
  std::vector<FieldPath> fields;
  std::vector<std::pair<const Message*, const OneofDescriptor*>> oneofs;
};

// Binds one query parameter (see BuildRequest, step 3) and records it in
// `bound`. Errors quote `key`.
absl::Status BindParameter(const Route& route, const std::string& key,
                           const std::string& value, Message* request,
                           BoundQuery& bound) {
  const std::string what =
      absl::StrCat("query parameter ", QuoteForMessage(key));
  absl::StatusOr<FieldPath> path = ResolveFieldPath(
      request->GetDescriptor(), key, /*accept_json_names=*/true);
  if (!path.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("unknown query parameter ", QuoteForMessage(key)));
  }
  for (const FieldPath& variable : route.variable_fields) {
    if (FieldPathsOverlap(*path, variable)) {
      return ValueError(what, "not allowed: the field is taken from the path");
    }
  }
  if (route.body == "*" ||
      (route.body_field != nullptr &&
       FieldPathsOverlap(*path, FieldPath{route.body_field}))) {
    return ValueError(what,
                      "not allowed: the field is taken from the request body");
  }
  const FieldDescriptor* leaf = path->back();
  if (!IsTextSettable(leaf)) {
    return ValueError(what, "this field cannot be set from the query string");
  }
  for (const FieldPath& other : bound.fields) {
    if (other == *path) {
      if (!leaf->is_repeated()) return ValueError(what, "given more than once");
    } else if (FieldPathsOverlap(other, *path)) {
      return ValueError(what, "overlaps another query parameter");
    }
  }
  Message* parent = MutableParent(request, *path);
  if (const OneofDescriptor* oneof = leaf->real_containing_oneof()) {
    const std::pair<const Message*, const OneofDescriptor*> oneof_key(parent,
                                                                      oneof);
    const bool set_by_other =
        std::find(bound.oneofs.begin(), bound.oneofs.end(), oneof_key) !=
            bound.oneofs.end() &&
        !parent->GetReflection()->HasField(*parent, leaf);
    if (set_by_other) {
      return ValueError(what, absl::StrCat("another field of oneof ",
                                           QuoteForMessage(oneof->name()),
                                           " is already set"));
    }
    bound.oneofs.push_back(oneof_key);
  }
  if (leaf->is_repeated()) {
    for (absl::string_view item : absl::StrSplit(value, ',')) {
      if (item.empty()) return ValueError(what, "empty list item");
      absl::Status status = SetFromText(parent, leaf, item, what);
      if (!status.ok()) return status;
    }
  } else {
    absl::Status status = SetFromText(parent, leaf, value, what);
    if (!status.ok()) return status;
  }
  bound.fields.push_back(*std::move(path));
  return absl::OkStatus();
}

absl::Status BindQuery(const Route& route, const QueryParams& query,
                       Message* request) {
  BoundQuery bound;
  for (const auto& [key, value] : query) {
    absl::Status status = BindParameter(route, key, value, request, bound);
    // Every error of a parameter quotes its name (QuoteForMessage's default
    // limit) and is about that field.
    if (!status.ok()) return WithQuotedField(std::move(status), key, 64);
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<QueryParams> ParseQueryString(absl::string_view raw) {
  QueryParams params;
  for (absl::string_view pair : absl::StrSplit(raw, '&')) {
    if (pair.empty()) continue;
    if (params.size() == kMaxQueryParams) {
      return absl::InvalidArgumentError(absl::StrCat(
          "too many query parameters (at most ", kMaxQueryParams, ")"));
    }
    const size_t eq = pair.find('=');
    const absl::string_view raw_key = pair.substr(0, eq);
    const absl::string_view raw_value = eq == absl::string_view::npos
                                            ? absl::string_view()
                                            : pair.substr(eq + 1);
    std::string key, value;
    if (!DecodeComponent(raw_key, &key) ||
        !DecodeComponent(raw_value, &value)) {
      return absl::InvalidArgumentError(
          "invalid percent-encoding in the query string");
    }
    if (key.empty()) {
      return absl::InvalidArgumentError("empty query parameter name");
    }
    params.emplace_back(std::move(key), std::move(value));
  }
  return params;
}

absl::Status BuildRequest(const Route& route, const Variables& variables,
                          const QueryParams& query, absl::string_view body,
                          Message* request) {
  if (route.method == nullptr ||
      request->GetDescriptor() != route.method->input_type()) {
    return absl::InternalError("request message type does not match route");
  }
  request->Clear();
  absl::Status status = ParseBody(route, body, request);
  if (!status.ok()) return status;

  const std::vector<std::string> names = route.path.FieldPaths();
  for (const auto& [name, value] : variables) {
    size_t index = 0;
    while (index < names.size() && names[index] != name) ++index;
    if (index == names.size() || index >= route.variable_fields.size()) {
      return absl::InternalError(
          absl::StrCat("path variable '", name, "' is not in the route"));
    }
    const FieldPath& path = route.variable_fields[index];
    status = SetFromText(MutableParent(request, path), path.back(), value,
                         absl::StrCat("path variable ", QuoteForMessage(name)));
    if (!status.ok()) return status;
  }
  return BindQuery(route, query, request);
}

}  // namespace lumo::gateway
