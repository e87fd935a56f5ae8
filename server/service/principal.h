// Who is calling, and from where. Built by the rpc layer after
// authentication; consumed by the domain services.
#ifndef LUMOKEYS_SERVER_SERVICE_PRINCIPAL_H_
#define LUMOKEYS_SERVER_SERVICE_PRINCIPAL_H_

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/time/time.h"
#include "server/storage/key_store.h"

namespace lumo::service {

struct Principal {
  enum class Kind { kApiKey, kService, kOperator, kAnonymous, kSession };
  Kind kind = Kind::kApiKey;
  // For kApiKey: the key's tenant, id and scopes. For kSession (a portal
  // admin's browser session, docs/portal.md): the session's tenant and every
  // scope (portal admins may grant any scope).
  int64_t tenant_id = 0;
  std::string tenant_slug;
  std::string key_id;
  std::vector<std::string> scopes;
  // For kApiKey: the key's own restrictions, which every key it creates or
  // rotates must stay within (docs/api-keys.md "No escalation"): its expiry
  // (unset: none), allowed CIDRs (empty: any address) and rate limit per
  // minute (0: none)...
  std::optional<absl::Time> key_expires_at;
  std::vector<std::string> key_allowed_cidrs;
  int32_t key_rate_limit_per_minute = 0;
  // ... and its named rate limits (docs/limits.md).
  std::vector<storage::KeyRateLimit> key_rate_limits;
  // For kApiKey: the key's external id (its identity; empty: none).
  std::string key_external_id;
  // For kApiKey, set when the call presented a retired secret in its grace
  // period: the key's rotated_at (VerifyOutcome::previous_secret_of).
  std::optional<absl::Time> key_previous_secret_of;
  // For kSession: the admin user (`usr_...`) and email; audit events name
  // the user as actor.
  std::string user_id;
  std::string user_email;
};

// Request facts recorded in audit events. Never holds credentials.
struct RequestInfo {
  std::string request_id;
  std::string ip_address;
  std::string user_agent;
  // For calls forwarded by the gateway (trusted only with a valid service
  // token): the HTTP method and the route's path template.
  std::string http_method;
  std::string http_route;
  // Whether the call presented `x-lumo-service-token`, and whether it
  // matched. Decided once per call (by Authenticator::DescribeRequest).
  bool service_token_present = false;
  bool service_token_valid = false;
};

}  // namespace lumo::service

#endif  // LUMOKEYS_SERVER_SERVICE_PRINCIPAL_H_
