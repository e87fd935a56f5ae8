// The read side of the audit log and chain verification
// (docs/audit.md): validates filters and paging, scopes every read to the
// caller's tenant, applies the export cap. No rendering here: the rpc layer
// turns events into messages, CSV or JSON.
//
// Errors: INVALID_ARGUMENT for a bad filter, paging value or export range
// (the message names the parameter, never echoes its value); NOT_FOUND for
// an unknown event or tenant; the store's codes otherwise.
#ifndef LUMOKEYS_SERVER_SERVICE_AUDIT_SERVICE_H_
#define LUMOKEYS_SERVER_SERVICE_AUDIT_SERVICE_H_

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "server/service/principal.h"
#include "server/storage/audit_store.h"
#include "server/storage/key_store.h"
#include "server/storage/user_store.h"

namespace lumo::service {

// Exports hold at most this many events; a range holding more is refused.
inline constexpr int kMaxExportRows = 10000;

// Filters as received; empty / unset means "no filter".
struct AuditFilterParams {
  std::string action;
  std::string category;
  std::string actor_id;
  std::string target_id;
  std::string outcome;  // success, failure or error
  std::optional<bool> suspicious;
  std::optional<absl::Time> start;  // inclusive
  std::optional<absl::Time> end;    // exclusive
};

struct AuditListParams {
  AuditFilterParams filters;
  std::optional<int32_t> page;   // unset: 1
  std::optional<int32_t> limit;  // unset: 25; 1..100
  std::string sort_dir;          // "", ASC, DESC (any case)
  std::string after_id;          // "" or a decimal event id
  // "" or a cursor from EncodeAuditCursor (a follower's last position).
  std::string after_cursor;
  bool return_cursor = false;  // fill AuditPage::next_cursor
};

// The text form of a follower's position (opaque to clients; "c1." then
// each lane's seq in decimal, dot-separated), and its parser (nullopt for
// anything that is not such a text).
std::string EncodeAuditCursor(const storage::AuditCursor& cursor);
std::optional<storage::AuditCursor> DecodeAuditCursor(absl::string_view text);

struct AuditSummaryCounts {
  int64_t total = 0;
  int64_t suspicious = 0;
};

// User actors' e-mail addresses, by user id.
using ActorEmails = std::map<std::string, std::string>;

// Thread-safe; borrows the stores.
class AuditService {
 public:
  AuditService(storage::AuditStore* audit, storage::KeyStore* keys,
               storage::UserStore* users);

  // The caller's tenant's events matching `params`; `applied` receives the
  // page and limit used (for the reply's meta).
  absl::StatusOr<storage::AuditPage> List(const Principal& caller,
                                          const AuditListParams& params,
                                          storage::AuditQuery* applied);
  // Counts of matching events, and of suspicious ones among them.
  absl::StatusOr<AuditSummaryCounts> Summarize(const Principal& caller,
                                               const AuditFilterParams& params);
  // NOT_FOUND unless `id` is a decimal id of an event of the caller's
  // tenant.
  absl::StatusOr<storage::StoredAuditEvent> Get(const Principal& caller,
                                                absl::string_view id);
  // Events in [from, to), oldest first, at most kMaxExportRows; more is
  // INVALID_ARGUMENT asking to narrow the range.
  absl::StatusOr<std::vector<storage::StoredAuditEvent>> Export(
      const Principal& caller, std::optional<absl::Time> from,
      std::optional<absl::Time> to);

  // The current e-mail address of every user that is the actor of one of
  // `events` (users of the caller's tenant; a deleted user has none). One
  // lookup per distinct user.
  absl::StatusOr<ActorEmails> EmailsOfActors(
      const Principal& caller,
      const std::vector<storage::StoredAuditEvent>& events);

  // Operator: walks the whole chain of the tenant named `tenant_slug`.
  absl::StatusOr<storage::ChainVerification> VerifyChain(
      absl::string_view tenant_slug);

 private:
  storage::AuditStore* audit_;
  storage::KeyStore* keys_;
  storage::UserStore* users_;
};

}  // namespace lumo::service

#endif  // LUMOKEYS_SERVER_SERVICE_AUDIT_SERVICE_H_
