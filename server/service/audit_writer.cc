#include "server/service/audit_writer.h"

#include <algorithm>
#include <cstdio>
#include <utility>

#include "absl/time/clock.h"
#include "server/service/audit_json.h"

namespace lumo::service {

AuditWriter::AuditWriter(storage::AuditStore* store, AuditWriterOptions options)
    : store_(store), options_(options) {
  flusher_ = std::thread([this] { Loop(); });
}

AuditWriter::~AuditWriter() { Stop(); }

bool AuditWriter::Enqueue(const storage::PendingAuditEvent& event) {
  // Packed before the lock is taken: producers wait on each other only for
  // the queue's push.
  PackedAuditEvent packed(event);
  absl::MutexLock lock(&mu_);
  if (stopping_) {
    ++dropped_by_tenant_[packed.tenant_id()];
    ++stats_.dropped;
    return false;
  }
  return PushLocked(std::move(packed), 1);
}

bool AuditWriter::PushLocked(PackedAuditEvent event, uint64_t stands_for) {
  if (queue_.size() >= options_.max_queue) {
    dropped_by_tenant_[event.tenant_id()] += stands_for;
    stats_.dropped += stands_for;
    return false;
  }
  queue_.push_back(std::move(event));
  ++enqueued_;
  ++stats_.enqueued;
  return true;
}

bool AuditWriter::EnqueueSummarized(
    absl::string_view summary_key,
    absl::FunctionRef<storage::PendingAuditEvent()> make_event) {
  // The common case, folding into an open summary, builds nothing.
  auto fold = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    auto it = summaries_.find(summary_key);
    if (it == summaries_.end()) return false;
    ++it->second.count;
    ++stats_.summarized;
    return true;
  };
  {
    absl::MutexLock lock(&mu_);
    if (!stopping_ && fold()) return true;
  }
  // Packed before the lock is taken, as a summary of one event.
  PackedAuditEvent event = PackedAuditEvent::Summary(make_event());
  absl::MutexLock lock(&mu_);
  if (stopping_) {
    ++dropped_by_tenant_[event.tenant_id()];
    ++stats_.dropped;
    return false;
  }
  if (fold()) return true;  // opened by another thread meanwhile
  if (options_.summary_window <= absl::ZeroDuration() ||
      summaries_.size() >= options_.max_summaries) {
    return PushLocked(std::move(event), 1);  // queued on its own: count 1
  }
  summaries_.try_emplace(
      summary_key,
      Summary{std::move(event), 1, absl::Now() + options_.summary_window});
  summary_order_.emplace_back(summary_key);
  return true;
}

void AuditWriter::ReleaseSummaries(absl::Time now, bool all) {
  while (!summary_order_.empty()) {
    auto it = summaries_.find(summary_order_.front());
    if (!all && it->second.window_end > now) break;
    Summary summary = std::move(it->second);
    summaries_.erase(it);
    summary_order_.pop_front();
    // The count goes in place; the metadata takes it when the flusher
    // unpacks the event, outside the lock.
    summary.event.set_count(summary.count);
    PushLocked(std::move(summary.event), static_cast<uint64_t>(summary.count));
  }
}

void AuditWriter::Flush() {
  absl::MutexLock lock(&mu_);
  ReleaseSummaries(absl::Now(), /*all=*/true);
  const uint64_t target = enqueued_;
  ++flush_waiters_;
  auto done = [this, target]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return finished_ >= target && dropped_by_tenant_.empty() && !in_flight_;
  };
  mu_.Await(absl::Condition(&done));
  --flush_waiters_;
}

void AuditWriter::Stop() {
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
  }
  if (flusher_.joinable()) flusher_.join();
}

AuditWriterStats AuditWriter::stats() const {
  absl::MutexLock lock(&mu_);
  AuditWriterStats s = stats_;
  s.queued = queue_.size();
  s.open_summaries = summaries_.size();
  return s;
}

