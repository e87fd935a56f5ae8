// The audit hash chains on MySQL/MariaDB: the chain heads
// (audit_chain_heads) that serialise appends to a lane, shared by the
// transactional InsertAudit (mysql_session.cc) and the batched
// MysqlAuditStore. What a row's hash covers and how a lane is verified is
// the backend-neutral server/storage/audit_chain.h. Only storage/mysql
// includes this header.
//
// Every append locks its (tenant, lane) row in audit_chain_heads FOR UPDATE
// inside the inserting transaction, reading the database clock in the same
// statement; the rows it appends get that time as created_at, and the head
// is updated before the commit. Lock order: a transaction locks at most its
// own rows (key, user, ...) first and chain heads last, heads in ascending
// tenant id and one lane per transaction; the batched writer locks only
// lane-0 heads. So no lock cycle exists.
#ifndef LUMOKEYS_SERVER_STORAGE_MYSQL_MYSQL_AUDIT_CHAIN_H_
#define LUMOKEYS_SERVER_STORAGE_MYSQL_MYSQL_AUDIT_CHAIN_H_

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "server/core/crypto.h"
#include "server/storage/audit_chain.h"
#include "server/storage/mysql/mysql_session.h"

namespace lumo::storage {

// A locked chain head and the database clock read with the lock.
struct ChainHead {
  int lane = kWriterChainLane;
  ChainPosition last;
  // UTC_TIMESTAMP(6): the created_at of the rows appended under this lock.
  absl::Time now;
};

// Inserts the heads of every lane (0..kTransactionChainLanes) of a new
// tenant, in the transaction that creates it: appends then find their head
// and never create one concurrently (two transactions creating heads in the
// same index gap deadlock). Throws sql::SQLException.
void CreateChainHeads(Session& session, int64_t tenant_id);

// Locks (creating it when absent) the head of `tenant_id`'s chain `lane` in
// the session's open transaction, in the round trip that sends the
// statements queued before it. Throws sql::SQLException like every
// Session statement; INTERNAL when the stored hash is malformed.
absl::StatusOr<ChainHead> LockChainHead(Session& session, int64_t tenant_id,
                                        int lane);

// Stores the new head of (tenant_id, head.lane) (after the rows it covers
// were inserted): queued (Session::Defer), sent with the transaction's next
// statement or its COMMIT.
absl::Status UpdateChainHead(Session& session, int64_t tenant_id,
                             const ChainHead& head);

// Digest <-> the BINARY(32) column value.
std::string DigestColumn(const core::Digest& digest);
bool ReadDigestColumn(absl::string_view bytes, core::Digest* out);

}  // namespace lumo::storage

#endif  // LUMOKEYS_SERVER_STORAGE_MYSQL_MYSQL_AUDIT_CHAIN_H_
