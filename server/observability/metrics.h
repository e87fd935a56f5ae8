// A small Prometheus-style metrics library: counters, gauges and histograms
// with fixed buckets, grouped in labelled families, rendered in the
// Prometheus text exposition format 0.0.4.
//
// Neutral on purpose: it depends on Abseil only, so the server and the
// gateway can both use it without the gateway depending on server code.
//
// Hot paths: Counter::Increment and Histogram::Observe touch only the
// calling thread's shard (relaxed atomics on a cache line that other threads
// rarely write), take no lock and allocate nothing. Looking a series up by
// label values (Family::WithLabels) takes a mutex: do it once and keep the
// reference, which stays valid for the registry's life.
//
// Thread-safety: every class here is thread-safe.
#ifndef LUMOKEYS_SERVER_OBSERVABILITY_METRICS_H_
#define LUMOKEYS_SERVER_OBSERVABILITY_METRICS_H_

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/types/span.h"

namespace lumo::metrics {

namespace internal {
// Shards per metric; a thread always uses the same shard.
inline constexpr size_t kShards = 16;
// This thread's shard index in [0, kShards).
size_t ThisThreadShard();

struct alignas(64) CounterCell {
  std::atomic<uint64_t> value{0};
};
}  // namespace internal

// A monotonically increasing integer count.
class Counter {
 public:
  Counter() = default;
  Counter(const Counter&) = delete;
  Counter& operator=(const Counter&) = delete;

  void Increment(uint64_t n = 1) {
    cells_[internal::ThisThreadShard()].value.fetch_add(
        n, std::memory_order_relaxed);
  }
  // The sum over shards; exact once concurrent increments have returned.
  uint64_t Value() const;

 private:
  internal::CounterCell cells_[internal::kShards];
};

// A value that goes up and down (set from anywhere; not for hot paths that
// contend: it is a single atomic).
class Gauge {
 public:
  Gauge() = default;
  Gauge(const Gauge&) = delete;
  Gauge& operator=(const Gauge&) = delete;

  void Set(double value) { value_.store(value, std::memory_order_relaxed); }
  void Add(double delta);
  double Value() const { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<double> value_{0};
};

// Observations counted into fixed buckets (upper bounds, strictly
// increasing, finite; +Inf is implicit) plus their sum and count.
class Histogram {
 public:
  explicit Histogram(std::vector<double> bounds);
  Histogram(const Histogram&) = delete;
  Histogram& operator=(const Histogram&) = delete;
  ~Histogram();

  void Observe(double value);

  struct Snapshot {
    std::vector<double> bounds;
    // Cumulative: cumulative[i] counts observations <= bounds[i]; the last
    // element (index bounds.size()) is the count of all observations.
    std::vector<uint64_t> cumulative;
    double sum = 0;
    uint64_t count() const { return cumulative.back(); }
  };
  Snapshot Snap() const;
  const std::vector<double>& bounds() const { return bounds_; }

 private:
  struct Shard;
  const std::vector<double> bounds_;
  std::unique_ptr<Shard[]> shards_;
};

// Default latency buckets in seconds: 50 µs .. 10 s.
std::vector<double> LatencyBuckets();

// The label for gRPC status code `code`: its canonical name ("OK",
// "NOT_FOUND", ...; gRPC and absl::StatusCode share numbers and names),
// "UNKNOWN" outside 0-16. For metric labels and log fields of both the
// server and the gateway.
std::string GrpcCodeName(int code);

// One metric name with its label names and a series per distinct tuple of
// label values. `T` is Counter, Gauge or Histogram.
template <typename T>
class Family {
 public:
  // The series for `values` (one per label name, in order), created on
  // first use. Aborts if the number of values is wrong (a programming
  // error). The reference is valid for the family's life.
  T& WithLabels(absl::Span<const absl::string_view> values)
      ABSL_LOCKS_EXCLUDED(mu_);
  T& WithLabels(std::initializer_list<absl::string_view> values) {
    return WithLabels(absl::MakeConstSpan(values.begin(), values.size()));
  }
  // Only for families without labels.
  T& Get() { return WithLabels(absl::Span<const absl::string_view>()); }

