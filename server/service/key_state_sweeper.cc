#include "server/service/key_state_sweeper.h"

#include <algorithm>
#include <utility>
#include <vector>

#include "server/observability/log.h"
#include "server/service/audit_json.h"

namespace lumo::service {
namespace {

std::string Rfc3339(absl::Time t) {
  return absl::FormatTime("%Y-%m-%dT%H:%M:%E*SZ", t, absl::UTCTimeZone());
}

}  // namespace

storage::AuditEvent AnnouncementEvent(const storage::StateAnnouncement& a) {
  storage::AuditEvent event;
  event.category = "api_keys";
  event.actor_type = "system";
  event.actor_id = "key-state-sweep";
  event.target_type = "api_key";
  event.target_id = a.key_id;
  JsonObject metadata;
  switch (a.state) {
    case storage::AnnouncedState::kRotationDue:
      event.action = "api_key.rotation_due";
      metadata.Add("rotationDueAt", Rfc3339(a.for_date));
      break;
    case storage::AnnouncedState::kExpiring:
      event.action = "api_key.expiring";
      metadata.Add("expiresAt", Rfc3339(a.for_date));
      break;
    case storage::AnnouncedState::kInactive:
      event.action = "api_key.inactive";
      metadata.Add("lastActivityAt", Rfc3339(a.for_date));
      break;
  }
  event.metadata_json = metadata.Build();
  return event;
}

KeyStateSweeper::KeyStateSweeper(storage::KeyStore* store,
                                 KeyStateSweeperOptions options)
    : store_(store), options_(std::move(options)) {}

KeyStateSweeper::~KeyStateSweeper() { Stop(); }

void KeyStateSweeper::Start() {
  if (options_.interval <= absl::ZeroDuration() || thread_.joinable()) return;
  thread_ = std::thread([this] { Run(); });
}

void KeyStateSweeper::Stop() {
  stopping_.store(true, std::memory_order_relaxed);
  {
    absl::MutexLock lock(&mu_);
    stop_ = true;
  }
  if (thread_.joinable()) thread_.join();
}

void KeyStateSweeper::Run() {
  for (;;) {
    {
      absl::MutexLock lock(&mu_);
      auto stopping = [this]()
                          ABSL_SHARED_LOCKS_REQUIRED(mu_) { return stop_; };
      if (mu_.AwaitWithTimeout(absl::Condition(&stopping), options_.interval)) {
        return;
      }
    }
    absl::StatusOr<SweepRound> round = SweepOnce();
    if (!round.ok()) {
      log::Line(log::Level::kWarning, "key state sweep failed")
          .Str("error", round.status().ToString());
    }
  }
}

absl::StatusOr<SweepRound> KeyStateSweeper::SweepOnce() {
  // The lease outlives a few missed rounds, so a sweeper that stalls is
  // replaced but one that keeps running keeps it.
  const absl::Duration lease =
      std::max(options_.interval, absl::Seconds(1)) * 3;
  SweepRound round;
  std::string after;
  while (!stopping_.load(std::memory_order_relaxed)) {
    absl::StatusOr<bool> held = store_->TakeSweepLease(options_.holder, lease);
    if (!held.ok()) return held.status();
    if (!*held) return round;
    round.held = true;
    absl::StatusOr<storage::AnnouncementBatch> batch =
        store_->PendingAnnouncements(after, options_.batch_size);
    if (!batch.ok()) return batch.status();
    for (const storage::StateAnnouncement& a : batch->announcements) {
      absl::StatusOr<bool> written =
          store_->AnnounceKeyState(a, AnnouncementEvent(a));
      if (!written.ok()) return written.status();
      if (*written) {
        ++round.events;
        events_.fetch_add(1, std::memory_order_relaxed);
      }
    }
    if (batch->last_key_id.empty()) return round;
    after = batch->last_key_id;
  }
  return round;
}

}  // namespace lumo::service
