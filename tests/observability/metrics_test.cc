#include "server/observability/metrics.h"

#include <cmath>
#include <string>
#include <thread>
#include <vector>

#include "gtest/gtest.h"

namespace lumo::metrics {
namespace {

TEST(CounterTest, ConcurrentIncrementsAreExact) {
  Counter counter;
  constexpr int kThreads = 8;
  constexpr int kPerThread = 200000;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&counter] {
      for (int i = 0; i < kPerThread; ++i) counter.Increment();
    });
  }
  for (std::thread& t : threads) t.join();
  EXPECT_EQ(counter.Value(), uint64_t{kThreads} * kPerThread);
  counter.Increment(5);
  EXPECT_EQ(counter.Value(), uint64_t{kThreads} * kPerThread + 5);
}

TEST(HistogramTest, ConcurrentObservationsAreExactPerBucket) {
  Histogram h({1, 2, 3});
  constexpr int kThreads = 6;
  constexpr int kPerThread = 50000;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&h] {
      for (int i = 0; i < kPerThread; ++i) {
        h.Observe(0.5);  // bucket le=1
        h.Observe(2.5);  // bucket le=3
        h.Observe(9);    // only +Inf
      }
    });
  }
  for (std::thread& t : threads) t.join();
  const Histogram::Snapshot s = h.Snap();
  const uint64_t n = uint64_t{kThreads} * kPerThread;
  ASSERT_EQ(s.cumulative.size(), 4u);
  EXPECT_EQ(s.cumulative[0], n);      // <= 1
  EXPECT_EQ(s.cumulative[1], n);      // <= 2
  EXPECT_EQ(s.cumulative[2], 2 * n);  // <= 3
  EXPECT_EQ(s.count(), 3 * n);        // +Inf
  EXPECT_DOUBLE_EQ(s.sum, n * (0.5 + 2.5 + 9));
}

TEST(HistogramTest, UpperBoundIsInclusive) {
  Histogram h({0.5, 1});
  h.Observe(0.5);
  h.Observe(1);
  h.Observe(1.0000001);
  const Histogram::Snapshot s = h.Snap();
  EXPECT_EQ(s.cumulative[0], 1u);
  EXPECT_EQ(s.cumulative[1], 2u);
  EXPECT_EQ(s.count(), 3u);
}

TEST(FamilyTest, SameLabelsGiveTheSameSeries) {
  Registry r;
  Family<Counter>& f = r.AddCounter("x_total", "help", {"a", "b"});
  Counter& one = f.WithLabels({"1", "2"});
  Counter& again = f.WithLabels({"1", "2"});
  Counter& other = f.WithLabels({"1", "3"});
  EXPECT_EQ(&one, &again);
  EXPECT_NE(&one, &other);
}

TEST(RegistryTest, AddIsGetOrCreateByName) {
  Registry r;
  Family<Gauge>& g = r.AddGauge("lag_seconds", "help");
  EXPECT_EQ(&r.AddGauge("lag_seconds", "help"), &g);
  EXPECT_EQ(r.FindGauge("lag_seconds"), &g);
  EXPECT_EQ(r.FindGauge("absent"), nullptr);
  r.AddCounter("c_total", "help");
  EXPECT_EQ(r.FindGauge("c_total"), nullptr);
}

TEST(RegistryDeathTest, SameNameWithAnotherTypeAborts) {
  Registry r;
  r.AddCounter("dup_total", "help");
  EXPECT_DEATH(r.AddGauge("dup_total", "help"), "re-registered");
  EXPECT_DEATH(r.AddCounter("dup_total", "help", {"x"}), "re-registered");
}

TEST(RegistryDeathTest, InvalidNamesAbort) {
  Registry r;
  EXPECT_DEATH(r.AddCounter("9starts_with_digit", "h"), "bad metric name");
  EXPECT_DEATH(r.AddCounter("has-dash", "h"), "bad metric name");
  EXPECT_DEATH(r.AddCounter("ok_total", "h", {"__reserved"}), "bad label name");
  EXPECT_DEATH(r.AddHistogram("h_seconds", "h", {"le"}, {1}), "bad label name");
}

