// The migrator against the real MariaDB: every test gets its own empty
// database (TestDatabase) and, where it needs one, its own migrations
// directory.
#include "server/storage/mysql/migrator.h"

#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_replace.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/storage/status_testing.h"
#include "tests/storage/test_database.h"

namespace lumo::storage {
namespace {

using ::lumo::testing::TestDatabase;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::IsSupersetOf;
using ::testing::UnorderedElementsAre;

using Rows = std::vector<std::vector<std::string>>;

// A temporary migrations directory, removed with the object.
class MigrationsDir {
 public:
  MigrationsDir() {
    std::random_device rd;
    path_ = std::filesystem::temp_directory_path() /
            absl::StrFormat("lumo_migrations_%d_%08x", getpid(), rd());
    std::filesystem::create_directories(path_);
  }
  ~MigrationsDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  void Write(const std::string& name, const std::string& text) {
    std::ofstream(path_ / name, std::ios::binary | std::ios::trunc) << text;
  }
  std::string path() const { return path_.string(); }

 private:
  std::filesystem::path path_;
};

class MigratorTest : public ::testing::Test {
 protected:
  void SetUp() override {
    absl::StatusOr<std::unique_ptr<TestDatabase>> db =
        TestDatabase::CreateWithMigrations("");
    ASSERT_TRUE(db.ok()) << db.status();
    db_ = *std::move(db);
  }

  absl::Status Apply(const std::string& dir,
                     std::vector<std::string>* applied = nullptr) {
    return ApplyMigrations(db_->options(), dir, applied);
  }

