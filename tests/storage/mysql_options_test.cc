// Pure unit tests (no database): DSN parsing, DATETIME conversion, SQL
// error mapping and the migration file splitter.
#include "server/storage/mysql/mysql_options.h"

#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/time/time.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "server/storage/mysql/datetime.h"
#include "server/storage/mysql/migrator.h"
#include "server/storage/mysql/sql_error.h"
#include "tests/storage/status_testing.h"

namespace lumo::storage {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Not;

struct DsnCase {
  std::string dsn;
  std::string user;
  std::string password;
  std::string host;
  int port;
  std::string database;
  std::string socket;
};

TEST(ParseMysqlDsnTest, ParsesValidDsns) {
  const DsnCase cases[] = {
      {"mysql://lumo:pw@db.internal:3307/lumokeys", "lumo", "pw", "db.internal",
       3307, "lumokeys", ""},
      {"mysql://lumo_admin:abc@127.0.0.1:3307/", "lumo_admin", "abc",
       "127.0.0.1", 3307, "", ""},
      {"mysql://lumo@localhost/keys", "lumo", "", "localhost", 3306, "keys",
       ""},
      {"mysql://lumo:pw@host", "lumo", "pw", "host", 3306, "", ""},
      {"mysql://us%40er:p%3Aa%2Fss%40%25@h/db", "us@er", "p:a/ss@%", "h", 3306,
       "db", ""},
      {"mysql://u:p@ss@h:1/db", "u", "p@ss", "h", 1, "db", ""},
      {"mysql://u:@h/db", "u", "", "h", 3306, "db", ""},
      {"mysql://u:p@[::1]:3310/db", "u", "p", "::1", 3310, "db", ""},
      {"mysql://u:p@[::1]/db", "u", "p", "::1", 3306, "db", ""},
      {"mysql://u:p@/db?socket=/run/my%20sql.sock", "u", "p", "localhost", 3306,
       "db", "/run/my sql.sock"},
      {"mysql://u:p@dbhost/db?socket=/tmp/x.sock", "u", "p", "dbhost", 3306,
       "db", "/tmp/x.sock"},
  };
  for (const DsnCase& c : cases) {
    SCOPED_TRACE(c.dsn);
    ASSERT_OK_AND_ASSIGN(MysqlOptions o, ParseMysqlDsn(c.dsn));
    EXPECT_EQ(o.user, c.user);
    EXPECT_EQ(o.password, c.password);
    EXPECT_EQ(o.host, c.host);
    EXPECT_EQ(o.port, c.port);
    EXPECT_EQ(o.database, c.database);
    EXPECT_EQ(o.unix_socket, c.socket);
  }
}

TEST(ParseMysqlDsnTest, ParsesTuningParameters) {
  ASSERT_OK_AND_ASSIGN(
      MysqlOptions o,
      ParseMysqlDsn("mysql://u:p@h/db?pool_size=4&acquire_timeout=250ms&"
                    "connect_timeout=3s&read_timeout=20s&write_timeout=21s&"
                    "statement_timeout=0s&lock_wait_timeout=7"));
  EXPECT_EQ(o.pool_size, 4);
  EXPECT_EQ(o.acquire_timeout, absl::Milliseconds(250));
  EXPECT_EQ(o.connect_timeout, absl::Seconds(3));
  EXPECT_EQ(o.read_timeout, absl::Seconds(20));
  EXPECT_EQ(o.write_timeout, absl::Seconds(21));
  EXPECT_EQ(o.statement_timeout, absl::ZeroDuration());
  EXPECT_EQ(o.lock_wait_timeout_seconds, 7);
}

TEST(ParseMysqlDsnTest, DefaultsMatchTheDocumentedValues) {
  ASSERT_OK_AND_ASSIGN(MysqlOptions o, ParseMysqlDsn("mysql://u@h/db"));
  EXPECT_EQ(o.pool_size, 16);
  EXPECT_EQ(o.acquire_timeout, absl::Seconds(2));
  EXPECT_EQ(o.connect_timeout, absl::Seconds(2));
  EXPECT_EQ(o.read_timeout, absl::Seconds(10));
  EXPECT_EQ(o.write_timeout, absl::Seconds(10));
  EXPECT_EQ(o.lock_wait_timeout_seconds, 3);
  EXPECT_EQ(o.statement_timeout, absl::Seconds(5));
}

TEST(ParseMysqlDsnTest, RejectsMalformedDsnsWithoutEchoingThePassword) {
  const std::string secret = "hunter2";
  const std::vector<std::string> bad = {
      "postgres://u:hunter2@h/db",
      "mysql://h/db",
      "hunter2",
      "mysql://:hunter2@h/db",
      "mysql://u:hunter2@h:99999/db",
      "mysql://u:hunter2@h:0/db",
      "mysql://u:hunter2@h:port/db",
      "mysql://u:hunt%zzer2@h/db",
      "mysql://u:hunter2%4@h/db",
      "mysql://u:hunter2@h/bad-name",
      "mysql://u:hunter2@h/db;drop",
      "mysql://u:hunter2@h/db?bogus=1",
      "mysql://u:hunter2@/db",
      "mysql://u:hunter2@h/db?pool_size=0",
      "mysql://u:hunter2@h/db?acquire_timeout=soon",
      "mysql://u:hunter2@h/db?read_timeout=0s",
      "mysql://u:hunter2@[::1/db",
      "mysql://u:hunter2@[::1]x/db",
      "mysql://u:hunter2@h/db?socket=",
  };
  for (const std::string& dsn : bad) {
    SCOPED_TRACE(dsn);
    absl::StatusOr<MysqlOptions> o = ParseMysqlDsn(dsn);
    EXPECT_CODE(o, absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(std::string(o.status().message()), Not(HasSubstr(secret)));
    EXPECT_THAT(std::string(o.status().message()), Not(HasSubstr("hunt")));
  }
}

// Several hosts are the nodes of one cluster, tried in order (the pool's
// failover, docs/operations.md).
TEST(ParseMysqlDsnTest, ParsesSeveralHostsInOrder) {
  ASSERT_OK_AND_ASSIGN(
      MysqlOptions o,
      ParseMysqlDsn("mysql://u:pw@a:3361,[::1]:3362,c/db?pool_size=4"));
  EXPECT_EQ(o.host, "a");
  EXPECT_EQ(o.port, 3361);
  ASSERT_EQ(o.other_hosts.size(), 2u);
  EXPECT_EQ(o.other_hosts[0], (MysqlHost{"::1", 3362}));
  EXPECT_EQ(o.other_hosts[1], (MysqlHost{"c", 3306}));
  EXPECT_EQ(o.database, "db");
  EXPECT_EQ(o.pool_size, 4);
  EXPECT_EQ(DescribeForLog(o), "u@a:3361,[::1]:3362,c:3306/db");
  const std::vector<MysqlHost> all = AllHosts(o);
  ASSERT_EQ(all.size(), 3u);
  const MysqlOptions one = OnHost(o, all[2]);
  EXPECT_EQ(one.host, "c");
  EXPECT_TRUE(one.other_hosts.empty());
  EXPECT_EQ(one.database, "db");

  for (const char* bad :
       {"mysql://u:hunter2@a,/db", "mysql://u:hunter2@a,,b/db",
        "mysql://u:hunter2@a,b:0/db", "mysql://u:hunter2@a,b/db?socket=/s"}) {
    SCOPED_TRACE(bad);
    absl::StatusOr<MysqlOptions> parsed = ParseMysqlDsn(bad);
    EXPECT_CODE(parsed, absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(std::string(parsed.status().message()), Not(HasSubstr("hunt")));
  }
}

TEST(ParseMysqlDsnTest, DescribeForLogOmitsThePassword) {
  ASSERT_OK_AND_ASSIGN(MysqlOptions o,
                       ParseMysqlDsn("mysql://u:hunter2@h:3307/db"));
  EXPECT_EQ(DescribeForLog(o), "u@h:3307/db");
  o.unix_socket = "/tmp/s";
  EXPECT_EQ(DescribeForLog(o), "u@unix:/tmp/s/db");
}

TEST(DatabaseNameTest, AcceptsOnlySafeIdentifiers) {
  EXPECT_TRUE(IsValidDatabaseName("lumokeys"));
  EXPECT_TRUE(IsValidDatabaseName("lumo_test_123_abc"));
  EXPECT_FALSE(IsValidDatabaseName(""));
  EXPECT_FALSE(IsValidDatabaseName("a-b"));
  EXPECT_FALSE(IsValidDatabaseName("a`b"));
  EXPECT_FALSE(IsValidDatabaseName(std::string(65, 'a')));
}

TEST(DatetimeTest, FormatsUtcWithMicroseconds) {
  absl::Time t = absl::FromCivil(absl::CivilSecond(2026, 11, 27, 11, 22, 33),
                                 absl::UTCTimeZone()) +
                 absl::Microseconds(123456) + absl::Nanoseconds(789);
  ASSERT_OK_AND_ASSIGN(std::string text, FormatDatetime(t));
  EXPECT_EQ(text, "2026-11-27 11:22:33.123456");
  ASSERT_OK_AND_ASSIGN(absl::Time back, ParseDatetime(text));
  EXPECT_EQ(back, t - absl::Nanoseconds(789));
}

TEST(DatetimeTest, ParsesWithAndWithoutFraction) {
  ASSERT_OK_AND_ASSIGN(absl::Time a, ParseDatetime("2026-01-02 03:04:05"));
  EXPECT_EQ(a, absl::FromCivil(absl::CivilSecond(2026, 1, 2, 3, 4, 5),
                               absl::UTCTimeZone()));
  ASSERT_OK_AND_ASSIGN(absl::Time b, ParseDatetime("2026-01-02 03:04:05.5"));
  EXPECT_EQ(b - a, absl::Milliseconds(500));
  EXPECT_CODE(ParseDatetime("yesterday"), absl::StatusCode::kInternal);
}

TEST(DatetimeTest, TruncatesBeforeTheEpochTowardsThePast) {
  absl::Time t = absl::FromUnixMicros(-1) - absl::Nanoseconds(1);
  ASSERT_OK_AND_ASSIGN(std::string text, FormatDatetime(t));
  EXPECT_EQ(text, "1969-12-31 23:59:59.999998");
}

TEST(DatetimeTest, RejectsTimesOutsideTheDatetimeRange) {
  EXPECT_CODE(FormatDatetime(absl::InfiniteFuture()),
              absl::StatusCode::kInvalidArgument);
  EXPECT_CODE(FormatDatetime(absl::InfinitePast()),
              absl::StatusCode::kInvalidArgument);
  EXPECT_CODE(FormatDatetime(absl::FromCivil(absl::CivilSecond(999, 12, 31),
                                             absl::UTCTimeZone())),
              absl::StatusCode::kInvalidArgument);
  EXPECT_CODE(FormatDatetime(absl::FromCivil(absl::CivilSecond(10000, 1, 1),
                                             absl::UTCTimeZone())),
              absl::StatusCode::kInvalidArgument);
  EXPECT_OK(FormatDatetime(absl::FromCivil(
      absl::CivilSecond(9999, 12, 31, 23, 59, 59), absl::UTCTimeZone())));
}

TEST(SqlErrorTest, MapsErrorNumbersToStatusCodes) {
  const std::pair<int, absl::StatusCode> cases[] = {
      {1062, absl::StatusCode::kAlreadyExists},
      {1205, absl::StatusCode::kDeadlineExceeded},
      {1969, absl::StatusCode::kDeadlineExceeded},
      {3024, absl::StatusCode::kDeadlineExceeded},
      {1213, absl::StatusCode::kAborted},
      {2002, absl::StatusCode::kUnavailable},
      {2003, absl::StatusCode::kUnavailable},
      {2006, absl::StatusCode::kUnavailable},
      {2013, absl::StatusCode::kUnavailable},
      {2055, absl::StatusCode::kUnavailable},
      {1927, absl::StatusCode::kUnavailable},
      {1290, absl::StatusCode::kUnavailable},
      {1406, absl::StatusCode::kInvalidArgument},
      {4025, absl::StatusCode::kInvalidArgument},
      {1452, absl::StatusCode::kFailedPrecondition},
      {1064, absl::StatusCode::kInternal},
      {1146, absl::StatusCode::kInternal},
  };
  for (const auto& [number, code] : cases) {
    SCOPED_TRACE(number);
    absl::Status s = StatusFromSqlError(number, "insert key");
    EXPECT_EQ(s.code(), code);
    EXPECT_THAT(std::string(s.message()), HasSubstr("insert key"));
    EXPECT_THAT(std::string(s.message()), HasSubstr(std::to_string(number)));
  }
}

TEST(SqlErrorTest, ConnectionLevelErrorsAreRecognised) {
  for (int code : {2002, 2003, 2006, 2013, 2055, 1927, 1053, 4031, 1047}) {
    EXPECT_TRUE(IsConnectionLevelError(code)) << code;
  }
  for (int code : {0, 1062, 1205, 1213, 1969, 1064}) {
    EXPECT_FALSE(IsConnectionLevelError(code)) << code;
  }
}

TEST(SplitSqlStatementsTest, SplitsAtSemicolonsEndingALine) {
  ASSERT_OK_AND_ASSIGN(
      std::vector<std::string> statements,
      SplitSqlStatements("-- header comment\n"
                         "CREATE TABLE a (\n"
                         "  x INT -- trailing comments stay\n"
                         ");\n"
                         "\n"
                         "  -- indented comment; with a semicolon;\n"
                         "INSERT INTO a VALUES (1); \n"
                         "INSERT INTO b VALUES ('x;y');\r\n"));
  EXPECT_THAT(
      statements,
      ElementsAre("CREATE TABLE a (\n  x INT -- trailing comments "
                  "stay\n)",
                  "INSERT INTO a VALUES (1)", "INSERT INTO b VALUES ('x;y')"));
}

TEST(SplitSqlStatementsTest, EmptyAndCommentOnlyFilesHaveNoStatements) {
  ASSERT_OK_AND_ASSIGN(std::vector<std::string> none, SplitSqlStatements(""));
  EXPECT_TRUE(none.empty());
  ASSERT_OK_AND_ASSIGN(none, SplitSqlStatements("-- a\n\n-- b\n"));
  EXPECT_TRUE(none.empty());
}

TEST(SplitSqlStatementsTest, RejectsAnUnterminatedStatement) {
  EXPECT_CODE(SplitSqlStatements("CREATE TABLE a (x INT);\nSELECT 1\n"),
              absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace lumo::storage
