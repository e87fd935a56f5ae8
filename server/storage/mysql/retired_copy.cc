#include "server/storage/mysql/retired_copy.h"

#include <cstddef>
#include <cstdint>
#include <limits>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/time.h"

namespace lumo::storage {

const char kRetiredCopyExpression[] =
    "(SELECT CONCAT(COUNT(*), ';', COALESCE(GROUP_CONCAT(CONCAT("
    "r.key_version, '/', HEX(r.digest), '/', r.pepper_version, '/',"
    " TIMESTAMPDIFF(MICROSECOND, '1970-01-01 00:00:00', r.valid_until), '.')"
    " SEPARATOR ','), ''))"
    " FROM api_key_retired_secrets r"
    " WHERE r.tenant_id = api_keys.tenant_id AND r.key_id = api_keys.id)";

namespace {

absl::Status Malformed() {
  return absl::InternalError("the retired secrets' copy is malformed");
}

// A decimal integer: an optional '-' and 1 to 19 digits, nothing else.
bool ParseInteger(absl::string_view text, int64_t* out) {
  bool negative = false;
  if (!text.empty() && text.front() == '-') {
    negative = true;
    text.remove_prefix(1);
  }
  if (text.empty() || text.size() > 19) return false;
  uint64_t value = 0;
  for (char c : text) {
    if (c < '0' || c > '9') return false;
    value = value * 10 + static_cast<uint64_t>(c - '0');
  }
  const uint64_t limit = negative ? uint64_t{1} << 63 : (uint64_t{1} << 63) - 1;
  if (value > limit) return false;
  *out =
      negative ? static_cast<int64_t>(~value + 1) : static_cast<int64_t>(value);
  return true;
}

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;  // HEX() writes upper case only
}

bool ParseDigest(absl::string_view hex, core::Digest* out) {
  if (hex.size() != out->size() * 2) return false;
  for (size_t i = 0; i < out->size(); ++i) {
    const int high = HexValue(hex[2 * i]);
    const int low = HexValue(hex[2 * i + 1]);
    if (high < 0 || low < 0) return false;
    (*out)[i] = static_cast<uint8_t>(high << 4 | low);
  }
  return true;
}

}  // namespace

std::string FormatRetiredCopy(const std::vector<CopiedRetiredSecret>& secrets) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out = absl::StrCat(secrets.size(), ";");
  for (size_t i = 0; i < secrets.size(); ++i) {
    const CopiedRetiredSecret& s = secrets[i];
    std::string hex;
    hex.reserve(s.retired.secret.digest.size() * 2);
    for (uint8_t byte : s.retired.secret.digest) {
      hex.push_back(kHex[byte >> 4]);
      hex.push_back(kHex[byte & 0xf]);
    }
    absl::StrAppend(&out, i == 0 ? "" : ",", s.key_version, "/", hex, "/",
                    s.retired.secret.pepper_version, "/",
                    absl::ToUnixMicros(s.retired.valid_until), ".");
  }
  return out;
}

std::vector<CopiedRetiredSecret> CopyAfterRotation(
    std::vector<CopiedRetiredSecret> copy, const CopiedRetiredSecret& retired,
    bool cap) {
  std::vector<CopiedRetiredSecret> out;
  out.reserve(copy.size() + 1);
  for (CopiedRetiredSecret& s : copy) {
    if (s.key_version <= retired.key_version - kMaxRetiredSecrets) continue;
    if (cap && s.key_version < retired.key_version &&
        s.retired.valid_until > retired.retired.valid_until) {
      s.retired.valid_until = retired.retired.valid_until;
    }
    out.push_back(s);
  }
  out.push_back(retired);
  return out;
}

absl::StatusOr<std::vector<CopiedRetiredSecret>> ParseRetiredCopy(
    absl::string_view copy) {
  const size_t semicolon = copy.find(';');
  if (semicolon == absl::string_view::npos) return Malformed();
  int64_t count = 0;
  if (!ParseInteger(copy.substr(0, semicolon), &count) || count < 0) {
    return Malformed();
  }
  const absl::string_view entries = copy.substr(semicolon + 1);
  std::vector<CopiedRetiredSecret> out;
  if (entries.empty()) {
    if (count != 0) return Malformed();
    return out;
  }
  for (absl::string_view entry : absl::StrSplit(entries, ',')) {
    if (static_cast<int64_t>(out.size()) == count) return Malformed();
    // An entry cut short lost its terminator.
    if (entry.empty() || entry.back() != '.') return Malformed();
    entry.remove_suffix(1);
    const std::vector<absl::string_view> fields = absl::StrSplit(entry, '/');
    if (fields.size() != 4) return Malformed();
    CopiedRetiredSecret secret;
    int64_t pepper_version = 0;
    int64_t valid_until_us = 0;
    if (!ParseInteger(fields[0], &secret.key_version) ||
        !ParseDigest(fields[1], &secret.retired.secret.digest) ||
        !ParseInteger(fields[2], &pepper_version) ||
        pepper_version < std::numeric_limits<int32_t>::min() ||
        pepper_version > std::numeric_limits<int32_t>::max() ||
        !ParseInteger(fields[3], &valid_until_us)) {
      return Malformed();
    }
    secret.retired.secret.pepper_version = static_cast<int>(pepper_version);
    secret.retired.valid_until = absl::FromUnixMicros(valid_until_us);
    out.push_back(secret);
  }
  if (static_cast<int64_t>(out.size()) != count) return Malformed();
  return out;
}

}  // namespace lumo::storage
