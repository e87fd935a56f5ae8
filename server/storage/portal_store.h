// Storage of portal administrators' credentials and browser sessions
// (docs/portal.md). Implementations must be thread-safe.
#ifndef LUMOKEYS_SERVER_STORAGE_PORTAL_STORE_H_
#define LUMOKEYS_SERVER_STORAGE_PORTAL_STORE_H_

#include <cstdint>
#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "server/core/crypto.h"
#include "server/storage/key_store.h"

namespace lumo::storage {

// A tenant user who may log in to the portal.
struct PortalAdmin {
  int64_t tenant_id = 0;
  std::string tenant_slug;
  std::string user_id;
  std::string email;
  bool blocked = false;
  std::string password_hash;
};

// A live session, as found by its token hash.
struct PortalSessionRecord {
  int64_t tenant_id = 0;
  std::string tenant_slug;
  std::string user_id;
  std::string email;
  core::Digest csrf_sha256{};
  absl::Time created_at;
  absl::Time last_seen_at;
  absl::Time expires_at;  // absolute end
  absl::Time db_now;      // the database's clock when read
};

class PortalStore {
 public:
  virtual ~PortalStore() = default;

  // The admin with this email (case-insensitive) in the tenant `slug`.
  // NOT_FOUND when the tenant, the user or its credential does not exist.
  virtual absl::StatusOr<PortalAdmin> FindAdmin(absl::string_view tenant_slug,
                                                absl::string_view email) = 0;

  // Creates the user `email` in the tenant if absent (id `new_user_id`) and
  // sets its portal password hash, with `event` written to the audit log in
  // the same transaction. NOT_FOUND when the tenant does not exist. Returns
  // the user id.
  virtual absl::StatusOr<std::string> UpsertAdmin(
      absl::string_view tenant_slug, absl::string_view email,
      absl::string_view new_user_id, absl::string_view password_hash,
      const AuditEvent& event) = 0;

  // Stores a new session expiring absolutely after `absolute_ttl` (from the
  // database clock), recording `event` in the same transaction.
  virtual absl::Status InsertSession(int64_t tenant_id,
                                     absl::string_view user_id,
                                     const core::Digest& token_sha256,
                                     const core::Digest& csrf_sha256,
                                     absl::Duration absolute_ttl,
                                     const AuditEvent& event) = 0;

  // The session with this token hash when it exists, has not passed its
  // absolute expiry, was last seen less than `idle_ttl` ago, and its user is
  // not blocked; its last_seen_at is then moved to now (at most once per
  // `touch_every`, to spare writes). NOT_FOUND otherwise (an expired row is
  // deleted).
  virtual absl::StatusOr<PortalSessionRecord> TouchSession(
      const core::Digest& token_sha256, absl::Duration idle_ttl,
      absl::Duration touch_every) = 0;

  // Deletes the session; `event` is written when a row was deleted. OK
  // whether or not it existed (logout is idempotent).
  virtual absl::Status DeleteSession(const core::Digest& token_sha256,
                                     const AuditEvent* event) = 0;
};

}  // namespace lumo::storage

#endif  // LUMOKEYS_SERVER_STORAGE_PORTAL_STORE_H_
