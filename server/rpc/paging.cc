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

void FillPageMeta(const KeysetPageMeta& page, lumo::api::PageMeta* meta) {
  const int64_t total_pages = (page.total + page.limit - 1) / page.limit;
  meta->set_total(static_cast<int32_t>(page.total));
  meta->set_page(page.by_token ? 0 : page.page);
  meta->set_limit(page.limit);
  meta->set_total_pages(static_cast<int32_t>(total_pages));
  meta->set_has_next_page(page.has_more);
  meta->set_has_previous_page(page.by_token || page.page > 1);
  switch (page.total_kind) {
    case storage::TotalKind::kAtLeast:
      meta->set_total_relation("gte");
      break;
    case storage::TotalKind::kNotCounted:
      meta->set_total_relation("unknown");
      break;
    case storage::TotalKind::kExact:
      break;
  }
  if (!page.next_page_token.empty()) {
    meta->set_next_page_token(page.next_page_token);
  }
}

}  // namespace lumo::rpc
