// Records the text of every statement the MySQL backend prepares or runs as
// text while a StatementCapture exists (through the connection's statement
// observer, connection_pool.h). Test code only.
//
// Thread-safe. At most one StatementCapture exists at a time.
#ifndef LUMOKEYS_TESTS_STORAGE_MYSQL_GRAMMAR_STATEMENT_CAPTURE_H_
#define LUMOKEYS_TESTS_STORAGE_MYSQL_GRAMMAR_STATEMENT_CAPTURE_H_

#include <set>
#include <string>

namespace lumo::testing {

class StatementCapture {
 public:
  StatementCapture();
  ~StatementCapture();
  StatementCapture(const StatementCapture&) = delete;
  StatementCapture& operator=(const StatementCapture&) = delete;

  // Every distinct statement text seen so far.
  std::set<std::string> Statements() const;
};

// While one exists on a thread, statements that thread sends are not
// recorded: for the tests' own statements (fixtures, deliberately broken or
// MariaDB-only SQL), which are not the backend's.
class IgnoreStatements {
 public:
  IgnoreStatements();
  ~IgnoreStatements();
  IgnoreStatements(const IgnoreStatements&) = delete;
  IgnoreStatements& operator=(const IgnoreStatements&) = delete;
};

}  // namespace lumo::testing

#endif  // LUMOKEYS_TESTS_STORAGE_MYSQL_GRAMMAR_STATEMENT_CAPTURE_H_
