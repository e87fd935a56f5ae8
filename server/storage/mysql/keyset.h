// Keyset paging for the MySQL stores' lists (docs/admin-api.md, "Paging
// large lists"; docs/storage.md, "List queries"). A list is walked in the
// order of an index of (tenant_id, sort column) + primary key: a page is
// the rows after a position (sort value, id), found by a range of that
// index, with LIMIT. A nullable sort column is walked as two ranges, its
// non-NULL values and its NULLs (by id), so neither needs a filesort.
// Per-row subqueries of the select list are evaluated in an outer query
// over the page's rows only.
//
// Stateless functions; the returned values are plain data.
#ifndef LUMOKEYS_SERVER_STORAGE_MYSQL_KEYSET_H_
#define LUMOKEYS_SERVER_STORAGE_MYSQL_KEYSET_H_

#include <cppconn/prepared_statement.h>
#include <cppconn/resultset.h>

#include <cstdint>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "absl/functional/function_ref.h"
#include "absl/status/status.h"
#include "absl/time/time.h"
#include "server/storage/list_page.h"
#include "server/storage/mysql/mysql_session.h"

namespace lumo::storage {

// A value bound to a `?` of a list statement.
using SqlValue = std::variant<int64_t, std::string, absl::Time>;

// Binds `values` from parameter `*index` on, advancing it.
absl::Status BindValues(sql::PreparedStatement& stmt,
                        const std::vector<SqlValue>& values, int* index);

// The order of a list: `column` (fixed text, e.g. "k.created_at"), then
// `id_column`, both ascending or both descending. A nullable column's NULLs
// sort as the lowest values (`nulls_low`, MySQL's own order) or as the
// highest.
struct KeysetOrder {
  std::string column;
  std::string id_column;
  bool descending = true;
  bool nullable = false;
  bool nulls_low = true;
};

// A position: the sort value of a listed row (unset: NULL) and its id.
struct KeysetPosition {
  std::optional<SqlValue> value;
  SqlValue id;
};

// One list statement: the filters of every page, and the select list
// evaluated for the page's rows only.
struct KeysetList {
  // "SELECT <expressions over alias>" of the outer query.
  std::string outer_select;
  // The inner query's table expression and filters: " FROM api_keys k ...
  // WHERE ..." (fixed text; values bound from `where_values`).
  std::string from_where;
  std::vector<SqlValue> where_values;
  // The columns the inner query passes out ("k.*") and its alias ("k").
  std::string inner_columns;
  std::string alias;
};

// Reads up to `want` rows of `list` in `order`, after `after` when set,
// skipping `offset` rows first; calls `row` for each in order. The rows
// come from one statement per range of the walk (a second one only when
// the first did not fill the page).
absl::Status ReadKeysetPage(
    Session& session, const KeysetList& list, const KeysetOrder& order,
    const std::optional<KeysetPosition>& after, int64_t offset, int64_t want,
    absl::FunctionRef<absl::Status(sql::ResultSet&)> row);

// A list page: up to `limit` rows after `after` (or `offset` rows in),
// passed to `add_row` in order, whether more follow (one extra row is
// read to know), and the count `count` asks for.
absl::Status ReadCountedPage(
    Session& session, const KeysetList& list, const KeysetOrder& order,
    const std::optional<KeysetPosition>& after, int64_t offset, int limit,
    const CountRequest& count,
    absl::FunctionRef<absl::Status(sql::ResultSet&)> add_row, bool* has_more,
    CountedTotal* total);

// Counts the rows of `list` as `request` asks (at most cap + 1 read).
absl::StatusOr<CountedTotal> CountKeysetList(Session& session,
                                             const KeysetList& list,
                                             const CountRequest& request);

}  // namespace lumo::storage

#endif  // LUMOKEYS_SERVER_STORAGE_MYSQL_KEYSET_H_
