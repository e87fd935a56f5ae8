// The state behind the in-memory fakes of the store interfaces: one
// "database" (tenants, keys, users, roles, clients, settings, portal
// credentials and sessions, the audit log with its chains, the change feed
// and the replicas), a clock and a failure switch, shared by the fake stores
// built on it the way the MySQL stores share a database. The fakes are held
// to the store contracts by the conformance suites (tests/storage/
// conformance); unit tests of domain logic use them.
//
// Thread-safe: every store call holds `mu` for its whole duration, which
// makes each call one serialisable transaction.
#ifndef LUMOKEYS_TESTS_STORAGE_FAKES_FAKE_DATABASE_H_
#define LUMOKEYS_TESTS_STORAGE_FAKES_FAKE_DATABASE_H_

#include <atomic>
#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "server/core/crypto.h"
#include "server/storage/audit_chain.h"
#include "server/storage/audit_store.h"
#include "server/storage/change_feed_store.h"
#include "server/storage/client_store.h"
#include "server/storage/counter_rules.h"
#include "server/storage/key_store.h"
#include "server/storage/outbox_signal.h"
#include "server/storage/portal_store.h"
#include "server/storage/user_store.h"
#include "server/storage/webhook_store.h"

namespace lumo::testing {

class FakeDatabase {
 public:
  // Empty but for the platform pseudo-tenant 0's chain heads, with a clock
  // that runs with the real one.
  FakeDatabase();

  FakeDatabase(const FakeDatabase&) = delete;
  FakeDatabase& operator=(const FakeDatabase&) = delete;

  // ---- Test hooks.

  // Stops the clock at `at` (microseconds, as every backend stores them).
  void FreezeClock(absl::Time at) ABSL_LOCKS_EXCLUDED(mu);
  // Moves the clock on by `d` (a running clock keeps running from there).
  void AdvanceClock(absl::Duration d) ABSL_LOCKS_EXCLUDED(mu);
  // While set, every store call fails with UNAVAILABLE and changes nothing.
  void SetUnavailable(bool unavailable) ABSL_LOCKS_EXCLUDED(mu);
  // Store calls so far, failed ones included.
  int calls() const { return calls_.load(); }

  // ---- For the fake stores.

  // Starts one store call: counts it, and refuses it while unavailable.
  // The call then takes `mu` for its work.
  absl::Status Begin() const ABSL_LOCKS_EXCLUDED(mu);

  // The clock, in whole microseconds.
  absl::Time Now() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu);

  struct KeyRow {
    storage::ApiKeyRecord record;  // db_now and grace unset
    storage::StoredSecret current;
    // Replaced secrets with the key version they were retired from, most
    // recent first; at most kMaxRetiredSecrets.
    std::vector<std::pair<int64_t, storage::RetiredSecret>> retired;
    bool deleted = false;
    // The date the state sweep last announced, per storage::AnnouncedState.
    std::optional<absl::Time> announced_for[3];
  };
  struct UserRow {
    storage::UserRecord user;        // roles unset
    std::vector<std::string> roles;  // role ids
  };
  struct ClientRow {
    storage::ClientRecord client;
    std::optional<storage::StoredSecret> secret;
  };
  struct SessionRow {
    int64_t tenant_id = 0;
    std::string user_id;
    core::Digest csrf_sha256{};
    absl::Time created_at, last_seen_at, expires_at;
  };
  struct AuditRow {
    storage::StoredAuditEvent stored;  // seq 0: outside the chains
    std::optional<core::Digest> prev_hash, hash;
    int hash_version = 0;
  };
  struct ChainHeadRow {
    storage::ChainPosition last, base;
  };
  struct FeedRow {
    storage::KeyChange change;
    bool announcement = false;
  };
  struct ReplicaRow {
    storage::ReplicaRegistration registration;
    absl::Time heartbeat_at;
  };
  struct WebhookEndpointRow {
    // previous_secret and its valid_until are kept after the overlap ends;
    // readers drop them then.
    storage::WebhookEndpointRecord endpoint;
  };
  struct WebhookDeliveryRow {
    storage::WebhookDeliveryRecord delivery;  // event id and type unset
    int64_t event_row = 0;
    std::string lease_token;
  };
  using TenantScoped = std::pair<int64_t, std::string>;  // tenant, id
  // A usage rollup row's key: tenant, granularity (0 hour, 1 day), bucket
  // start (Unix seconds), key id, channel, outcome.
  using UsageKey =
      std::tuple<int64_t, int, int64_t, std::string, std::string, std::string>;

