// The per-tenant audit hash chain (docs/audit.md "Tamper evidence"), shared
// by the transactional InsertAudit (mysql_session.cc) and the batched
// MysqlAuditStore. Only storage/mysql includes this header.
//
// Every append locks the tenant's row in audit_chain_heads FOR UPDATE inside
// the inserting transaction, reading the database clock in the same
// statement; each row then gets seq = last_seq + 1, prev_hash = last_hash,
// created_at = that clock text, and
//   hash = SHA-256(prev_hash || CanonicalAuditRow(...)).
// Lock order: a transaction locks at most its own rows (key, user, ...)
// first and chain heads last, heads in ascending tenant id; the batched
// writer locks only heads. So no lock cycle exists.
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

// A locked chain head and the database clock read with the lock.
struct ChainHead {
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

// Locks (creating it when absent) the chain head of `tenant_id` in the
// session's open transaction. Throws sql::SQLException like every Session
// statement; INTERNAL when the stored hash is malformed.
absl::StatusOr<ChainHead> LockChainHead(Session& session, int64_t tenant_id);

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

// Stores the new head (after the rows it covers were inserted).
void UpdateChainHead(Session& session, int64_t tenant_id,
                     const ChainHead& head);

// Digest <-> the BINARY(32) column value.
std::string DigestColumn(const core::Digest& digest);
bool ReadDigestColumn(absl::string_view bytes, core::Digest* out);

}  // namespace lumo::storage

#endif  // LUMOKEYS_SERVER_STORAGE_MYSQL_AUDIT_CHAIN_H_
