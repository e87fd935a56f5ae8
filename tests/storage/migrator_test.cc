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
#include <sstream>
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
#include "server/core/crypto.h"
#include "tests/storage/mysql_grammar/statement_capture.h"
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

  // The files the tests write hold deliberately broken and MariaDB-only
  // SQL: not the backend's statements for the MySQL grammar check.
  absl::Status Apply(const std::string& dir,
                     std::vector<std::string>* applied = nullptr) {
    lumo::testing::IgnoreStatements test_files;
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
  // Every table that holds tenant data has tenant_id. `replicas` and
  // `feed_positions` (membership) and `key_state_sweep_lease` (which server
  // sweeps) coordinate servers, and the limit_* tables are counters shared by
  // the replicas (docs/limits.md): none holds tenant data.
  for (const std::string& table : names) {
    if (table == "schema_migrations" || table == "tenants" ||
        table == "replicas" || table == "feed_positions" ||
        table == "key_state_sweep_lease" || absl::StartsWith(table, "limit_")) {
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
    threads.emplace_back(
        [&, i] { results[i] = Apply(dir.path(), &applied[i]); });
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

TEST(ParseMigrationTest, GuardsBelongToTheNextStatementAndAreChecksummed) {
  ASSERT_OK_AND_ASSIGN(ParsedMigration parsed,
                       ParseMigration("-- a comment\n"
                                      "CREATE TABLE a (x INT);\n"
                                      "-- @unless column a.y\n"
                                      "-- why: a comment between\n"
                                      "-- @unless column a.z\n"
                                      "ALTER TABLE a ADD COLUMN y INT,\n"
                                      "  ADD COLUMN z INT;\n"
                                      "-- @if index a.i\n"
                                      "DROP INDEX i ON a;\n"));
  ASSERT_EQ(parsed.statements.size(), 3u);
  EXPECT_THAT(parsed.statements[0].guards, IsEmpty());
  ASSERT_EQ(parsed.statements[1].guards.size(), 2u);
  EXPECT_EQ(parsed.statements[1].guards[1].kind, MigrationGuard::Kind::kUnless);
  EXPECT_EQ(parsed.statements[1].guards[1].object,
            MigrationGuard::Object::kColumn);
  EXPECT_EQ(parsed.statements[1].guards[1].table, "a");
  EXPECT_EQ(parsed.statements[1].guards[1].name, "z");
  EXPECT_EQ(parsed.statements[1].sql,
            "ALTER TABLE a ADD COLUMN y INT,\n  ADD COLUMN z INT");
  ASSERT_EQ(parsed.statements[2].guards.size(), 1u);
  EXPECT_EQ(parsed.statements[2].guards[0].kind, MigrationGuard::Kind::kIf);
  EXPECT_EQ(parsed.statements[2].guards[0].object,
            MigrationGuard::Object::kIndex);

  // A guard is part of what an applied file is held to; a comment is not.
  ASSERT_OK_AND_ASSIGN(ParsedMigration other_guard,
                       ParseMigration("CREATE TABLE a (x INT);\n"
                                      "-- @unless column a.y\n"
                                      "ALTER TABLE a ADD COLUMN y INT,\n"
                                      "  ADD COLUMN z INT;\n"
                                      "-- @if index a.i\n"
                                      "DROP INDEX i ON a;\n"));
  EXPECT_NE(other_guard.checksum, parsed.checksum);
  ASSERT_OK_AND_ASSIGN(ParsedMigration recommented,
                       ParseMigration("CREATE TABLE a (x INT);\n"
                                      "-- @unless column a.y\n"
                                      "-- @unless column a.z\n"
                                      "ALTER TABLE a ADD COLUMN y INT,\n"
                                      "  ADD COLUMN z INT;\n"
                                      "-- other words\n"
                                      "-- @if index a.i\n"
                                      "DROP INDEX i ON a;\n"));
  EXPECT_EQ(recommented.checksum, parsed.checksum);
}

TEST(ParseMigrationTest, AFileWithoutDirectivesKeepsItsChecksum) {
  // The checksum of a file without guards is the one servers recorded
  // before guards existed: SHA-256 of the statements joined by "\n;\n".
  ASSERT_OK_AND_ASSIGN(ParsedMigration parsed,
                       ParseMigration("-- x\nCREATE TABLE a (x INT);\n"
                                      "INSERT INTO a VALUES (1);\n"));
  EXPECT_EQ(parsed.checksum,
            core::HexEncode(core::AsStringView(core::Sha256(
                "CREATE TABLE a (x INT)\n;\nINSERT INTO a VALUES (1)"))));
}

TEST(ParseMigrationTest, RejectsMalformedDirectives) {
  for (const char* text : {
           "-- @unles column a.y\nSELECT 1;\n",     // unknown word
           "-- @unless table a\nSELECT 1;\n",       // not column/index
           "-- @unless column a\nSELECT 1;\n",      // no TABLE.NAME
           "-- @unless column a.`y`\nSELECT 1;\n",  // not a plain name
           "-- @if column a.y\n-- @unless column a.z\nSELECT 1;\n",
           "SELECT\n-- @if column a.y\n1;\n",  // inside a statement
           "SELECT 1;\n-- @if column a.y\n",   // no statement after
           "-- @supersedes abc\nSELECT 1;\n",  // not a SHA-256
       }) {
    SCOPED_TRACE(text);
    EXPECT_CODE(ParseMigration(text), absl::StatusCode::kInvalidArgument);
  }
}

TEST_F(MigratorTest, GuardedStatementsRunOnlyWhenTheirGuardHolds) {
  MigrationsDir dir;
  dir.Write("0001_first.sql",
            "CREATE TABLE a (x INT, KEY i (x));\n"
            "-- @unless column a.y\n"
            "ALTER TABLE a ADD COLUMN y INT;\n"
            "-- @if index a.i\n"
            "DROP INDEX i ON a;\n"
            "-- @if index a.never\n"
            "DROP INDEX never ON a;\n"
            "-- @unless index a.j\n"
            "CREATE INDEX j ON a (y);\n");
  ASSERT_OK(Apply(dir.path()));
  EXPECT_EQ(
      *db_->QueryValue("SELECT COUNT(*) FROM information_schema.COLUMNS WHERE "
                       "TABLE_SCHEMA = DATABASE() AND TABLE_NAME = 'a' AND "
                       "COLUMN_NAME = 'y'"),
      "1");
  ASSERT_OK_AND_ASSIGN(
      Rows indexes,
      db_->Query("SELECT DISTINCT INDEX_NAME FROM information_schema.STATISTICS"
                 " WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = 'a'"));
  EXPECT_THAT(indexes, ElementsAre(ElementsAre("j")));
}

TEST_F(MigratorTest, AGuardedFileReRunsAfterAHalfApplication) {
  // MySQL commits DDL at once: a file that failed after its first
  // statements is applied again from the top. Its guards skip what exists.
  MigrationsDir dir;
  dir.Write("0001_first.sql", "CREATE TABLE a (x INT);\n");
  ASSERT_OK(Apply(dir.path()));
  const std::string second =
      "-- @unless column a.y\n"
      "ALTER TABLE a ADD COLUMN y INT;\n"
      "-- @unless index a.j\n"
      "CREATE INDEX j ON a (y);\n";
  dir.Write("0002_second.sql", second + "CREATE TABLEZ broken;\n");
  EXPECT_FALSE(Apply(dir.path()).ok());
  dir.Write("0002_second.sql", second);
  std::vector<std::string> applied;
  ASSERT_OK(Apply(dir.path(), &applied));
  EXPECT_THAT(applied, ElementsAre("0002_second.sql"));

  // Without the guard the same re-run fails on the existing column.
  ASSERT_OK(db_->Execute("DELETE FROM schema_migrations WHERE version = 2"));
  dir.Write("0002_second.sql", "ALTER TABLE a ADD COLUMN y INT;\n");
  EXPECT_FALSE(Apply(dir.path()).ok());
}

TEST_F(MigratorTest, AStatementAppliedInPartIsRefused) {
  MigrationsDir dir;
  dir.Write("0001_first.sql", "CREATE TABLE a (x INT, y INT);\n");
  ASSERT_OK(Apply(dir.path()));
  dir.Write("0002_second.sql",
            "-- @unless column a.y\n"
            "-- @unless column a.z\n"
            "ALTER TABLE a ADD COLUMN y INT, ADD COLUMN z INT;\n");
  absl::Status s = Apply(dir.path());
  EXPECT_CODE(s, absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(std::string(s.message()), HasSubstr("a.z"));
  EXPECT_EQ(*db_->QueryValue("SELECT COUNT(*) FROM schema_migrations"), "1");
}

TEST_F(MigratorTest, SupersededChecksumsAreAcceptedAndRewritten) {
  MigrationsDir dir;
  dir.Write("0001_first.sql", "CREATE TABLE a (x INT);\n");
  ASSERT_OK(Apply(dir.path()));
  ASSERT_OK_AND_ASSIGN(
      std::string old_checksum,
      db_->QueryValue("SELECT checksum FROM schema_migrations"));

  // A rewritten statement is a mismatch unless the file names the old
  // checksum as superseded.
  const std::string rewritten =
      "-- @unless column a.x\nCREATE TABLE IF NOT EXISTS a (x INT);\n";
  dir.Write("0001_first.sql", rewritten);
  EXPECT_CODE(Apply(dir.path()), absl::StatusCode::kFailedPrecondition);
  dir.Write("0001_first.sql",
            absl::StrCat("-- @supersedes ", old_checksum, "\n", rewritten));
  std::vector<std::string> applied;
  ASSERT_OK(Apply(dir.path(), &applied));
  EXPECT_THAT(applied, IsEmpty());
  ASSERT_OK_AND_ASSIGN(ParsedMigration parsed, ParseMigration(rewritten));
  EXPECT_EQ(*db_->QueryValue("SELECT checksum FROM schema_migrations"),
            parsed.checksum);
  // Another recorded value is still refused.
  ASSERT_OK(
      db_->Execute("UPDATE schema_migrations SET checksum = SHA2('x', 256)"));
  EXPECT_CODE(Apply(dir.path()), absl::StatusCode::kFailedPrecondition);
}

// The schema as information_schema shows it: columns and indexes.
absl::StatusOr<Rows> SchemaOf(TestDatabase& db) {
  absl::StatusOr<Rows> columns = db.Query(
      "SELECT TABLE_NAME, COLUMN_NAME, ORDINAL_POSITION, COLUMN_TYPE,"
      " IS_NULLABLE, COALESCE(COLUMN_DEFAULT, '(none)')"
      " FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = DATABASE()"
      " ORDER BY TABLE_NAME, ORDINAL_POSITION");
  if (!columns.ok()) return columns.status();
  absl::StatusOr<Rows> indexes = db.Query(
      "SELECT TABLE_NAME, INDEX_NAME, SEQ_IN_INDEX, COLUMN_NAME, NON_UNIQUE"
      " FROM information_schema.STATISTICS WHERE TABLE_SCHEMA = DATABASE()"
      " ORDER BY TABLE_NAME, INDEX_NAME, SEQ_IN_INDEX");
  if (!indexes.ok()) return indexes.status();
  Rows all = *std::move(columns);
  all.insert(all.end(), indexes->begin(), indexes->end());
  return all;
}

TEST_F(MigratorTest, DatabasesMigratedWithTheMariaDbOnlyTextsAreAccepted) {
  // The project's migrations, with 0004, 0007, 0009 and 0014 as they were
  // before they were rewritten for MySQL 8.0.
  const std::string old_texts =
      absl::StrCat(TestDatabase::ProjectMigrationsDir(),
                   "/../../tests/storage/testdata/mariadb_only_migrations");
  MigrationsDir dir;
  std::vector<std::string> replaced;
  for (const auto& entry : std::filesystem::directory_iterator(
           TestDatabase::ProjectMigrationsDir())) {
    const std::string name = entry.path().filename().string();
    if (!absl::EndsWith(name, ".sql")) continue;
    std::filesystem::path source = entry.path();
    if (std::filesystem::exists(old_texts + "/" + name)) {
      source = old_texts + "/" + name;
      replaced.push_back(name);
    }
    std::ifstream in(source, std::ios::binary);
    std::stringstream text;
    text << in.rdbuf();
    dir.Write(name, text.str());
  }
  ASSERT_THAT(replaced, UnorderedElementsAre("0004_audit_chain.sql",
                                             "0007_audit_chain_lanes.sql",
                                             "0009_audit_hash_versions.sql",
                                             "0014_webhooks_leaks_decoys.sql"));
  ASSERT_OK(Apply(dir.path()));

  // The current files accept that database and record their checksums
  // (the migrator's statements for that are checked by the MySQL grammar
  // check: no IgnoreStatements here).
  std::vector<std::string> applied;
  ASSERT_OK(ApplyMigrations(db_->options(),
                            TestDatabase::ProjectMigrationsDir(), &applied));
  EXPECT_THAT(applied, IsEmpty());
  ASSERT_OK_AND_ASSIGN(Rows recorded,
                       db_->Query("SELECT name, checksum FROM "
                                  "schema_migrations ORDER BY version"));
  for (const std::vector<std::string>& row : recorded) {
    std::ifstream in(TestDatabase::ProjectMigrationsDir() + "/" + row[0],
                     std::ios::binary);
    std::stringstream text;
    text << in.rdbuf();
    ASSERT_OK_AND_ASSIGN(ParsedMigration parsed, ParseMigration(text.str()));
    EXPECT_EQ(row[1], parsed.checksum) << row[0];
  }

  // And the schema is the one the current files build.
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<TestDatabase> fresh,
                       TestDatabase::Create());
  ASSERT_OK_AND_ASSIGN(Rows old_schema, SchemaOf(*db_));
  ASSERT_OK_AND_ASSIGN(Rows new_schema, SchemaOf(*fresh));
  EXPECT_EQ(old_schema, new_schema);
}

}  // namespace
}  // namespace lumo::storage
