#include "server/observability/log.h"

#include <stdio.h>
#include <unistd.h>

#include <regex>
#include <string>

#include "absl/strings/string_view.h"
#include "gtest/gtest.h"

namespace lumo::log {
namespace {

// Captures what the logger writes into a temporary file.
class LogTest : public ::testing::Test {
 protected:
  void SetUp() override {
    file_ = tmpfile();
    ASSERT_NE(file_, nullptr);
    SetOutputFd(fileno(file_));
    SetMinLevel(Level::kInfo);
  }
  void TearDown() override {
    SetOutputFd(STDERR_FILENO);
    SetMinLevel(Level::kInfo);
    fclose(file_);
  }
  std::string Captured() {
    std::string out;
    char buffer[4096];
    rewind(file_);
    size_t n;
    while ((n = fread(buffer, 1, sizeof(buffer), file_)) > 0) {
      out.append(buffer, n);
    }
    return out;
  }
  FILE* file_ = nullptr;
};

TEST_F(LogTest, OneLineWithTimeLevelMessageAndFieldsInOrder) {
  Line(Level::kInfo, "rpc")
      .Str("rpc", "a.B/C")
      .Int("n", -3)
      .Num("latency_ms", 1.25)
      .Bool("ok", true);
  const std::string line = Captured();
  const std::regex shape(
      "\\{\"time\":\"\\d{4}-\\d\\d-\\d\\dT\\d\\d:\\d\\d:\\d\\d\\.\\d{6}Z\","
      "\"level\":\"info\",\"msg\":\"rpc\",\"rpc\":\"a.B/C\",\"n\":-3,"
      "\"latency_ms\":1.25,\"ok\":true\\}\n");
  EXPECT_TRUE(std::regex_match(line, shape)) << line;
}

TEST_F(LogTest, LevelsBelowTheMinimumAreDropped) {
  SetMinLevel(Level::kWarning);
  Line(Level::kDebug, "d");
  Line(Level::kInfo, "i");
  Line(Level::kWarning, "w");
  Line(Level::kError, "e");
  const std::string out = Captured();
  EXPECT_EQ(out.find("\"msg\":\"d\""), std::string::npos);
  EXPECT_EQ(out.find("\"msg\":\"i\""), std::string::npos);
  EXPECT_NE(out.find("\"level\":\"warning\",\"msg\":\"w\""), std::string::npos);
  EXPECT_NE(out.find("\"level\":\"error\",\"msg\":\"e\""), std::string::npos);
}

TEST_F(LogTest, FatalIsAlwaysWritten) {
  SetMinLevel(Level::kError);
  Line(Level::kFatal, "boom");
  EXPECT_NE(Captured().find("\"level\":\"fatal\",\"msg\":\"boom\""),
            std::string::npos);
}

TEST_F(LogTest, DebugWrittenWhenEnabled) {
  SetMinLevel(Level::kDebug);
  Debug("fine detail");
  EXPECT_NE(Captured().find("\"level\":\"debug\""), std::string::npos);
}

TEST_F(LogTest, ValuesCannotBreakTheLineOrForgeFields) {
  Line(Level::kInfo, "m\n{\"x\":1}").Str("tenant", "a\"b\\c\r\n\t\x01\x7f");
  const std::string out = Captured();
  // Exactly one line.
  EXPECT_EQ(out.find('\n'), out.size() - 1) << out;
  EXPECT_NE(out.find("\"msg\":\"m\\n{\\\"x\\\":1}\""), std::string::npos)
      << out;
  EXPECT_NE(out.find("\"tenant\":\"a\\\"b\\\\c\\r\\n\\t\\u0001\\u007f\""),
            std::string::npos)
      << out;
}

TEST_F(LogTest, NonFiniteNumbersBecomeNull) {
  Line(Level::kInfo, "m").Num("x", 1.0 / 0.0);
  EXPECT_NE(Captured().find("\"x\":null"), std::string::npos);
}

TEST(ParseLevelTest, AcceptsTheFourLevelsOnly) {
  Level level;
  ASSERT_TRUE(ParseLevel("debug", &level));
  EXPECT_EQ(level, Level::kDebug);
  ASSERT_TRUE(ParseLevel("info", &level));
  EXPECT_EQ(level, Level::kInfo);
  ASSERT_TRUE(ParseLevel("warning", &level));
  EXPECT_EQ(level, Level::kWarning);
  ASSERT_TRUE(ParseLevel("error", &level));
  EXPECT_EQ(level, Level::kError);
  EXPECT_FALSE(ParseLevel("fatal", &level));
  EXPECT_FALSE(ParseLevel("INFO", &level));
  EXPECT_FALSE(ParseLevel("", &level));
}

TEST(AppendJsonStringTest, EscapesControlsAndReplacesInvalidUtf8) {
  auto quote = [](absl::string_view s) {
    std::string out;
    AppendJsonString(out, s);
    return out;
  };
  EXPECT_EQ(quote("a\"b\\c\n\r\t\x01\x7f"),
            "\"a\\\"b\\\\c\\n\\r\\t\\u0001\\u007f\"");
  // Valid sequences of 2, 3 and 4 bytes are copied.
  EXPECT_EQ(quote("caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80"),
            "\"caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80\"");
  const std::string fffd = "\xEF\xBF\xBD";
  // A stray continuation byte, a lone lead byte, a truncated sequence.
  EXPECT_EQ(quote("\x80"), "\"" + fffd + "\"");
  EXPECT_EQ(quote("\xc3x"), "\"" + fffd + "x\"");
  EXPECT_EQ(quote("\xe2\x82"), "\"" + fffd + fffd + "\"");
  // Overlong '/', a UTF-16 surrogate, a code point above U+10FFFF.
  EXPECT_EQ(quote("\xc0\xaf"), "\"" + fffd + fffd + "\"");
  EXPECT_EQ(quote("\xed\xa0\x80"), "\"" + fffd + fffd + fffd + "\"");
  EXPECT_EQ(quote("\xf4\x90\x80\x80"), "\"" + fffd + fffd + fffd + fffd + "\"");
}

}  // namespace
}  // namespace lumo::log
