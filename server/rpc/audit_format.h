// Renderings of stored audit events: the AuditEvent message (docs/product.md
// §4) and the two export formats. Pure functions, thread-safe.
#ifndef LUMOKEYS_SERVER_RPC_AUDIT_FORMAT_H_
#define LUMOKEYS_SERVER_RPC_AUDIT_FORMAT_H_

#include <string>
#include <vector>

#include "absl/strings/string_view.h"
#include "lumo/audit/v1/audit.pb.h"
#include "server/storage/audit_store.h"

namespace lumo::rpc {

// Fills `out` from `event`. `target` stays unset (null) when the event has
// no target; `actor.email` stays unset (the store records no e-mail
// addresses); metadata that is not a JSON object becomes `{}`.
void ToProto(const storage::StoredAuditEvent& event,
             lumo::audit::v1::AuditEvent* out);

// One CSV cell: `value` with a leading apostrophe when it starts with
// = + - @ TAB or CR (spreadsheet formula injection) or with an apostrophe
// (so that removing one leading apostrophe from a cell that has one always
// gives back the stored value), then quoted per RFC 4180 when it contains a
// comma, quote, CR or LF.
std::string CsvCell(absl::string_view value);

// The header row of a CSV export, CRLF included: id, timestamp, action,
// category, actor_type, actor_id, actor_email, target_type, target_id,
// outcome, suspicious, ip_address, user_agent, request_id, metadata, then
// the chain columns tenant_id, chain_lane, seq, prev_hash, hash,
// hash_version (docs/audit.md "Export").
std::string AuditCsvHeader();

// Appends `row` to `out` as one RFC 4180 CSV row (CRLF): metadata is the
// stored JSON text, hashes are lower-case hex, and seq, prev_hash, hash are
// empty for a row outside the chains. `actor_email`: the user actor's
// current address, or null.
void AppendAuditCsvRow(const storage::StoredChainRow& row,
                       const std::string* actor_email, std::string* out);

// Appends `row` to `out` as one JSON object in the API's event shape
// (camelCase names, `target` and `actor.email` null when unset, RFC 3339
// UTC timestamps with microseconds, metadata the stored JSON object) plus
// "chain": {"tenantId", "lane", "seq", "prevHash", "hash", "hashVersion"}
// (seq 0 and empty hashes outside the chains). No line end.
void AppendAuditJsonObject(const storage::StoredChainRow& row,
                           const std::string* actor_email, std::string* out);

}  // namespace lumo::rpc

#endif  // LUMOKEYS_SERVER_RPC_AUDIT_FORMAT_H_
