// The per-tenant audit hash chains (docs/audit.md "Tamper evidence" and
// "Chain lanes"), shared by the transactional InsertAudit (mysql_session.cc)
// and the batched MysqlAuditStore. Only storage/mysql includes this header.
//
// A tenant's audit rows form several independent chains, its lanes: lane
// kWriterChainLane (0) is the batched writer's (and holds every row written
// before lanes existed), lanes 1..kTransactionChainLanes are taken by
// lifecycle and admin transactions, one lane per transaction. Every append
// locks its (tenant, lane) row in audit_chain_heads FOR UPDATE inside the
// inserting transaction, reading the database clock in the same statement;
// each row then gets seq = last_seq + 1 (counted per tenant and lane),
// prev_hash = last_hash, created_at = that clock text, chain_lane = the
// lane, and
//   hash = SHA-256(prev_hash || CanonicalAuditRow(...)).
// Lock order: a transaction locks at most its own rows (key, user, ...)
// first and chain heads last, heads in ascending tenant id and one lane per
// transaction; the batched writer locks only lane-0 heads. So no lock cycle
// exists.
#ifndef LUMOKEYS_SERVER_STORAGE_MYSQL_AUDIT_CHAIN_H_
#define LUMOKEYS_SERVER_STORAGE_MYSQL_AUDIT_CHAIN_H_

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "server/core/crypto.h"
#include "server/storage/key_store.h"
#include "server/storage/mysql/mysql_session.h"

namespace lumo::storage {

// The batched writer's lane, and the number of lanes transactions share.
inline constexpr int kWriterChainLane = 0;
inline constexpr int kTransactionChainLanes = 16;

// The lane for the next transaction that appends audit rows: 1..
// kTransactionChainLanes in turn (process-wide), so concurrent transactions
// of one tenant rarely share a head. Thread-safe.
int NextTransactionChainLane();

// A locked chain head and the database clock read with the lock.
struct ChainHead {
  int lane = kWriterChainLane;
  int64_t last_seq = 0;
  core::Digest last_hash{};
  // UTC_TIMESTAMP(6) as the server formats DATETIME(6) values
  // ("YYYY-MM-DD HH:MM:SS.ffffff"): the exact text stored in created_at.
  std::string now_text;
};

// Cuts every field of `event` to its column's width (in characters) and
// replaces control characters in the user agent, so that what is hashed is
// what is stored. Never fails.
void NormalizeAuditEvent(AuditEvent& event);

// Inserts the heads of every lane (0..kTransactionChainLanes) of a new
// tenant, in the transaction that creates it: appends then find their head
// and never create one concurrently (two transactions creating heads in the
// same index gap deadlock). Throws sql::SQLException.
void CreateChainHeads(Session& session, int64_t tenant_id);

// Locks (creating it when absent) the head of `tenant_id`'s chain `lane` in
// the session's open transaction. Throws sql::SQLException like every
// Session statement; INTERNAL when the stored hash is malformed.
absl::StatusOr<ChainHead> LockChainHead(Session& session, int64_t tenant_id,
                                        int lane);

// The canonical encoding of one row: each field as a 4-byte big-endian
// length followed by its bytes, in this order: "lumo.audit.v1", tenant_id
// (decimal), seq (decimal), action, category, actor_type, actor_id,
// target_type, target_id, outcome, suspicious ("0"/"1"), ip_address,
// user_agent, request_id, metadata, created_at (the stored text).
std::string CanonicalAuditRow(int64_t tenant_id, int64_t seq,
                              const AuditEvent& event,
                              absl::string_view created_at);

// SHA-256(prev_hash || canonical).
core::Digest ChainHash(const core::Digest& prev_hash,
                       absl::string_view canonical);

// Stores the new head of (tenant_id, head.lane) (after the rows it covers
// were inserted).
void UpdateChainHead(Session& session, int64_t tenant_id,
                     const ChainHead& head);

// Digest <-> the BINARY(32) column value.
std::string DigestColumn(const core::Digest& digest);
bool ReadDigestColumn(absl::string_view bytes, core::Digest* out);

}  // namespace lumo::storage

#endif  // LUMOKEYS_SERVER_STORAGE_MYSQL_AUDIT_CHAIN_H_
