// Prints every statement of the migration files in a directory, as the
// migrator runs them (ParseMigration), for the MySQL 8.0 grammar check
// (check.js). Output: one record per statement, "SOURCE\x1fSQL\0", where
// SOURCE is "FILE statement N".
//
// Usage: print_migration_statements MIGRATIONS_DIR
#include <algorithm>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "server/storage/mysql/migrator.h"

int main(int argc, char** argv) {
  if (argc != 2) {
    std::cerr << "usage: print_migration_statements MIGRATIONS_DIR\n";
    return 2;
  }
  std::vector<std::filesystem::path> files;
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator(argv[1], ec)) {
    if (absl::EndsWith(entry.path().filename().string(), ".sql")) {
      files.push_back(entry.path());
    }
  }
  if (ec || files.empty()) {
    std::cerr << "no migration files in " << argv[1] << "\n";
    return 1;
  }
  std::sort(files.begin(), files.end());
  for (const std::filesystem::path& file : files) {
    std::ifstream in(file, std::ios::binary);
    std::stringstream text;
    text << in.rdbuf();
    absl::StatusOr<lumo::storage::ParsedMigration> parsed =
        lumo::storage::ParseMigration(text.str());
    if (!parsed.ok()) {
      std::cerr << file.filename().string() << ": " << parsed.status() << "\n";
      return 1;
    }
    for (size_t i = 0; i < parsed->statements.size(); ++i) {
      std::cout << file.filename().string() << " statement " << i + 1 << '\x1f'
                << parsed->statements[i].sql << '\0';
    }
  }
  return 0;
}
