#include "server/storage/webhook_outbox.h"

#include <algorithm>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "server/core/crypto.h"

namespace lumo::storage {
namespace {

constexpr absl::string_view kSuspiciousType = "audit.suspicious";

bool IsPrefixedBase62(absl::string_view id, absl::string_view prefix,
                      size_t length) {
  if (id.size() != prefix.size() + length ||
      id.substr(0, prefix.size()) != prefix) {
    return false;
  }
  for (char c : id.substr(prefix.size())) {
    if (!absl::ascii_isalnum(static_cast<unsigned char>(c))) return false;
  }
  return true;
}

}  // namespace

const std::vector<std::string>& WebhookEventTypes() {
  static const auto* types = new std::vector<std::string>{
      "api_key.created",  "api_key.decoy_used",     "api_key.deleted",
      "api_key.disabled", "api_key.enabled",        "api_key.expiring",
      "api_key.inactive", "api_key.leaked",         "api_key.renewed",
      "api_key.revoked",  "api_key.rotated",        "api_key.rotation_due",
      "api_key.updated",  "api_key.usage_exceeded", "audit.suspicious",
      "webhook.disabled",
  };
  return *types;
}

bool IsWebhookEventType(absl::string_view type) {
  const std::vector<std::string>& types = WebhookEventTypes();
  return std::find(types.begin(), types.end(), type) != types.end();
}

std::string WebhookEventTypeOf(const AuditEvent& event) {
  if (event.action != kSuspiciousType && IsWebhookEventType(event.action)) {
    return event.action;
  }
  if (event.suspicious) return std::string(kSuspiciousType);
  return "";
}

bool WebhookSubscribes(const std::vector<std::string>& subscribed,
                       absl::string_view type) {
  if (type == kWebhookPingType) return false;
  return subscribed.empty() || std::find(subscribed.begin(), subscribed.end(),
                                         type) != subscribed.end();
}

absl::StatusOr<std::string> NewWebhookEventId() {
  absl::StatusOr<std::string> random = core::RandomBase62(22);
  if (!random.ok()) return random.status();
  return absl::StrCat("evt_", *random);
}

bool IsWebhookEndpointId(absl::string_view id) {
  return IsPrefixedBase62(id, "whk_", 16);
}

bool IsWebhookEventId(absl::string_view id) {
  return IsPrefixedBase62(id, "evt_", 22);
}

}  // namespace lumo::storage
