// Turns authentication facts into audit events for the batched writer
// (docs/audit.md "Events" and "Suspicious"): `api_key.used` for every call
// authenticated by a key (with metadata `secret: "previous"` and a
// previous-secret tally when a retired secret in its grace period
// authenticated it), `auth.api_key.failed` for every failed
// authentication or authorization, and the suspicious flag.
//
// Suspicious when: the key id is known but dead (revoked, deleted, expired,
// rotated-away secret); the key lacks the scope; the source address is
// outside the key's allowed CIDRs; or a burst: at least
// `burst_threshold` failures on one key id or from one IP address within
// one fixed window of `burst_window` (rate-limited calls do not count).
//
// Usage rollups (docs/usage.md): every event about a key use carries a
// usage count (channel `verify` for VerifyApiKey, `api` for other calls;
// outcome `valid` or the failure reason), attributed to the key when the
// key id names a key of the event's tenant, else to the tenant alone.
//
// Thread-safe. Every Record* only enqueues (no I/O); never records a key or
// any secret, only the public key id.
#ifndef LUMOKEYS_SERVER_SERVICE_USAGE_AUDITOR_H_
#define LUMOKEYS_SERVER_SERVICE_USAGE_AUDITOR_H_

#include <cstdint>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "server/service/audit_writer.h"
#include "server/service/principal.h"
#include "server/service/verifier.h"

namespace lumo::service {

struct UsageAuditorOptions {
  int burst_threshold = 10;
  absl::Duration burst_window = absl::Seconds(60);
  // Distinct key ids + addresses tracked per window; beyond, new ones are
  // not counted (bounded memory under a spray of garbage).
  size_t burst_max_tracked = 100'000;
  // Attach a usage count to every event about a key use, for the usage
  // rollups (docs/usage.md); false: rollups are not written.
  bool rollups = true;
};

class UsageAuditor {
 public:
  // `writer` is borrowed and must outlive this object.
  UsageAuditor(AuditWriter* writer, UsageAuditorOptions options);

  // A call authenticated by the API key `caller` finished with `status`.
  void RecordKeyUse(const Principal& caller, const RequestInfo& info,
                    absl::string_view rpc, const absl::Status& status);

  // Authentication or authorization of a call to `rpc` failed. `reason`:
  // a VerifyReason name in lower case ("not_found", "revoked", ...) or
  // "missing_credential", "conflicting_credentials", "bad_service_token",
  // "bad_operator_token", "insufficient_scope", "principal_not_allowed".
  // `outcome` (may be null) is the key verification, when one ran. A decoy
  // (outcome->decoy) is recorded as RecordDecoyUse instead.
  void RecordAuthFailure(const RequestInfo& info, absl::string_view rpc,
                         absl::string_view tenant_slug,
                         absl::string_view reason,
                         const VerifyOutcome* outcome);

  // A decoy key was presented: `api_key.decoy_used` in the decoy's tenant,
  // suspicious, metadata {severity: "critical", rpc, httpMethod, httpRoute,
  // suspiciousReasons: ["decoy"]}, with the caller's address and agent.
  void RecordDecoyUse(const RequestInfo& info, absl::string_view rpc,
                      const VerifyOutcome& outcome);

  // AuthService.VerifyApiKey decided `outcome` for `tenant_slug` and the end
  // client `client_ip`: a failure event when not valid; when valid, an
  // `api_key.used` summary (AuditWriter::EnqueueSummarized) per key id,
  // client address and caller user agent, whose metadata `count` says how
  // many valid verifications it stands for.
  void RecordVerify(const RequestInfo& info, absl::string_view tenant_slug,
                    absl::string_view client_ip, const VerifyOutcome& outcome);

 private:
  // Counts one failure; true when the key id or the address reached the
  // burst threshold in the current window.
  bool CountFailure(absl::string_view key_id, absl::string_view ip);

  AuditWriter* const writer_;
  const UsageAuditorOptions options_;
  absl::Mutex mu_;
  int64_t window_ ABSL_GUARDED_BY(mu_) = 0;
  absl::flat_hash_map<std::string, int> failures_ ABSL_GUARDED_BY(mu_);
};

// Lower-case name of a verify reason ("not_found").
std::string ReasonSlug(VerifyReason reason);

}  // namespace lumo::service

#endif  // LUMOKEYS_SERVER_SERVICE_USAGE_AUDITOR_H_
