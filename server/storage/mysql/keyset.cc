#include "server/storage/mysql/keyset.h"

#include <memory>
#include <utility>

#include "absl/strings/str_cat.h"

namespace lumo::storage {

namespace {

// One index range of a walk: its condition (appended to the filters), its
// order and the values its condition binds.
struct Range {
  std::string condition;
  std::string order_by;
  std::vector<SqlValue> values;
};

// The ranges a walk reads, in order, starting at `after`.
absl::StatusOr<std::vector<Range>> RangesOf(
    const KeysetOrder& order, const std::optional<KeysetPosition>& after) {
  const char* dir = order.descending ? " DESC" : " ASC";
  const char* op = order.descending ? "<" : ">";
  const std::string& c = order.column;
  const std::string& id = order.id_column;
  // The rows after (value, id): the first conjunct is a range of the index.
  auto after_value = [&](Range& r) {
    absl::StrAppend(&r.condition, " AND ", c, " ", op, "= ? AND (", c, " ", op,
                    " ? OR ", id, " ", op, " ?)");
    r.values = {*after->value, *after->value, after->id};
  };
  Range values{"", absl::StrCat(c, dir, ", ", id, dir), {}};
  if (!order.nullable) {
    if (after.has_value()) {
      if (!after->value.has_value()) {
        return absl::InvalidArgumentError("list position: missing sort value");
      }
      after_value(values);
    }
    return std::vector<Range>{std::move(values)};
  }
  values.condition = absl::StrCat(" AND ", c, " IS NOT NULL");
  Range nulls{absl::StrCat(" AND ", c, " IS NULL"), absl::StrCat(id, dir), {}};
  const bool nulls_first = order.nulls_low != order.descending;
  if (!after.has_value()) {
    if (nulls_first)
      return std::vector<Range>{std::move(nulls), std::move(values)};
    return std::vector<Range>{std::move(values), std::move(nulls)};
  }
  if (!after->value.has_value()) {
    absl::StrAppend(&nulls.condition, " AND ", id, " ", op, " ?");
    nulls.values = {after->id};
    if (nulls_first)
      return std::vector<Range>{std::move(nulls), std::move(values)};
    return std::vector<Range>{std::move(nulls)};
  }
  after_value(values);
  if (nulls_first) return std::vector<Range>{std::move(values)};
  return std::vector<Range>{std::move(values), std::move(nulls)};
}

// Rows of `list` within `range` skipped by an offset: at most `cap`.
absl::StatusOr<int64_t> CountRange(Session& session, const KeysetList& list,
                                   const Range& range, int64_t cap) {
  session.Step("count list range");
  std::unique_ptr<sql::PreparedStatement> stmt = session.PrepareUncached(
      absl::StrCat("SELECT COUNT(*) FROM (SELECT 1", list.from_where,
                   range.condition, " LIMIT ?) x"));
  int index = 1;
  if (absl::Status s = BindValues(*stmt, list.where_values, &index); !s.ok())
    return s;
  if (absl::Status s = BindValues(*stmt, range.values, &index); !s.ok())
    return s;
  stmt->setInt64(index, cap);
  std::unique_ptr<sql::ResultSet> rs = session.Query(*stmt);
  return rs->next() ? rs->getInt64(1) : 0;
}

}  // namespace

absl::Status BindValues(sql::PreparedStatement& stmt,
                        const std::vector<SqlValue>& values, int* index) {
  for (const SqlValue& value : values) {
    if (const int64_t* i = std::get_if<int64_t>(&value)) {
      stmt.setInt64((*index)++, *i);
    } else if (const std::string* s = std::get_if<std::string>(&value)) {
      stmt.setString((*index)++, *s);
    } else if (absl::Status st =
                   BindTime(stmt, (*index)++, std::get<absl::Time>(value));
               !st.ok()) {
      return st;
    }
  }
  return absl::OkStatus();
}

absl::Status ReadKeysetPage(
    Session& session, const KeysetList& list, const KeysetOrder& order,
    const std::optional<KeysetPosition>& after, int64_t offset, int64_t want,
    absl::FunctionRef<absl::Status(sql::ResultSet&)> row) {
  absl::StatusOr<std::vector<Range>> ranges = RangesOf(order, after);
  if (!ranges.ok()) return ranges.status();
  for (const Range& range : *ranges) {
    if (want <= 0) break;
    session.Step("list page");
    // Many variants (sort x direction x filters): not cached, to keep the
    // server's prepared-statement count bounded.
    std::unique_ptr<sql::PreparedStatement> stmt =
        session.PrepareUncached(absl::StrCat(
            list.outer_select, " FROM (SELECT ", list.inner_columns,
            list.from_where, range.condition, " ORDER BY ", range.order_by,
            " LIMIT ? OFFSET ?) ", list.alias, " ORDER BY ", range.order_by));
    int index = 1;
    if (absl::Status s = BindValues(*stmt, list.where_values, &index); !s.ok())
      return s;
    if (absl::Status s = BindValues(*stmt, range.values, &index); !s.ok())
      return s;
    stmt->setInt64(index++, want);
    stmt->setInt64(index++, offset);
    std::unique_ptr<sql::ResultSet> rs = session.Query(*stmt);
    int64_t read = 0;
    while (rs->next()) {
      if (absl::Status s = row(*rs); !s.ok()) return s;
      ++read;
    }
    want -= read;
    if (read > 0 || offset == 0) {
      offset = 0;
      continue;
    }
    // The offset reached past this range: the next one skips the rest.
    absl::StatusOr<int64_t> skipped = CountRange(session, list, range, offset);
    if (!skipped.ok()) return skipped.status();
    offset -= *skipped;
  }
  return absl::OkStatus();
}

absl::Status ReadCountedPage(
    Session& session, const KeysetList& list, const KeysetOrder& order,
    const std::optional<KeysetPosition>& after, int64_t offset, int limit,
    const CountRequest& count,
    absl::FunctionRef<absl::Status(sql::ResultSet&)> add_row, bool* has_more,
    CountedTotal* total) {
  int added = 0;
  *has_more = false;
  absl::Status read =
      ReadKeysetPage(session, list, order, after, offset, limit + 1,
                     [&](sql::ResultSet& rs) -> absl::Status {
                       if (added == limit) {
                         *has_more = true;
                         return absl::OkStatus();
                       }
                       ++added;
                       return add_row(rs);
                     });
  if (!read.ok()) return read;
  absl::StatusOr<CountedTotal> counted = CountKeysetList(session, list, count);
  if (!counted.ok()) return counted.status();
  *total = *counted;
  return absl::OkStatus();
}

absl::StatusOr<CountedTotal> CountKeysetList(Session& session,
                                             const KeysetList& list,
                                             const CountRequest& request) {
  if (!request.wanted) return TotalOf(request, 0);
  session.Step("count list");
  std::unique_ptr<sql::PreparedStatement> stmt = session.PrepareUncached(
      request.cap > 0 ? absl::StrCat("SELECT COUNT(*) FROM (SELECT 1",
                                     list.from_where, " LIMIT ?) x")
                      : absl::StrCat("SELECT COUNT(*)", list.from_where));
  int index = 1;
  if (absl::Status s = BindValues(*stmt, list.where_values, &index); !s.ok())
    return s;
  if (request.cap > 0) stmt->setInt64(index, request.cap + 1);
  std::unique_ptr<sql::ResultSet> rs = session.Query(*stmt);
  return TotalOf(request, rs->next() ? rs->getInt64(1) : 0);
}

}  // namespace lumo::storage
