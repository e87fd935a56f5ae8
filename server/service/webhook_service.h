// Domain logic of webhook endpoints (docs/webhooks.md): validation, ids and
// signing secrets (sealed at rest under a key derived from the pepper), the
// audit events written with every change, the delivery log, and the
// payload a delivery carries. Knows neither gRPC, SQL nor HTTP.
//
// Error contract (every method): INVALID_ARGUMENT kInvalidField naming the
// field for a bad request; NOT_FOUND kNotFound for an endpoint that does
// not exist in the caller's tenant; FAILED_PRECONDITION kInvalidRequest
// for the endpoint limit and for testing a disabled endpoint; UNAVAILABLE /
// DEADLINE_EXCEEDED when the store cannot answer. No status message ever
// contains a secret.
#ifndef LUMOKEYS_SERVER_SERVICE_WEBHOOK_SERVICE_H_
#define LUMOKEYS_SERVER_SERVICE_WEBHOOK_SERVICE_H_

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "server/core/net.h"
#include "server/core/pepper.h"
#include "server/service/principal.h"
#include "server/storage/webhook_store.h"

namespace lumo::service {

// Signing secrets: `whsec_` + 43 base62 characters (~256 bits).
inline constexpr absl::string_view kWebhookSecretPrefix = "whsec_";
inline constexpr size_t kWebhookSecretRandomLength = 43;
inline constexpr int kMaxWebhookEventTypes = 32;
inline constexpr size_t kMaxWebhookDescription = 200;
// Rotation overlap: default and maximum.
inline constexpr absl::Duration kDefaultSecretOverlap = absl::Hours(24);
inline constexpr absl::Duration kMaxSecretOverlap = absl::Hours(24 * 7);

// What the operator allows deliveries to reach (server flags).
struct WebhookAddressPolicy {
  // Plain http, to loopback addresses only.
  bool allow_http = false;
  // Addresses inside these are allowed whatever their class.
  std::vector<core::Cidr> allowed_cidrs;
};

struct WebhookOptions {
  int max_endpoints = 20;
  WebhookAddressPolicy addresses;
};

// Create: unset `enabled` is true.
struct WebhookParams {
  std::string url;
  std::string description;
  std::vector<std::string> event_types;
  std::optional<bool> enabled;
};

// A partial update: unset members keep their value.
struct WebhookPatch {
  std::optional<std::string> url;
  std::optional<std::string> description;
  std::optional<std::vector<std::string>> event_types;
  std::optional<bool> enabled;
};

// An endpoint with its signing secret, which exists only in this reply.
struct WebhookWithSecret {
  storage::WebhookEndpointRecord record;
  std::string secret;
};

// Checks a webhook URL for `policy` (docs/webhooks.md "Webhook endpoints"):
// the redirect-URI syntax rules (client_validation.h: printable ASCII, at
// most 2,048 characters, a host, no userinfo or fragment, https or http to
// a loopback host), http only when the policy allows it, and a host that
// is an IP literal outside the refused address classes unless an allowed
// CIDR contains it. Names are checked when a delivery resolves them.
absl::Status ValidateWebhookUrl(absl::string_view url,
                                const WebhookAddressPolicy& policy);

// The JSON body of a delivery of `event` to endpoint `endpoint_id`
// (docs/webhooks.md "Payload"): the same bytes for every attempt.
std::string WebhookPayload(const storage::WebhookEventRecord& event,
                           absl::string_view endpoint_id);

// Thread-safe (holds no mutable state of its own).
// A delivery-log request as the API takes it.
struct DeliveryListParams {
  std::optional<int32_t> page;
  std::optional<int32_t> limit;
  // "" or one of pending, delivered, failed, cancelled.
  std::string status;
  // A meta.nextPageToken of an earlier reply to the same query.
  std::string page_token;
  // Count the matching deliveries (up to 10,000); default: true without
  // a token, false with one.
  std::optional<bool> include_total;
};

class WebhookService {
 public:
  WebhookService(storage::WebhookStore* store,
                 std::shared_ptr<const core::PepperSet> peppers,
                 WebhookOptions options);

  // `caller` is a principal of its tenant (API key or portal session).
  absl::StatusOr<WebhookWithSecret> Create(const Principal& caller,
                                           const RequestInfo& info,
                                           const WebhookParams& params);
  absl::StatusOr<storage::WebhookEndpointRecord> Get(const Principal& caller,
                                                     absl::string_view id);
  // page default 1, limit default 25 (1..100).
  absl::StatusOr<storage::WebhookEndpointPage> List(
      const Principal& caller, std::optional<int32_t> page,
      std::optional<int32_t> limit);
  // A patch that changes nothing writes no event.
  absl::StatusOr<storage::WebhookEndpointRecord> Update(
      const Principal& caller, const RequestInfo& info, absl::string_view id,
      const WebhookPatch& patch);
  // overlap_seconds unset: kDefaultSecretOverlap; 0..kMaxSecretOverlap.
  absl::StatusOr<WebhookWithSecret> RotateSecret(
      const Principal& caller, const RequestInfo& info, absl::string_view id,
      std::optional<int64_t> overlap_seconds);
  absl::Status Delete(const Principal& caller, const RequestInfo& info,
                      absl::string_view id);
  absl::StatusOr<storage::WebhookDeliveryRecord> Test(const Principal& caller,
                                                      const RequestInfo& info,
                                                      absl::string_view id);
  // The endpoint's delivery log, newest first, by page number or by
  // keyset (`params.page_token`, docs/admin-api.md "Paging large lists");
  // `applied` receives the query used (for the reply's meta and
  // NextDeliveryPageToken).
  absl::StatusOr<storage::DeliveryPage> ListDeliveries(
      const Principal& caller, absl::string_view id,
      const DeliveryListParams& params, storage::DeliveryQuery* applied);
  // The token of the page after `page` of endpoint `id`'s log listed by
  // `applied`; "" when it is the last page.
  static std::string NextDeliveryPageToken(
      int64_t tenant_id, absl::string_view id,
      const storage::DeliveryQuery& applied, const storage::DeliveryPage& page);

  // The signing secret sealed for endpoint `endpoint_id` (for the delivery
  // worker). INVALID_ARGUMENT when it does not open (another endpoint's, or
  // altered); NOT_FOUND when its pepper version is not loaded.
  absl::StatusOr<std::string> OpenSecret(const storage::SealedSecret& sealed,
                                         absl::string_view endpoint_id) const;

 private:
  // Draws a secret and seals it for `endpoint_id` under the current pepper.
  absl::StatusOr<std::string> NewSecret(absl::string_view endpoint_id,
                                        storage::SealedSecret* sealed) const;
  absl::StatusOr<std::string> SealingKey(int pepper_version) const;

  storage::WebhookStore* const store_;
  const std::shared_ptr<const core::PepperSet> peppers_;
  const WebhookOptions options_;
};

}  // namespace lumo::service

#endif  // LUMOKEYS_SERVER_SERVICE_WEBHOOK_SERVICE_H_
