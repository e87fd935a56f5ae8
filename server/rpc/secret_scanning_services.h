// gRPC adapter for lumo.webhooks.v1 SecretScanningService (the leaked-key
// intake, docs/webhooks.md): reads the scanner's headers, parses the JSON of
// the raw body once the signature verified, renders the reply array. Also
// the parser of the scanner's public-key file.
#ifndef LUMOKEYS_SERVER_RPC_SECRET_SCANNING_SERVICES_H_
#define LUMOKEYS_SERVER_RPC_SECRET_SCANNING_SERVICES_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "lumo/webhooks/v1/secret_scanning.grpc.pb.h"
#include "server/rpc/authenticator.h"
#include "server/rpc/worker_pool.h"
#include "server/service/secret_scanning.h"

namespace lumo::rpc {

// The keys of the JSON the scanner publishes:
// {"public_keys": [{"key_identifier": "...", "key": "<PEM>",
// "is_current": true|false}, ...]} (other members ignored).
// INVALID_ARGUMENT naming what is wrong (never a key's text).
absl::StatusOr<std::vector<service::ScannerPublicKey>> ParseScannerKeysJson(
    absl::string_view json);

// The entries of a report body: a JSON array of objects whose members
// "token" (required), "type", "url" and "source" are strings (others
// ignored). INVALID_ARGUMENT (kInvalidField "body") for anything else.
absl::StatusOr<std::vector<service::LeakedToken>> ParseLeakReport(
    absl::string_view json);

// The reply body: [{"token_hash", "token_type", "label"}, ...].
std::string RenderLeakVerdicts(
    const std::vector<service::TokenVerdict>& verdicts);

// Borrowed pointers; all thread-safe.
struct SecretScanningRpcContext {
  const Authenticator* auth;
  WorkerPool* workers;
  service::SecretScanningService* intake;
};

class SecretScanningServiceImpl final
    : public lumo::webhooks::v1::SecretScanningService::CallbackService {
 public:
  explicit SecretScanningServiceImpl(SecretScanningRpcContext ctx)
      : ctx_(ctx) {}

  grpc::ServerUnaryReactor* ReportLeakedTokens(
      grpc::CallbackServerContext* context,
      const lumo::webhooks::v1::ReportLeakedTokensRequest* request,
      lumo::api::HttpBody* response) override;

 private:
  SecretScanningRpcContext ctx_;
};

}  // namespace lumo::rpc

#endif  // LUMOKEYS_SERVER_RPC_SECRET_SCANNING_SERVICES_H_
