#include "server/core/metadata_text.h"

#include <algorithm>

namespace lumo::core {
namespace {

bool IsLegalValueByte(unsigned char c) { return c >= 0x20 && c <= 0x7e; }

bool IsLegalKeyByte(unsigned char c) {
  return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || c == '_' ||
         c == '.' || c == '-';
}

}  // namespace

bool IsLegalMetadataKey(absl::string_view key) {
  if (key.empty()) return false;
  for (char c : key) {
    if (!IsLegalKeyByte(static_cast<unsigned char>(c))) return false;
  }
  return true;
}

bool IsLegalMetadataValue(absl::string_view value) {
  for (char c : value) {
    if (!IsLegalValueByte(static_cast<unsigned char>(c))) return false;
  }
  return true;
}

std::string EscapeMetadataValue(absl::string_view value, size_t max_bytes) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  out.reserve(std::min(value.size(), max_bytes));
  for (char c : value) {
    const auto byte = static_cast<unsigned char>(c);
    if (IsLegalValueByte(byte)) {
      if (out.size() + 1 > max_bytes) break;
      out.push_back(c);
    } else {
      if (out.size() + 3 > max_bytes) break;
      out.push_back('%');
      out.push_back(kHex[byte >> 4]);
      out.push_back(kHex[byte & 0x0f]);
    }
  }
  return out;
}

}  // namespace lumo::core
