#include "gateway/transcoding/time_format.h"

#include <cstdint>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/string_view.h"
#include "absl/time/civil_time.h"
#include "absl/time/time.h"

namespace lumo::gateway {
namespace {

constexpr int64_t kMaxDurationSeconds = 315576000000;

// Appends "", ".123", ".123456" or ".123456789" for `nanos` in [0, 1e9).
void AppendFraction(int32_t nanos, std::string* out) {
  if (nanos == 0) return;
  if (nanos % 1000000 == 0) {
    absl::StrAppendFormat(out, ".%03d", nanos / 1000000);
  } else if (nanos % 1000 == 0) {
    absl::StrAppendFormat(out, ".%06d", nanos / 1000);
  } else {
    absl::StrAppendFormat(out, ".%09d", nanos);
  }
}

// Reads exactly `width` decimal digits at `*pos`.
bool ReadDigits(absl::string_view text, size_t* pos, int width, int* value) {
  if (text.size() - *pos < static_cast<size_t>(width)) return false;
  int v = 0;
  for (int i = 0; i < width; ++i) {
    const char c = text[*pos + i];
    if (c < '0' || c > '9') return false;
    v = v * 10 + (c - '0');
  }
  *pos += width;
  *value = v;
  return true;
}

bool Expect(absl::string_view text, size_t* pos, char a, char b) {
  if (*pos >= text.size() || (text[*pos] != a && text[*pos] != b)) {
    return false;
  }
  ++*pos;
  return true;
}

}  // namespace

bool AppendRfc3339(int64_t seconds, int32_t nanos, std::string* out) {
  if (seconds < kMinTimestampSeconds || seconds > kMaxTimestampSeconds ||
      nanos < 0 || nanos > 999999999) {
    return false;
  }
  const absl::CivilSecond civil =
      absl::ToCivilSecond(absl::FromUnixSeconds(seconds), absl::UTCTimeZone());
  absl::StrAppendFormat(
      out, "%04d-%02d-%02dT%02d:%02d:%02d", static_cast<int>(civil.year()),
      civil.month(), civil.day(), civil.hour(), civil.minute(), civil.second());
  AppendFraction(nanos, out);
  out->push_back('Z');
  return true;
}

absl::Status ParseRfc3339(absl::string_view text, int64_t* seconds,
                          int32_t* nanos) {
  const absl::Status bad = absl::InvalidArgumentError(
      "not an RFC 3339 timestamp (e.g. 2026-01-02T03:04:05Z; encode '+' as "
      "%2B)");
  size_t pos = 0;
  int year, month, day, hour, minute, second;
  if (!ReadDigits(text, &pos, 4, &year) || !Expect(text, &pos, '-', '-') ||
      !ReadDigits(text, &pos, 2, &month) || !Expect(text, &pos, '-', '-') ||
      !ReadDigits(text, &pos, 2, &day) || !Expect(text, &pos, 'T', 't') ||
      !ReadDigits(text, &pos, 2, &hour) || !Expect(text, &pos, ':', ':') ||
      !ReadDigits(text, &pos, 2, &minute) || !Expect(text, &pos, ':', ':') ||
      !ReadDigits(text, &pos, 2, &second)) {
    return bad;
  }
  int32_t fraction = 0;
  if (pos < text.size() && text[pos] == '.') {
    ++pos;
    int digits = 0;
    while (pos < text.size() && text[pos] >= '0' && text[pos] <= '9') {
      if (++digits > 9) return bad;
      fraction = fraction * 10 + (text[pos] - '0');
      ++pos;
    }
    if (digits == 0) return bad;
    for (int i = digits; i < 9; ++i) fraction *= 10;
  }
  int offset_seconds = 0;
  if (pos < text.size() && (text[pos] == 'Z' || text[pos] == 'z')) {
    ++pos;
  } else if (pos < text.size() && (text[pos] == '+' || text[pos] == '-')) {
    const int sign = text[pos] == '-' ? -1 : 1;
    ++pos;
    int offset_hours, offset_minutes;
    if (!ReadDigits(text, &pos, 2, &offset_hours) ||
        !Expect(text, &pos, ':', ':') ||
        !ReadDigits(text, &pos, 2, &offset_minutes) || offset_hours > 23 ||
        offset_minutes > 59) {
      return bad;
    }
    offset_seconds = sign * (offset_hours * 3600 + offset_minutes * 60);
  } else {
    return bad;
  }
  if (pos != text.size()) return bad;
  if (year < 1 || month < 1 || month > 12 || day < 1 || hour > 23 ||
      minute > 59 || second > 59) {
    return bad;
  }
  // CivilSecond normalises (Feb 30 -> Mar 2): a changed day means invalid.
  const absl::CivilSecond civil(year, month, day, hour, minute, second);
  if (civil.month() != month || civil.day() != day) return bad;
  const int64_t unix_seconds =
      absl::ToUnixSeconds(absl::FromCivil(civil, absl::UTCTimeZone())) -
      offset_seconds;
  if (unix_seconds < kMinTimestampSeconds ||
      unix_seconds > kMaxTimestampSeconds) {
    return absl::InvalidArgumentError("timestamp out of range");
  }
  *seconds = unix_seconds;
  *nanos = fraction;
  return absl::OkStatus();
}

bool AppendDuration(int64_t seconds, int32_t nanos, std::string* out) {
  if (seconds < -kMaxDurationSeconds || seconds > kMaxDurationSeconds ||
      nanos < -999999999 || nanos > 999999999 || (seconds < 0 && nanos > 0) ||
      (seconds > 0 && nanos < 0)) {
    return false;
  }
  if (seconds < 0 || nanos < 0) {
    out->push_back('-');
    seconds = -seconds;
    nanos = -nanos;
  }
  absl::StrAppend(out, seconds);
  AppendFraction(nanos, out);
  out->push_back('s');
  return true;
}

}  // namespace lumo::gateway
