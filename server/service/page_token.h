// Page tokens of keyset paging (docs/admin-api.md, "Paging large lists"):
// `p1.` followed by base64url (no padding) of the query's fingerprint
// (first 8 bytes of SHA-256 over the list's name, tenant, sort and
// filters) and the position (the last row's sort value, which may be NULL,
// and its id). Validated, not signed: a token that does not decode or was
// made for another query is refused as an invalid `pageToken`.
//
// And the bounds every list shares: the page-number form stops at
// kMaxNumberedRows rows, and a total is counted up to kTotalCountCap.
// Pure functions; thread-safe.
#ifndef LUMOKEYS_SERVER_SERVICE_PAGE_TOKEN_H_
#define LUMOKEYS_SERVER_SERVICE_PAGE_TOKEN_H_

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "absl/types/span.h"
#include "server/storage/list_page.h"

namespace lumo::service {

// A list's total is counted up to this many rows.
inline constexpr int64_t kTotalCountCap = 10'000;

// The parts a token's fingerprint covers: the list, the tenant, the sort
// and every filter, in a fixed order per list.
using QueryParts = std::vector<std::string>;

// One field of a position; unset is NULL.
using PositionField = std::optional<std::string>;

std::string EncodePageToken(const QueryParts& query,
                            absl::Span<const PositionField> position);

// The position of `token`, which must have been made for `query` with
// `field_count` fields. ErrorKind::kInvalidField naming "pageToken"
// otherwise.
absl::StatusOr<std::vector<PositionField>> DecodePageToken(
    absl::string_view token, const QueryParts& query, size_t field_count);

// The position of a list sorted by one column, then the id: the sort value
// (text for a text sort, else a time that may be NULL) and the id.
struct SortPosition {
  std::optional<absl::Time> time;
  std::string text;
  std::string id;
};
std::string EncodeSortPosition(const QueryParts& query, bool text_sort,
                               const SortPosition& position);
// kInvalidField naming "pageToken" unless `token` is such a position made
// for `query`.
absl::StatusOr<SortPosition> DecodeSortPosition(absl::string_view token,
                                                const QueryParts& query,
                                                bool text_sort);

// Times and integers as position fields (decimal microseconds / decimal).
std::string TimeField(absl::Time t);
PositionField OptionalTimeField(const std::optional<absl::Time>& t);
// kInvalidField naming "pageToken" when `field` is not such a value.
absl::StatusOr<std::optional<absl::Time>> ParseTimeField(
    const PositionField& field);
absl::StatusOr<int64_t> ParseIntField(const PositionField& field);

// After ParseListCommon: `page` must be unset with a token.
// kInvalidField naming "page".
absl::Status CheckPagingForm(std::optional<int32_t> page, bool has_token);

// The count a list asks its store for: `include_total`, by default on in
// the page-number form and off with a token, capped at kTotalCountCap.
storage::CountRequest CountFor(std::optional<bool> include_total,
                               bool has_token);

// The paging of a list sorted by one column, then the id, after
// ParseListCommon: checks the form (CheckPagingForm), sets the count to
// ask for (CountFor) into `count` and returns the position the page starts
// after, decoded from `page_token` for `query` (none without a token).
absl::StatusOr<std::optional<SortPosition>> SortedPageStart(
    std::optional<int32_t> page, absl::string_view page_token,
    std::optional<bool> include_total, const QueryParts& query, bool text_sort,
    storage::CountRequest* count);

}  // namespace lumo::service

#endif  // LUMOKEYS_SERVER_SERVICE_PAGE_TOKEN_H_
