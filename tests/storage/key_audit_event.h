// The audit event the MySQL store tests pass with a key mutation: a user
// acting on the API key `target_id`.
#ifndef LUMOKEYS_TESTS_STORAGE_KEY_AUDIT_EVENT_H_
#define LUMOKEYS_TESTS_STORAGE_KEY_AUDIT_EVENT_H_

#include <string>

#include "server/storage/key_store.h"

namespace lumo::testing {

inline storage::AuditEvent KeyAuditEvent(
    const std::string& action, const std::string& target_id,
    const std::string& metadata_json = "{}") {
  storage::AuditEvent e;
  e.action = action;
  e.category = "api_keys";
  e.actor_type = "user";
  e.actor_id = "user-1";
  e.target_type = "api_key";
  e.target_id = target_id;
  e.request_id = "req-1";
  e.metadata_json = metadata_json;
  return e;
}

}  // namespace lumo::testing

#endif  // LUMOKEYS_TESTS_STORAGE_KEY_AUDIT_EVENT_H_