  const std::vector<std::string>& label_names() const { return label_names_; }

  // Every series, in label-value order (exposition).
  void ForEach(
      const std::function<void(const std::vector<std::string>&, const T&)>& fn)
      const ABSL_LOCKS_EXCLUDED(mu_);

 private:
  friend class Registry;
  Family(std::vector<std::string> label_names, std::vector<double> bounds)
      : label_names_(std::move(label_names)), bounds_(std::move(bounds)) {}

  const std::vector<std::string> label_names_;
  const std::vector<double> bounds_;  // histograms only
  mutable absl::Mutex mu_;
  std::map<std::vector<std::string>, std::unique_ptr<T>> series_
      ABSL_GUARDED_BY(mu_);
};

enum class Type { kCounter, kGauge, kHistogram };

// A sample produced at scrape time by a collector.
struct Sample {
  std::vector<std::pair<std::string, std::string>> labels;
  double value = 0;
};

// Owns metric families and renders them. Names must match
// [a-zA-Z_:][a-zA-Z0-9_:]* and label names [a-zA-Z_][a-zA-Z0-9_]* (not
// starting with "__", and never "le" for histograms); a bad name aborts
// (metric names are constants of the program).
//
// The Add* calls are get-or-create: asking again for an existing name with
// the same type and label names returns the same family (so independent
// components can share one by name, e.g. a gauge another component sets);
// the same name with another type or other labels aborts.
class Registry {
 public:
  Registry() = default;
  Registry(const Registry&) = delete;
  Registry& operator=(const Registry&) = delete;

  Family<Counter>& AddCounter(absl::string_view name, absl::string_view help,
                              std::vector<std::string> label_names = {});
  Family<Gauge>& AddGauge(absl::string_view name, absl::string_view help,
                          std::vector<std::string> label_names = {});
  Family<Histogram>& AddHistogram(absl::string_view name,
                                  absl::string_view help,
                                  std::vector<std::string> label_names,
                                  std::vector<double> bounds);

  // A counter or gauge whose samples are computed at each scrape by
  // `collect` (e.g. from a component's own statistics). `collect` runs on
  // the scraping thread and must stay callable until RemoveCollector(name)
  // or the registry's destruction. Aborts if `name` is taken.
  void AddCollector(absl::string_view name, absl::string_view help, Type type,
                    std::function<std::vector<Sample>()> collect);
  void RemoveCollector(absl::string_view name);

  // The family registered as a gauge under `name`, or nullptr.
  Family<Gauge>* FindGauge(absl::string_view name);

  // Every family, sorted by name, in text format 0.0.4.
  std::string Render() const;

 private:
  struct Entry {
    Type type;
    std::string help;
    std::vector<std::string> label_names;
    std::vector<double> bounds;
    std::unique_ptr<Family<Counter>> counters;
    std::unique_ptr<Family<Gauge>> gauges;
    std::unique_ptr<Family<Histogram>> histograms;
    std::function<std::vector<Sample>()> collect;
  };
  Entry& GetOrAdd(absl::string_view name, absl::string_view help, Type type,
                  std::vector<std::string> label_names,
                  std::vector<double> bounds)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  mutable absl::Mutex mu_;
  std::map<std::string, Entry, std::less<>> entries_ ABSL_GUARDED_BY(mu_);
};

// Text-format helpers (exposed for tests).
// A label value with '\\', '"' and newline escaped.
std::string EscapeLabelValue(absl::string_view value);
// HELP text with '\\' and newline escaped.
std::string EscapeHelp(absl::string_view help);
// A sample value: integers exactly, others with 17 significant digits,
// "+Inf", "-Inf", "NaN".
std::string FormatValue(double value);

}  // namespace lumo::metrics

#endif  // LUMOKEYS_SERVER_OBSERVABILITY_METRICS_H_
