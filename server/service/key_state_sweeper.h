// The key-state sweep (docs/api-keys.md, "The state sweep"): writes
// `api_key.rotation_due`, `api_key.expiring` and `api_key.inactive` audit
// events once per key per state change, whichever replicas run it.
//
// One sweeper at a time across replicas: a round runs only while this
// sweeper holds the database lease (KeyStore::TakeSweepLease, renewed
// before every batch). "Once" does not rest on the lease: each event is
// written together with a conditional update of what the key last
// announced (KeyStore::AnnounceKeyState), so even two sweepers racing past
// a lease write it once.
//
// Thread-safe. Start() runs rounds on a background thread every
// `interval`; SweepOnce() runs one round on the caller's thread (tests).
#ifndef LUMOKEYS_SERVER_SERVICE_KEY_STATE_SWEEPER_H_
#define LUMOKEYS_SERVER_SERVICE_KEY_STATE_SWEEPER_H_

#include <atomic>
#include <cstdint>
#include <string>
#include <thread>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "server/storage/key_store.h"

namespace lumo::service {

struct KeyStateSweeperOptions {
  // Pause between rounds; zero disables the background thread.
  absl::Duration interval = absl::Seconds(60);
  // This sweeper's name in the lease (unique per process).
  std::string holder;
  // Keys per batch (one read, then one transaction per event).
  int batch_size = 500;
};

struct SweepRound {
  // False when another sweeper held the lease (nothing was read).
  bool held = false;
  // Events this round wrote.
  int64_t events = 0;
};

// The audit event announcing `announcement` (action, category `api_keys`,
// actor system/key-state-sweep, target the key, metadata the date it is
// for). Never carries a secret.
storage::AuditEvent AnnouncementEvent(
    const storage::StateAnnouncement& announcement);

class KeyStateSweeper {
 public:
  // `store` must outlive the sweeper.
  KeyStateSweeper(storage::KeyStore* store, KeyStateSweeperOptions options);
  ~KeyStateSweeper();  // Stop()

  // Starts the background rounds (no-op with a zero interval).
  void Start();
  // Stops and joins the background thread; a round in progress ends
  // before its next batch. Idempotent.
  void Stop();

  // One round: takes (or renews) the lease, then walks every key in id
  // order in batches, renewing the lease before each, and announces each
  // pending state. Errors of the store end the round (the next round
  // starts again from the first key).
  absl::StatusOr<SweepRound> SweepOnce();

  // Events written since construction (observability and tests).
  int64_t events_written() const {
    return events_.load(std::memory_order_relaxed);
  }

 private:
  void Run();

  storage::KeyStore* const store_;
  const KeyStateSweeperOptions options_;
  std::atomic<int64_t> events_{0};
  // Set by Stop(): rounds end before their next batch.
  std::atomic<bool> stopping_{false};
  absl::Mutex mu_;
  bool stop_ ABSL_GUARDED_BY(mu_) = false;
  std::thread thread_;
};

}  // namespace lumo::service

#endif  // LUMOKEYS_SERVER_SERVICE_KEY_STATE_SWEEPER_H_