std::vector<storage::PendingAuditEvent> AuditWriter::TakeBatch(
    std::vector<PackedAuditEvent>* from_queue) {
  std::vector<storage::PendingAuditEvent> batch;
  for (const auto& [tenant_id, count] : dropped_by_tenant_) {
    storage::PendingAuditEvent e;
    e.tenant_id = tenant_id;
    e.event.action = "audit.dropped";
    e.event.category = "authentication";
    e.event.actor_type = "system";
    e.event.outcome = "error";
    e.event.metadata_json = JsonObject()
                                .Add("dropped", static_cast<int64_t>(count))
                                .Add("reason", "queue_full")
                                .Build();
    batch.push_back(std::move(e));
  }
  dropped_by_tenant_.clear();
  const size_t n = std::min(queue_.size(), options_.max_batch);
  from_queue->reserve(n);
  for (size_t i = 0; i < n; ++i) {
    from_queue->push_back(std::move(queue_.front()));
    queue_.pop_front();
  }
  return batch;
}

bool AuditWriter::Write(const std::vector<storage::PendingAuditEvent>& batch) {
  absl::Duration backoff = absl::Milliseconds(50);
  for (;;) {
    if (store_->AppendEvents(batch).ok()) return true;
    absl::MutexLock lock(&mu_);
    ++stats_.failures;
    if (stopping_) {
      // One deadline for the whole stop, not one per batch.
      const absl::Time now = absl::Now();
      if (!give_up_at_.has_value()) give_up_at_ = now + options_.stop_timeout;
      if (now >= *give_up_at_) return false;
    }
    // Sleep, waking early only to notice a stop.
    mu_.AwaitWithTimeout(absl::Condition(&stopping_), backoff);
    backoff = std::min(backoff * 2, absl::Seconds(2));
  }
}

void AuditWriter::Loop() {
  mu_.Lock();
  for (;;) {
    // While stopping, every open summary is queued now.
    ReleaseSummaries(absl::Now(), /*all=*/stopping_);
    if (queue_.empty() && dropped_by_tenant_.empty()) {
      if (stopping_) break;
      if (summary_order_.empty()) {
        // Nothing to do until an event, a summary or a stop arrives.
        auto work = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
          return stopping_ || !queue_.empty() || !dropped_by_tenant_.empty() ||
                 !summary_order_.empty();
        };
        mu_.Await(absl::Condition(&work));
      } else {
        // The oldest summary's window ends first (all windows are as long).
        auto work = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
          return stopping_ || !queue_.empty() || !dropped_by_tenant_.empty();
        };
        mu_.AwaitWithDeadline(
            absl::Condition(&work),
            summaries_.find(summary_order_.front())->second.window_end);
      }
      continue;
    }
    // Let a batch fill for at most flush_interval.
    auto full = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
      return stopping_ || flush_waiters_ > 0 ||
             queue_.size() >= options_.max_batch;
    };
    mu_.AwaitWithTimeout(absl::Condition(&full), options_.flush_interval);
    std::vector<PackedAuditEvent> packed;
    std::vector<storage::PendingAuditEvent> batch = TakeBatch(&packed);
    const size_t from_queue = packed.size();
    in_flight_ = true;
    mu_.Unlock();
    // Unpacked outside the lock, so that producers are not held up.
    batch.reserve(batch.size() + packed.size());
    for (const PackedAuditEvent& event : packed)
      batch.push_back(event.Unpack());
    packed.clear();
    const absl::Time write_start = absl::Now();
    const bool ok = Write(batch);
    if (options_.flush_duration != nullptr) {
      options_.flush_duration->Observe(
          absl::ToDoubleSeconds(absl::Now() - write_start));
    }
    mu_.Lock();
    in_flight_ = false;
    finished_ += from_queue;
    if (ok) {
      ++stats_.batches;
      stats_.written += batch.size();
    } else {
      stats_.lost += batch.size();
      // The only trace left of these events: a count, never their content.
      fprintf(stderr,
              "{\"level\":\"error\",\"msg\":\"audit events lost at "
              "shutdown: the database did not accept them\",\"lost\":%zu}\n",
              batch.size());
    }
  }
  mu_.Unlock();
}

}  // namespace lumo::service
