// The list parameters every admin list shares (docs/product.md §3.1): page
// (1-based, default 1), limit (default 25, 1..100; an explicit 0 is refused,
// not defaulted), search (at most 100 bytes of UTF-8) and sortDir
// (ASC|DESC, case-insensitive, default DESC). Pure functions; thread-safe.
#ifndef LUMOKEYS_SERVER_SERVICE_PAGING_H_
#define LUMOKEYS_SERVER_SERVICE_PAGING_H_

#include <cstdint>
#include <optional>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace lumo::service {

struct Paging {
  int page = 1;
  int limit = 25;
};

struct ListCommon {
  Paging paging;
  bool descending = true;
};

inline constexpr size_t kMaxSearchLength = 100;

// INVALID_ARGUMENT ("validation_error", message starting with the field
// name) when a parameter is out of range.
absl::StatusOr<ListCommon> ParseListCommon(std::optional<int32_t> page,
                                           std::optional<int32_t> limit,
                                           absl::string_view search,
                                           absl::string_view sort_dir);

}  // namespace lumo::service

#endif  // LUMOKEYS_SERVER_SERVICE_PAGING_H_
