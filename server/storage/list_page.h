// What every store list shares (docs/admin-api.md, "Paging large lists"):
// how a page's total was counted, and the count request.
#ifndef LUMOKEYS_SERVER_STORAGE_LIST_PAGE_H_
#define LUMOKEYS_SERVER_STORAGE_LIST_PAGE_H_

#include <cstdint>

namespace lumo::storage {

// How a list page's `total` was obtained.
enum class TotalKind {
  kExact,       // the number of matching rows
  kAtLeast,     // the count stopped at the cap: total == cap < matching rows
  kNotCounted,  // not asked for: total is 0
};

// The count a list asks for. Thread-compatible value type.
struct CountRequest {
  bool wanted = true;
  // At most this many matching rows are counted (0: no cap, exact).
  int64_t cap = 0;
};

// The total for `counted` matching rows read under `request`, where a
// capped count reads at most cap + 1 rows.
struct CountedTotal {
  int64_t total = 0;
  TotalKind kind = TotalKind::kExact;
};
inline CountedTotal TotalOf(const CountRequest& request, int64_t counted) {
  if (!request.wanted) return {0, TotalKind::kNotCounted};
  if (request.cap > 0 && counted > request.cap) {
    return {request.cap, TotalKind::kAtLeast};
  }
  return {counted, TotalKind::kExact};
}

}  // namespace lumo::storage

#endif  // LUMOKEYS_SERVER_STORAGE_LIST_PAGE_H_
