#include "server/service/paging.h"

#include <string>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "server/core/validation.h"
#include "server/service/errors.h"

namespace lumo::service {

absl::StatusOr<ListCommon> ParseListCommon(std::optional<int32_t> page,
                                           std::optional<int32_t> limit,
                                           absl::string_view search,
                                           absl::string_view sort_dir) {
  ListCommon out;
  out.paging.page = page.value_or(1);
  out.paging.limit = limit.value_or(25);
  if (out.paging.page < 1 || out.paging.page > 1'000'000) {
    return InvalidField("page", "must be between 1 and 1000000");
  }
  if (out.paging.limit < 1 || out.paging.limit > 100) {
    return InvalidField("limit", "must be between 1 and 100");
  }
  // Deeper numbered pages would read and skip as many rows as the tenant
  // has (docs/admin-api.md, "Paging large lists").
  if (static_cast<int64_t>(out.paging.page) * out.paging.limit >
      kMaxNumberedRows) {
    return InvalidField(
        "page", absl::StrCat("page * limit must be at most ", kMaxNumberedRows,
                             "; page further with pageToken"));
  }
  if (search.size() > kMaxSearchLength || !core::IsValidUtf8(search)) {
    return InvalidField("search", "at most 100 bytes of UTF-8");
  }
  const std::string dir = absl::AsciiStrToUpper(sort_dir);
  if (dir.empty() || dir == "DESC") {
    out.descending = true;
  } else if (dir == "ASC") {
    out.descending = false;
  } else {
    return InvalidField("sortDir", "ASC or DESC");
  }
  return out;
}

absl::Status UnknownSortField(absl::Span<const absl::string_view> names) {
  return InvalidField("sortBy",
                      absl::StrCat("one of ", absl::StrJoin(names, ", ")));
}

}  // namespace lumo::service
