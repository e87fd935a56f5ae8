// Named result columns for the MySQL stores. A statement's select list is
// built once from expressions, and every expression's result column is kept
// in a named member, so a reader writes `rs.getInt64(cols.version)`, never
// a position or `count + 3`. Adding, removing or reordering an expression
// changes the SQL and every index together. Not thread-safe while it is
// being built; read-only (and thread-safe) afterwards: build it once
// (SelectOf).
//
//   struct VersionSelect {
//     SelectList list;
//     int id = list.Add("k.id");
//     int version = list.Add("k.version");
//   };
#ifndef LUMOKEYS_SERVER_STORAGE_MYSQL_SELECT_LIST_H_
#define LUMOKEYS_SERVER_STORAGE_MYSQL_SELECT_LIST_H_

#include <string>

#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"

namespace lumo::storage {

class SelectList {
 public:
  // Appends `expression` (fixed text of the calling file, never a value)
  // and returns its 1-based result column.
  int Add(absl::string_view expression) {
    absl::StrAppend(&sql_, count_ == 0 ? "" : ", ", expression);
    return ++count_;
  }

  // "expr1, expr2, ...": the text between SELECT and FROM.
  const std::string& sql() const { return sql_; }
  int size() const { return count_; }

 private:
  std::string sql_;
  int count_ = 0;
};

// The one instance of a select struct such as VersionSelect above: built
// at first use (thread-safe), never destroyed.
template <typename Select>
const Select& SelectOf() {
  static const Select* const select = new Select;
  return *select;
}

}  // namespace lumo::storage

#endif  // LUMOKEYS_SERVER_STORAGE_MYSQL_SELECT_LIST_H_
