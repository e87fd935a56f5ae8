// Turns Connector/C++ exceptions into absl::Status: the only place that
// knows MySQL error numbers. Pure functions: thread-safe.
#ifndef LUMOKEYS_SERVER_STORAGE_MYSQL_SQL_ERROR_H_
#define LUMOKEYS_SERVER_STORAGE_MYSQL_SQL_ERROR_H_

#include "absl/status/status.h"
#include "absl/strings/string_view.h"

namespace sql {
class SQLException;
}  // namespace sql

namespace lumo::storage {

// True when `error_code` means the session is gone (client errors
// 2000-2999 such as 2006 "server has gone away" and 2013 "lost
// connection", a killed connection, a server shutting down) or its server
// cannot serve it (1047: a Galera node outside the primary component, or
// not yet synced). Such a connection must be closed, never reused. Error code 0
// (raised by Connector/C++ itself, not by the server) is not one of these, but
// leaves the session in an unknown state: close that connection too.
bool IsConnectionLevelError(int error_code);

// Maps a MySQL error number to a status for an operation described by
// `what` (a fixed phrase such as "insert key"; never values):
//   1062/1586 duplicate           -> ALREADY_EXISTS
//   1205 lock wait, 3024/1969
//   statement time limit          -> DEADLINE_EXCEEDED
//   1213 deadlock                 -> ABORTED (the transaction was rolled back)
//   connection-level, 1040 too
//   many connections, 1290/1836
//   read-only server, 1317 query
//   interrupted, 1047 (Galera)    -> UNAVAILABLE
//   1406 too long, 1366 bad text,
//   1048 null, 1264 out of range,
//   3819/4025 CHECK failed        -> INVALID_ARGUMENT
//   1451/1452 foreign key         -> FAILED_PRECONDITION
//   anything else                 -> INTERNAL
// The message names `what` and the error number, never the server's text
// (which can quote values).
absl::Status StatusFromSqlError(int error_code, absl::string_view what);
absl::Status StatusFromSqlException(const sql::SQLException& e,
                                    absl::string_view what);

// For errors while connecting: the same codes, but the message includes the
// server's text (it names the user, host or database, never the password),
// because that is what an operator needs to fix the configuration.
absl::Status StatusFromConnectException(const sql::SQLException& e);

}  // namespace lumo::storage

#endif  // LUMOKEYS_SERVER_STORAGE_MYSQL_SQL_ERROR_H_
