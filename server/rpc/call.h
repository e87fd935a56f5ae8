// What every gRPC adapter needs to run one call: find its method
// descriptor, authenticate against the method's access rule, run the body
// on the worker pool, and finish with the status mapped in one place (plus
// `x-request-id` and the REST error code as metadata).
#ifndef LUMOKEYS_SERVER_RPC_CALL_H_
#define LUMOKEYS_SERVER_RPC_CALL_H_

#include <chrono>
#include <optional>
#include <string>
#include <utility>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "google/protobuf/descriptor.h"
#include "grpcpp/server_context.h"
#include "grpcpp/support/server_callback.h"
#include "server/rpc/authenticator.h"
#include "server/rpc/status.h"
#include "server/rpc/worker_pool.h"
#include "server/service/errors.h"
#include "server/service/principal.h"
#include "server/service/verifier.h"
#include "server/storage/call_deadline.h"

namespace lumo::rpc {

// The descriptor of `full_name` ("pkg.Service.Method") from the generated
// pool; aborts if absent (names are constants of our own protos).
const google::protobuf::MethodDescriptor& Method(const char* full_name);

// Finishes the call: `x-request-id` initial metadata, `lumo-error-code`
// trailing metadata on errors, and the status. When `outcome` names a key
// with a rate limit: `x-ratelimit-limit|remaining|reset` initial metadata
// (reset in Unix seconds) and, on RESOURCE_EXHAUSTED, `retry-after`.
void Finish(grpc::CallbackServerContext* context,
            grpc::ServerUnaryReactor* reactor, const service::RequestInfo& info,
            const absl::Status& status,
            const service::VerifyOutcome* outcome = nullptr);

// The parts of Finish, for calls whose reply is not one message (server
// streaming): the initial metadata (`x-request-id`, and the rate-limit
// headers when `outcome` names a key with a rate limit), to add before the
// first message; and the final status with its trailing metadata
// (`lumo-error-code`, `retry-after`), logging what a client is not told.
void AddReplyInitialMetadata(grpc::CallbackServerContext* context,
                             const service::RequestInfo& info,
                             const service::VerifyOutcome* outcome);
grpc::Status FinalStatus(grpc::CallbackServerContext* context,
                         const service::RequestInfo& info,
                         const absl::Status& status,
                         const service::VerifyOutcome* outcome);

// UNAVAILABLE for a call the worker pool cannot take (full or stopping).
absl::Status ServerBusy();

// The call's deadline as an absl::Time
// (InfiniteFuture when the client set none).
inline absl::Time CallDeadline(const grpc::ServerContextBase& context) {
  const std::chrono::system_clock::time_point d = context.deadline();
  if (d == std::chrono::system_clock::time_point::max()) {
    return absl::InfiniteFuture();
  }
  return absl::FromChrono(d);
}

namespace internal {

// The start of every authenticated call, on a worker: the deadline, the
// tenant and the credentials. Finishes the call and returns nullopt when
// any of them fails.
inline std::optional<service::Principal> BeginCall(
    const Authenticator& auth, grpc::CallbackServerContext* context,
    grpc::ServerUnaryReactor* reactor,
    const google::protobuf::MethodDescriptor& method,
    const std::string& tenant_slug, bool tenant_required,
    const service::RequestInfo& info, service::VerifyOutcome* outcome) {
  if (context->deadline() <= std::chrono::system_clock::now()) {
    Finish(context, reactor, info,
           absl::DeadlineExceededError("deadline exceeded before start"));
    return std::nullopt;
  }
  if (tenant_required && tenant_slug.empty()) {
    Finish(
        context, reactor, info,
        service::InvalidFieldMessage("tenant_slug", "tenant_slug is required"));
    return std::nullopt;
  }
  absl::StatusOr<service::Principal> principal =
      auth.Authenticate(*context, method, tenant_slug, info, outcome);
  if (!principal.ok()) {
    Finish(context, reactor, info, principal.status(), outcome);
    return std::nullopt;
  }
  return *std::move(principal);
}

// The end of every authenticated call: a call made with an API key is
// recorded as `api_key.used` (enqueued before the reply so the event is
// never behind the caller), then the call finishes with `status`.
inline void EndCall(const Authenticator& auth,
                    grpc::CallbackServerContext* context,
                    grpc::ServerUnaryReactor* reactor,
                    const google::protobuf::MethodDescriptor& method,
                    const service::Principal& principal,
                    const service::RequestInfo& info,
                    const absl::Status& status,
                    const service::VerifyOutcome& outcome) {
  if (principal.kind == service::Principal::Kind::kApiKey) {
    if (service::UsageAuditor* usage = auth.usage_auditor()) {
      usage->RecordKeyUse(principal, info, method.full_name(), status);
    }
  }
  Finish(context, reactor, info, status, &outcome);
}

}  // namespace internal

// Runs `body(principal, info, done)` on `workers` after authenticating the
// caller of `method` for `tenant_slug`. `body` must call `done(status)`
// exactly once, from any thread, now or later (e.g. the portal login, whose
// password check runs on the hashing pool): until then the call stays open
// and the worker is free. `done` records a call made with an API key as
// `api_key.used` (failures by the Authenticator), so handlers never audit
// usage themselves, and finishes the call with `status`. A call whose
// deadline passed before it started gets DEADLINE_EXCEEDED; a full pool
// UNAVAILABLE. With `tenant_required`, an empty tenant slug is
// INVALID_ARGUMENT.
template <typename Body>
grpc::ServerUnaryReactor* RunAuthenticatedAsync(
    const Authenticator& auth, WorkerPool& workers,
    grpc::CallbackServerContext* context,
    const google::protobuf::MethodDescriptor& method, std::string tenant_slug,
    bool tenant_required, Body body) {
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  service::RequestInfo info = auth.DescribeRequest(*context);
  auto task = [&auth, context, reactor, &method, info,
               tenant_slug = std::move(tenant_slug), tenant_required,
               body = std::move(body)]() mutable {
    // Every statement run for this call on the
    // worker is bounded by the call's deadline.
    storage::ScopedCallDeadline call_deadline(CallDeadline(*context));
    service::VerifyOutcome outcome;
    std::optional<service::Principal> principal =
        internal::BeginCall(auth, context, reactor, method, tenant_slug,
                            tenant_required, info, &outcome);
    if (!principal.has_value()) return;
    auto done = [&auth, context, reactor, &method, principal = *principal, info,
                 outcome](const absl::Status& status) {
      internal::EndCall(auth, context, reactor, method, principal, info, status,
                        outcome);
    };
    body(*principal, info, std::move(done));
  };
  if (!workers.Submit(std::move(task))) {
    Finish(context, reactor, info, ServerBusy());
  }
  return reactor;
}

// RunAuthenticatedAsync for a body that answers on the worker:
// `body(principal, info) -> absl::Status`.
template <typename Body>
grpc::ServerUnaryReactor* RunAuthenticated(
    const Authenticator& auth, WorkerPool& workers,
    grpc::CallbackServerContext* context,
    const google::protobuf::MethodDescriptor& method, std::string tenant_slug,
    bool tenant_required, Body body) {
  return RunAuthenticatedAsync(
      auth, workers, context, method, std::move(tenant_slug), tenant_required,
      [body = std::move(body)](
          const service::Principal& principal, const service::RequestInfo& info,
          auto done) mutable { done(body(principal, info)); });
}

}  // namespace lumo::rpc

#endif  // LUMOKEYS_SERVER_RPC_CALL_H_
