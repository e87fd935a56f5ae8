#include "server/storage/mysql/c_client_select.h"

#include <mysql.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <string>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"

namespace lumo::storage {

// One libmariadb connection with the statement prepared and a result
// buffer bound per column (integers and times in their native form, other
// columns as bytes).
struct CClientPointSelect::Connection {
  MYSQL* mysql = nullptr;
  MYSQL_STMT* stmt = nullptr;
  // The parameter.
  std::string id;
  unsigned long id_length = 0;
  MYSQL_BIND param{};
  // The result columns.
  std::vector<MYSQL_BIND> columns;
  std::vector<std::string> buffers;
  std::vector<unsigned long> lengths;
  std::vector<my_bool> nulls;
  std::vector<my_bool> errors;

  ~Connection() {
    if (stmt != nullptr) mysql_stmt_close(stmt);
    if (mysql != nullptr) mysql_close(mysql);
  }
};

namespace {

// Room for any column of the statement but the longest text ones (a
// truncated column still counts as read: MYSQL_DATA_TRUNCATED).
constexpr size_t kColumnBuffer = 1024;

absl::Status ClientError(absl::string_view what, MYSQL* mysql) {
  return absl::InternalError(
      absl::StrCat("C client ", what, ": ", mysql_error(mysql)));
}

absl::Status StatementError(absl::string_view what, MYSQL_STMT* stmt) {
  return absl::InternalError(
      absl::StrCat("C client ", what, ": ", mysql_stmt_error(stmt)));
}

}  // namespace

CClientPointSelect::CClientPointSelect(MysqlOptions options, std::string sql)
    : options_(std::move(options)), sql_(std::move(sql)) {}

CClientPointSelect::~CClientPointSelect() = default;

absl::StatusOr<std::unique_ptr<CClientPointSelect::Connection>>
CClientPointSelect::Open() {
  auto c = std::make_unique<Connection>();
  c->mysql = mysql_init(nullptr);
  if (c->mysql == nullptr) return absl::ResourceExhaustedError("mysql_init");
  // The pool's socket ceilings (whole seconds, at least one): a database
  // that stops answering fails the call instead of hanging it.
  auto seconds = [](absl::Duration d) {
    return static_cast<unsigned int>(std::max<int64_t>(
        1, absl::ToInt64Seconds(absl::Ceil(d, absl::Seconds(1)))));
  };
  const unsigned int connect_timeout = seconds(options_.connect_timeout);
  const unsigned int read_timeout = seconds(options_.read_timeout);
  const unsigned int write_timeout = seconds(options_.write_timeout);
  mysql_options(c->mysql, MYSQL_OPT_CONNECT_TIMEOUT, &connect_timeout);
  mysql_options(c->mysql, MYSQL_OPT_READ_TIMEOUT, &read_timeout);
  mysql_options(c->mysql, MYSQL_OPT_WRITE_TIMEOUT, &write_timeout);
  const bool socket = !options_.unix_socket.empty();
  if (mysql_real_connect(
          c->mysql, socket ? nullptr : options_.host.c_str(),
          options_.user.c_str(), options_.password.c_str(),
          options_.database.empty() ? nullptr : options_.database.c_str(),
          socket ? 0 : static_cast<unsigned int>(options_.port),
          socket ? options_.unix_socket.c_str() : nullptr, 0) == nullptr) {
    return absl::UnavailableError(
        absl::StrCat("C client connect: ", mysql_error(c->mysql)));
  }
  c->stmt = mysql_stmt_init(c->mysql);
  if (c->stmt == nullptr) return ClientError("statement", c->mysql);
  if (mysql_stmt_prepare(c->stmt, sql_.data(), sql_.size()) != 0) {
    return StatementError("prepare", c->stmt);
  }
  c->param.buffer_type = MYSQL_TYPE_STRING;
  c->param.length = &c->id_length;
  MYSQL_RES* meta = mysql_stmt_result_metadata(c->stmt);
  if (meta == nullptr) return StatementError("metadata", c->stmt);
  const unsigned int n = mysql_num_fields(meta);
  MYSQL_FIELD* fields = mysql_fetch_fields(meta);
  c->columns.assign(n, MYSQL_BIND{});
  c->buffers.assign(n, std::string());
  c->lengths.assign(n, 0);
  c->nulls.assign(n, 0);
  c->errors.assign(n, 0);
  for (unsigned int i = 0; i < n; ++i) {
    MYSQL_BIND& b = c->columns[i];
    switch (fields[i].type) {
      case MYSQL_TYPE_TINY:
      case MYSQL_TYPE_SHORT:
      case MYSQL_TYPE_LONG:
      case MYSQL_TYPE_INT24:
      case MYSQL_TYPE_LONGLONG:
        b.buffer_type = MYSQL_TYPE_LONGLONG;
        c->buffers[i].resize(sizeof(long long));
        break;
      case MYSQL_TYPE_DATETIME:
      case MYSQL_TYPE_TIMESTAMP:
      case MYSQL_TYPE_DATE:
        b.buffer_type = MYSQL_TYPE_DATETIME;
        c->buffers[i].resize(sizeof(MYSQL_TIME));
        break;
      default:
        b.buffer_type = MYSQL_TYPE_STRING;
        c->buffers[i].resize(kColumnBuffer);
        break;
    }
    b.buffer = c->buffers[i].data();
    b.buffer_length = c->buffers[i].size();
    b.length = &c->lengths[i];
    b.is_null = &c->nulls[i];
    b.error = &c->errors[i];
  }
  mysql_free_result(meta);
  if (mysql_stmt_bind_result(c->stmt, c->columns.data()) != 0) {
    return StatementError("bind result", c->stmt);
  }
  return c;
}

absl::StatusOr<bool> CClientPointSelect::Select(absl::string_view id) {
  std::unique_ptr<Connection> c;
  {
    absl::MutexLock lock(&mu_);
    if (!idle_.empty()) {
      c = std::move(idle_.back());
      idle_.pop_back();
    }
  }
  if (c == nullptr) {
    absl::StatusOr<std::unique_ptr<Connection>> opened = Open();
    if (!opened.ok()) return opened.status();
    c = *std::move(opened);
  }
  c->id.assign(id.data(), id.size());
  c->id_length = c->id.size();
  c->param.buffer = c->id.data();
  c->param.buffer_length = c->id.size();
  if (mysql_stmt_bind_param(c->stmt, &c->param) != 0) {
    return StatementError("bind", c->stmt);  // the connection is closed
  }
  if (mysql_stmt_execute(c->stmt) != 0) {
    return StatementError("execute", c->stmt);
  }
  bool found = false;
  for (;;) {
    const int fetched = mysql_stmt_fetch(c->stmt);
    if (fetched == MYSQL_NO_DATA) break;
    if (fetched == 1) return StatementError("fetch", c->stmt);
    found = true;  // 0, or MYSQL_DATA_TRUNCATED: the row was read
  }
  absl::MutexLock lock(&mu_);
  idle_.push_back(std::move(c));
  return found;
}

}  // namespace lumo::storage
