// Runs the MySQL store tests linked into this binary (the conformance
// suites and the MySQL store tests) with a StatementCapture, then writes
// every statement the backend prepared or ran, as records
// "captured\x1fSQL\0" (check.js reads them), to the file named by
// LUMO_SQL_CAPTURE_FILE. Exits non-zero if a test failed.
#include <cstdlib>
#include <fstream>
#include <iostream>

#include "gtest/gtest.h"
#include "tests/storage/mysql_grammar/statement_capture.h"

int main(int argc, char** argv) {
  ::testing::InitGoogleTest(&argc, argv);
  const char* out_path = std::getenv("LUMO_SQL_CAPTURE_FILE");
  if (out_path == nullptr || *out_path == '\0') {
    std::cerr << "LUMO_SQL_CAPTURE_FILE is not set\n";
    return 2;
  }
  lumo::testing::StatementCapture capture;
  const int result = RUN_ALL_TESTS();
  std::ofstream out(out_path, std::ios::binary | std::ios::trunc);
  for (const std::string& sql : capture.Statements()) {
    out << "captured" << '\x1f' << sql << '\0';
  }
  out.close();
  if (!out) {
    std::cerr << "cannot write " << out_path << "\n";
    return 2;
  }
  return result;
}
