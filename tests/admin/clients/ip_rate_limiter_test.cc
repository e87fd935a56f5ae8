#include "server/service/ip_rate_limiter.h"

#include <optional>

#include "gtest/gtest.h"

namespace lumo::service {
namespace {

class FakeClock {
 public:
  absl::Time now = absl::FromUnixSeconds(1'700'000'000);
};

IpRateLimiterOptions Options(FakeClock* clock, int per_minute,
                             size_t max_tracked = 1000) {
  IpRateLimiterOptions o;
  o.per_minute = per_minute;
  o.max_tracked = max_tracked;
  o.now = [clock] { return clock->now; };
  return o;
}

TEST(IpRateLimiterTest, AllowsABurstThenRefusesWithRetryAfter) {
  FakeClock clock;
  IpRateLimiter limiter(Options(&clock, 10));
  for (int i = 0; i < 10; ++i) {
    EXPECT_EQ(limiter.Acquire("192.0.2.1"), std::nullopt) << i;
  }
  std::optional<absl::Duration> wait = limiter.Acquire("192.0.2.1");
  ASSERT_TRUE(wait.has_value());
  EXPECT_EQ(*wait, absl::Seconds(6));  // one token per 6 s
}

TEST(IpRateLimiterTest, AddressesAreIndependent) {
  FakeClock clock;
  IpRateLimiter limiter(Options(&clock, 1));
  EXPECT_EQ(limiter.Acquire("192.0.2.1"), std::nullopt);
  EXPECT_TRUE(limiter.Acquire("192.0.2.1").has_value());
  EXPECT_EQ(limiter.Acquire("2001:db8::1"), std::nullopt);
}

TEST(IpRateLimiterTest, RefillsOverTime) {
  FakeClock clock;
  IpRateLimiter limiter(Options(&clock, 10));
  for (int i = 0; i < 10; ++i) ASSERT_EQ(limiter.Acquire("a"), std::nullopt);
  ASSERT_TRUE(limiter.Acquire("a").has_value());
  clock.now += absl::Seconds(6);
  EXPECT_EQ(limiter.Acquire("a"), std::nullopt);
  EXPECT_TRUE(limiter.Acquire("a").has_value());
  clock.now += absl::Minutes(5);  // never above the burst size
  for (int i = 0; i < 10; ++i) EXPECT_EQ(limiter.Acquire("a"), std::nullopt);
  EXPECT_TRUE(limiter.Acquire("a").has_value());
}

TEST(IpRateLimiterTest, FullTableForgetsRefilledAddressesElseFailsClosed) {
  FakeClock clock;
  IpRateLimiter limiter(Options(&clock, 1, /*max_tracked=*/2));
  EXPECT_EQ(limiter.Acquire("a"), std::nullopt);
  EXPECT_EQ(limiter.Acquire("b"), std::nullopt);
  // Both buckets are empty: a third address is refused rather than
  // tracked without bound.
  EXPECT_TRUE(limiter.Acquire("c").has_value());
  clock.now += absl::Minutes(1);
  EXPECT_EQ(limiter.Acquire("c"), std::nullopt);
}

}  // namespace
}  // namespace lumo::service
