// Values for the `?` placeholders of a statement that is sent as text (a
// statement batch, Session::Defer), rendered as SQL literals: the batch
// carries several statements in one round trip, which server-side prepared
// statements cannot. Thread-compatible value type.
//
// Rendering contract: the text must mean exactly what binding the same
// values to a prepared statement means.
// - integers in decimal;
// - character data as a quoted literal in the connection character set
//   (utf8mb4): `'` doubled, `\` and NUL escaped with a backslash. This
//   relies on the session's sql_mode, which the connection sets and which
//   never contains NO_BACKSLASH_ESCAPES (connection_pool.cc); the literal
//   takes the column's collation in comparisons, like a bound string;
// - binary data (digests, hashes) as a hexadecimal literal X'...';
// - times as the DATETIME(6) text a bound time is (datetime.h);
// - NULL.
#ifndef LUMOKEYS_SERVER_STORAGE_MYSQL_SQL_VALUES_H_
#define LUMOKEYS_SERVER_STORAGE_MYSQL_SQL_VALUES_H_

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"

namespace lumo::storage {

class SqlValues {
 public:
  SqlValues& Int(int64_t v);
  SqlValues& Text(absl::string_view v);
  SqlValues& Bytes(absl::string_view v);
  SqlValues& Null();
  // A time, or NULL. INVALID_ARGUMENT outside DATETIME's range (then
  // nothing is added).
  absl::Status Time(std::optional<absl::Time> t);

  size_t size() const { return values_.size(); }

  // `sql` with its placeholders (each `?` outside quoted text) replaced by
  // the values, in order. INTERNAL when the counts differ.
  absl::StatusOr<std::string> Render(absl::string_view sql) const;
  // `sql` with each placeholder replaced by a fixed literal of its value's
  // kind: what the statement looks like on the wire, independent of the
  // values (for the MySQL grammar check, through the statement observer).
  std::string Shape(absl::string_view sql) const;

 private:
  enum class Kind { kInt, kText, kBytes, kNull, kTime };
  struct Value {
    Kind kind;
    std::string text;  // the literal, rendered when added
  };
  std::vector<Value> values_;
};

// Escapes `v` as the inside of a quoted character literal (see the
// contract above).
std::string EscapeStringLiteral(absl::string_view v);

}  // namespace lumo::storage

#endif  // LUMOKEYS_SERVER_STORAGE_MYSQL_SQL_VALUES_H_
