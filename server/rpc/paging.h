// The `meta` object of every list reply.
#ifndef LUMOKEYS_SERVER_RPC_PAGING_H_
#define LUMOKEYS_SERVER_RPC_PAGING_H_

#include <cstdint>
#include <string>

#include "lumo/api/annotations.pb.h"
#include "server/storage/list_page.h"

namespace lumo::rpc {

// total, page, limit, totalPages, hasNextPage, hasPreviousPage for `total`
// matching items shown `limit` (≥ 1) per page.
void FillPageMeta(int64_t total, int page, int limit,
                  lumo::api::PageMeta* meta);

// A page of a list with keyset paging (docs/admin-api.md, "Paging large
// lists").
struct KeysetPageMeta {
  int64_t total = 0;
  storage::TotalKind total_kind = storage::TotalKind::kExact;
  int page = 1;           // the page number; ignored with a token
  bool by_token = false;  // the request carried a page token
  int limit = 25;
  bool has_more = false;
  std::string next_page_token;  // "" on the last page
};
// The meta of such a page: page is 0 with a token; totalPages from the
// total (0 when not counted); hasNextPage from has_more; totalRelation and
// nextPageToken when they apply.
void FillPageMeta(const KeysetPageMeta& page, lumo::api::PageMeta* meta);

}  // namespace lumo::rpc

#endif  // LUMOKEYS_SERVER_RPC_PAGING_H_