TEST(ExpositionTest, RendersTheTextFormatExactly) {
  Registry r;
  r.AddCounter("b_requests_total", "Requests.", {"rpc", "code"})
      .WithLabels({"S/M", "OK"})
      .Increment(3);
  r.AddGauge("a_temperature", "Line one\nline two \\ end").Get().Set(-1.5);
  Histogram& h =
      r.AddHistogram("c_latency_seconds", "Latency.", {"rpc"}, {0.005, 1})
          .WithLabels({"S/M"});
  h.Observe(0.001);
  h.Observe(0.5);
  h.Observe(7);
  r.AddCollector("d_collected", "From a callback.", Type::kGauge, [] {
    return std::vector<Sample>{{{{"k", "v"}}, 2}, {{}, 0.25}};
  });
  EXPECT_EQ(r.Render(),
            "# HELP a_temperature Line one\\nline two \\\\ end\n"
            "# TYPE a_temperature gauge\n"
            "a_temperature -1.5\n"
            "# HELP b_requests_total Requests.\n"
            "# TYPE b_requests_total counter\n"
            "b_requests_total{rpc=\"S/M\",code=\"OK\"} 3\n"
            "# HELP c_latency_seconds Latency.\n"
            "# TYPE c_latency_seconds histogram\n"
            "c_latency_seconds_bucket{rpc=\"S/M\",le=\"0.005\"} 1\n"
            "c_latency_seconds_bucket{rpc=\"S/M\",le=\"1\"} 2\n"
            "c_latency_seconds_bucket{rpc=\"S/M\",le=\"+Inf\"} 3\n"
            "c_latency_seconds_sum{rpc=\"S/M\"} 7.501\n"
            "c_latency_seconds_count{rpc=\"S/M\"} 3\n"
            "# HELP d_collected From a callback.\n"
            "# TYPE d_collected gauge\n"
            "d_collected{k=\"v\"} 2\n"
            "d_collected 0.25\n");
}

TEST(ExpositionTest, EscapesLabelValues) {
  EXPECT_EQ(EscapeLabelValue("plain"), "plain");
  EXPECT_EQ(EscapeLabelValue("a\"b"), "a\\\"b");
  EXPECT_EQ(EscapeLabelValue("back\\slash"), "back\\\\slash");
  EXPECT_EQ(EscapeLabelValue("two\nlines"), "two\\nlines");
  Registry r;
  r.AddCounter("e_total", "h", {"route"})
      .WithLabels({"/t/{x}\"}\n evil_total 1"})
      .Increment();
  const std::string text = r.Render();
  // The hostile value stays inside one quoted label value on one line.
  EXPECT_NE(text.find("e_total{route=\"/t/{x}\\\"}\\n evil_total 1\"} 1\n"),
            std::string::npos)
      << text;
  EXPECT_EQ(text.find("\n evil_total"), std::string::npos);
}

TEST(ExpositionTest, UnlabelledHistogramHasOnlyLe) {
  Registry r;
  r.AddHistogram("f_seconds", "h", {}, {1}).Get().Observe(2);
  const std::string text = r.Render();
  EXPECT_NE(text.find("f_seconds_bucket{le=\"1\"} 0\n"), std::string::npos);
  EXPECT_NE(text.find("f_seconds_bucket{le=\"+Inf\"} 1\n"), std::string::npos);
  EXPECT_NE(text.find("f_seconds_sum 2\n"), std::string::npos);
  EXPECT_NE(text.find("f_seconds_count 1\n"), std::string::npos);
}

TEST(ExpositionTest, FamilyWithoutSeriesRendersOnlyMetadata) {
  Registry r;
  r.AddGauge("g_lag_seconds", "Lag.");
  EXPECT_EQ(r.Render(),
            "# HELP g_lag_seconds Lag.\n# TYPE g_lag_seconds gauge\n");
}

TEST(ExpositionTest, RemovedCollectorIsNotRendered) {
  Registry r;
  r.AddCollector("h_total", "h", Type::kCounter, [] {
    return std::vector<Sample>{{{}, 1}};
  });
  EXPECT_NE(r.Render().find("h_total 1"), std::string::npos);
  r.RemoveCollector("h_total");
  EXPECT_EQ(r.Render(), "");
}

TEST(FormatValueTest, IntegersExactOthersShortestRoundTrip) {
  EXPECT_EQ(FormatValue(0), "0");
  EXPECT_EQ(FormatValue(12345678901234), "12345678901234");
  EXPECT_EQ(FormatValue(0.005), "0.005");
  EXPECT_EQ(FormatValue(0.1 + 0.2), "0.30000000000000004");
  EXPECT_EQ(FormatValue(INFINITY), "+Inf");
  EXPECT_EQ(FormatValue(-INFINITY), "-Inf");
  EXPECT_EQ(FormatValue(NAN), "NaN");
}

TEST(LatencyBucketsTest, StrictlyIncreasing) {
  const std::vector<double> b = LatencyBuckets();
  ASSERT_FALSE(b.empty());
  for (size_t i = 1; i < b.size(); ++i) EXPECT_LT(b[i - 1], b[i]);
}

TEST(GrpcCodeNameTest, CanonicalNamesAndUnknownOutsideTheRange) {
  EXPECT_EQ(GrpcCodeName(0), "OK");
  EXPECT_EQ(GrpcCodeName(4), "DEADLINE_EXCEEDED");
  EXPECT_EQ(GrpcCodeName(5), "NOT_FOUND");
  EXPECT_EQ(GrpcCodeName(8), "RESOURCE_EXHAUSTED");
  EXPECT_EQ(GrpcCodeName(14), "UNAVAILABLE");
  EXPECT_EQ(GrpcCodeName(16), "UNAUTHENTICATED");
  EXPECT_EQ(GrpcCodeName(-1), "UNKNOWN");
  EXPECT_EQ(GrpcCodeName(17), "UNKNOWN");
}

}  // namespace
}  // namespace lumo::metrics
