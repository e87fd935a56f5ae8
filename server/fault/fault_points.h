// The catalogue of fault-injection points (fault_point.h). Each comment says
// where the point sits, what its scope names, and what an injected error
// stands for. Tests arm them with fault_injection.h.
#ifndef LUMOKEYS_SERVER_FAULT_FAULT_POINTS_H_
#define LUMOKEYS_SERVER_FAULT_FAULT_POINTS_H_

#include "server/fault/fault_point.h"

namespace lumo::fault {

// --- The feed tailer and its heartbeat (ReplicaSync). Scope: the replica's
// fault scope (ReplicaSyncOptions::fault_scope, by default its id).

// A round begins: nothing read yet.
inline FaultPoint kTailerBeforeRead{"replica.tailer.before_read"};
// The round's feed read is applied (its keys evicted); the heartbeat that
// publishes it is not sent yet.
inline FaultPoint kTailerBeforeHeartbeat{"replica.tailer.before_heartbeat"};

// --- A writer: the transaction of Rotate / Revoke / Delete
// (MysqlKeyStore), its re-announcement and its acknowledgement wait. Scope:
// the key id (the acknowledgement query: the waiting replica's id).

// Inside the mutation's transaction, before its audit row (which locks an
// audit chain lane, docs/audit.md).
inline FaultPoint kWriterBeforeAudit{"writer.before_audit"};
// Every statement of the mutation ran, its feed row included; COMMIT is
// next. Holding a thread here delays the commit of an allocated seq. (The
// writer sends its feed row with the COMMIT in one round trip; while this
// point is armed it sends the row first, then reaches the point.)
inline FaultPoint kWriterBeforeCommit{"writer.before_commit"};
// A re-announcement's feed row is inserted; its COMMIT is next. An error
// here is a failed announcement (rolled back).
inline FaultPoint kAnnounceBeforeCommit{"writer.announce.before_commit"};
// Inside the query that reads the other replicas' acknowledgements, holding
// its pooled connection. An error here is a failed query.
inline FaultPoint kAckQuery{"writer.ack_query"};

// --- The verify cache (Verifier::Verify). Scope: the key id.

// A cache miss read the store; the entry is not installed yet.
inline FaultPoint kFillBeforeInstall{"verifier.fill.before_install"};

// --- MySQL sessions (storage/mysql). Scope: empty.

// ROLLBACK is about to be sent. An error here makes it fail as a statement
// error (the connection itself still works).
inline FaultPoint kSessionRollback{"mysql.session.rollback"};

}  // namespace lumo::fault

#endif  // LUMOKEYS_SERVER_FAULT_FAULT_POINTS_H_
