#include "server/core/validation.h"

#include <cstddef>
#include <cstdint>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "server/core/field_error.h"

namespace lumo::core {
namespace {

// Decodes the code point starting at `s[*pos]` and advances `*pos` past it.
// False on any ill-formed sequence (Unicode Table 3-7): a stray or missing
// continuation byte, an overlong form, a surrogate, or a value above
// U+10FFFF.
bool DecodeCodePoint(absl::string_view s, size_t* pos, uint32_t* cp) {
  const auto lead = static_cast<uint8_t>(s[*pos]);
  size_t length;
  uint32_t min;
  if (lead < 0x80) {
    *cp = lead;
    ++*pos;
    return true;
  } else if ((lead & 0xE0) == 0xC0) {
    length = 2;
    min = 0x80;
    *cp = lead & 0x1F;
  } else if ((lead & 0xF0) == 0xE0) {
    length = 3;
    min = 0x800;
    *cp = lead & 0x0F;
  } else if ((lead & 0xF8) == 0xF0) {
    length = 4;
    min = 0x10000;
    *cp = lead & 0x07;
  } else {
    return false;  // a continuation byte or 0xF8..0xFF
  }
  if (s.size() - *pos < length) return false;
  for (size_t i = 1; i < length; ++i) {
    const auto b = static_cast<uint8_t>(s[*pos + i]);
    if ((b & 0xC0) != 0x80) return false;
    *cp = (*cp << 6) | (b & 0x3F);
  }
  if (*cp < min || *cp > 0x10FFFF || (*cp >= 0xD800 && *cp <= 0xDFFF)) {
    return false;
  }
  *pos += length;
  return true;
}

// C0, DEL and C1.
bool IsControl(uint32_t cp) { return cp < 0x20 || (cp >= 0x7F && cp <= 0x9F); }

// Characters that render as nothing visible: Unicode White_Space (outside
// the controls, which are rejected anyway) plus the zero-width format
// characters, so that a name cannot be made of invisible characters only.
bool IsBlank(uint32_t cp) {
  switch (cp) {
    case 0x20:
    case 0xA0:
    case 0x1680:
    case 0x2028:
    case 0x2029:
    case 0x202F:
    case 0x205F:
    case 0x2060:
    case 0x3000:
    case 0xFEFF:
      return true;
    default:
      return (cp >= 0x2000 && cp <= 0x200D);
  }
}

}  // namespace

bool IsValidUtf8(absl::string_view s) {
  size_t pos = 0;
  uint32_t cp;
  while (pos < s.size()) {
    if (!DecodeCodePoint(s, &pos, &cp)) return false;
  }
  return true;
}

size_t Utf8Length(absl::string_view s) {
  size_t count = 0;
  for (char c : s) {
    if ((static_cast<uint8_t>(c) & 0xC0) != 0x80) ++count;
  }
  return count;
}

std::string TruncateUtf8(absl::string_view s, size_t max_chars) {
  size_t chars = 0;
  for (size_t i = 0; i < s.size(); ++i) {
    if ((static_cast<uint8_t>(s[i]) & 0xC0) != 0x80) {
      if (chars == max_chars) return std::string(s.substr(0, i));
      ++chars;
    }
  }
  return std::string(s);
}

namespace {

// ValidateName without naming the field in the status.
absl::Status CheckName(absl::string_view field, absl::string_view s,
                       size_t min_chars, size_t max_chars) {
  if (!IsValidUtf8(s)) {
    return absl::InvalidArgumentError(
        absl::StrCat(field, " must be valid UTF-8"));
  }
  const size_t length = Utf8Length(s);
  if (length == 0 && min_chars > 0) {
    return absl::InvalidArgumentError(absl::StrCat(field, " is required"));
  }
  if (length < min_chars) {
    return absl::InvalidArgumentError(
        absl::StrCat(field, " must be at least ", min_chars, " characters"));
  }
  if (length > max_chars) {
    return absl::InvalidArgumentError(
        absl::StrCat(field, " must be at most ", max_chars, " characters"));
  }
  bool all_blank = true;
  size_t pos = 0;
  uint32_t cp;
  while (pos < s.size()) {
    DecodeCodePoint(s, &pos, &cp);  // valid: checked above
    if (IsControl(cp)) {
      return absl::InvalidArgumentError(
          absl::StrCat(field, " must not contain control characters"));
    }
    if (!IsBlank(cp)) all_blank = false;
  }
  if (all_blank && !s.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat(field, " must not be only white space"));
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status ValidateName(absl::string_view field, absl::string_view s,
                          size_t min_chars, size_t max_chars) {
  return WithInvalidField(CheckName(field, s, min_chars, max_chars), field);
}

bool IsValidSlug(absl::string_view slug) {
  if (slug.empty() || slug.size() > 63 || slug.front() == '-' ||
      slug.back() == '-') {
    return false;
  }
  for (char c : slug) {
    if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-')) {
      return false;
    }
  }
  return true;
}

}  // namespace lumo::core
