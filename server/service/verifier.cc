#include "server/service/verifier.h"

#include <algorithm>
#include <limits>
#include <memory>
#include <new>
#include <utility>

#include "absl/container/inlined_vector.h"
#include "absl/hash/hash.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "server/core/crypto.h"
#include "server/core/key_format.h"
#include "server/core/scopes.h"
#include "server/fault/fault_points.h"
#include "server/service/limit_rules.h"
#include "server/service/slab_pool.h"
#include "server/storage/counter_rules.h"

namespace lumo::service {

namespace {

// Unset times in an entry (unix microseconds otherwise).
constexpr int64_t kNoTime = std::numeric_limits<int64_t>::min();

int64_t MicrosOf(const std::optional<absl::Time>& t) {
  return t.has_value() ? absl::ToUnixMicros(*t) : kNoTime;
}

std::optional<absl::Time> TimeOf(int64_t micros) {
  if (micros == kNoTime) return std::nullopt;
  return absl::FromUnixMicros(micros);
}

}  // namespace

// The tenant's part of the entries of its keys: shared by all of them
// (Verifier::InternTenant), replaced when the slug or policy read differs.
struct Verifier::TenantPart {
  int64_t tenant_id = 0;
  std::string slug;
  storage::KeyPolicy policy;
};

// What most keys do not have, allocated only for a key that has some of it.
struct Verifier::Rare {
  std::string external_id;
  core::StringMap metadata;
  std::vector<std::string> allowed_cidrs;  // canonical text, for the reply
  std::vector<core::Cidr> cidrs;           // the same, parsed
  std::vector<storage::KeyRateLimit> rate_limits;
  // The key's rate limits with their counter keys (LimitsOf).
  std::vector<WindowLimit> limits;
  std::vector<storage::RetiredSecret> retired;  // most recent first
  int32_t rate_limit_per_minute = 0;

  bool empty() const {
    return external_id.empty() && metadata.empty() && allowed_cidrs.empty() &&
           rate_limits.empty() && limits.empty() && retired.empty() &&
           rate_limit_per_minute == 0;
  }
};

// An immutable snapshot of what the store said about one key id, in a
// compact form (docs/benchmarks.md "Cache entry size"): the entry holds its
// key id (the cache is a set of entries found by id), the tenant's id, slug
// and policy and the scope set are shared between entries, times are
// 8-byte integers, flags are bits, and what few keys have lives behind one
// pointer that is null for the others. Beside the snapshot, the window of
// the server's default limit (mutable, guarded by the shard's mutex), and
// the entry's reference count (EntryPtr).
struct Verifier::Entry {
  Entry()
      : exists(false),
        deleted(false),
        revoked(false),
        disabled(false),
        decoy(false),
        has_quota(false) {}

  // A new entry in its own slot of the entries' SlabPool (slab_pool.h).
  static IntrusivePtr<Entry> Make() {
    return IntrusivePtr<Entry>(new (Pool().Allocate()) Entry());
  }
  void Ref() const { refs.fetch_add(1, std::memory_order_relaxed); }
  // The last reference destroys the entry and releases its slot, on
  // whichever thread drops it.
  void Unref() const {
    if (refs.fetch_sub(1, std::memory_order_acq_rel) == 1) {
      Entry* self = const_cast<Entry*>(this);
      self->~Entry();
      Pool().Deallocate(self);
    }
  }
  // One pool for the process, never destroyed: an entry may outlive its
  // Verifier (an outcome's rate limits keep theirs).
  static SlabPool& Pool() { return SlabAllocator<Entry>::Pool(); }

  absl::string_view id() const { return {id_chars, core::kKeyIdLength}; }

