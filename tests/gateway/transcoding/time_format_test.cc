#include "gateway/transcoding/time_format.h"

#include <cstdint>
#include <string>

#include "absl/status/status.h"
#include "gtest/gtest.h"

namespace lumo::gateway {
namespace {

TEST(ParseRfc3339Test, AcceptsValidTimestamps) {
  struct Case {
    const char* text;
    int64_t seconds;
    int32_t nanos;
  };
  const Case cases[] = {
      {"1970-01-01T00:00:00Z", 0, 0},
      {"2026-11-27T11:22:33Z", 1795778553, 0},
      {"2026-11-27t11:22:33z", 1795778553, 0},
      {"2026-11-27T11:22:33.1Z", 1795778553, 100000000},
      {"2026-11-27T11:22:33.123456789Z", 1795778553, 123456789},
      {"2026-11-27T12:52:33+01:30", 1795778553, 0},
      {"2026-11-27T00:22:33-11:00", 1795778553, 0},
      {"2024-02-29T00:00:00Z", 1709164800, 0},
      {"0001-01-01T00:00:00Z", -62135596800, 0},
      {"9999-12-31T23:59:59.999999999Z", 253402300799, 999999999},
      {"1969-12-31T23:59:59.5Z", -1, 500000000},
  };
  for (const Case& c : cases) {
    int64_t seconds = 7;
    int32_t nanos = 7;
    absl::Status status = ParseRfc3339(c.text, &seconds, &nanos);
    ASSERT_TRUE(status.ok()) << c.text << ": " << status;
    EXPECT_EQ(seconds, c.seconds) << c.text;
    EXPECT_EQ(nanos, c.nanos) << c.text;
  }
}

TEST(ParseRfc3339Test, RejectsInvalidTimestamps) {
  const std::string bad =
      "not an RFC 3339 timestamp (e.g. 2026-01-02T03:04:05Z; encode '+' as "
      "%2B)";
  struct Case {
    const char* text;
    std::string message;
  };
  const Case cases[] = {
      {"", bad},
      {"2026-11-27", bad},
      {"2026-11-27T11:22:33", bad},
      {"2026-11-27 11:22:33Z", bad},
      {"2026-11-27T11:22:33.Z", bad},
      {"2026-11-27T11:22:33.1234567890Z", bad},
      {"2026-11-27T11:22:33+0100", bad},
      {"2026-11-27T11:22:33 01:00", bad},
      {"2026-11-27T11:22:33+24:00", bad},
      {"2026-11-27T11:22:33Zx", bad},
      {"2026-13-01T00:00:00Z", bad},
      {"2026-00-01T00:00:00Z", bad},
      {"2025-02-29T00:00:00Z", bad},
      {"2026-04-31T00:00:00Z", bad},
      {"2026-11-27T24:00:00Z", bad},
      {"2026-11-27T11:60:00Z", bad},
      {"2026-11-27T11:22:60Z", bad},
      {"0000-12-31T00:00:00Z", bad},
      {"+2026-11-27T11:22:33Z", bad},
      {"２026-11-27T11:22:33Z", bad},
      {"0001-01-01T00:00:00+00:01", "timestamp out of range"},
      {"9999-12-31T23:59:59-00:01", "timestamp out of range"},
  };
  for (const Case& c : cases) {
    int64_t seconds = 7;
    int32_t nanos = 7;
    absl::Status status = ParseRfc3339(c.text, &seconds, &nanos);
    EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument) << c.text;
    EXPECT_EQ(std::string(status.message()), c.message) << c.text;
    EXPECT_EQ(seconds, 7);
    EXPECT_EQ(nanos, 7);
  }
}

TEST(AppendRfc3339Test, AppendsOrRefuses) {
  std::string out = "x";
  EXPECT_TRUE(AppendRfc3339(1795778553, 123456000, &out));
  EXPECT_EQ(out, "x2026-11-27T11:22:33.123456Z");
  out.clear();
  EXPECT_FALSE(AppendRfc3339(kMaxTimestampSeconds + 1, 0, &out));
  EXPECT_FALSE(AppendRfc3339(0, 1000000000, &out));
  EXPECT_EQ(out, "");
}

TEST(AppendDurationTest, AppendsOrRefuses) {
  std::string out;
  EXPECT_TRUE(AppendDuration(315576000000, 999999999, &out));
  EXPECT_EQ(out, "315576000000.999999999s");
  out.clear();
  EXPECT_TRUE(AppendDuration(-315576000000, -999999999, &out));
  EXPECT_EQ(out, "-315576000000.999999999s");
  out.clear();
  EXPECT_FALSE(AppendDuration(-1, 1, &out));
  EXPECT_FALSE(AppendDuration(0, 1000000000, &out));
  EXPECT_EQ(out, "");
}

}  // namespace
}  // namespace lumo::gateway
