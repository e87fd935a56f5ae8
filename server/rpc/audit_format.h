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
// = + - @ TAB or CR (spreadsheet formula injection), then quoted per
// RFC 4180 when it contains a comma, quote, CR or LF.
std::string CsvCell(absl::string_view value);

// RFC 4180 CSV (CRLF line ends) with a header row: id, timestamp, action,
// category, actor_type, actor_id, actor_email, target_type, target_id,
// outcome, suspicious, ip_address, user_agent, request_id, metadata.
std::string RenderAuditCsv(
    const std::vector<lumo::audit::v1::AuditEvent>& events);

// A JSON array of events in the API's shape (camelCase names, `target` and
// `actor.email` null when unset, RFC 3339 UTC timestamps).
std::string RenderAuditJson(
    const std::vector<lumo::audit::v1::AuditEvent>& events);

}  // namespace lumo::rpc

#endif  // LUMOKEYS_SERVER_RPC_AUDIT_FORMAT_H_
