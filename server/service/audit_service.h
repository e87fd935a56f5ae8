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
#include <set>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "server/service/audit_writer.h"
#include "server/service/principal.h"
#include "server/storage/audit_store.h"
#include "server/storage/key_store.h"
#include "server/storage/user_store.h"

namespace lumo::service {

// The unary export holds at most this many events; a range holding more is
// refused (the streamed export has no cap).
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
  // A meta.nextPageToken of an earlier page of the same query (browsing);
  // not with after_cursor.
  std::string page_token;
  // Count the total (default: without page_token only).
  std::optional<bool> include_total;
};

// The text form of a follower's position (opaque to clients; "c1." then
// each lane's seq in decimal, dot-separated), and its parser (nullopt for
// anything that is not such a text).
std::string EncodeAuditCursor(const storage::AuditCursor& cursor);
std::optional<storage::AuditCursor> DecodeAuditCursor(absl::string_view text);

// What a streamed export reads (docs/usage.md "Streaming audit export"):
// the validated filters and the upper bound fixed when it began.
struct AuditExportPlan {
  storage::AuditQuery filters;
  storage::ExportBound bound;
};

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
  // The token of the page after `page`, listed by `applied`; "" when it is
  // the last page or the query follows the log (after_cursor).
  static std::string NextPageToken(int64_t tenant_id,
                                   const storage::AuditQuery& applied,
                                   const storage::AuditPage& page);
  // Counts of matching events, and of suspicious ones among them.
  absl::StatusOr<AuditSummaryCounts> Summarize(const Principal& caller,
                                               const AuditFilterParams& params);
  // NOT_FOUND unless `id` is a decimal id of an event of the caller's
  // tenant.
  absl::StatusOr<storage::StoredAuditEvent> Get(const Principal& caller,
                                                absl::string_view id);
  // The start of an export of the caller's tenant's events matching
  // `filters` (start: `from`, inclusive; end: `to`, exclusive; a bad value
  // is INVALID_ARGUMENT naming the parameter, from >= to names `from`):
  // validates them and reads the bound (storage::ExportBound).
  absl::StatusOr<AuditExportPlan> BeginExport(const Principal& caller,
                                              const AuditFilterParams& filters);
  // The next page of `plan` after `after_id` (0: from the first; then the
  // previous page's next_after_id): at most `limit` events, oldest first,
  // with their chain fields (storage::AuditStore::ExportPage); the export
  // is complete after a page with `done`.
  absl::StatusOr<storage::ExportPageRows> ExportPage(
      const Principal& caller, const AuditExportPlan& plan, int64_t after_id,
      int limit);
  // The whole export at once, at most kMaxExportRows events; more is
  // INVALID_ARGUMENT asking to narrow the range (the unary RPC).
  absl::StatusOr<std::vector<storage::StoredChainRow>> Export(
      const Principal& caller, const AuditFilterParams& filters);

  // What became of an export (RecordExport).
  struct ExportOutcome {
    std::string format;   // "csv" or "json"
    int64_t rows = 0;     // events sent
    int64_t bytes = 0;    // file bytes sent
    absl::Status status;  // OK: complete; otherwise why it stopped
  };
  // Records that `caller` exported the audit log under `plan`: an
  // `audit_log.exported` event (category `audit`) through the batched
  // writer, actor the key or the portal user, metadata {format, filters,
  // bound, rows, bytes, complete, status}; outcome success when complete,
  // error otherwise (failed or cancelled midway). Written after the bound,
  // so never part of its own export. No-op without a writer.
  void RecordExport(const Principal& caller, const RequestInfo& info,
                    const AuditExportPlan& plan, const ExportOutcome& outcome);
  // The batched writer exports are recorded through (borrowed; set once
  // before serving).
  void set_audit_writer(AuditWriter* writer) { writer_ = writer; }

  // The current e-mail address of every user that is the actor of one of
  // `events` (users of the caller's tenant; a deleted user has none). One
  // lookup per distinct user.
  absl::StatusOr<ActorEmails> EmailsOfActors(
      const Principal& caller,
      const std::vector<storage::StoredAuditEvent>& events);
  absl::StatusOr<ActorEmails> EmailsOfActors(
      const Principal& caller,
      const std::vector<storage::StoredChainRow>& rows);

  // The clients that still presented a previous secret of `key` (a key of
  // the caller's tenant) since its last rotation (docs/webhooks.md
  // "Rotation stragglers"): at most kMaxPreviousSecretUsers, the most
  // recently seen first; empty unless a retired secret is in its grace
  // period (previous_secret_valid_until set, the key not revoked).
  static constexpr int kMaxPreviousSecretUsers = 50;
  absl::StatusOr<std::vector<storage::PreviousSecretUser>> PreviousSecretUsers(
      const Principal& caller, const storage::ApiKeyRecord& key);

  // Operator: walks the whole chain of the tenant named `tenant_slug`.
  absl::StatusOr<storage::ChainVerification> VerifyChain(
      absl::string_view tenant_slug);

 private:
  // The current e-mail address of each of `user_ids` that still exists.
  absl::StatusOr<ActorEmails> EmailsOfUsers(
      const Principal& caller, const std::set<std::string>& user_ids);

  storage::AuditStore* audit_;
  AuditWriter* writer_ = nullptr;
  storage::KeyStore* keys_;
  storage::UserStore* users_;
};

}  // namespace lumo::service

#endif  // LUMOKEYS_SERVER_SERVICE_AUDIT_SERVICE_H_
