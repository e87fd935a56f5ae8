#include "server/webhooks/delivery_worker.h"

#include <algorithm>
#include <cmath>
#include <random>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "server/core/crypto.h"
#include "server/core/webhook_crypto.h"
#include "server/observability/log.h"
#include "server/service/audit_json.h"
#include "server/service/key_service.h"

namespace lumo::webhooks {
namespace {

// A uniform number in [0, 1] from a per-thread generator (jitter only; not
// a secret).
double Jitter() {
  thread_local std::mt19937_64 gen{std::random_device{}()};
  return std::uniform_real_distribution<double>(0.0, 1.0)(gen);
}

storage::AuditEvent DisableEvent(const storage::ClaimedDelivery& claim,
                                 const SendResult& sent,
                                 const storage::FailurePolicy& policy) {
  storage::AuditEvent event;
  event.action = "webhook.disabled";
  event.category = "webhooks";
  event.actor_type = "system";
  event.actor_id = "webhook-delivery";
  event.target_type = "webhook";
  event.target_id = claim.endpoint_id;
  event.outcome = "failure";
  event.metadata_json =
      service::JsonObject()
          .Add("reason", "failures")
          .Add("failuresInARow",
               static_cast<int64_t>(policy.disable_after_failures))
          .Add("lastError", sent.error)
          .Build();
  return event;
}

}  // namespace

absl::Duration RetryDelay(int attempt, absl::Duration base, absl::Duration max,
                          double jitter) {
  absl::Duration d = base;
  for (int i = 1; i < attempt && d < max; ++i) d *= 2;
  d = std::min(d, max);
  return d * (0.5 + 0.5 * std::clamp(jitter, 0.0, 1.0));
}

std::vector<std::pair<std::string, std::string>> DeliveryHeaders(
    const storage::ClaimedDelivery& claim, absl::string_view body,
    int64_t unix_seconds, const std::vector<std::string>& secrets) {
  return {
      {"Lumo-Event-Id", claim.event.event_id},
      {"Lumo-Delivery-Id", absl::StrCat(claim.delivery_id)},
      {"Lumo-Delivery-Attempt", absl::StrCat(claim.attempt)},
      {"Lumo-Signature",
       core::WebhookSignatureHeader(unix_seconds, body, secrets)},
  };
}

DeliveryWorker::DeliveryWorker(storage::WebhookStore* store,
                               const service::WebhookService* webhooks,
                               Sender* sender, DeliveryWorkerOptions options)
    : store_(store),
      webhooks_(webhooks),
      sender_(sender),
      options_(std::move(options)) {}

DeliveryWorker::~DeliveryWorker() { Stop(); }

void DeliveryWorker::Start() {
  for (int i = 0; i < options_.threads; ++i) {
    threads_.emplace_back([this] { Run(); });
  }
}

void DeliveryWorker::Stop() {
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
  }
  for (std::thread& t : threads_) t.join();
  threads_.clear();
}

void DeliveryWorker::Wake() {
  absl::MutexLock lock(&mu_);
  ++wakes_;
}

void DeliveryWorker::Run() {
  for (;;) {
    int64_t wakes_seen;
    {
      absl::MutexLock lock(&mu_);
      if (stopping_) return;
      wakes_seen = wakes_;
    }
    PurgeIfDue();
    absl::StatusOr<std::vector<storage::ClaimedDelivery>> claimed =
        store_->ClaimDue(options_.claim_batch, options_.lease);
    if (!claimed.ok()) {
      log::Warning(absl::StrCat("webhook delivery: cannot claim: ",
                                claimed.status().message()));
    } else {
      for (const storage::ClaimedDelivery& claim : *claimed) {
        Deliver(claim);
      }
      // A full batch: more may be due at once.
      if (static_cast<int>(claimed->size()) == options_.claim_batch) continue;
    }
    absl::MutexLock lock(&mu_);
    auto woken = [this, wakes_seen]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
      return stopping_ || wakes_ != wakes_seen;
    };
    mu_.AwaitWithTimeout(absl::Condition(&woken), options_.poll_interval);
  }
}

void DeliveryWorker::PurgeIfDue() {
  if (options_.retention <= absl::ZeroDuration()) return;
  {
    absl::MutexLock lock(&mu_);
    const absl::Time now = absl::Now();
    if (now < next_purge_) return;
    next_purge_ = now + options_.purge_interval;
  }
  // A tally matters while its rotation's grace period may still run.
  absl::StatusOr<int64_t> purged = store_->PurgeExpired(
      options_.retention, absl::Seconds(service::kMaxGracePeriodSeconds));
  if (!purged.ok()) {
    log::Warning(absl::StrCat("webhook retention: cannot purge: ",
                              purged.status().message()));
  } else if (*purged > 0) {
    log::Info(absl::StrCat("webhook retention: purged ", *purged, " rows"));
  }
}

void DeliveryWorker::Deliver(const storage::ClaimedDelivery& claim) {
  std::vector<std::string> secrets;
  absl::StatusOr<std::string> current =
      webhooks_->OpenSecret(claim.secret, claim.endpoint_id);
  SendResult sent;
  if (!current.ok()) {
    // Never sent unsigned; recorded as a failed attempt.
    sent.error = "the signing secret cannot be opened (pepper missing?)";
  } else {
    secrets.push_back(*std::move(current));
    if (claim.previous_secret.has_value()) {
      absl::StatusOr<std::string> previous =
          webhooks_->OpenSecret(*claim.previous_secret, claim.endpoint_id);
      if (previous.ok()) secrets.push_back(*std::move(previous));
    }
    SendRequest request;
    request.url = claim.url;
    request.body = service::WebhookPayload(claim.event, claim.endpoint_id);
    request.headers = DeliveryHeaders(
        claim, request.body, absl::ToUnixSeconds(absl::Now()), secrets);
    for (std::string& s : secrets) core::Cleanse(s);
    sent = sender_->Send(request);
  }
  storage::AttemptOutcome outcome;
  outcome.delivered = sent.delivered;
  outcome.http_status = sent.http_status;
  outcome.latency = sent.latency;
  outcome.error = sent.error;
  outcome.retry_in = RetryDelay(claim.attempt, options_.base_backoff,
                                options_.max_backoff, Jitter());
  absl::StatusOr<storage::CompletedAttempt> done =
      store_->CompleteAttempt(claim, outcome, options_.failure,
                              DisableEvent(claim, sent, options_.failure));
  if (!done.ok()) {
    // The claim stays until its lease ends; the delivery is retried then.
    log::Warning(
        absl::StrCat("webhook delivery ", claim.delivery_id,
                     ": cannot record the attempt: ", done.status().message()));
  }
}

}  // namespace lumo::webhooks
