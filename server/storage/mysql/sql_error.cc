#include "server/storage/mysql/sql_error.h"

#include <cppconn/exception.h>

#include "absl/strings/str_cat.h"

namespace lumo::storage {
namespace {

// Server error numbers (mysqld_error.h / MariaDB's errmsg).
constexpr int kErWrongGaleraState = 1047;  // ER_UNKNOWN_COM_ERROR under WSREP
constexpr int kErNullColumn = 1048;
constexpr int kErServerShutdown = 1053;
constexpr int kErDuplicateEntry = 1062;
constexpr int kErTooManyConnections = 1040;
constexpr int kErLockWaitTimeout = 1205;
constexpr int kErDeadlock = 1213;
constexpr int kErOutOfRange = 1264;
constexpr int kErReadOnly = 1290;
constexpr int kErQueryInterrupted = 1317;
constexpr int kErIncorrectString = 1366;
constexpr int kErDataTooLong = 1406;
constexpr int kErRowIsReferenced = 1451;
constexpr int kErNoReferencedRow = 1452;
constexpr int kErDuplicateEntryWithKeyName = 1586;
constexpr int kErSuperReadOnly = 1836;
constexpr int kErConnectionKilled = 1927;          // MariaDB
constexpr int kErMaxStatementTime = 1969;          // MariaDB
constexpr int kErMaxExecutionTime = 3024;          // MySQL
constexpr int kErCheckConstraintMysql = 3819;      // MySQL
constexpr int kErConstraintFailedMariaDb = 4025;   // MariaDB
constexpr int kErClientInteractionTimeout = 4031;  // MySQL 8.0.24+

absl::StatusCode CodeFor(int error_code) {
  if (IsConnectionLevelError(error_code)) return absl::StatusCode::kUnavailable;
  switch (error_code) {
    case kErDuplicateEntry:
    case kErDuplicateEntryWithKeyName:
      return absl::StatusCode::kAlreadyExists;
    case kErLockWaitTimeout:
    case kErMaxStatementTime:
    case kErMaxExecutionTime:
      return absl::StatusCode::kDeadlineExceeded;
    case kErDeadlock:
      return absl::StatusCode::kAborted;
    case kErTooManyConnections:
    case kErReadOnly:
    case kErSuperReadOnly:
    case kErQueryInterrupted:
    case kErWrongGaleraState:
      return absl::StatusCode::kUnavailable;
    case kErNullColumn:
    case kErOutOfRange:
    case kErIncorrectString:
    case kErDataTooLong:
    case kErCheckConstraintMysql:
    case kErConstraintFailedMariaDb:
      return absl::StatusCode::kInvalidArgument;
    case kErRowIsReferenced:
    case kErNoReferencedRow:
      return absl::StatusCode::kFailedPrecondition;
    default:
      return absl::StatusCode::kInternal;
  }
}

absl::string_view Describe(absl::StatusCode code) {
  switch (code) {
    case absl::StatusCode::kAlreadyExists:
      return "already exists";
    case absl::StatusCode::kDeadlineExceeded:
      return "statement or lock wait hit its time limit";
    case absl::StatusCode::kAborted:
      return "deadlock, transaction rolled back";
    case absl::StatusCode::kUnavailable:
      return "database unavailable";
    case absl::StatusCode::kInvalidArgument:
      return "value rejected by the schema";
    case absl::StatusCode::kFailedPrecondition:
      return "referenced row missing";
    default:
      return "database error";
  }
}

}  // namespace

bool IsConnectionLevelError(int error_code) {
  return (error_code >= 2000 && error_code < 3000) ||
         error_code == kErConnectionKilled || error_code == kErServerShutdown ||
         error_code == kErClientInteractionTimeout ||
         error_code == kErWrongGaleraState;
}

absl::Status StatusFromSqlError(int error_code, absl::string_view what) {
  absl::StatusCode code = CodeFor(error_code);
  return absl::Status(code, absl::StrCat(what, ": ", Describe(code),
                                         " (mysql error ", error_code, ")"));
}

absl::Status StatusFromSqlException(const sql::SQLException& e,
                                    absl::string_view what) {
  return StatusFromSqlError(e.getErrorCode(), what);
}

absl::Status StatusFromConnectException(const sql::SQLException& e) {
  // Everything that fails a connect is "cannot reach the database" to the
  // caller; the server's text says why.
  return absl::UnavailableError(
      absl::StrCat("cannot connect to the database: ", e.what(),
                   " (mysql error ", e.getErrorCode(), ")"));
}

}  // namespace lumo::storage
