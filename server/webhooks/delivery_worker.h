// The webhook delivery worker of one server process (docs/webhooks.md
// "Delivery"): threads that claim due deliveries from the outbox (every
// process of a deployment claims from the same database; a claim holds a
// delivery for its lease), sign and send each attempt, and record its
// outcome, with the retry schedule and the automatic disabling of failing
// endpoints. Thread-safe: Wake may be called from any thread.
#ifndef LUMOKEYS_SERVER_WEBHOOKS_DELIVERY_WORKER_H_
#define LUMOKEYS_SERVER_WEBHOOKS_DELIVERY_WORKER_H_

#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "server/service/webhook_service.h"
#include "server/storage/webhook_store.h"
#include "server/webhooks/sender.h"

namespace lumo::webhooks {

struct DeliveryWorkerOptions {
  // Threads sending at once; 0: this process delivers nothing.
  int threads = 4;
  // How often an idle thread looks for due deliveries.
  absl::Duration poll_interval = absl::Milliseconds(500);
  // How long a claim holds a delivery (at least the sender's timeout plus
  // the time to record the outcome).
  absl::Duration lease = absl::Seconds(60);
  // Deliveries one claim takes.
  int claim_batch = 4;
  // The retry schedule: attempt n failed -> due again after
  // min(base * 2^(n-1), max) times a random factor in [0.5, 1.0].
  absl::Duration base_backoff = absl::Seconds(10);
  absl::Duration max_backoff = absl::Hours(1);
  storage::FailurePolicy failure;
  // Retention (docs/webhooks.md "Retention"): finished deliveries and
  // their events older than `retention` are purged (WebhookStore::
  // PurgeExpired) by one of the threads at start-up and then every
  // `purge_interval`; previous-secret tallies once no grace period can
  // still run. A zero retention keeps everything.
  absl::Duration retention = absl::Hours(24 * 7);
  absl::Duration purge_interval = absl::Hours(1);
};

// The wait before the attempt after failed attempt `attempt` (1-based),
// for a random `jitter` in [0, 1]: min(base * 2^(attempt-1), max) scaled
// into [0.5, 1.0] of itself.
absl::Duration RetryDelay(int attempt, absl::Duration base, absl::Duration max,
                          double jitter);

// The headers of one attempt besides the sender's own: the event id, the
// delivery id, the attempt number and the signature over `body` at
// `unix_seconds` with every secret given (current first).
std::vector<std::pair<std::string, std::string>> DeliveryHeaders(
    const storage::ClaimedDelivery& claim, absl::string_view body,
    int64_t unix_seconds, const std::vector<std::string>& secrets);

class DeliveryWorker {
 public:
  // Borrowed: `store`, `webhooks`, `sender` outlive the worker.
  DeliveryWorker(storage::WebhookStore* store,
                 const service::WebhookService* webhooks, Sender* sender,
                 DeliveryWorkerOptions options);
  ~DeliveryWorker();  // Stop()

  DeliveryWorker(const DeliveryWorker&) = delete;
  DeliveryWorker& operator=(const DeliveryWorker&) = delete;

  void Start();
  // Lets the threads finish their current attempt and joins them. Claimed
  // deliveries not yet sent stay claimed until their lease ends (another
  // process, or this one after a restart, sends them then).
  void Stop();
  // Makes idle threads look for due deliveries now (after this process
  // wrote one).
  void Wake();

 private:
  void Run();
  // Sends one claimed delivery and records its outcome.
  void Deliver(const storage::ClaimedDelivery& claim);
  // Purges expired rows when the purge is due (one thread at a time).
  void PurgeIfDue();

  storage::WebhookStore* const store_;
  const service::WebhookService* const webhooks_;
  Sender* const sender_;
  const DeliveryWorkerOptions options_;

  absl::Mutex mu_;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  int64_t wakes_ ABSL_GUARDED_BY(mu_) = 0;
  absl::Time next_purge_ ABSL_GUARDED_BY(mu_) = absl::InfinitePast();
  std::vector<std::thread> threads_;
};

}  // namespace lumo::webhooks

#endif  // LUMOKEYS_SERVER_WEBHOOKS_DELIVERY_WORKER_H_
