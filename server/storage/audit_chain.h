// The audit log's hash chains (docs/audit.md "Tamper evidence", "Chain
// lanes", "Hash versions"), independent of any database: which lane an
// append uses, what a row's hash covers, how a row is linked to its lane,
// and how a lane is verified. Every AuditStore backend appends and verifies
// through this library, so the rule is written once. No SQL, no I/O; pure
// functions and a single-threaded verifier (thread-compatible), except
// NextTransactionChainLane (thread-safe).
//
// A tenant's audit rows form several independent chains, its lanes: lane
// kWriterChainLane (0) is the batched writer's (and holds every row written
// before lanes existed); lanes 1..kTransactionChainLanes are taken by
// lifecycle and admin transactions, one lane per transaction. Within a
// lane, each row has seq = the previous row's seq + 1, prev_hash = the
// previous row's hash (32 zero bytes before the first row), and
//   hash = SHA-256(prev_hash || CanonicalAuditRow(version, row)),
// `version` being the row's stored hash version.
#ifndef LUMOKEYS_SERVER_STORAGE_AUDIT_CHAIN_H_
#define LUMOKEYS_SERVER_STORAGE_AUDIT_CHAIN_H_

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>

#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "server/core/crypto.h"
#include "server/storage/audit_store.h"
#include "server/storage/key_store.h"

namespace lumo::storage {

// The batched writer's lane, the number of lanes transactions share, and
// the number of lanes of a tenant (the length of every AuditCursor).
inline constexpr int kWriterChainLane = 0;
inline constexpr int kTransactionChainLanes = 16;
inline constexpr int kChainLaneCount = kTransactionChainLanes + 1;

// The lane for the next transaction that appends audit rows: 1..
// kTransactionChainLanes in turn (process-wide), so concurrent transactions
// of one tenant rarely share a lane. Thread-safe.
int NextTransactionChainLane();

// How a row's hash is computed; stored with every row and never changed.
// A reader applies the rule the row names, so rows written under an older
// rule keep verifying after the writer moved to a newer one.
enum class AuditHashVersion : int {
  // Fields as text: tenant id and seq in decimal, suspicious "0"/"1",
  // created_at as "YYYY-MM-DD HH:MM:SS.ffffff" (UTC); the lane is not
  // hashed. Every row written before hash versions existed.
  kV1 = 1,
  // Canonical values: integers (tenant id, lane, seq, created_at as
  // microseconds since the Unix epoch, UTC) as 8-byte big-endian two's
  // complement, suspicious as one byte 0/1, strings as their bytes; the
  // lane is hashed.
  kV2 = 2,
};

// What new rows are written with.
inline constexpr AuditHashVersion kCurrentAuditHashVersion =
    AuditHashVersion::kV2;

// The version a stored number names; nullopt for a number no version has.
std::optional<AuditHashVersion> AuditHashVersionFromNumber(int number);

// The widths of the audit event fields, in characters (docs/audit.md); the
// user agent's also bounds what the gateway forwards.
inline constexpr size_t kAuditUserAgentMaxChars = 512;

// Cuts every field of `event` to its width and replaces control and
// non-ASCII bytes in the user agent with '?', and sets an empty metadata to
// "{}", so that what is hashed is what is stored. Never fails. Every
// backend applies it before it stores (and hashes) an event.
void NormalizeAuditEvent(AuditEvent& event);

// One row as its hash sees it.
struct ChainRowContent {
  int64_t tenant_id = 0;
  int lane = kWriterChainLane;
  int64_t seq = 0;
  const AuditEvent* event = nullptr;  // normalized; never null
  // Whole microseconds (backends store microseconds).
  absl::Time created_at;
};

// The canonical encoding of `row` under `version`: each field as a 4-byte
// big-endian length followed by its bytes (above for each version's field
// encodings), in this order: the literal "lumo.audit.v1" / "lumo.audit.v2",
// tenant_id, [v2: lane], seq, action, category, actor_type, actor_id,
// target_type, target_id, outcome, suspicious, ip_address, user_agent,
// request_id, metadata, created_at.
std::string CanonicalAuditRow(AuditHashVersion version,
                              const ChainRowContent& row);

// SHA-256(prev_hash || canonical).
core::Digest ChainHash(const core::Digest& prev_hash,
                       absl::string_view canonical);

// A place in one lane: the seq and hash of a row (0 and zero bytes before
// the first row).
struct ChainPosition {
  int64_t seq = 0;
  core::Digest hash{};
};

// The chain fields of a row appended to a lane.
struct ChainLink {
  int64_t seq = 0;
  core::Digest prev_hash{};
  core::Digest hash{};
  AuditHashVersion version = kCurrentAuditHashVersion;
};

// Links `event` (normalized) into the lane whose last row is `*head` with
// the current hash version, and moves `*head` to the new row. The caller
// holds the lane's head exclusively from here until the row and the new
// head are stored (or both are abandoned).
ChainLink AppendToChain(ChainPosition* head, int64_t tenant_id, int lane,
                        const AuditEvent& event, absl::Time created_at);

// Walks one tenant's lanes (ascending lane order, each from its base to its
// head) and reports the first break, as AuditStore::VerifyChain promises.
// Use: for each lane BeginLane, AddRow for its rows in seq order while it
// returns true, EndLane; then Finish. Thread-compatible.
class ChainVerifier {
 public:
  ChainVerifier() = default;

  // `base`: where the stored lane starts (a retention purge moves it);
  // `head`: the lane's recorded last row.
  void BeginLane(int lane, const ChainPosition& base,
                 const ChainPosition& head);
  // Checks sequence continuity, prev_hash linkage and the row's own hash.
  // False when the lane broke at this row (then stop feeding the lane).
  bool AddRow(const StoredChainRow& row);
  // Checks that the lane ended at its recorded head. False when it did not.
  bool EndLane();

  // A lane's head could not be read (its stored hash is malformed).
  void MalformedHead(int lane);
  // The lowest id of a row outside every lane that was written after the
  // first chained row (an insertion).
  void UnchainedRow(int64_t id);

  // True until a break was found; stop walking then.
  bool ok() const { return result_.ok; }
  // The verdict; call once after the walk.
  ChainVerification Finish() const { return result_; }

 private:
  void Fail(int64_t id, int64_t seq, std::string problem);

  ChainVerification result_;
  int lane_ = 0;
  ChainPosition head_;
  ChainPosition last_;  // the lane's last row verified (its base at first)
};

}  // namespace lumo::storage

#endif  // LUMOKEYS_SERVER_STORAGE_AUDIT_CHAIN_H_