  mutable absl::Mutex mu;
  std::map<int64_t, storage::Tenant> tenants ABSL_GUARDED_BY(mu);
  std::map<std::string, KeyRow> keys ABSL_GUARDED_BY(mu);
  std::map<TenantScoped, UserRow> users ABSL_GUARDED_BY(mu);
  std::map<TenantScoped, storage::RoleRecord> roles ABSL_GUARDED_BY(mu);
  std::map<TenantScoped, std::string> portal_credentials ABSL_GUARDED_BY(mu);
  std::map<std::string, SessionRow> sessions ABSL_GUARDED_BY(mu);
  std::map<std::string, ClientRow> clients ABSL_GUARDED_BY(mu);  // by id
  std::map<int64_t, storage::TenantSettings> settings ABSL_GUARDED_BY(mu);
  std::map<int64_t, AuditRow> audit ABSL_GUARDED_BY(mu);  // by id
  int64_t next_audit_id ABSL_GUARDED_BY(mu) = 1;
  std::map<std::pair<int64_t, int>, ChainHeadRow> chain_heads
      ABSL_GUARDED_BY(mu);
  std::map<UsageKey, int64_t> usage ABSL_GUARDED_BY(mu);
  std::map<int64_t, FeedRow> feed ABSL_GUARDED_BY(mu);
  int64_t next_feed_seq ABSL_GUARDED_BY(mu) = 1;
  std::map<std::pair<std::string, std::string>, ReplicaRow> replicas
      ABSL_GUARDED_BY(mu);
  // feed_positions: (reader id, reader incarnation, writer) -> applied wseq.
  std::map<std::tuple<std::string, std::string, std::string>, int64_t>
      feed_positions ABSL_GUARDED_BY(mu);
  std::map<std::string, WebhookEndpointRow> webhook_endpoints
      ABSL_GUARDED_BY(mu);  // by id
  // tenant_slug unset; by row id.
  std::map<int64_t, storage::WebhookEventRecord> webhook_events
      ABSL_GUARDED_BY(mu);
  int64_t next_webhook_event_row ABSL_GUARDED_BY(mu) = 1;
  std::map<int64_t, WebhookDeliveryRow> webhook_deliveries ABSL_GUARDED_BY(mu);
  int64_t next_webhook_delivery ABSL_GUARDED_BY(mu) = 1;
  // previous_secret_uses: (key id, rotated_at, ip address, user agent) ->
  // (tenant, last seen, uses).
  struct PreviousSecretTally {
    int64_t tenant_id = 0;
    absl::Time last_seen_at;
    int64_t uses = 0;
  };
  std::map<std::tuple<std::string, absl::Time, std::string, std::string>,
           PreviousSecretTally>
      previous_secret_uses ABSL_GUARDED_BY(mu);
  // leaked_secret_reports: (key id, digest bytes).
  std::set<std::pair<std::string, std::string>> leak_reports
      ABSL_GUARDED_BY(mu);
  // Raised by every delivery inserted (a fake call commits at once).
  storage::OutboxSignal outbox_signal;
  // The shared counters: per counter key, granted tokens by slot; token
  // buckets; quotas by key id.
  std::map<std::string, std::map<int64_t, int64_t>> limit_windows
      ABSL_GUARDED_BY(mu);
  // limit_window_heads: per counter key leased, its slot length (the
  // expiry of its slots, as the MySQL rows store it).
  std::map<std::string, absl::Duration> limit_window_heads ABSL_GUARDED_BY(mu);
  std::map<std::string, storage::BucketRow> limit_buckets ABSL_GUARDED_BY(mu);
  std::map<std::string, storage::QuotaRow> key_quotas ABSL_GUARDED_BY(mu);
  // Known networks of portal accounts: (account key, network key) -> the
  // last login from it.
  std::map<std::pair<std::string, std::string>, absl::Time> limit_known_networks
      ABSL_GUARDED_BY(mu);
  // Identity limits by (tenant id, external id), by name.
  std::map<std::pair<int64_t, std::string>, std::vector<storage::KeyRateLimit>>
      identity_limits ABSL_GUARDED_BY(mu);
  // The state sweep's lease.
  std::string sweep_holder ABSL_GUARDED_BY(mu);
  absl::Time sweep_lease_until ABSL_GUARDED_BY(mu) = absl::InfinitePast();

