// The one place where absl::Time meets MySQL DATETIME(6). Every DATETIME in
// the schema holds UTC with microsecond precision, written as
// `YYYY-MM-DD HH:MM:SS.ffffff`. Pure functions: thread-safe.
#ifndef LUMOKEYS_SERVER_STORAGE_MYSQL_DATETIME_H_
#define LUMOKEYS_SERVER_STORAGE_MYSQL_DATETIME_H_

#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"

namespace lumo::storage {

// `t` in UTC, truncated to the microsecond (towards the past).
// INVALID_ARGUMENT when `t` is outside DATETIME's range (years 1000-9999),
// which includes the infinite times.
absl::StatusOr<std::string> FormatDatetime(absl::Time t);

// Parses `YYYY-MM-DD HH:MM:SS[.f{1,6}]` as UTC. INTERNAL when the text is
// not in that form (the database returned something unexpected).
absl::StatusOr<absl::Time> ParseDatetime(absl::string_view text);

}  // namespace lumo::storage

#endif  // LUMOKEYS_SERVER_STORAGE_MYSQL_DATETIME_H_
