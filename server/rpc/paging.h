// The `meta` object of every list reply.
#ifndef LUMOKEYS_SERVER_RPC_PAGING_H_
#define LUMOKEYS_SERVER_RPC_PAGING_H_

#include <cstdint>

#include "lumo/api/annotations.pb.h"

namespace lumo::rpc {

// total, page, limit, totalPages, hasNextPage, hasPreviousPage for `total`
// matching items shown `limit` (≥ 1) per page.
void FillPageMeta(int64_t total, int page, int limit,
                  lumo::api::PageMeta* meta);

}  // namespace lumo::rpc

#endif  // LUMOKEYS_SERVER_RPC_PAGING_H_
