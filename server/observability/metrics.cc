#include "server/observability/metrics.h"

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <limits>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"

namespace lumo::metrics {
namespace internal {

size_t ThisThreadShard() {
  static std::atomic<size_t> next{0};
  thread_local const size_t shard =
      next.fetch_add(1, std::memory_order_relaxed) % kShards;
  return shard;
}

}  // namespace internal

namespace {

void AddDouble(std::atomic<double>& target, double delta) {
  double current = target.load(std::memory_order_relaxed);
  while (!target.compare_exchange_weak(current, current + delta,
                                       std::memory_order_relaxed)) {
  }
}

bool IsValidMetricName(absl::string_view name) {
  if (name.empty()) return false;
  for (size_t i = 0; i < name.size(); ++i) {
    const char c = name[i];
    const bool alpha = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                       c == '_' || c == ':';
    if (!alpha && !(i > 0 && c >= '0' && c <= '9')) return false;
  }
  return true;
}

bool IsValidLabelName(absl::string_view name) {
  if (name.empty() || absl::StartsWith(name, "__")) return false;
  for (size_t i = 0; i < name.size(); ++i) {
    const char c = name[i];
    const bool alpha =
        (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
    if (!alpha && !(i > 0 && c >= '0' && c <= '9')) return false;
  }
  return true;
}

[[noreturn]] void Die(absl::string_view what) {
  fprintf(stderr, "lumo::metrics: %.*s\n", static_cast<int>(what.size()),
          what.data());
  abort();
}

template <typename T>
std::unique_ptr<T> MakeSeries(const std::vector<double>& bounds);
template <>
std::unique_ptr<Counter> MakeSeries<Counter>(const std::vector<double>&) {
  return std::make_unique<Counter>();
}
template <>
std::unique_ptr<Gauge> MakeSeries<Gauge>(const std::vector<double>&) {
  return std::make_unique<Gauge>();
}
template <>
std::unique_ptr<Histogram> MakeSeries<Histogram>(
    const std::vector<double>& bounds) {
  return std::make_unique<Histogram>(bounds);
}

// `{a="x",b="y"` without the closing brace (so "le" can be appended), or
// "" when there are no labels.
std::string OpenLabels(const std::vector<std::string>& names,
                       const std::vector<std::string>& values) {
  if (names.empty()) return "";
  std::string out = "{";
  for (size_t i = 0; i < names.size(); ++i) {
    if (i > 0) out += ',';
    absl::StrAppend(&out, names[i], "=\"", EscapeLabelValue(values[i]), "\"");
  }
  return out;
}

std::string CloseLabels(const std::string& open) {
  return open.empty() ? open : open + "}";
}

}  // namespace

// ------------------------------------------------------------------ values

uint64_t Counter::Value() const {
  uint64_t sum = 0;
  for (const auto& cell : cells_) {
    sum += cell.value.load(std::memory_order_relaxed);
  }
  return sum;
}

void Gauge::Add(double delta) { AddDouble(value_, delta); }

struct alignas(64) Histogram::Shard {
  std::unique_ptr<std::atomic<uint64_t>[]> buckets;  // bounds.size() + 1
  std::atomic<double> sum{0};
};

Histogram::Histogram(std::vector<double> bounds)
    : bounds_(std::move(bounds)), shards_(new Shard[internal::kShards]) {
  for (size_t i = 0; i < bounds_.size(); ++i) {
    if (!std::isfinite(bounds_[i]) || (i > 0 && bounds_[i] <= bounds_[i - 1]))
      Die("histogram bounds must be finite and strictly increasing");
  }
  for (size_t s = 0; s < internal::kShards; ++s) {
    shards_[s].buckets.reset(new std::atomic<uint64_t>[bounds_.size() + 1]);
    for (size_t b = 0; b <= bounds_.size(); ++b) {
      shards_[s].buckets[b].store(0, std::memory_order_relaxed);
    }
  }
}

Histogram::~Histogram() = default;

void Histogram::Observe(double value) {
  size_t bucket = 0;
  // Few buckets: a linear scan beats a binary search.
  while (bucket < bounds_.size() && value > bounds_[bucket]) ++bucket;
  Shard& shard = shards_[internal::ThisThreadShard()];
  shard.buckets[bucket].fetch_add(1, std::memory_order_relaxed);
  AddDouble(shard.sum, value);
}

Histogram::Snapshot Histogram::Snap() const {
  Snapshot snap;
  snap.bounds = bounds_;
  snap.cumulative.assign(bounds_.size() + 1, 0);
  for (size_t s = 0; s < internal::kShards; ++s) {
    for (size_t b = 0; b <= bounds_.size(); ++b) {
      snap.cumulative[b] +=
          shards_[s].buckets[b].load(std::memory_order_relaxed);
    }
    snap.sum += shards_[s].sum.load(std::memory_order_relaxed);
  }
  for (size_t b = 1; b < snap.cumulative.size(); ++b) {
    snap.cumulative[b] += snap.cumulative[b - 1];
  }
  return snap;
}

std::string GrpcCodeName(int code) {
  if (code < 0 || code > 16) return "UNKNOWN";
  return absl::StatusCodeToString(static_cast<absl::StatusCode>(code));
}

std::vector<double> LatencyBuckets() {
  return {0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025,
          0.05,    0.1,    0.25,    0.5,    1,     2.5,    5,     10};
}

// ---------------------------------------------------------------- families

template <typename T>
T& Family<T>::WithLabels(absl::Span<const absl::string_view> values) {
  if (values.size() != label_names_.size()) {
    Die("wrong number of label values");
  }
  std::vector<std::string> key(values.begin(), values.end());
  absl::MutexLock lock(&mu_);
  std::unique_ptr<T>& slot = series_[std::move(key)];
  if (slot == nullptr) slot = MakeSeries<T>(bounds_);
  return *slot;
}

template <typename T>
void Family<T>::ForEach(
    const std::function<void(const std::vector<std::string>&, const T&)>& fn)
    const {
  absl::MutexLock lock(&mu_);
  for (const auto& [values, series] : series_) fn(values, *series);
}

template class Family<Counter>;
template class Family<Gauge>;
template class Family<Histogram>;

// ---------------------------------------------------------------- registry

Registry::Entry& Registry::GetOrAdd(absl::string_view name,
                                    absl::string_view help, Type type,
                                    std::vector<std::string> label_names,
                                    std::vector<double> bounds) {
  if (!IsValidMetricName(name)) Die(absl::StrCat("bad metric name ", name));
  for (const std::string& label : label_names) {
    if (!IsValidLabelName(label) ||
        (type == Type::kHistogram && label == "le")) {
      Die(absl::StrCat("bad label name ", label, " on ", name));
    }
  }
  auto it = entries_.find(name);
  if (it != entries_.end()) {
    Entry& e = it->second;
    if (e.type != type || e.collect != nullptr ||
        e.label_names != label_names || e.bounds != bounds) {
      Die(absl::StrCat("metric ", name,
                       " re-registered with another type or labels"));
    }
    return e;
  }
  Entry& e = entries_[std::string(name)];
  e.type = type;
  e.help = std::string(help);
  e.label_names = label_names;
  e.bounds = bounds;
  switch (type) {
    case Type::kCounter:
      e.counters.reset(new Family<Counter>(std::move(label_names), {}));
      break;
    case Type::kGauge:
      e.gauges.reset(new Family<Gauge>(std::move(label_names), {}));
      break;
    case Type::kHistogram:
      e.histograms.reset(
          new Family<Histogram>(std::move(label_names), std::move(bounds)));
      break;
  }
  return e;
}

Family<Counter>& Registry::AddCounter(absl::string_view name,
                                      absl::string_view help,
                                      std::vector<std::string> label_names) {
  absl::MutexLock lock(&mu_);
  return *GetOrAdd(name, help, Type::kCounter, std::move(label_names), {})
              .counters;
}

Family<Gauge>& Registry::AddGauge(absl::string_view name,
                                  absl::string_view help,
                                  std::vector<std::string> label_names) {
  absl::MutexLock lock(&mu_);
  return *GetOrAdd(name, help, Type::kGauge, std::move(label_names), {}).gauges;
}

Family<Histogram>& Registry::AddHistogram(absl::string_view name,
                                          absl::string_view help,
                                          std::vector<std::string> label_names,
                                          std::vector<double> bounds) {
  absl::MutexLock lock(&mu_);
  return *GetOrAdd(name, help, Type::kHistogram, std::move(label_names),
                   std::move(bounds))
              .histograms;
}

void Registry::AddCollector(absl::string_view name, absl::string_view help,
                            Type type,
                            std::function<std::vector<Sample>()> collect) {
  if (!IsValidMetricName(name)) Die(absl::StrCat("bad metric name ", name));
  if (type == Type::kHistogram) Die("collectors are counters or gauges");
  absl::MutexLock lock(&mu_);
  if (entries_.count(name) != 0) {
    Die(absl::StrCat("metric ", name, " registered twice"));
  }
  Entry& e = entries_[std::string(name)];
  e.type = type;
  e.help = std::string(help);
  e.collect = std::move(collect);
}

void Registry::RemoveCollector(absl::string_view name) {
  absl::MutexLock lock(&mu_);
  auto it = entries_.find(name);
  if (it != entries_.end() && it->second.collect != nullptr) {
    entries_.erase(it);
  }
}

Family<Gauge>* Registry::FindGauge(absl::string_view name) {
  absl::MutexLock lock(&mu_);
  auto it = entries_.find(name);
  if (it == entries_.end()) return nullptr;
  return it->second.gauges.get();
}

std::string Registry::Render() const {
  std::string out;
  absl::MutexLock lock(&mu_);
  // Plain references, not a structured binding: the lambdas below capture
  // them, which C++17 (clang) does not allow for structured bindings.
  for (const auto& entry : entries_) {
    const auto& name = entry.first;
    const auto& e = entry.second;
    const char* type = e.type == Type::kCounter ? "counter"
                       : e.type == Type::kGauge ? "gauge"
                                                : "histogram";
    absl::StrAppend(&out, "# HELP ", name, " ", EscapeHelp(e.help), "\n",
                    "# TYPE ", name, " ", type, "\n");
    if (e.collect != nullptr) {
      for (const Sample& sample : e.collect()) {
        std::vector<std::string> names, values;
        for (const auto& [label, value] : sample.labels) {
          if (!IsValidLabelName(label)) Die("bad collected label name");
          names.push_back(label);
          values.push_back(value);
        }
        absl::StrAppend(&out, name, CloseLabels(OpenLabels(names, values)), " ",
                        FormatValue(sample.value), "\n");
      }
    } else if (e.counters != nullptr) {
      e.counters->ForEach(
          [&](const std::vector<std::string>& values, const Counter& c) {
            absl::StrAppend(&out, name,
                            CloseLabels(OpenLabels(e.label_names, values)), " ",
                            c.Value(), "\n");
          });
    } else if (e.gauges != nullptr) {
      e.gauges->ForEach(
          [&](const std::vector<std::string>& values, const Gauge& g) {
            absl::StrAppend(&out, name,
                            CloseLabels(OpenLabels(e.label_names, values)), " ",
                            FormatValue(g.Value()), "\n");
          });
    } else if (e.histograms != nullptr) {
      e.histograms->ForEach(
          [&](const std::vector<std::string>& values, const Histogram& h) {
            const Histogram::Snapshot snap = h.Snap();
            const std::string open = OpenLabels(e.label_names, values);
            const std::string prefix = open.empty() ? "{" : open + ",";
            for (size_t b = 0; b < snap.bounds.size(); ++b) {
              absl::StrAppend(&out, name, "_bucket", prefix, "le=\"",
                              FormatValue(snap.bounds[b]), "\"} ",
                              snap.cumulative[b], "\n");
            }
            absl::StrAppend(&out, name, "_bucket", prefix, "le=\"+Inf\"} ",
                            snap.count(), "\n");
            absl::StrAppend(&out, name, "_sum", CloseLabels(open), " ",
                            FormatValue(snap.sum), "\n");
            absl::StrAppend(&out, name, "_count", CloseLabels(open), " ",
                            snap.count(), "\n");
          });
    }
  }
  return out;
}

// ------------------------------------------------------------------ format

std::string EscapeLabelValue(absl::string_view value) {
  std::string out;
  out.reserve(value.size());
  for (char c : value) {
    switch (c) {
      case '\\':
        out += "\\\\";
        break;
      case '"':
        out += "\\\"";
        break;
      case '\n':
        out += "\\n";
        break;
      default:
        out += c;
    }
  }
  return out;
}

std::string EscapeHelp(absl::string_view help) {
  std::string out;
  for (char c : help) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out += c;
    }
  }
  return out;
}

std::string FormatValue(double value) {
  if (std::isnan(value)) return "NaN";
  if (std::isinf(value)) return value > 0 ? "+Inf" : "-Inf";
  if (value == std::floor(value) && std::fabs(value) < 9007199254740992.0) {
    return absl::StrCat(static_cast<int64_t>(value));
  }
  // The shortest of 15..17 significant digits that reads back exactly
  // (0.005 stays "0.005").
  char buffer[32];
  for (int digits = 15; digits <= 17; ++digits) {
    snprintf(buffer, sizeof(buffer), "%.*g", digits, value);
    if (strtod(buffer, nullptr) == value) break;
  }
  return buffer;
}

}  // namespace lumo::metrics
