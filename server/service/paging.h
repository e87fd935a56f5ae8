// The list parameters every admin list shares (docs/product.md §3.1): page
// (1-based, default 1), limit (default 25, 1..100; an explicit 0 is refused,
// not defaulted), search (at most 100 bytes of UTF-8) and sortDir
// (ASC|DESC, case-insensitive, default DESC); and sortBy, whose values each
// list declares in a table. Pure functions; thread-safe.
#ifndef LUMOKEYS_SERVER_SERVICE_PAGING_H_
#define LUMOKEYS_SERVER_SERVICE_PAGING_H_

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"

namespace lumo::service {

struct Paging {
  int page = 1;
  int limit = 25;
  // Keyset paging (docs/admin-api.md, "Paging large lists"): the request
  // carried a page token; the token of the page after the reply's ("" on
  // the last page, or for a list without tokens).
  bool by_token = false;
  std::string next_page_token;
};

struct ListCommon {
  Paging paging;
  bool descending = true;
};

inline constexpr size_t kMaxSearchLength = 100;
// page * limit of the page-number form is at most this.
inline constexpr int64_t kMaxNumberedRows = 10'000;

// ErrorKind::kInvalidField naming the parameter ("limit: must be ...")
// when one is out of range (page * limit above kMaxNumberedRows names
// "page").
absl::StatusOr<ListCommon> ParseListCommon(std::optional<int32_t> page,
                                           std::optional<int32_t> limit,
                                           absl::string_view search,
                                           absl::string_view sort_dir);

// One value a list accepts as sortBy, and the store's sort field it means.
template <typename Field>
struct SortOption {
  absl::string_view name;
  Field field;
};

// The refusal of a sortBy value: ErrorKind::kInvalidField naming "sortBy",
// "sortBy: one of <names, in order>".
absl::Status UnknownSortField(absl::Span<const absl::string_view> names);

// The field `sort_by` names in `options` (exact, case-sensitive match); an
// empty `sort_by` means the first option (the list's default order).
// UnknownSortField for anything else.
template <typename Field, size_t N>
absl::StatusOr<Field> ParseSortBy(absl::string_view sort_by,
                                  const SortOption<Field> (&options)[N]) {
  static_assert(N > 0, "a list has at least its default order");
  if (sort_by.empty()) return options[0].field;
  std::vector<absl::string_view> names;
  for (const SortOption<Field>& option : options) {
    if (option.name == sort_by) return option.field;
    names.push_back(option.name);
  }
  return UnknownSortField(names);
}

}  // namespace lumo::service

#endif  // LUMOKEYS_SERVER_SERVICE_PAGING_H_
