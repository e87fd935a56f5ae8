#include "server/storage/mysql/datetime.h"

#include <string>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace lumo::storage {
namespace {

// DATETIME's documented range.
const absl::Time kMinDatetime = absl::FromCivil(
    absl::CivilSecond(1000, 1, 1, 0, 0, 0), absl::UTCTimeZone());
const absl::Time kEndDatetime = absl::FromCivil(
    absl::CivilSecond(10000, 1, 1, 0, 0, 0), absl::UTCTimeZone());

}  // namespace

absl::StatusOr<std::string> FormatDatetime(absl::Time t) {
  if (t < kMinDatetime || t >= kEndDatetime) {
    return absl::InvalidArgumentError(
        "time is outside the database's range (years 1000-9999)");
  }
  // Floor to whole microseconds, then split into civil seconds + micros.
  const int64_t micros = absl::ToUnixMicros(t);
  const int64_t seconds =
      micros >= 0 ? micros / 1000000 : -((-micros + 999999) / 1000000);
  const int64_t fraction = micros - seconds * 1000000;
  const absl::CivilSecond cs =
      absl::ToCivilSecond(absl::FromUnixSeconds(seconds), absl::UTCTimeZone());
  return absl::StrFormat("%04d-%02d-%02d %02d:%02d:%02d.%06d", cs.year(),
                         cs.month(), cs.day(), cs.hour(), cs.minute(),
                         cs.second(), fraction);
}

absl::StatusOr<absl::Time> ParseDatetime(absl::string_view text) {
  absl::Time t;
  std::string error;
  if (!absl::ParseTime("%Y-%m-%d %H:%M:%E*S", text, absl::UTCTimeZone(), &t,
                       &error)) {
    return absl::InternalError("the database returned a malformed DATETIME");
  }
  return t;
}

}  // namespace lumo::storage
