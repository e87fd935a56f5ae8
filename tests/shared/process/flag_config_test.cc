#include "server/shared/process/flag_config.h"

#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/reflection.h"
#include "absl/strings/match.h"
#include "absl/time/time.h"
#include "gtest/gtest.h"

ABSL_FLAG(std::string, test_listen, "127.0.0.1:1", "a string flag");
ABSL_FLAG(int, test_workers, 4, "an int flag");
ABSL_FLAG(bool, test_verbose, false, "a bool flag");
ABSL_FLAG(absl::Duration, test_grace, absl::Seconds(10), "a duration flag");

namespace lumo::process {
namespace {

class FlagConfigTest : public ::testing::Test {
 private:
  absl::FlagSaver saver_;  // every test starts from the defaults
};

class TempFile {
 public:
  explicit TempFile(const std::string& contents) {
    char name[] = "/tmp/lumo_config_test_XXXXXX";
    const int fd = mkstemp(name);
    EXPECT_GE(fd, 0);
    close(fd);
    path_ = name;
    std::ofstream(path_) << contents;
  }
  ~TempFile() { std::remove(path_.c_str()); }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

TEST_F(FlagConfigTest, ConfigTextSetsFlagsOfEveryType) {
  ASSERT_TRUE(ApplyConfigText("# comment\n"
                              "\n"
                              "test_listen = 10.0.0.1:50051\n"
                              "  test_workers=12  \n"
                              "test_verbose = true\n"
                              "test_grace = 1500ms\n",
                              "f.conf")
                  .ok());
  EXPECT_EQ(absl::GetFlag(FLAGS_test_listen), "10.0.0.1:50051");
  EXPECT_EQ(absl::GetFlag(FLAGS_test_workers), 12);
  EXPECT_TRUE(absl::GetFlag(FLAGS_test_verbose));
  EXPECT_EQ(absl::GetFlag(FLAGS_test_grace), absl::Milliseconds(1500));
}

TEST_F(FlagConfigTest, ConfigUnknownKeyNamesFileLineAndKey) {
  absl::Status s =
      ApplyConfigText("test_workers = 3\n\ntest_wrokers = 5\n", "/etc/x.conf");
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(s.message(),
            "/etc/x.conf:3: unknown setting 'test_wrokers' (no flag "
            "--test_wrokers)");
}

TEST_F(FlagConfigTest, ConfigInvalidValueNamesFileLineAndFlag) {
  absl::Status s = ApplyConfigText("test_workers = many\n", "a.conf");
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(absl::StartsWith(s.message(),
                               "a.conf:1: invalid value for --test_workers: "))
      << s;
  EXPECT_EQ(absl::GetFlag(FLAGS_test_workers), 4);
}

TEST_F(FlagConfigTest, ConfigRejectsLineWithoutEqualsDuplicatesAndNesting) {
  EXPECT_EQ(ApplyConfigText("test_verbose\n", "a").message(),
            "a:1: expected `name = value`");
  EXPECT_EQ(ApplyConfigText("= 3\n", "a").message(),
            "a:1: expected `name = value`");
  EXPECT_EQ(
      ApplyConfigText("test_workers = 1\ntest_workers = 2\n", "a").message(),
      "a:2: 'test_workers' is set twice");
  EXPECT_EQ(ApplyConfigText("config = other.conf\n", "a").message(),
            "a:1: a config file cannot name another one");
}

TEST_F(FlagConfigTest, ConfigValueKeepsInnerSpacesAndEqualsSigns) {
  ASSERT_TRUE(ApplyConfigText("test_listen = a = b c\n", "a").ok());
  EXPECT_EQ(absl::GetFlag(FLAGS_test_listen), "a = b c");
}

TEST_F(FlagConfigTest, ConfigFileThatCannotBeReadIsNamed) {
  absl::Status s = ApplyConfigFile("/nonexistent/lumo.conf");
  EXPECT_EQ(s.code(), absl::StatusCode::kNotFound);
  EXPECT_TRUE(absl::StrContains(s.message(), "/nonexistent/lumo.conf"));
}

TEST_F(FlagConfigTest, EnvironmentSetsPrefixedFlagsAndIgnoresOthers) {
  ASSERT_TRUE(ApplyEnvironment(
                  "LUMOCFGTEST_",
                  {"PATH=/bin", "LUMOCFGTEST_TEST_WORKERS=9",
                   "LUMOCFGTEST_TEST_VERBOSE=1", "LUMO_OTHER_TEST_WORKERS=1",
                   "LUMOCFGTEST_CONFIG=/ignored/here"})
                  .ok());
  EXPECT_EQ(absl::GetFlag(FLAGS_test_workers), 9);
  EXPECT_TRUE(absl::GetFlag(FLAGS_test_verbose));
}

TEST_F(FlagConfigTest, EnvironmentVariableNamingNoFlagFails) {
  absl::Status s =
      ApplyEnvironment("LUMOCFGTEST_", {"LUMOCFGTEST_TEST_WROKERS=9"});
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(s.message(),
            "environment variable LUMOCFGTEST_TEST_WROKERS: unknown setting "
            "'test_wrokers' (no flag --test_wrokers)");
}

TEST_F(FlagConfigTest, EnvironmentInvalidValueNamesVariable) {
  absl::Status s =
      ApplyEnvironment("LUMOCFGTEST_", {"LUMOCFGTEST_TEST_GRACE=soon"});
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(absl::StartsWith(
      s.message(),
      "environment variable LUMOCFGTEST_TEST_GRACE: invalid value for "
      "--test_grace: "))
      << s;
}

TEST_F(FlagConfigTest, EnvironmentNameMustBeUpperCase) {
  absl::Status s =
      ApplyEnvironment("LUMOCFGTEST_", {"LUMOCFGTEST_test_workers=1"});
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(absl::StrContains(s.message(), "LUMOCFGTEST_test_workers"));
}

TEST_F(FlagConfigTest, ParserFlagsAreNotSettings) {
  EXPECT_FALSE(
      ApplyEnvironment("LUMOCFGTEST_", {"LUMOCFGTEST_FLAGFILE=/x"}).ok());
  EXPECT_FALSE(ApplyConfigText("undefok = x\n", "a").ok());
}

TEST_F(FlagConfigTest, ConfigPathFromArgsTakesLastBeforeDoubleDash) {
  std::vector<std::string> args = {
      "prog", "--config=a.conf", "-x", "-config", "b.conf", "--", "--config=c"};
  std::vector<char*> argv;
  for (std::string& a : args) argv.push_back(a.data());
  EXPECT_EQ(ConfigPathFromArgs(static_cast<int>(argv.size()), argv.data()),
            "b.conf");
  EXPECT_EQ(ConfigPathFromArgs(1, argv.data()), "");
}

// The whole start-up sequence, in a child process each (ParseFlags parses
// the command line and exits on errors): command line > environment >
// config file > default. Each child body is a function, so that its commas
// stay out of the EXPECT_EXIT macro.
void ParseArgs(std::vector<std::string> args) {
  std::vector<char*> argv;
  for (std::string& a : args) argv.push_back(a.data());
  ParseFlags(static_cast<int>(argv.size()), argv.data(), "LUMOCFGTEST_",
             "test");
}

void PrecedenceChild(const std::string& config_path) {
  setenv("LUMOCFGTEST_TEST_WORKERS", "2", 1);
  setenv("LUMOCFGTEST_TEST_LISTEN", "from-env", 1);
  ParseArgs({"prog", "--config=" + config_path, "--test_listen=from-cli"});
  const bool ok = absl::GetFlag(FLAGS_test_listen) == "from-cli" &&
                  absl::GetFlag(FLAGS_test_workers) == 2 &&
                  absl::GetFlag(FLAGS_test_verbose) &&
                  absl::GetFlag(FLAGS_test_grace) == absl::Seconds(10);
  fprintf(stderr, "checked\n");
  exit(ok ? 0 : 1);
}

TEST(ParseFlagsDeathTest, PrecedenceIsCommandLineThenEnvironmentThenFile) {
  TempFile file(
      "test_listen = from-file\ntest_workers = 1\ntest_verbose = true\n");
  EXPECT_EXIT(PrecedenceChild(file.path()), ::testing::ExitedWithCode(0),
              "checked");
}

void ConfigFromEnvironmentChild(const std::string& config_path) {
  setenv("LUMOCFGTEST_CONFIG", config_path.c_str(), 1);
  ParseArgs({"prog"});
  fprintf(stderr, "workers=%d\n", absl::GetFlag(FLAGS_test_workers));
  exit(0);
}

TEST(ParseFlagsDeathTest, ConfigFileFromEnvironmentVariable) {
  TempFile file("test_workers = 7\n");
  EXPECT_EXIT(ConfigFromEnvironmentChild(file.path()),
              ::testing::ExitedWithCode(0), "workers=7");
}

void UnknownEnvironmentChild() {
  setenv("LUMOCFGTEST_NO_SUCH_FLAG", "1", 1);
  ParseArgs({"prog"});
  exit(0);
}

TEST(ParseFlagsDeathTest, UnknownEnvironmentSettingStopsStartWithItsName) {
  EXPECT_EXIT(
      UnknownEnvironmentChild(), ::testing::ExitedWithCode(2),
      "\"level\":\"fatal\".*LUMOCFGTEST_NO_SUCH_FLAG.*no flag --no_such_flag");
}

void BadConfigChild(const std::string& config_path) {
  ParseArgs({"prog", "--config=" + config_path});
  exit(0);
}

TEST(ParseFlagsDeathTest, BadConfigFileLineStopsStartWithFileAndLine) {
  TempFile file("test_workers = 1\ntest_grace = later\n");
  const std::string expected =
      file.path() + ":2: invalid value for --test_grace";
  EXPECT_EXIT(BadConfigChild(file.path()), ::testing::ExitedWithCode(2),
              expected);
}

}  // namespace
}  // namespace lumo::process
