#include "server/rpc/paging.h"

namespace lumo::rpc {

void FillPageMeta(int64_t total, int page, int limit,
                  lumo::api::PageMeta* meta) {
  const int64_t total_pages = (total + limit - 1) / limit;
  meta->set_total(static_cast<int32_t>(total));
  meta->set_page(page);
  meta->set_limit(limit);
  meta->set_total_pages(static_cast<int32_t>(total_pages));
  meta->set_has_next_page(page < total_pages);
  meta->set_has_previous_page(page > 1);
}

}  // namespace lumo::rpc
