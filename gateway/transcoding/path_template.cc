#include "gateway/transcoding/path_template.h"

#include <algorithm>
#include <cstddef>
#include <string>
#include <vector>

#include "absl/container/flat_hash_set.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/string_view.h"
#include "server/core/validation.h"

namespace lumo::gateway {
namespace {

using Kind = PathTemplate::Segment::Kind;

// RFC 3986 pchar without pct-encoded, minus `*` (reserved for wildcards).
bool IsLiteralChar(char c) {
  if (absl::ascii_isalnum(static_cast<unsigned char>(c))) return true;
  switch (c) {
    case '-':
    case '.':
    case '_':
    case '~':
    case '!':
    case '$':
    case '&':
    case '\'':
    case '(':
    case ')':
    case '+':
    case ',':
    case ';':
    case '=':
    case ':':
    case '@':
      return true;
    default:
      return false;
  }
}

bool IsIdentifier(absl::string_view s) {
  if (s.empty()) return false;
  if (!absl::ascii_isalpha(static_cast<unsigned char>(s[0])) && s[0] != '_') {
    return false;
  }
  for (char c : s) {
    if (!absl::ascii_isalnum(static_cast<unsigned char>(c)) && c != '_') {
      return false;
    }
  }
  return true;
}

bool IsFieldPath(absl::string_view s) {
  for (absl::string_view part : absl::StrSplit(s, '.')) {
    if (!IsIdentifier(part)) return false;
  }
  return true;
}

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// Rank used for precedence: higher wins.
int KindRank(Kind kind) {
  switch (kind) {
    case Kind::kLiteral:
      return 2;
    case Kind::kVariable:
      return 1;
    case Kind::kRest:
      return 0;
  }
  return 0;
}

absl::Status TemplateError(absl::string_view text, absl::string_view why) {
  return absl::InvalidArgumentError(
      absl::StrCat("path template \"", text, "\": ", why));
}

}  // namespace

absl::StatusOr<PathTemplate> PathTemplate::Parse(absl::string_view text) {
  if (text.empty() || text[0] != '/') {
    return TemplateError(text, "must start with '/'");
  }
  PathTemplate result;
  result.text_ = std::string(text);
  absl::flat_hash_set<std::string> seen_fields;
  const std::vector<absl::string_view> parts =
      absl::StrSplit(text.substr(1), '/');
  for (size_t i = 0; i < parts.size(); ++i) {
    const absl::string_view part = parts[i];
    if (part.empty()) {
      return TemplateError(text, "empty segment (no '//' or trailing '/')");
    }
    if (part.front() == '{') {
      if (part.back() != '}' || part.size() < 3) {
        return TemplateError(text,
                             "a variable must be a whole segment '{field}'");
      }
      absl::string_view inner = part.substr(1, part.size() - 2);
      Kind kind = Kind::kVariable;
      const size_t eq = inner.find('=');
      if (eq != absl::string_view::npos) {
        const absl::string_view pattern = inner.substr(eq + 1);
        inner = inner.substr(0, eq);
        if (pattern == "**") {
          kind = Kind::kRest;
        } else if (pattern != "*") {
          return TemplateError(
              text, absl::StrCat("unsupported variable pattern '", pattern,
                                 "' (only '*' and '**')"));
        }
      }
      if (!IsFieldPath(inner)) {
        return TemplateError(text, absl::StrCat("invalid field path '", inner,
                                                "' in a variable"));
      }
      if (kind == Kind::kRest && i + 1 != parts.size()) {
        return TemplateError(text, "'**' may only be the last segment");
      }
      if (!seen_fields.insert(std::string(inner)).second) {
        return TemplateError(
            text, absl::StrCat("field '", inner, "' is bound twice"));
      }
      result.segments_.push_back(Segment{kind, std::string(inner)});
      continue;
    }
    if (part == "*" || part == "**") {
      return TemplateError(text,
                           "anonymous wildcards are not supported; name the "
                           "field: '{field=*}'");
    }
    if (part == "." || part == "..") {
      return TemplateError(text, "'.' and '..' segments are not allowed");
    }
    for (char c : part) {
      if (!IsLiteralChar(c)) {
        return TemplateError(
            text, absl::StrCat("character '", absl::string_view(&c, 1),
                               "' is not allowed in a literal segment"));
      }
    }
    result.segments_.push_back(Segment{Kind::kLiteral, std::string(part)});
  }
  return result;
}

std::vector<std::string> PathTemplate::FieldPaths() const {
  std::vector<std::string> paths;
  for (const Segment& segment : segments_) {
    if (segment.kind != Kind::kLiteral) paths.push_back(segment.text);
  }
  return paths;
}

bool PathTemplate::Match(absl::Span<const std::string> segments,
                         Variables* variables) const {
  // Check first, bind after: a failed match leaves `variables` untouched.
  if (segments_.empty()) return false;
  const bool has_rest = segments_.back().kind == Kind::kRest;
  if (has_rest ? segments.size() < segments_.size()
               : segments.size() != segments_.size()) {
    return false;
  }
  for (size_t i = 0; i < segments_.size(); ++i) {
    if (segments_[i].kind == Kind::kLiteral &&
        segments_[i].text != segments[i]) {
      return false;
    }
  }
  if (variables == nullptr) return true;
  for (size_t i = 0; i < segments_.size(); ++i) {
    switch (segments_[i].kind) {
      case Kind::kLiteral:
        break;
      case Kind::kVariable:
        variables->emplace_back(segments_[i].text, segments[i]);
        break;
      case Kind::kRest:
        variables->emplace_back(segments_[i].text,
                                absl::StrJoin(segments.subspan(i), "/"));
        break;
    }
  }
  return true;
}

bool PathTemplate::SameShape(const PathTemplate& other) const {
  if (segments_.size() != other.segments_.size()) return false;
  for (size_t i = 0; i < segments_.size(); ++i) {
    const Segment& a = segments_[i];
    const Segment& b = other.segments_[i];
    if (a.kind != b.kind) return false;
    if (a.kind == Kind::kLiteral && a.text != b.text) return false;
  }
  return true;
}

int PathTemplate::ComparePrecedence(const PathTemplate& a,
                                    const PathTemplate& b) {
  const size_t n = std::min(a.segments_.size(), b.segments_.size());
  for (size_t i = 0; i < n; ++i) {
    const int diff =
        KindRank(a.segments_[i].kind) - KindRank(b.segments_[i].kind);
    if (diff != 0) return diff;
  }
  // Equal kinds on the common prefix: only possible for one path when the
  // lengths are equal too (a `**` at the end of the shorter one would have
  // differed from the longer one's segment at that position).
  if (a.segments_.size() == b.segments_.size()) return 0;
  return a.segments_.size() > b.segments_.size() ? 1 : -1;
}

absl::StatusOr<std::vector<std::string>> SplitRequestPath(
    absl::string_view path) {
  if (path.empty() || path[0] != '/') {
    return absl::InvalidArgumentError("malformed path: must start with '/'");
  }
  absl::string_view rest = path.substr(1);
  // One trailing slash after a segment is ignored ("/a/b/" is "/a/b"); "/"
  // is the root and "//" has an empty segment.
  if (rest.size() > 1 && rest.back() == '/') rest.remove_suffix(1);
  std::vector<std::string> segments;
  if (rest.empty()) return segments;
  for (absl::string_view raw : absl::StrSplit(rest, '/')) {
    if (raw.empty()) {
      return absl::InvalidArgumentError("malformed path: empty segment");
    }
    std::string decoded;
    decoded.reserve(raw.size());
    for (size_t i = 0; i < raw.size(); ++i) {
      const char c = raw[i];
      if (c == '?' || c == '#') {
        return absl::InvalidArgumentError(
            "malformed path: '?' or '#' in the path");
      }
      if (c != '%') {
        decoded.push_back(c);
        continue;
      }
      const bool complete = i + 2 < raw.size();
      const int hi = complete ? HexValue(raw[i + 1]) : -1;
      const int lo = complete ? HexValue(raw[i + 2]) : -1;
      if (hi < 0 || lo < 0) {
        return absl::InvalidArgumentError(
            "malformed path: invalid percent-encoding");
      }
      decoded.push_back(static_cast<char>(hi * 16 + lo));
      i += 2;
    }
    for (char c : decoded) {
      const auto byte = static_cast<unsigned char>(c);
      if (byte < 0x20 || byte == 0x7F) {
        return absl::InvalidArgumentError(
            "malformed path: control character in a segment");
      }
    }
    if (!lumo::core::IsValidUtf8(decoded)) {
      return absl::InvalidArgumentError(
          "malformed path: a segment is not valid UTF-8");
    }
    if (decoded == "." || decoded == "..") {
      return absl::InvalidArgumentError(
          "malformed path: '.' and '..' segments are not allowed");
    }
    segments.push_back(std::move(decoded));
  }
  return segments;
}

}  // namespace lumo::gateway
