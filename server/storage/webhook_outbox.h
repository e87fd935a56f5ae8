// The webhook outbox rule without a database (docs/webhooks.md "Event
// types", "The outbox"): which audit events are also webhook events, under
// which type, and the public event id each gets. Every backend's audit
// appends (lifecycle transactions and the batched writer) and the
// in-memory fake apply it, so the rule is written once. Thread-safe (pure
// functions; the event id comes from the CSPRNG).
#ifndef LUMOKEYS_SERVER_STORAGE_WEBHOOK_OUTBOX_H_
#define LUMOKEYS_SERVER_STORAGE_WEBHOOK_OUTBOX_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "server/storage/key_store.h"

namespace lumo::storage {

// The type of the test event (POST /webhooks/{id}/test): sent to one
// endpoint on request, never subscribed to.
inline constexpr absl::string_view kWebhookPingType = "ping";

// Every type an endpoint may subscribe to, in canonical order.
const std::vector<std::string>& WebhookEventTypes();

// Whether `type` is one of WebhookEventTypes().
bool IsWebhookEventType(absl::string_view type);

// The webhook type of `event`: its action when that is a listed type (a
// specific type wins), else "audit.suspicious" for a suspicious event, else
// "" (not a webhook event).
std::string WebhookEventTypeOf(const AuditEvent& event);

// Whether an endpoint subscribed to `subscribed` (canonical; empty: every
// type) receives events of `type`.
bool WebhookSubscribes(const std::vector<std::string>& subscribed,
                       absl::string_view type);

// A new public event id: "evt_" + 22 base62 characters (CSPRNG).
absl::StatusOr<std::string> NewWebhookEventId();

// Whether `id` has the shape of an endpoint id ("whk_" + 16 base62) or an
// event id ("evt_" + 22 base62); stores answer NOT_FOUND for any other
// without a query.
bool IsWebhookEndpointId(absl::string_view id);
bool IsWebhookEventId(absl::string_view id);

}  // namespace lumo::storage

#endif  // LUMOKEYS_SERVER_STORAGE_WEBHOOK_OUTBOX_H_