  // Shared writes, inside a call.

  // The tenant with `slug`, or null.
  const storage::Tenant* TenantBySlug(absl::string_view slug) const
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu);
  // Inserts a tenant with its chain heads. The slug must be free.
  storage::Tenant InsertTenant(absl::string_view slug, absl::string_view name)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu);
  // Normalizes `event` and appends it to lane `lane` of the tenant's chain,
  // with its webhook event and deliveries when the outbox rule
  // (webhook_outbox.h) gives it a type that enabled endpoints receive.
  void AppendAudit(int64_t tenant_id, int lane, storage::AuditEvent event)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu);
  // A webhook event row (`event` normalized) and a pending delivery of it,
  // due at `due`; each returns its row id.
  int64_t InsertWebhookEvent(int64_t tenant_id, absl::string_view type,
                             const storage::AuditEvent& event,
                             absl::Time created_at)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu);
  int64_t InsertWebhookDelivery(int64_t tenant_id,
                                absl::string_view endpoint_id,
                                int64_t event_row, absl::Time due)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu);
  // Appends a feed row; returns its seq.
  int64_t AppendChange(int64_t tenant_id, absl::string_view key_id,
                       absl::string_view change_type, int64_t key_version,
                       bool announcement) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu);
  // The tenant's key policy (the defaults without a settings row).
  storage::KeyPolicy KeyPolicyOf(int64_t tenant_id) const
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu);
  // The user with id `user_id` or email key `email` (lower case).
  UserRow* FindUser(int64_t tenant_id, const storage::UserRef& ref)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu);

 private:
  std::optional<absl::Time> frozen_ ABSL_GUARDED_BY(mu);
  absl::Duration offset_ ABSL_GUARDED_BY(mu);
  bool unavailable_ ABSL_GUARDED_BY(mu) = false;
  int64_t next_tenant_id_ ABSL_GUARDED_BY(mu) = 1;
  mutable std::atomic<int> calls_{0};
};

// Shared value rules of the fakes, the same as the MySQL stores'.

// Lower-case ASCII.
std::string Lower(absl::string_view s);
// Case-insensitive (ASCII) substring.
bool ContainsIgnoringCase(absl::string_view haystack, absl::string_view needle);
// INVALID_ARGUMENT unless page >= 1 and limit in 1..100.
absl::Status CheckPaging(int page, int limit);
// INVALID_ARGUMENT when a list value is empty or contains `sep`.
absl::Status CheckList(const std::vector<std::string>& values, char sep,
                       absl::string_view field);
// The rows [offset, offset + limit) of `all`.
template <typename T>
std::vector<T> PageOf(const std::vector<T>& all, int page, int limit) {
  std::vector<T> out;
  const size_t begin = static_cast<size_t>(page - 1) * limit;
  for (size_t i = begin; i < all.size() && i < begin + limit; ++i) {
    out.push_back(all[i]);
  }
  return out;
}

}  // namespace lumo::testing

#endif  // LUMOKEYS_TESTS_STORAGE_FAKES_FAKE_DATABASE_H_
