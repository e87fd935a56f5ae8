// Records the text of every statement the MySQL backend prepares or runs as
// text while a StatementCapture exists (through the connection's statement
// observer, connection_pool.h). Test code only.
//
// Thread-safe. Captures nest: every capture records into the same set (all
// statements recorded since the process started), and one made while
// another exists gives the observer back to the outer one when it ends,
// so a test's own capture never stops the capture a whole binary runs
// under (mysql_statement_grammar_test). Nested captures end in reverse
// order of creation.
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

 private:
  // The observer before this capture (another capture's, or none).
  void (*const previous_)(const std::string&);
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
