#include "server/storage/mysql/sql_values.h"

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "server/storage/mysql/datetime.h"

namespace lumo::storage {
namespace {

// Calls `on_text(piece)` for the text between placeholders and
// `on_placeholder()` for each `?` outside quoted text ('...', "...",
// `...`; a doubled quote stays inside).
template <typename Text, typename Placeholder>
void ScanPlaceholders(absl::string_view sql, Text on_text,
                      Placeholder on_placeholder) {
  char quote = 0;
  size_t start = 0;
  for (size_t i = 0; i < sql.size(); ++i) {
    const char c = sql[i];
    if (quote != 0) {
      if (c == quote) quote = 0;
    } else if (c == '\'' || c == '"' || c == '`') {
      quote = c;
    } else if (c == '?') {
      on_text(sql.substr(start, i - start));
      on_placeholder();
      start = i + 1;
    }
  }
  on_text(sql.substr(start));
}

}  // namespace

std::string EscapeStringLiteral(absl::string_view v) {
  std::string out;
  out.reserve(v.size() + 2);
  for (char c : v) {
    switch (c) {
      case '\'':
        out += "''";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\0':
        out += "\\0";
        break;
      default:
        out.push_back(c);
    }
  }
  return out;
}

SqlValues& SqlValues::Int(int64_t v) {
  values_.push_back(Value{Kind::kInt, absl::StrCat(v)});
  return *this;
}

SqlValues& SqlValues::Text(absl::string_view v) {
  values_.push_back(
      Value{Kind::kText, absl::StrCat("'", EscapeStringLiteral(v), "'")});
  return *this;
}

SqlValues& SqlValues::Bytes(absl::string_view v) {
  values_.push_back(
      Value{Kind::kBytes, absl::StrCat("X'", absl::BytesToHexString(v), "'")});
  return *this;
}

SqlValues& SqlValues::Null() {
  values_.push_back(Value{Kind::kNull, "NULL"});
  return *this;
}

absl::Status SqlValues::Time(std::optional<absl::Time> t) {
  if (!t.has_value()) {
    Null();
    return absl::OkStatus();
  }
  absl::StatusOr<std::string> text = FormatDatetime(*t);
  if (!text.ok()) return text.status();
  values_.push_back(Value{Kind::kTime, absl::StrCat("'", *text, "'")});
  return absl::OkStatus();
}

absl::StatusOr<std::string> SqlValues::Render(absl::string_view sql) const {
  std::string out;
  out.reserve(sql.size() + 16 * values_.size());
  size_t next = 0;
  bool short_of_values = false;
  ScanPlaceholders(
      sql,
      [&](absl::string_view text) { out.append(text.data(), text.size()); },
      [&] {
        if (next < values_.size()) {
          out += values_[next++].text;
        } else {
          short_of_values = true;
        }
      });
  if (short_of_values || next != values_.size()) {
    return absl::InternalError(
        absl::StrCat("statement has a different number of placeholders than ",
                     values_.size(), " values"));
  }
  return out;
}

std::string SqlValues::Shape(absl::string_view sql) const {
  std::string out;
  size_t next = 0;
  ScanPlaceholders(
      sql,
      [&](absl::string_view text) { out.append(text.data(), text.size()); },
      [&] {
        const Kind kind =
            next < values_.size() ? values_[next++].kind : Kind::kNull;
        switch (kind) {
          case Kind::kInt:
            out += "0";
            break;
          case Kind::kText:
            out += "'x'";
            break;
          case Kind::kBytes:
            out += "X'00'";
            break;
          case Kind::kNull:
            out += "NULL";
            break;
          case Kind::kTime:
            out += "'2000-01-01 00:00:00.000000'";
            break;
        }
      });
  return out;
}

}  // namespace lumo::storage
