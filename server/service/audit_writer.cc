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

bool AuditWriter::Enqueue(storage::PendingAuditEvent event) {
  absl::MutexLock lock(&mu_);
  if (stopping_ || queue_.size() >= options_.max_queue) {
    ++dropped_by_tenant_[event.tenant_id];
    ++stats_.dropped;
    return false;
  }
  queue_.push_back(std::move(event));
  ++enqueued_;
  ++stats_.enqueued;
  return true;
}

void AuditWriter::Flush() {
  absl::MutexLock lock(&mu_);
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
  return s;
}

std::vector<storage::PendingAuditEvent> AuditWriter::TakeBatch(
    size_t* from_queue) {
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
  for (size_t i = 0; i < n; ++i) {
    batch.push_back(std::move(queue_.front()));
    queue_.pop_front();
  }
  *from_queue = n;
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
    if (queue_.empty() && dropped_by_tenant_.empty()) {
      if (stopping_) break;
      auto work = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
        return stopping_ || !queue_.empty() || !dropped_by_tenant_.empty();
      };
      mu_.Await(absl::Condition(&work));
      continue;
    }
    // Let a batch fill for at most flush_interval.
    auto full = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
      return stopping_ || flush_waiters_ > 0 ||
             queue_.size() >= options_.max_batch;
    };
    mu_.AwaitWithTimeout(absl::Condition(&full), options_.flush_interval);
    size_t from_queue = 0;
    std::vector<storage::PendingAuditEvent> batch = TakeBatch(&from_queue);
    in_flight_ = true;
    mu_.Unlock();
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
