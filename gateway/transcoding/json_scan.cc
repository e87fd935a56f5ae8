#include "gateway/transcoding/json_scan.h"

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/string_view.h"
#include "gateway/transcoding/json_render.h"
#include "gateway/transcoding/well_known.h"
#include "google/protobuf/descriptor.h"
#include "server/core/validation.h"

namespace lumo::gateway {
namespace {

using google::protobuf::Descriptor;
using google::protobuf::FieldDescriptor;
using google::protobuf::OneofDescriptor;

// What a JSON value is expected to map to, as far as the scanner checks.
struct Schema {
  enum class Kind {
    kNone,      // not checked
    kMessage,   // an object whose keys are fields of `message`
    kRepeated,  // an array whose elements map to `field` (singular view)
    kMap,       // an object whose values map to `field`'s map value
    kBool,      // JSON true or false only (protobuf 3.21 also takes
                // strings such as "yes" for bools)
  };
  Kind kind = Kind::kNone;
  const Descriptor* message = nullptr;
  const FieldDescriptor* field = nullptr;
};

Schema MessageSchema(const Descriptor* type) {
  if (type == nullptr || HasSpecialJsonForm(type->full_name())) return Schema{};
  return Schema{Schema::Kind::kMessage, type, nullptr};
}

// The schema of one (singular) value of `field`.
Schema SingularSchema(const FieldDescriptor* field) {
  if (field->cpp_type() == FieldDescriptor::CPPTYPE_BOOL) {
    return Schema{Schema::Kind::kBool, nullptr, field};
  }
  if (field->cpp_type() != FieldDescriptor::CPPTYPE_MESSAGE) return Schema{};
  return MessageSchema(field->message_type());
}

Schema FieldSchema(const FieldDescriptor* field) {
  if (field->is_map()) return Schema{Schema::Kind::kMap, nullptr, field};
  if (field->is_repeated()) {
    return Schema{Schema::Kind::kRepeated, nullptr, field};
  }
  return SingularSchema(field);
}

const FieldDescriptor* FindJsonField(const Descriptor* type,
                                     const std::string& key) {
  if (const FieldDescriptor* field = type->FindFieldByName(key)) return field;
  for (int i = 0; i < type->field_count(); ++i) {
    if (type->field(i)->json_name() == key) return type->field(i);
  }
  return nullptr;
}

void AppendUtf8(uint32_t cp, std::string* out) {
  if (cp < 0x80) {
    out->push_back(static_cast<char>(cp));
  } else if (cp < 0x800) {
    out->push_back(static_cast<char>(0xC0 | (cp >> 6)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else if (cp < 0x10000) {
    out->push_back(static_cast<char>(0xE0 | (cp >> 12)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else {
    out->push_back(static_cast<char>(0xF0 | (cp >> 18)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  }
}

enum class ValueType { kObject, kArray, kString, kNumber, kLiteral, kNull };

class Scanner {
 public:
  Scanner(absl::string_view text, int max_depth)
      : text_(text), max_depth_(max_depth) {}

  absl::Status ScanDocument(const Descriptor* target) {
    SkipWhitespace();
    const Schema schema = MessageSchema(target);
    ValueType type;
    absl::Status status = ScanValue(schema, 0, &type);
    if (!status.ok()) return status;
    SkipWhitespace();
    if (pos_ != text_.size()) return SyntaxError();
    if (schema.kind == Schema::Kind::kMessage && type != ValueType::kObject) {
      return absl::InvalidArgumentError("request body must be a JSON object");
    }
    return absl::OkStatus();
  }

 private:
  char Peek() const { return pos_ < text_.size() ? text_[pos_] : '\0'; }
  bool AtEnd() const { return pos_ >= text_.size(); }

  void SkipWhitespace() {
    while (!AtEnd() && (text_[pos_] == ' ' || text_[pos_] == '\t' ||
                        text_[pos_] == '\n' || text_[pos_] == '\r')) {
      ++pos_;
    }
  }

  // INVALID_ARGUMENT "<before>\"<path>\"<after>" (the path quoted, at most
  // 100 bytes of it), naming the field at `path`.
  static absl::Status FieldError(absl::string_view before,
                                 absl::string_view path,
                                 absl::string_view after) {
    return WithQuotedField(absl::InvalidArgumentError(absl::StrCat(
                               before, QuoteForMessage(path, 100), after)),
                           path, 100);
  }

  absl::Status SyntaxError() const {
    return absl::InvalidArgumentError(
        absl::StrCat("request body is not valid JSON (at byte ", pos_, ")"));
  }

  std::string PathWith(absl::string_view key) const {
    std::string path = absl::StrJoin(path_, ".");
    if (!path.empty()) path.push_back('.');
    path.append(key.data(), key.size());
    return path;
  }

  // A value, then for repeated fields and maps a check of its JSON type
  // (protobuf would silently accept a lone scalar for a repeated field).
  absl::Status ScanValue(const Schema& schema, int depth, ValueType* type) {
    absl::Status status = ScanAnyValue(schema, depth, type);
    if (!status.ok() || *type == ValueType::kNull) return status;
    if (schema.kind == Schema::Kind::kRepeated && *type != ValueType::kArray) {
      return FieldError("field ", absl::StrJoin(path_, "."),
                        " must be a JSON array");
    }
    if (schema.kind == Schema::Kind::kBool && *type != ValueType::kLiteral) {
      return FieldError("field ", absl::StrJoin(path_, "."),
                        " must be true or false");
    }
    if (schema.kind == Schema::Kind::kMap && *type != ValueType::kObject) {
      return FieldError("field ", absl::StrJoin(path_, "."),
                        " must be a JSON object");
    }
    return absl::OkStatus();
  }

  absl::Status ScanAnyValue(const Schema& schema, int depth, ValueType* type) {
    switch (Peek()) {
      case '{':
        *type = ValueType::kObject;
        return ScanObject(schema, depth + 1);
      case '[':
        *type = ValueType::kArray;
        return ScanArray(schema, depth + 1);
      case '"':
        *type = ValueType::kString;
        return ScanString(nullptr);
      case 't':
        *type = ValueType::kLiteral;
        return ScanLiteral("true");
      case 'f':
        *type = ValueType::kLiteral;
        return ScanLiteral("false");
      case 'n':
        *type = ValueType::kNull;
        return ScanLiteral("null");
      default:
        *type = ValueType::kNumber;
        return ScanNumber();
    }
  }

  absl::Status CheckDepth(int depth) const {
    if (depth > max_depth_) {
      return absl::InvalidArgumentError(absl::StrCat(
          "request body nests deeper than ", max_depth_, " levels"));
    }
    return absl::OkStatus();
  }

  absl::Status ScanObject(const Schema& schema, int depth) {
    absl::Status status = CheckDepth(depth);
    if (!status.ok()) return status;
    ++pos_;  // '{'
    absl::flat_hash_set<std::string> keys;
    absl::flat_hash_set<const FieldDescriptor*> fields;
    absl::flat_hash_map<const OneofDescriptor*, const FieldDescriptor*> oneofs;
    SkipWhitespace();
    if (Peek() == '}') {
      ++pos_;
      return absl::OkStatus();
    }
    while (true) {
      SkipWhitespace();
      if (Peek() != '"') return SyntaxError();
      std::string key;
      status = ScanString(&key);
      if (!status.ok()) return status;
      if (!keys.insert(key).second) {
        return absl::InvalidArgumentError(
            absl::StrCat("duplicate key ", QuoteForMessage(PathWith(key), 100),
                         " in the request body"));
      }
      Schema member;
      const FieldDescriptor* field = nullptr;
      if (schema.kind == Schema::Kind::kMessage) {
        field = FindJsonField(schema.message, key);
        if (field == nullptr) {
          return FieldError("unknown field ", PathWith(key),
                            " in the request body");
        }
        if (!fields.insert(field).second) {
          return FieldError(
              "field ", PathWith(field->json_name()),
              " is given twice (proto and JSON names) in the request body");
        }
        member = FieldSchema(field);
      } else if (schema.kind == Schema::Kind::kMap) {
        member = SingularSchema(schema.field->message_type()->map_value());
      }
      SkipWhitespace();
      if (Peek() != ':') return SyntaxError();
      ++pos_;
      SkipWhitespace();
      path_.push_back(key);
      ValueType type;
      status = ScanValue(member, depth, &type);
      path_.pop_back();
      if (!status.ok()) return status;
      if (field != nullptr && type != ValueType::kNull &&
          field->real_containing_oneof() != nullptr) {
        const OneofDescriptor* oneof = field->real_containing_oneof();
        if (!oneofs.emplace(oneof, field).second) {
          return absl::InvalidArgumentError(absl::StrCat(
              "more than one field of oneof ", QuoteForMessage(oneof->name()),
              " in the request body"));
        }
      }
      SkipWhitespace();
      if (Peek() == ',') {
        ++pos_;
        continue;
      }
      if (Peek() == '}') {
        ++pos_;
        return absl::OkStatus();
      }
      return SyntaxError();
    }
  }

  absl::Status ScanArray(const Schema& schema, int depth) {
    absl::Status status = CheckDepth(depth);
    if (!status.ok()) return status;
    ++pos_;  // '['
    const Schema element = schema.kind == Schema::Kind::kRepeated
                               ? SingularSchema(schema.field)
                               : Schema{};
    SkipWhitespace();
    if (Peek() == ']') {
      ++pos_;
      return absl::OkStatus();
    }
    for (size_t index = 0;; ++index) {
      SkipWhitespace();
      const bool in_path = !path_.empty();
      if (in_path) path_.back().append(absl::StrCat("[", index, "]"));
      ValueType type;
      status = ScanValue(element, depth, &type);
      if (in_path) {
        path_.back().resize(path_.back().rfind('['));
      }
      if (!status.ok()) return status;
      SkipWhitespace();
      if (Peek() == ',') {
        ++pos_;
        continue;
      }
      if (Peek() == ']') {
        ++pos_;
        return absl::OkStatus();
      }
      return SyntaxError();
    }
  }

  absl::Status ScanLiteral(absl::string_view literal) {
    if (text_.substr(pos_, literal.size()) != literal) return SyntaxError();
    pos_ += literal.size();
    return absl::OkStatus();
  }

  bool ConsumeDigits() {
    const size_t start = pos_;
    while (!AtEnd() && text_[pos_] >= '0' && text_[pos_] <= '9') ++pos_;
    return pos_ > start;
  }

  // -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?
  absl::Status ScanNumber() {
    if (Peek() == '-') ++pos_;
    if (Peek() == '0') {
      ++pos_;
    } else if (Peek() >= '1' && Peek() <= '9') {
      ConsumeDigits();
    } else {
      return SyntaxError();
    }
    if (Peek() == '.') {
      ++pos_;
      if (!ConsumeDigits()) return SyntaxError();
    }
    if (Peek() == 'e' || Peek() == 'E') {
      ++pos_;
      if (Peek() == '+' || Peek() == '-') ++pos_;
      if (!ConsumeDigits()) return SyntaxError();
    }
    return absl::OkStatus();
  }

  // Four hex digits at pos_.
  bool ReadHex4(uint32_t* value) {
    if (text_.size() - pos_ < 4) return false;
    uint32_t v = 0;
    for (int i = 0; i < 4; ++i) {
      const char c = text_[pos_ + i];
      v <<= 4;
      if (c >= '0' && c <= '9') {
        v |= c - '0';
      } else if (c >= 'a' && c <= 'f') {
        v |= c - 'a' + 10;
      } else if (c >= 'A' && c <= 'F') {
        v |= c - 'A' + 10;
      } else {
        return false;
      }
    }
    pos_ += 4;
    *value = v;
    return true;
  }

  // A string at pos_ (on the opening quote); unescaped into `*decoded` when
  // not null. The text is known to be valid UTF-8.
  absl::Status ScanString(std::string* decoded) {
    ++pos_;  // '"'
    while (true) {
      if (AtEnd()) return SyntaxError();
      const char c = text_[pos_];
      if (c == '"') {
        ++pos_;
        return absl::OkStatus();
      }
      if (static_cast<unsigned char>(c) < 0x20) return SyntaxError();
      if (c != '\\') {
        if (decoded != nullptr) decoded->push_back(c);
        ++pos_;
        continue;
      }
      ++pos_;
      char unescaped;
      switch (Peek()) {
        case '"':
          unescaped = '"';
          break;
        case '\\':
          unescaped = '\\';
          break;
        case '/':
          unescaped = '/';
          break;
        case 'b':
          unescaped = '\b';
          break;
        case 'f':
          unescaped = '\f';
          break;
        case 'n':
          unescaped = '\n';
          break;
        case 'r':
          unescaped = '\r';
          break;
        case 't':
          unescaped = '\t';
          break;
        case 'u': {
          ++pos_;
          absl::Status status = ScanUnicodeEscape(decoded);
          if (!status.ok()) return status;
          continue;
        }
        default:
          return SyntaxError();
      }
      ++pos_;
      if (decoded != nullptr) decoded->push_back(unescaped);
    }
  }

  // After "\u": XXXX, or a surrogate pair XXXX\uXXXX.
  absl::Status ScanUnicodeEscape(std::string* decoded) {
    uint32_t cp;
    if (!ReadHex4(&cp)) return SyntaxError();
    if (cp >= 0xDC00 && cp <= 0xDFFF) return SurrogateError();
    if (cp >= 0xD800 && cp <= 0xDBFF) {
      uint32_t low;
      if (text_.substr(pos_, 2) != "\\u") return SurrogateError();
      pos_ += 2;
      if (!ReadHex4(&low)) return SyntaxError();
      if (low < 0xDC00 || low > 0xDFFF) return SurrogateError();
      cp = 0x10000 + ((cp - 0xD800) << 10) + (low - 0xDC00);
    }
    if (decoded != nullptr) AppendUtf8(cp, decoded);
    return absl::OkStatus();
  }

  absl::Status SurrogateError() const {
    return absl::InvalidArgumentError(absl::StrCat(
        "request body has an unpaired surrogate \\u escape (at byte ", pos_,
        ")"));
  }

  absl::string_view text_;
  const int max_depth_;
  size_t pos_ = 0;
  // Keys from the root to the value being scanned (with [i] for arrays).
  std::vector<std::string> path_;
};

}  // namespace

absl::Status ScanJsonBody(absl::string_view text, const Descriptor* target,
                          int max_depth) {
  if (!lumo::core::IsValidUtf8(text)) {
    return absl::InvalidArgumentError("request body is not valid UTF-8");
  }
  return Scanner(text, max_depth).ScanDocument(target);
}

}  // namespace lumo::gateway