  int64_t loaded_at = 0;        // local clock, unix nanoseconds
  int64_t db_clock_offset = 0;  // database clock - local clock, nanoseconds
  // Database-clock times in unix microseconds (as stored), kNoTime unset.
  int64_t created_at = kNoTime;
  int64_t expires_at = kNoTime;
  int64_t rotated_at = kNoTime;
  int64_t last_used_at = kNoTime;
  std::shared_ptr<const TenantPart> tenant;
  std::shared_ptr<const std::vector<std::string>> scopes;
  std::string name;
  std::unique_ptr<const Rare> rare;  // null: none of it
  core::Digest digest{};             // the current secret
  int32_t pepper_version = 0;
  // The server's default limit while it fits here (Shard::windows).
  mutable TwoSlotWindow server_window;
  mutable bool server_window_spilled = false;  // it is in Shard::windows
  char id_chars[core::kKeyIdLength] = {};
  mutable std::atomic<uint32_t> refs{0};  // EntryPtr's
  bool exists : 1;                        // false: a negative entry
  bool deleted : 1;
  bool revoked : 1;
  bool disabled : 1;
  bool decoy : 1;
  bool has_quota : 1;
};

absl::string_view Verifier::IdOf(const EntryPtr& entry) {
  // An entry is one slot of its SlabPool, reference count included (no
  // control block): 192 bytes, no malloc header or rounding. Each 8 bytes
  // more cost 8 bytes per cached key (docs/benchmarks.md "Cache entry
  // size").
  static_assert(sizeof(void*) != 8 || sizeof(Entry) <= 192,
                "the cache entry grew: every byte is paid per cached key");
  return entry->id();
}

namespace {

// The counter key of the server's default limit of key `id`: it fits
// the string's inline buffer, so building it allocates nothing.
std::string ServerCounter(absl::string_view id) {
  return absl::StrCat("s:", id);
}

// The server's default limit counts per sliding minute.
constexpr absl::Duration kServerWindow = absl::Minutes(1);

// This process's share of `limit` among `share` replicas (the whole of it
// with share 1), rounded up.
int64_t ShareOf(int64_t limit, int share) {
  return (limit + share - 1) / share;
}

// One limit of a key under its counter key "k:<id>:<name>:<seconds>": a
// limit whose duration is edited is a new counter (the old one's slots have
// another length), one whose limit alone is edited keeps its count.
WindowLimit KeyLimit(absl::string_view id, absl::string_view name,
                     int64_t limit, absl::Duration duration) {
  return WindowLimit{
      absl::StrCat("k:", id, ":", name, ":", absl::ToInt64Seconds(duration)),
      std::string(name), limit, duration};
}

// The rate limits of a key (docs/limits.md): its named limits, the
// per-minute limit as the limit named "default", and the limits of its
// identity (IdentityCounterPrefix).
std::vector<WindowLimit> LimitsOf(
    absl::string_view id, const storage::ApiKeyRecord& key,
    const std::vector<storage::KeyRateLimit>& identity_limits) {
  std::vector<WindowLimit> limits;
  if (key.rate_limit_per_minute > 0) {
    limits.push_back(
        KeyLimit(id, "default", key.rate_limit_per_minute, absl::Minutes(1)));
  }
  for (const storage::KeyRateLimit& l : key.rate_limits) {
    limits.push_back(KeyLimit(id, l.name, l.limit, l.duration));
  }
  if (!identity_limits.empty() && !key.external_id.empty()) {
    const std::string prefix =
        IdentityCounterPrefix(key.tenant_id, key.external_id);
    for (const storage::KeyRateLimit& l : identity_limits) {
      limits.push_back(WindowLimit{
          absl::StrCat(prefix, l.name, ":", absl::ToInt64Seconds(l.duration)),
          absl::StrCat(kIdentityLimitPrefix, l.name), l.limit, l.duration});
    }
  }
  return limits;
}

}  // namespace

const char* VerifyReasonName(VerifyReason reason) {
  switch (reason) {
    case VerifyReason::kValid:
      return "VALID";
    case VerifyReason::kMalformed:
      return "MALFORMED";
    case VerifyReason::kNotFound:
      return "NOT_FOUND";
    case VerifyReason::kRevoked:
      return "REVOKED";
    case VerifyReason::kExpired:
      return "EXPIRED";
    case VerifyReason::kRotated:
      return "ROTATED";
    case VerifyReason::kWrongTenant:
      return "WRONG_TENANT";
    case VerifyReason::kInsufficientScope:
      return "INSUFFICIENT_SCOPE";
    case VerifyReason::kIpNotAllowed:
      return "IP_NOT_ALLOWED";
    case VerifyReason::kRateLimited:
      return "RATE_LIMITED";
    case VerifyReason::kDisabled:
      return "DISABLED";
    case VerifyReason::kUsageExceeded:
      return "USAGE_EXCEEDED";
  }
  return "UNKNOWN";
}

Verifier::Verifier(storage::KeyStore* store,
                   std::shared_ptr<const core::PepperSet> peppers,
                   VerifierOptions options)
    : store_(store),
      peppers_(std::move(peppers)),
      options_(options),
      cache_ttl_ns_(absl::ToInt64Nanoseconds(options_.cache_ttl)) {}

Verifier::~Verifier() = default;

Verifier::Shard& Verifier::ShardFor(absl::string_view id) {
  return shards_[absl::Hash<absl::string_view>{}(id) % kShards];
}

void Verifier::SetCacheTrustedUntil(
    std::chrono::steady_clock::time_point until) {
  trusted_until_.store(until.time_since_epoch().count(),
                       std::memory_order_release);
}

bool Verifier::cache_trusted() const {
  return std::chrono::steady_clock::now().time_since_epoch().count() <
         trusted_until_.load(std::memory_order_acquire);
}

void Verifier::EvictAll() {
  const absl::Time now = absl::Now();
  for (Shard& shard : shards_) {
    absl::MutexLock lock(&shard.mu);
    ++shard.epoch;
    for (const EntryPtr& entry : shard.map) {
      RetireLocked(shard, *entry, now);
    }
    shard.map.clear();
  }
}

void Verifier::RetireLocked(Shard& shard, const Entry& entry, absl::Time now) {
  if (entry.server_window_spilled || entry.server_window.empty()) return;
  const int64_t current =
      storage::SlotOf(now, SlotWindow::SlotLength(kServerWindow));
  // A window that counts nothing is dropped, as the map's sweep drops one.
  if (entry.server_window.Count(current) == 0) return;
  // Takes set the limit before counting.
  shard.windows.insert_or_assign(
      ServerCounter(entry.id()),
      entry.server_window.Spill(
          std::max<int64_t>(1, options_.default_limit_per_minute),
          kServerWindow));
}

Verifier::EntryPtr Verifier::Lookup(absl::string_view id, absl::Time now) {
  if (!cache_trusted()) return nullptr;
  Shard& shard = ShardFor(id);
  EntryPtr entry;
  {
    absl::ReaderMutexLock lock(&shard.mu);
    auto it = shard.map.find(id);
    if (it == shard.map.end()) return nullptr;
    entry = *it;
  }
  if (absl::ToUnixNanos(now) - entry->loaded_at > cache_ttl_ns_) {
    return nullptr;
  }
  return entry;
}

size_t Verifier::size() const {
  size_t n = 0;
  for (const Shard& shard : shards_) {
    absl::ReaderMutexLock lock(&shard.mu);
    n += shard.map.size();
  }
  return n;
}

size_t Verifier::live_entries() { return Entry::Pool().live_slots(); }

void Verifier::Evict(absl::string_view key_id) {
  {
    Shard& shard = ShardFor(key_id);
    absl::MutexLock lock(&shard.mu);
    ++shard.epoch;
    auto it = shard.map.find(key_id);
    if (it != shard.map.end()) {
      RetireLocked(shard, **it, absl::Now());
      shard.map.erase(it);
    }
  }
  if (options_.credits != nullptr) options_.credits->Release(key_id);
}

std::optional<VerifyOutcome> Verifier::VerifyCached(
    absl::string_view key, const VerifyParams& params) {
  core::ParsedKey parsed = core::ParseKey(key);
  if (parsed.result != core::KeyParseResult::kOk) {
    VerifyOutcome outcome;
    outcome.reason = VerifyReason::kMalformed;
    outcome.key_id = std::string(parsed.id);
    if (parsed.result == core::KeyParseResult::kBadChecksum) {
      bad_checksum_.Increment();
    }
    return Counted(std::move(outcome));
  }
  // The one clock read of a warm verification.
  const absl::Time now = absl::Now();
  EntryPtr entry = Lookup(parsed.id, now);
  if (entry == nullptr) return std::nullopt;
  std::optional<VerifyOutcome> outcome =
      Decide(entry, key, parsed.id, params, /*may_renew=*/false, now);
  if (!outcome.has_value()) return std::nullopt;  // a lease is needed
  hits_.fetch_add(1, std::memory_order_relaxed);
  return Counted(*std::move(outcome));
}

absl::StatusOr<VerifyOutcome> Verifier::Verify(absl::string_view key,
                                               const VerifyParams& params) {
  absl::StatusOr<VerifyOutcome> outcome = VerifyOnce(key, params);
  if (outcome.ok() && outcome->credits_unavailable) {
    return absl::UnavailableError(
        "the key's usage quota cannot be consulted right now");
  }
  return outcome;
}

absl::StatusOr<VerifyOutcome> Verifier::VerifyOnce(absl::string_view key,
                                                   const VerifyParams& params) {
  if (std::optional<VerifyOutcome> cached = VerifyCached(key, params)) {
    return *std::move(cached);
  }
  // VerifyCached returned nullopt, so the key parsed.
  absl::string_view id = core::ParseKey(key).id;
  const absl::Time now = absl::Now();
  if (EntryPtr cached = Lookup(id, now)) {
    // Cached, but a rate limit needed a lease.
    hits_.fetch_add(1, std::memory_order_relaxed);
    return Counted(*Decide(cached, key, id, params, /*may_renew=*/true, now));
  }
  misses_.fetch_add(1, std::memory_order_relaxed);

  Shard& shard = ShardFor(id);
  uint64_t epoch_before;
  {
    absl::ReaderMutexLock lock(&shard.mu);
    epoch_before = shard.epoch;
  }
  // From the entries' own slabs, not malloc's heap (slab_pool.h).
  IntrusivePtr<Entry> entry = Entry::Make();
  // Parsed keys have ids of exactly this length.
  id.copy(entry->id_chars, core::kKeyIdLength);
  absl::StatusOr<storage::VerifyRecord> record = store_->LoadForVerify(id);
  const absl::Time loaded_at = absl::Now();
  entry->loaded_at = absl::ToUnixNanos(loaded_at);
  if (record.ok()) {
    Fill(id, *std::move(record), loaded_at, *entry);
  } else if (absl::IsNotFound(record.status())) {
    entry->exists = false;
  } else {
    return record.status();
  }
  if (absl::Status s = fault::kFillBeforeInstall.Hit(id); !s.ok()) return s;

  {
    absl::MutexLock lock(&shard.mu);
    if (shard.epoch == epoch_before) {
      auto it = shard.map.find(id);
      if (it != shard.map.end()) {
        // A reload: the key's window stays the key's.
        entry->server_window = (*it)->server_window;
        entry->server_window_spilled = (*it)->server_window_spilled;
        shard.map.erase(it);
      } else {
        if (shard.map.size() >= options_.max_entries / kShards &&
            !shard.map.empty()) {
          auto victim = shard.map.begin();
          RetireLocked(shard, **victim, loaded_at);
          shard.map.erase(victim);
        }
        entry->server_window_spilled =
            shard.windows.contains(ServerCounter(id));
      }
      shard.map.insert(EntryPtr(entry.get()));
    }
  }
  return Counted(*Decide(EntryPtr(entry.get()), key, id, params,
                         /*may_renew=*/true, loaded_at));
}

void Verifier::Fill(absl::string_view id, storage::VerifyRecord record,
                    absl::Time loaded_at, Entry& entry) {
  storage::ApiKeyRecord& key = record.key;
  entry.exists = true;
  entry.db_clock_offset = absl::ToInt64Nanoseconds(key.db_now - loaded_at);
  entry.created_at = absl::ToUnixMicros(key.created_at);
  entry.expires_at = MicrosOf(key.expires_at);
  entry.rotated_at = MicrosOf(key.rotated_at);
  entry.last_used_at = MicrosOf(key.last_used_at);
  entry.tenant =
      InternTenant(key.tenant_id, std::move(record.tenant_slug), record.policy);
  entry.scopes = InternScopes(std::move(key.scopes));
  entry.name = std::move(key.name);
  entry.digest = record.current.digest;
  entry.pepper_version = record.current.pepper_version;
  entry.deleted = record.deleted;
  entry.revoked = key.revoked;
  entry.disabled = key.disabled;
  entry.decoy = key.decoy;
  entry.has_quota = key.quota.has_value();

  auto rare = std::make_unique<Rare>();
  rare->rate_limit_per_minute = key.rate_limit_per_minute;
  rare->limits = LimitsOf(id, key, record.identity_limits);
  for (const std::string& text : key.allowed_cidrs) {
    absl::StatusOr<core::Cidr> cidr = core::Cidr::Parse(text);
    // Stored CIDRs were validated on the way in; one that no longer
    // parses matches nothing (fail closed).
    if (cidr.ok()) rare->cidrs.push_back(*cidr);
  }
  rare->external_id = std::move(key.external_id);
  rare->metadata = std::move(key.metadata);
  rare->allowed_cidrs = std::move(key.allowed_cidrs);
  rare->rate_limits = std::move(key.rate_limits);
  rare->retired = std::move(record.retired);
  if (!rare->empty()) entry.rare = std::move(rare);
}

std::shared_ptr<const Verifier::TenantPart> Verifier::InternTenant(
    int64_t tenant_id, std::string slug, const storage::KeyPolicy& policy) {
  absl::MutexLock lock(&intern_mu_);
  if (tenants_.size() >= sweep_tenants_at_) {
    absl::erase_if(tenants_,
                   [](const auto& item) { return item.second.expired(); });
    sweep_tenants_at_ = std::max<size_t>(1024, 2 * tenants_.size());
  }
  std::weak_ptr<const TenantPart>& slot = tenants_[tenant_id];
  std::shared_ptr<const TenantPart> part = slot.lock();
  if (part == nullptr || part->slug != slug || part->policy != policy) {
    part = std::make_shared<const TenantPart>(
        TenantPart{tenant_id, std::move(slug), policy});
    slot = part;
  }
  return part;
}

std::shared_ptr<const std::vector<std::string>> Verifier::InternScopes(
    std::vector<std::string> scopes) {
  std::string joined = absl::StrJoin(scopes, " ");
  absl::MutexLock lock(&intern_mu_);
  if (scope_sets_.size() >= sweep_scope_sets_at_) {
    absl::erase_if(scope_sets_,
                   [](const auto& item) { return item.second.expired(); });
    sweep_scope_sets_at_ = std::max<size_t>(1024, 2 * scope_sets_.size());
  }
  std::weak_ptr<const std::vector<std::string>>& slot =
      scope_sets_[std::move(joined)];
  std::shared_ptr<const std::vector<std::string>> set = slot.lock();
  if (set == nullptr) {
    set = std::make_shared<const std::vector<std::string>>(std::move(scopes));
    slot = set;
  }
  return set;
}

std::optional<VerifyOutcome> Verifier::Decide(const EntryPtr& shared_entry,
                                              absl::string_view key,
                                              absl::string_view id,
                                              const VerifyParams& params,
                                              bool may_renew, absl::Time now) {
  const Entry& entry = *shared_entry;
  VerifyOutcome out;
  out.key_id = std::string(id);
  out.reason = VerifyReason::kNotFound;
  if (!entry.exists) return out;
  out.key_found = true;
  const std::string& tenant_slug = entry.tenant->slug;
  static const Rare kNone;
  const Rare& rare = entry.rare != nullptr ? *entry.rare : kNone;
  out.other_tenant_key =
      !params.tenant_slug.empty() && params.tenant_slug != tenant_slug;
  if (entry.deleted) {
    out.known_dead = true;
    return out;
  }
  const absl::Time db_now = now + absl::Nanoseconds(entry.db_clock_offset);
  const int64_t tenant_id = entry.tenant->tenant_id;

  // Which secret, if any, does the key match? Digests are computed once per
  // pepper version.
  enum class Match { kNone, kCurrent, kRetiredInGrace, kRetiredExpired };
  Match match = Match::kNone;
  int mac_version = entry.pepper_version;
  absl::StatusOr<core::Digest> mac = peppers_->Mac(mac_version, key);
  if (mac.ok() && core::ConstantTimeEquals(*mac, entry.digest)) {
    match = Match::kCurrent;
  } else {
    for (const storage::RetiredSecret& retired : rare.retired) {
      if (retired.secret.pepper_version != mac_version) {
        mac_version = retired.secret.pepper_version;
        mac = peppers_->Mac(mac_version, key);
      }
      if (!mac.ok() || !core::ConstantTimeEquals(*mac, retired.secret.digest)) {
        continue;
      }
      match = db_now < retired.valid_until ? Match::kRetiredInGrace
                                           : Match::kRetiredExpired;
      break;
    }
  }
  if (match == Match::kNone) return out;  // a wrong secret: NOT_FOUND
  if (entry.decoy) {
    // Answered as an unknown key; only the audit learns what happened.
    out.decoy = true;
    out.tenant_id = tenant_id;
    out.tenant_slug = tenant_slug;
    if (options_.decoy_trap != nullptr) {
      options_.decoy_trap->Sprung(tenant_id, params.client_ip);
    }
    return out;
  }
  if (options_.decoy_trap != nullptr &&
      options_.decoy_trap->Blocked(tenant_id, params.client_ip)) {
    // Whoever found the tenant's decoy learns nothing more from here.
    out.decoy_blocked = true;
    out.tenant_id = tenant_id;
    out.tenant_slug = tenant_slug;
    return out;
  }

  const std::optional<absl::Time> expires_at = TimeOf(entry.expires_at);
  out.secret_matched = true;
  out.tenant_id = tenant_id;
  out.tenant_slug = tenant_slug;
  out.name = entry.name;
  out.scopes = *entry.scopes;
  out.expires_at = expires_at;
  out.external_id = rare.external_id;
  out.metadata = rare.metadata;
  if (options_.key_states) {
    // The fields the states depend on (key_states.h).
    storage::ApiKeyRecord times;
    times.disabled = entry.disabled;
    times.revoked = entry.revoked;
    times.created_at = absl::FromUnixMicros(entry.created_at);
    times.expires_at = expires_at;
    times.rotated_at = TimeOf(entry.rotated_at);
    times.last_used_at = TimeOf(entry.last_used_at);
    out.states = storage::KeyStatesAt(times, entry.tenant->policy, db_now);
    out.states_computed = true;
  }
  if (match == Match::kRetiredInGrace) {
    // A retired secret exists only after a rotation; the epoch stands in
    // should the time be missing.
    out.previous_secret_of =
        TimeOf(entry.rotated_at).value_or(absl::UnixEpoch());
  }
  out.allowed_cidrs = rare.allowed_cidrs;
  out.rate_limit_per_minute = rare.rate_limit_per_minute;
  if (!rare.rate_limits.empty()) {
    // Shares the cache entry (no copy of the limits): the outcome's
    // pointer keeps a reference to the entry until its last copy is gone.
    out.rate_limits = std::shared_ptr<const std::vector<storage::KeyRateLimit>>(
        &rare.rate_limits,
        [keep = shared_entry](const std::vector<storage::KeyRateLimit>*) {});
  }

  if (entry.revoked) {
    out.reason = VerifyReason::kRevoked;
    out.known_dead = true;
  } else if (match == Match::kRetiredExpired) {
    out.reason = VerifyReason::kRotated;
    out.known_dead = true;
  } else if (expires_at.has_value() && db_now >= *expires_at) {
    out.reason = VerifyReason::kExpired;
    out.known_dead = true;
  } else if (entry.disabled) {
    out.reason = VerifyReason::kDisabled;
    out.known_dead = true;
  } else if (!params.tenant_slug.empty() && params.tenant_slug != tenant_slug) {
    out.reason = VerifyReason::kWrongTenant;
  } else {
    out.reason = VerifyReason::kValid;
    if (!rare.cidrs.empty()) {
      absl::StatusOr<core::IpAddress> ip =
          core::IpAddress::Parse(params.client_ip);
      bool allowed = false;
      if (ip.ok()) {
        for (const core::Cidr& cidr : rare.cidrs) {
          if (cidr.Contains(*ip)) {
            allowed = true;
            break;
          }
        }
      }
      if (!allowed) out.reason = VerifyReason::kIpNotAllowed;
    }
    if (out.reason == VerifyReason::kValid) {
      for (const std::string& scope : params.required_scopes) {
        if (!core::Grants(*entry.scopes, scope)) {
          out.reason = VerifyReason::kInsufficientScope;
          break;
        }
      }
    }
    if (out.reason == VerifyReason::kValid) {
      // The quota is consulted first (so that nothing is counted when the
      // in-memory path must hand over for a lease, or when the quota
      // cannot be consulted at all), but it is the rate limits' verdict
      // that is reported first: a request is counted by the rate limits
      // also when the quota then refuses it, and a rate-limited request
      // spends no credits.
      std::optional<SpendOutcome> spent;
      if (entry.has_quota) {
        spent = SpendCredits(id, params.cost, may_renew, out);
        if (!spent.has_value()) return std::nullopt;
        if (out.credits_unavailable) {
          if (!may_renew) return std::nullopt;
          return out;  // Verify fails closed
        }
      }
      const bool paid =
          spent.has_value() && spent->result == SpendOutcome::Result::kSpent;
      // A refusal for the balance may be the one to report; asking the
      // shared counters takes a statement, so not on the in-memory path
      // (nothing was counted yet: handing over is free).
      const bool ask_exhaustion =
          spent.has_value() &&
          spent->result == SpendOutcome::Result::kExhausted &&
          options_.credits != nullptr &&
          !options_.credits->ExhaustionAsked(id, spent->epoch);
      if (ask_exhaustion && !may_renew) return std::nullopt;
      std::optional<bool> admitted =
          TakeRateTokens(id, entry, may_renew, now, out);
      if (!admitted.has_value() || !*admitted) {
        if (paid && out.credits_remaining.has_value()) {
          options_.credits->Refund(id, spent->epoch, params.cost);
          *out.credits_remaining += params.cost;
        }
        if (!admitted.has_value()) return std::nullopt;
        out.reason = VerifyReason::kRateLimited;
      } else if (spent.has_value() && !paid) {
        out.reason = VerifyReason::kUsageExceeded;
        out.report_usage_exceeded =
            ask_exhaustion &&
            options_.credits->ClaimExhaustionReport(id, spent->epoch);
      }
    }
  }
  if (out.reason == VerifyReason::kWrongTenant) {
    // Nothing about another tenant's key leaves the verifier.
    out.tenant_id = 0;
    out.tenant_slug.clear();
    out.name.clear();
    out.scopes.clear();
    out.expires_at.reset();
    out.external_id.clear();
    out.metadata.clear();
    out.states = storage::KeyStates();
    out.allowed_cidrs.clear();
    out.rate_limit_per_minute = 0;
    out.rate_limits.reset();
  }
  return out;
}

namespace {

void Report(const LimitState& state, VerifyOutcome& outcome) {
  outcome.rate_limit_name = state.name;
  outcome.rate_limit = static_cast<int32_t>(state.limit);
  outcome.rate_remaining = static_cast<int32_t>(state.remaining);
  outcome.rate_reset = state.reset;
}

}  // namespace

std::optional<SpendOutcome> Verifier::SpendCredits(absl::string_view id,
                                                   int64_t cost, bool may_renew,
                                                   VerifyOutcome& outcome) {
  ClusterCredits* const credits = options_.credits;
  SpendOutcome spend;
  spend.result = SpendOutcome::Result::kExhausted;
  if (credits == nullptr) {
    outcome.credits_unavailable = true;
    return spend;
  }
  spend = credits->Spend(id, cost);
  // A lease another request spent first is taken again, a few times at
  // most.
  for (int attempt = 0;
       spend.result == SpendOutcome::Result::kNeedLease && attempt < 3;
       ++attempt) {
    if (!may_renew) return std::nullopt;
    absl::Status renewed = credits->Renew(id, cost);
    if (absl::IsNotFound(renewed)) {
      // The quota was removed since the key was read: nothing to pay
      // (and nothing to refund: no epoch).
      SpendOutcome free;
      free.result = SpendOutcome::Result::kSpent;
      free.epoch = -1;
      return free;
    }
    if (!renewed.ok()) {
      outcome.credits_unavailable = true;
      return spend;
    }
    spend = credits->Spend(id, cost);
  }
  if (spend.result == SpendOutcome::Result::kNeedLease) {
    // Contended past the attempts: fail closed, to be retried.
    outcome.credits_unavailable = true;
    return spend;
  }
  outcome.credits_remaining = spend.remaining;
  outcome.credits_reset = spend.next_refill;
  return spend;
}

std::optional<bool> Verifier::TakeRateTokens(absl::string_view id,
                                             const Entry& entry, bool may_renew,
                                             absl::Time now,
                                             VerifyOutcome& outcome) {
  static const std::vector<WindowLimit> kNoLimits;
  const std::vector<WindowLimit>& limits =
      entry.rare != nullptr ? entry.rare->limits : kNoLimits;
  if (limits.empty()) {
    if (options_.default_limit_per_minute <= 0) return true;
    return TakeServerLimit(id, std::max(1, options_.replicas()), now, outcome);
  }
  ClusterWindows* const shared = options_.rate_limits;
  if (shared == nullptr) return TakeLocalTokens(id, limits, 1, now, outcome);
  TakeOutcome take = shared->Take(limits);
  // Leases needed: take them (a worker thread) and try again; a lease that
  // another request spent first is taken again, a few times at most.
  for (int attempt = 0;
       take.result == TakeOutcome::Result::kNeedLease && attempt < 3;
       ++attempt) {
    if (!may_renew) return std::nullopt;
    for (size_t i : take.need_lease) (void)shared->Renew(limits[i]);
    take = shared->Take(limits);
  }
  if (take.result == TakeOutcome::Result::kAdmitted) {
    Report(take.reported, outcome);
    return true;
  }
  if (take.result == TakeOutcome::Result::kNeedLease) {
    // Contended past the attempts: refused, to be retried in a second.
    take.reported.name = limits[take.need_lease[0]].name;
    take.reported.limit = limits[take.need_lease[0]].limit;
    take.retry_at = now + absl::Seconds(1);
  }
  Report(take.reported, outcome);
  outcome.rate_remaining = 0;
  outcome.rate_reset = take.retry_at;
  return false;
}

bool Verifier::TakeServerLimit(absl::string_view id, int share, absl::Time now,
                               VerifyOutcome& outcome) {
  const int64_t limit = ShareOf(options_.default_limit_per_minute, share);
  const absl::Duration slot = SlotWindow::SlotLength(kServerWindow);
  Shard& shard = ShardFor(id);
  absl::MutexLock lock(&shard.mu);
  // The window is the installed entry's, whichever entry this
  // verification read (it may have been replaced or evicted since).
  auto it = shard.map.find(id);
  if (it != shard.map.end() && !(*it)->server_window_spilled) {
    const Entry& entry = **it;
    TwoSlotWindow& window = entry.server_window;
    const int64_t current = storage::SlotOf(now, slot);
    outcome.rate_limit_name = kServerLimitName;
    outcome.rate_limit = static_cast<int32_t>(limit);
    if (limit - window.Count(current) < 1) {
      outcome.rate_remaining = 0;
      outcome.rate_reset = window.AvailableAt(now, current, 1, limit, slot);
      return false;
    }
    if (window.Add(current, 1)) {
      outcome.rate_remaining = static_cast<int32_t>(
          std::max<int64_t>(0, limit - window.Count(current)));
      outcome.rate_reset = window.Reset(current, slot);
      return true;
    }
    // Its tokens need a LazyWindow from now on.
    shard.windows.insert_or_assign(ServerCounter(id),
                                   window.Spill(limit, kServerWindow));
    window = TwoSlotWindow();
    entry.server_window_spilled = true;
  }
  // Its limit is the whole default; the take uses this replica's share.
  const WindowLimit server_limit{ServerCounter(id), kServerLimitName,
                                 options_.default_limit_per_minute,
                                 kServerWindow};
  return TakeLocalTokensLocked(shard, {&server_limit, 1}, share, now, outcome);
}

bool Verifier::TakeLocalTokens(absl::string_view id,
                               absl::Span<const WindowLimit> limits, int share,
                               absl::Time now, VerifyOutcome& outcome) {
  // Every window of one take lives in one shard: the key's, or, for a key
  // with identity limits (windows shared with the identity's other keys),
  // the shard of its identity's first counter, the same for all its keys.
  absl::string_view shard_key = id;
  for (const WindowLimit& l : limits) {
    if (absl::StartsWith(l.counter, "i:")) {
      shard_key = l.counter;
      break;
    }
  }
  Shard& shard = ShardFor(shard_key);
  absl::MutexLock lock(&shard.mu);
  return TakeLocalTokensLocked(shard, limits, share, now, outcome);
}

bool Verifier::TakeLocalTokensLocked(Shard& shard,
                                     absl::Span<const WindowLimit> limits,
                                     int share, absl::Time now,
                                     VerifyOutcome& outcome) {
  absl::InlinedVector<LazyWindow*, 4> windows;
  absl::Time retry = absl::InfinitePast();
  const WindowLimit* refusing = nullptr;
  int64_t refusing_limit = 0;
  if (shard.windows.size() >= shard.sweep_windows_at) {
    absl::erase_if(shard.windows, [now](const auto& entry) {
      return entry.second.Count(now) == 0;
    });
    shard.sweep_windows_at = std::max<size_t>(1024, 2 * shard.windows.size());
  }
  for (const WindowLimit& l : limits) {
    const int64_t limit = ShareOf(l.limit, share);
    auto it = shard.windows.find(l.counter);
    if (it == shard.windows.end() ||
        it->second.slot_length() != SlotWindow::SlotLength(l.duration)) {
      it = shard.windows
               .insert_or_assign(l.counter, LazyWindow(limit, l.duration))
               .first;
    }
    LazyWindow& w = it->second;
    w.set_limit(limit);
    windows.push_back(&w);
    if (w.Remaining(now) < 1 && w.AvailableAt(now) > retry) {
      retry = w.AvailableAt(now);
      refusing = &l;
      refusing_limit = limit;
    }
  }
  if (refusing != nullptr) {
    outcome.rate_limit_name = refusing->name;
    outcome.rate_limit = static_cast<int32_t>(refusing_limit);
    outcome.rate_remaining = 0;
    outcome.rate_reset = retry;
    return false;
  }
  // The tightest limit is reported: least remaining, then latest reset.
  for (size_t i = 0; i < limits.size(); ++i) {
    LazyWindow& w = *windows[i];
    w.Add(now, 1);
    const int64_t remaining = w.Remaining(now);
    const absl::Time reset = w.Reset(now);
    if (i == 0 || remaining < outcome.rate_remaining ||
        (remaining == outcome.rate_remaining && reset > outcome.rate_reset)) {
      outcome.rate_limit_name = limits[i].name;
      outcome.rate_limit = static_cast<int32_t>(w.limit());
      outcome.rate_remaining = static_cast<int32_t>(remaining);
      outcome.rate_reset = reset;
    }
  }
  return true;
}

}  // namespace lumo::service