  std::unique_ptr<TestDatabase> db_;
};

TEST_F(MigratorTest, AppliesProjectMigrationsOnceAndRecordsThem) {
  // Every NNNN_name.sql file of the project, in order.
  std::vector<std::string> files;
  for (const auto& entry : std::filesystem::directory_iterator(
           TestDatabase::ProjectMigrationsDir())) {
    const std::string name = entry.path().filename().string();
    if (absl::EndsWith(name, ".sql")) files.push_back(name);
  }
  std::sort(files.begin(), files.end());
  ASSERT_FALSE(files.empty());
  EXPECT_EQ(files[0], "0001_init.sql");

  std::vector<std::string> applied;
  ASSERT_OK(Apply(TestDatabase::ProjectMigrationsDir(), &applied));
  EXPECT_EQ(applied, files);

  ASSERT_OK_AND_ASSIGN(
      Rows recorded,
      db_->Query("SELECT version, name, LENGTH(checksum), applied_at IS NOT "
                 "NULL FROM schema_migrations ORDER BY version"));
  ASSERT_EQ(recorded.size(), files.size());
  for (size_t i = 0; i < files.size(); ++i) {
    // The version is the file's number (numbers are assigned per branch, so
    // a branch may lack one in between).
    int version = 0;
    ASSERT_TRUE(
        absl::SimpleAtoi(files[i].substr(0, files[i].find('_')), &version))
        << files[i];
    EXPECT_THAT(recorded[i],
                ElementsAre(std::to_string(version), files[i], "64", "1"));
  }

  applied.clear();
  ASSERT_OK(Apply(TestDatabase::ProjectMigrationsDir(), &applied));
  EXPECT_THAT(applied, IsEmpty());
}

TEST_F(MigratorTest, SchemaIsInnoDbUtf8mb4AndEveryTenantTableHasTenantId) {
  ASSERT_OK(Apply(TestDatabase::ProjectMigrationsDir()));
  ASSERT_OK_AND_ASSIGN(Rows tables,
                       db_->Query(absl::StrCat(
                           "SELECT TABLE_NAME, ENGINE, TABLE_COLLATION FROM "
                           "information_schema.TABLES WHERE TABLE_SCHEMA = '",
                           db_->name(), "' ORDER BY TABLE_NAME")));
  std::vector<std::string> names;
  for (const auto& row : tables) {
    names.push_back(row[0]);
    EXPECT_EQ(row[1], "InnoDB") << row[0];
    EXPECT_EQ(row[2], "utf8mb4_unicode_ci") << row[0];
  }
  EXPECT_THAT(names, IsSupersetOf({"api_key_retired_secrets", "api_keys",
                                   "audit_events", "key_changes",
                                   "schema_migrations", "tenants"}));
  // Every table that holds tenant data has tenant_id. `replicas`
  // (membership) and `key_state_sweep_lease` (which server sweeps)
  // coordinate servers, and the limit_* tables are counters shared by the
  // replicas (docs/limits.md): none holds tenant data.
  for (const std::string& table : names) {
    if (table == "schema_migrations" || table == "tenants" ||
        table == "replicas" || table == "key_state_sweep_lease" ||
        absl::StartsWith(table, "limit_")) {
      continue;
    }
    ASSERT_OK_AND_ASSIGN(
        std::string n,
        db_->QueryValue(absl::StrCat(
            "SELECT COUNT(*) FROM information_schema.COLUMNS WHERE "
            "TABLE_SCHEMA = '",
            db_->name(), "' AND TABLE_NAME = '", table,
            "' AND COLUMN_NAME = 'tenant_id'")));
    EXPECT_EQ(n, "1") << table;
  }
  // Every time column is DATETIME(6).
  ASSERT_OK_AND_ASSIGN(
      Rows times, db_->Query(absl::StrCat(
                      "SELECT TABLE_NAME, COLUMN_NAME, COLUMN_TYPE FROM "
                      "information_schema.COLUMNS WHERE TABLE_SCHEMA = '",
                      db_->name(),
                      "' AND DATA_TYPE IN ('datetime', 'timestamp', 'date')")));
  EXPECT_GE(times.size(), 10u);
  for (const auto& row : times) {
    EXPECT_EQ(row[2], "datetime(6)") << row[0] << "." << row[1];
  }
  // Key ids compare case-sensitively.
  ASSERT_OK_AND_ASSIGN(
      std::string collation,
      db_->QueryValue(absl::StrCat(
          "SELECT COLLATION_NAME FROM information_schema.COLUMNS WHERE "
          "TABLE_SCHEMA = '",
          db_->name(),
          "' AND TABLE_NAME = 'api_keys' AND COLUMN_NAME = 'id'")));
  EXPECT_EQ(collation, "utf8mb4_bin");
}

TEST_F(MigratorTest, CreatesTheDatabaseWhenMissing) {
  MysqlOptions options = db_->options();
  ASSERT_OK(db_->Execute(absl::StrCat("DROP DATABASE `", db_->name(), "`")));
  ASSERT_OK(
      ApplyMigrations(options, TestDatabase::ProjectMigrationsDir(), nullptr));
  ASSERT_OK_AND_ASSIGN(
      std::string charset,
      db_->QueryValue(absl::StrCat(
          "SELECT DEFAULT_CHARACTER_SET_NAME FROM information_schema.SCHEMATA "
          "WHERE SCHEMA_NAME = '",
          db_->name(), "'")));
  EXPECT_EQ(charset, "utf8mb4");
}

TEST_F(MigratorTest, AppliesFilesInNumericOrder) {
  MigrationsDir dir;
  dir.Write("0010_third.sql", "INSERT INTO steps (step) VALUES (10);\n");
  dir.Write("0002_second.sql", "INSERT INTO steps (step) VALUES (2);\n");
  dir.Write("0001_first.sql",
            "CREATE TABLE steps (id INT AUTO_INCREMENT PRIMARY KEY, step INT)"
            ";\n");
  dir.Write("README.md", "not a migration");
  std::vector<std::string> applied;
  ASSERT_OK(Apply(dir.path(), &applied));
  EXPECT_THAT(applied, ElementsAre("0001_first.sql", "0002_second.sql",
                                   "0010_third.sql"));
  ASSERT_OK_AND_ASSIGN(Rows steps,
                       db_->Query("SELECT step FROM steps ORDER BY id"));
  EXPECT_THAT(steps, ElementsAre(ElementsAre("2"), ElementsAre("10")));

  // A later file is applied on the next run; the earlier ones are not
  // repeated.
  dir.Write("0011_fourth.sql", "INSERT INTO steps (step) VALUES (11);\n");
  applied.clear();
  ASSERT_OK(Apply(dir.path(), &applied));
  EXPECT_THAT(applied, ElementsAre("0011_fourth.sql"));
  ASSERT_OK_AND_ASSIGN(std::string count,
                       db_->QueryValue("SELECT COUNT(*) FROM steps"));
  EXPECT_EQ(count, "3");
}

TEST_F(MigratorTest, RefusesAnAppliedFileWhoseChecksumChanged) {
  MigrationsDir dir;
  dir.Write("0001_first.sql", "CREATE TABLE a (x INT);\n");
  ASSERT_OK(Apply(dir.path()));

  dir.Write("0001_first.sql", "CREATE TABLE a (x BIGINT);\n");
  dir.Write("0002_second.sql", "CREATE TABLE b (x INT);\n");
  absl::Status s = Apply(dir.path());
  EXPECT_CODE(s, absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(std::string(s.message()), HasSubstr("0001_first.sql"));
  // Nothing new was applied either.
  ASSERT_OK_AND_ASSIGN(
      std::string count,
      db_->QueryValue("SELECT COUNT(*) FROM schema_migrations"));
  EXPECT_EQ(count, "1");
}

TEST_F(MigratorTest, CommentEditsOfAnAppliedFileAreAccepted) {
  MigrationsDir dir;
  dir.Write("0001_first.sql",
            "-- Tables (see the tracker).\nCREATE TABLE a (x INT);\n");
  ASSERT_OK(Apply(dir.path()));
  ASSERT_OK_AND_ASSIGN(
      std::string recorded,
      db_->QueryValue("SELECT checksum FROM schema_migrations"));
  dir.Write("0001_first.sql",
            "-- Tables, documented in the repository.\n-- Two lines now.\n"
            "CREATE TABLE a (x INT);\n");
  std::vector<std::string> applied;
  ASSERT_OK(Apply(dir.path(), &applied));
  EXPECT_THAT(applied, ::testing::IsEmpty());
  EXPECT_EQ(*db_->QueryValue("SELECT checksum FROM schema_migrations"),
            recorded);
}

TEST_F(MigratorTest, WholeTextChecksumsOfEarlierServersAreRewritten) {
  MigrationsDir dir;
  const std::string text = "-- Old.\nCREATE TABLE a (x INT);\n";
  dir.Write("0001_first.sql", text);
  ASSERT_OK(Apply(dir.path()));
  ASSERT_OK_AND_ASSIGN(
      std::string statements_checksum,
      db_->QueryValue("SELECT checksum FROM schema_migrations"));
  // What a server that hashed the whole file recorded.
  ASSERT_OK(db_->Execute(
      absl::StrCat("UPDATE schema_migrations SET checksum = SHA2('",
                   absl::StrReplaceAll(text, {{"\n", "\\n"}}), "', 256)")));
  ASSERT_OK(Apply(dir.path()));
  EXPECT_EQ(*db_->QueryValue("SELECT checksum FROM schema_migrations"),
            statements_checksum);
  // Any other recorded value is still a mismatch.
  ASSERT_OK(
      db_->Execute("UPDATE schema_migrations SET checksum = SHA2('x', 256)"));
  EXPECT_CODE(Apply(dir.path()), absl::StatusCode::kFailedPrecondition);
}

TEST_F(MigratorTest, RefusesARenamedAppliedFile) {
  MigrationsDir dir;
  dir.Write("0001_first.sql", "CREATE TABLE a (x INT);\n");
  ASSERT_OK(Apply(dir.path()));
  std::filesystem::rename(dir.path() + "/0001_first.sql",
                          dir.path() + "/0001_renamed.sql");
  absl::Status s = Apply(dir.path());
  EXPECT_CODE(s, absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(std::string(s.message()), HasSubstr("0001_renamed.sql"));
}

TEST_F(MigratorTest, RejectsBadFileNamesAndDuplicateVersions) {
  {
    MigrationsDir dir;
    dir.Write("001_short.sql", "SELECT 1;\n");
    EXPECT_CODE(Apply(dir.path()), absl::StatusCode::kInvalidArgument);
  }
  {
    MigrationsDir dir;
    dir.Write("0001_a-b.sql", "SELECT 1;\n");
    EXPECT_CODE(Apply(dir.path()), absl::StatusCode::kInvalidArgument);
  }
  {
    MigrationsDir dir;
    dir.Write("0001_a.sql", "SELECT 1;\n");
    dir.Write("0001_b.sql", "SELECT 1;\n");
    absl::Status s = Apply(dir.path());
    EXPECT_CODE(s, absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(std::string(s.message()), HasSubstr("same version"));
  }
  EXPECT_CODE(Apply("/nonexistent/lumo/migrations"),
              absl::StatusCode::kNotFound);
}

TEST_F(MigratorTest, AFailedFileIsNotRecordedAndCanBeFixed) {
  MigrationsDir dir;
  dir.Write("0001_first.sql", "CREATE TABLE a (x INT);\n");
  dir.Write("0002_broken.sql", "CREATE TABLE b (x INT);\nCREATE TABLEZ c;\n");
  absl::Status s = Apply(dir.path());
  EXPECT_FALSE(s.ok());
  EXPECT_THAT(std::string(s.message()), HasSubstr("0002_broken.sql"));
  ASSERT_OK_AND_ASSIGN(Rows versions,
                       db_->Query("SELECT version FROM schema_migrations"));
  EXPECT_THAT(versions, ElementsAre(ElementsAre("1")));

  // Re-runnable once fixed (b exists already: IF NOT EXISTS).
  dir.Write("0002_broken.sql",
            "CREATE TABLE IF NOT EXISTS b (x INT);\nCREATE TABLE c (x INT);\n");
  std::vector<std::string> applied;
  ASSERT_OK(Apply(dir.path(), &applied));
  EXPECT_THAT(applied, ElementsAre("0002_broken.sql"));
}

TEST_F(MigratorTest, RunsEachStatementSeparatelyAndSkipsComments) {
  MigrationsDir dir;
  dir.Write("0001_multi.sql",
            "-- a comment; with semicolons;\n"
            "CREATE TABLE notes (\n"
            "  id INT PRIMARY KEY,\n"
            "  body VARCHAR(64)\n"
            ");\n"
            "\n"
            "INSERT INTO notes VALUES (1, 'semi;colon');\n"
            "INSERT INTO notes VALUES (2, '-- not a comment');\n");
  ASSERT_OK(Apply(dir.path()));
  ASSERT_OK_AND_ASSIGN(Rows notes,
                       db_->Query("SELECT body FROM notes ORDER BY id"));
  EXPECT_THAT(notes, ElementsAre(ElementsAre("semi;colon"),
                                 ElementsAre("-- not a comment")));
}

TEST_F(MigratorTest, ConcurrentMigratorsApplyEachFileOnce) {
  MigrationsDir dir;
  dir.Write("0001_first.sql",
            "CREATE TABLE runs (id INT AUTO_INCREMENT PRIMARY KEY);\n");
  dir.Write("0002_second.sql", "INSERT INTO runs VALUES ();\n");
  constexpr int kThreads = 4;
  std::vector<absl::Status> results(kThreads);
  std::vector<std::vector<std::string>> applied(kThreads);
  std::vector<std::thread> threads;
  for (int i = 0; i < kThreads; ++i) {
    threads.emplace_back([&, i] {
      results[i] = ApplyMigrations(db_->options(), dir.path(), &applied[i]);
    });
  }
  for (std::thread& t : threads) t.join();
  int total = 0;
  for (int i = 0; i < kThreads; ++i) {
    EXPECT_OK(results[i]);
    total += static_cast<int>(applied[i].size());
  }
  EXPECT_EQ(total, 2);
  ASSERT_OK_AND_ASSIGN(std::string runs,
                       db_->QueryValue("SELECT COUNT(*) FROM runs"));
  EXPECT_EQ(runs, "1");
}

TEST_F(MigratorTest, NeedsADatabaseName) {
  MysqlOptions options = db_->options();
  options.database.clear();
  EXPECT_CODE(
      ApplyMigrations(options, TestDatabase::ProjectMigrationsDir(), nullptr),
      absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace lumo::storage
