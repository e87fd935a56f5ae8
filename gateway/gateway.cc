#include "gateway/gateway.h"

#include <algorithm>
#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <utility>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_set.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/synchronization/mutex.h"
#include "gateway/grpc_callback_queue.h"
#include "gateway/openapi.h"
#include "google/protobuf/message.h"
#include "grpcpp/client_context.h"
#include "grpcpp/support/byte_buffer.h"
#include "grpcpp/support/client_callback.h"
#include "lumo/proto_files.h"
#include "server/core/metadata_text.h"

namespace lumo::gateway {
namespace {

constexpr absl::string_view kJson = "application/json; charset=utf-8";

std::string BufferToString(const grpc::ByteBuffer& buffer) {
  std::vector<grpc::Slice> slices;
  std::string out;
  if (!buffer.Dump(&slices).ok()) return out;
  for (const grpc::Slice& s : slices) {
    out.append(reinterpret_cast<const char*>(s.begin()), s.size());
  }
  return out;
}

// An upstream call (unary or streamed) that ~Gateway cancels and waits
// for: it leaves the gateway's in-flight set as the last use its callbacks
// make of the gateway.
class InFlight {
 public:
  virtual ~InFlight() = default;
  // Makes the call end soon; its callbacks still run (thread-safe).
  virtual void CancelUpstream() = 0;
};

}  // namespace

// Everything one unary upstream call needs to stay alive until it
// completes. Written by the thread that starts the call, then (after gRPC's
// completion, which orders the two) by the UpstreamQueue thread that
// completes it; CancelUpstream may run on any thread.
struct Gateway::Call final : InFlight, UpstreamQueue::Op {
  enum class Kind { kForward, kHealth };

  void CancelUpstream() override { context.TryCancel(); }
  // The Finish tag (`ok` is always true for it: the outcome is `status`).
  void Complete(bool /*ok*/) override {
    std::shared_ptr<Call> call = std::move(self);
    gateway->OnCallDone(call);
  }

  Gateway* gateway = nullptr;
  Kind kind = Kind::kForward;
  grpc::ClientContext context;
  grpc::ByteBuffer request;
  grpc::ByteBuffer reply;
  grpc::Status status;
  // Lives in the call's arena; declared after `context`, so destroyed
  // before it.
  std::unique_ptr<grpc::GenericClientAsyncResponseReader> reader;
  // The call's own reference from StartUnary to Complete.
  std::shared_ptr<Call> self;
  Responder respond;
  // The route's plan (owned by the gateway, which outlives its calls).
  const RoutePlan* plan = nullptr;
  // The path's tenant, for the session cookies of the answer.
  std::string tenant_slug;
};

// The calls a gateway has sent upstream and whose callbacks have not
// finished: what ~Gateway cancels and waits for. Thread-safe.
class Gateway::InFlightCalls {
 public:
  void Add(std::shared_ptr<InFlight> call) ABSL_LOCKS_EXCLUDED(mu_) {
    absl::MutexLock lock(&mu_);
    calls_.insert(std::move(call));
  }

  // Called by a call's callback as its last use of the gateway.
  void Remove(const std::shared_ptr<InFlight>& call) ABSL_LOCKS_EXCLUDED(mu_) {
    absl::MutexLock lock(&mu_);
    calls_.erase(call);
  }

  // Cancels every call and returns once each has been removed. The calls
  // are cancelled outside the lock: a callback may run on this thread.
  void CancelAndWait() ABSL_LOCKS_EXCLUDED(mu_) {
    std::vector<std::shared_ptr<InFlight>> calls;
    {
      absl::MutexLock lock(&mu_);
      calls.assign(calls_.begin(), calls_.end());
    }
    for (const std::shared_ptr<InFlight>& call : calls) call->CancelUpstream();
    calls.clear();
    absl::MutexLock lock(&mu_);
    mu_.Await(absl::Condition(
        +[](absl::flat_hash_set<std::shared_ptr<InFlight>>* calls) {
          return calls->empty();
        },
        &calls_));
  }

 private:
  absl::Mutex mu_;
  absl::flat_hash_set<std::shared_ptr<InFlight>> calls_ ABSL_GUARDED_BY(mu_);
};

namespace {

// A server-streaming upstream call whose messages are lumo.api.HttpBody,
// answered as a streamed HTTP body: the response (status, headers, the
// first message's data) is rendered when the first message arrives, or as
// an error when the call fails before any; later messages are read one at
// a time, each only when the HTTP side asks for the next piece, so the
// gateway holds one message per export. The call has no deadline of its
// own: the HTTP server gives each piece its request timeout and cancels the
// stream (TryCancel) when it stops sending, and so does a dropped response.
// Thread-safe: gRPC's callbacks and the HTTP side's Next/Cancel meet under
// `mu_`. Owns itself from Start until OnDone, whose last use of the gateway
// (the renderers, the observer, the responder an observer may have wrapped)
// comes before `finished` is called: ~Gateway cancels the call (Cancel)
// and waits for that.
class StreamCall final
    : public grpc::ClientBidiReactor<grpc::ByteBuffer, grpc::ByteBuffer>,
      public InFlight,
      public std::enable_shared_from_this<StreamCall> {
 public:
  // Renders the response from the first message's bytes, or from the
  // status of a call that failed before any message.
  using RenderFirst = std::function<HttpResponse(const std::string& bytes,
                                                 const grpc::ClientContext&)>;
  using RenderError = std::function<HttpResponse(const grpc::Status&,
                                                 const grpc::ClientContext&)>;

  using Finished = std::function<void(const std::shared_ptr<InFlight>&)>;

  StreamCall(Responder respond, RenderFirst render_first,
             RenderError render_error, GatewayObserver* observer,
             Finished finished)
      : respond_(std::move(respond)),
        render_first_(std::move(render_first)),
        render_error_(std::move(render_error)),
        observer_(observer),
        finished_(std::move(finished)) {}

  void CancelUpstream() override { Cancel(); }

  grpc::ClientContext& context() { return context_; }

  void Start(grpc::GenericStub& stub, const std::string& rpc_path,
             std::string request) {
    self_ = shared_from_this();
    grpc::Slice slice(request);
    request_ = grpc::ByteBuffer(&slice, 1);
    stub.PrepareBidiStreamingCall(&context_, rpc_path, grpc::StubOptions(),
                                  this);
    // Keeps OnDone back while reads may still be started (released when
    // the reads are over: the stream ended or was cancelled).
    AddHold();
    StartWriteLast(&request_, grpc::WriteOptions());
    {
      absl::MutexLock lock(&mu_);
      read_pending_ = true;
    }
    StartRead(&reply_);
    StartCall();
  }

  // BodyStream::Next of the response's stream.
  void Next(std::function<void(BodyStream::Piece)> deliver) {
    std::optional<grpc::Status> final;
    {
      absl::MutexLock lock(&mu_);
      if (final_.has_value()) {
        final = final_;
      } else {
        waiting_ = std::move(deliver);
        if (reads_over_) return;  // OnDone delivers the end
        read_pending_ = true;
      }
    }
    if (final.has_value()) {
      deliver(EndPiece(*final));
      return;
    }
    StartRead(&reply_);
  }

  // BodyStream::Cancel of the response's stream.
  void Cancel() {
    bool release = false;
    {
      absl::MutexLock lock(&mu_);
      if (cancelled_) return;
      cancelled_ = true;
      if (!read_pending_ && !reads_over_) {
        reads_over_ = true;
        release = true;
      }
    }
    context_.TryCancel();
    if (release) RemoveHold();
  }

  void OnReadDone(bool ok) override {
    std::string first;
    std::function<void(BodyStream::Piece)> deliver;
    BodyStream::Piece piece;
    bool respond_now = false, release = false, broken = false;
    {
      absl::MutexLock lock(&mu_);
      read_pending_ = false;
      if (!ok) {
        release = !reads_over_;
        reads_over_ = true;
      } else if (!responded_) {
        responded_ = true;
        respond_now = true;
        first = BufferToString(reply_);
      } else {
        deliver = std::move(waiting_);
        waiting_ = nullptr;
        lumo::api::HttpBody body;
        if (body.ParseFromString(BufferToString(reply_))) {
          piece.data = std::move(*body.mutable_data());
        } else {
          // Not a message of the method's type: the body cannot go on.
          piece.end = true;
          piece.complete = false;
          broken = true;
        }
      }
    }
    if (release) RemoveHold();
    if (broken) context_.TryCancel();
    if (respond_now) {
      HttpResponse response = render_first_(first, context_);
      response.stream = std::make_shared<Handle>(shared_from_this());
      respond_(std::move(response));
    } else if (deliver) {
      deliver(std::move(piece));
    }
  }

  void OnDone(const grpc::Status& status) override {
    std::function<void(BodyStream::Piece)> deliver;
    bool respond_now = false;
    {
      absl::MutexLock lock(&mu_);
      final_ = status;
      deliver = std::move(waiting_);
      waiting_ = nullptr;
      respond_now = !responded_;
      responded_ = true;
    }
    if (!status.ok() && observer_ != nullptr) {
      observer_->UpstreamError(status.error_code());
    }
    if (respond_now) {
      // Without any message: the error, or (never sent by our server) an
      // empty body.
      respond_(status.ok() ? render_first_("", context_)
                           : render_error_(status, context_));
    } else if (deliver) {
      deliver(EndPiece(status));
    }
    // Its last use was above; the observer's wrapper goes before the
    // gateway may.
    respond_ = nullptr;
    std::shared_ptr<StreamCall> keep = std::move(self_);
    finished_(keep);
  }

 private:
  // What the HTTP server holds: the call's stream, cancelled when the
  // server lets go of it without having read it to the end.
  class Handle final : public BodyStream {
   public:
    explicit Handle(std::shared_ptr<StreamCall> call)
        : call_(std::move(call)) {}
    ~Handle() override { call_->Cancel(); }
    void Next(std::function<void(Piece)> deliver) override {
      call_->Next(std::move(deliver));
    }
    void Cancel() override { call_->Cancel(); }

   private:
    const std::shared_ptr<StreamCall> call_;
  };

  static BodyStream::Piece EndPiece(const grpc::Status& status) {
    BodyStream::Piece piece;
    piece.end = true;
    piece.complete = status.ok();
    return piece;
  }

  // Used once (the first message or the end), by the one callback that
  // runs at a time until OnDone.
  Responder respond_;
  const RenderFirst render_first_;
  const RenderError render_error_;
  GatewayObserver* const observer_;
  const Finished finished_;
  grpc::ClientContext context_;
  grpc::ByteBuffer request_;
  // Written by one read at a time (a read starts only after the previous
  // one completed).
  grpc::ByteBuffer reply_;
  std::shared_ptr<StreamCall> self_;

  absl::Mutex mu_;
  bool responded_ ABSL_GUARDED_BY(mu_) = false;
  bool read_pending_ ABSL_GUARDED_BY(mu_) = false;
  // No read will be started any more (the stream ended or was cancelled);
  // the hold is released when this becomes true.
  bool reads_over_ ABSL_GUARDED_BY(mu_) = false;
  bool cancelled_ ABSL_GUARDED_BY(mu_) = false;
  std::optional<grpc::Status> final_ ABSL_GUARDED_BY(mu_);
  std::function<void(BodyStream::Piece)> waiting_ ABSL_GUARDED_BY(mu_);
};

}  // namespace

HttpError HttpErrorFor(grpc::StatusCode code) {
  switch (code) {
    case grpc::StatusCode::INVALID_ARGUMENT:
    case grpc::StatusCode::OUT_OF_RANGE:
      return {400, "validation_error"};
    case grpc::StatusCode::FAILED_PRECONDITION:
      return {400, "invalid_request"};
    case grpc::StatusCode::UNAUTHENTICATED:
      return {401, "invalid_token"};
    case grpc::StatusCode::PERMISSION_DENIED:
      return {403, "insufficient_scope"};
    case grpc::StatusCode::NOT_FOUND:
      return {404, "resource_not_found"};
    case grpc::StatusCode::ALREADY_EXISTS:
    case grpc::StatusCode::ABORTED:
      return {409, "duplicate_resource"};
    case grpc::StatusCode::RESOURCE_EXHAUSTED:
      return {429, "rate_limit_exceeded"};
    case grpc::StatusCode::UNAVAILABLE:
    case grpc::StatusCode::DEADLINE_EXCEEDED:
    case grpc::StatusCode::CANCELLED:
      return {503, "service_unavailable"};
    case grpc::StatusCode::UNIMPLEMENTED:
      return {501, "internal_error"};
    default:
      return {500, "internal_error"};
  }
}

HttpResponse ErrorResponse(int status, absl::string_view code,
                           absl::string_view message, absl::string_view field) {
  HttpResponse response;
  response.status = status;
  response.headers.emplace_back("Content-Type", std::string(kJson));
  const std::string details =
      code == "validation_error" && !field.empty()
          ? absl::StrCat("{\"field\":", JsonQuote(field), "}")
          : "{}";
  response.body = absl::StrCat(
      "{\"error\":true,\"status\":", status, ",\"code\":", JsonQuote(code),
      ",\"message\":", JsonQuote(message), ",\"details\":", details, "}");
  return response;
}

HttpResponse RfcErrorResponse(int status, absl::string_view code,
                              absl::string_view description) {
  HttpResponse response;
  response.status = status;
  response.headers.emplace_back("Content-Type", std::string(kJson));
  response.body =
      absl::StrCat("{\"error\":", JsonQuote(code),
                   ",\"error_description\":", JsonQuote(description), "}");
  return response;
}

absl::StatusOr<std::vector<const google::protobuf::ServiceDescriptor*>>
LumoServices() {
  std::vector<const google::protobuf::ServiceDescriptor*> services;
  for (const char* name : lumo::kProtoFiles) {
    const google::protobuf::FileDescriptor* file =
        google::protobuf::DescriptorPool::generated_pool()->FindFileByName(
            name);
    if (file == nullptr) {
      return absl::FailedPreconditionError(
          absl::StrCat("proto file not linked: ", name));
    }
    for (int i = 0; i < file->service_count(); ++i) {
      services.push_back(file->service(i));
    }
  }
  return services;
}

HttpHeaders SecurityHeaders() {
  return {
      {"X-Content-Type-Options", "nosniff"},
      {"Referrer-Policy", "no-referrer"},
      {"Cache-Control", "no-store"},
      {"X-Frame-Options", "DENY"},
      {"Content-Security-Policy", "default-src 'none'; frame-ancestors 'none'"},
  };
}

absl::StatusOr<std::unique_ptr<Gateway>> Gateway::Create(
    GatewayOptions options) {
  if (!core::IsLegalMetadataValue(options.service_token)) {
    return absl::InvalidArgumentError(
        "the service token holds characters gRPC metadata cannot carry "
        "(only printable ASCII is allowed)");
  }
  if (!options.trusted_proxies.empty() && options.service_token.empty()) {
    return absl::FailedPreconditionError(
        "trusted proxies need a service token: without one the server does "
        "not accept the forwarded client address");
  }
  absl::StatusOr<RouteTable> routes = RouteTable::Build(options.services);
  if (!routes.ok()) return routes.status();
  std::string openapi = BuildOpenApiDocument(*routes);
  return std::unique_ptr<Gateway>(
      new Gateway(std::move(options), *std::move(routes), std::move(openapi)));
}

namespace {

std::vector<RoutePlan> PlanRoutes(const RouteTable& routes) {
  std::vector<RoutePlan> plans;
  plans.reserve(routes.routes().size());
  for (const Route& route : routes.routes()) plans.push_back(PlanRoute(route));
  return plans;
}

}  // namespace

Gateway::Gateway(GatewayOptions options, RouteTable routes, std::string openapi)
    : options_(std::move(options)),
      routes_(std::move(routes)),
      plans_(PlanRoutes(routes_)),
      render_options_(RenderOptionsFromFieldRules(options_.services)),
      policy_{options_.service_token, &options_.trusted_proxies,
              options_.secure_cookies},
      openapi_json_(std::move(openapi)),
      stub_(options_.upstream),
      upstream_queue_(
          std::make_unique<UpstreamQueue>(options_.upstream_threads)),
      in_flight_(std::make_unique<InFlightCalls>()) {}

Gateway::~Gateway() { in_flight_->CancelAndWait(); }

void Gateway::Handle(HttpRequest request, Responder respond) {
  // Hands the request's labels to the
  // observer, which may wrap the responder.
  auto observe = [&](absl::string_view route, absl::string_view tenant) {
    if (options_.observer == nullptr) return;
    respond = options_.observer->Observe(
        RequestLabels{request.method, route, tenant, request.request_id},
        std::move(respond));
  };
  // The portal's static pages and assets.
  if (options_.portal != nullptr) {
    if (std::optional<HttpResponse> page = options_.portal->Serve(request)) {
      respond(*std::move(page));
      return;
    }
  }
  // Routes that do not reach the server.
  if (request.method == "GET" || request.method == "HEAD") {
    if (request.path == "/livez") {
      observe("/livez", "");
      // Liveness of the gateway process alone: no upstream call.
      HttpResponse response;
      response.headers.emplace_back("Content-Type", std::string(kJson));
      response.body = "{\"status\":\"ok\"}";
      respond(std::move(response));
      return;
    }
    if (request.path == "/healthz") {
      observe("/healthz", "");
      HandleHealth(std::move(request), std::move(respond));
      return;
    }
    if (request.path == "/openapi.json" ||
        (absl::StartsWith(request.path, "/t/") &&
         absl::EndsWith(request.path, "/api/v1/openapi.json") &&
         std::count(request.path.begin(), request.path.end(), '/') == 5)) {
      observe(request.path == "/openapi.json"
                  ? "/openapi.json"
                  : "/t/{tenant_slug}/api/v1/openapi.json",
              "");
      HttpResponse response;
      response.headers.emplace_back("Content-Type", std::string(kJson));
      response.body = openapi_json_;
      respond(std::move(response));
      return;
    }
  }

  MatchResult match = routes_.Match(request.method, request.path);
  if (match.outcome == MatchOutcome::kMatched) {
    absl::string_view tenant;
    for (const auto& [name, value] : match.variables) {
      if (name == "tenant_slug") tenant = value;
    }
    observe(match.route->path.text(), tenant);
  } else {
    observe("unmatched", "");
  }
  switch (match.outcome) {
    case MatchOutcome::kMatched:
      Forward(*match.route, match.variables, std::move(request),
              std::move(respond));
      return;
    case MatchOutcome::kMalformedPath:
      respond(ErrorResponse(400, "invalid_request", match.error));
      return;
    case MatchOutcome::kNotFound:
      respond(ErrorResponse(404, "resource_not_found", "no such endpoint"));
      return;
    case MatchOutcome::kMethodNotAllowed: {
      HttpResponse response = ErrorResponse(
          405, "invalid_request", "method not allowed on this endpoint");
      response.headers.emplace_back("Allow",
                                    absl::StrJoin(match.allowed_verbs, ", "));
      respond(std::move(response));
      return;
    }
  }
}

void Gateway::HandleHealth(HttpRequest request, Responder respond) {
  auto call = std::make_shared<Call>();
  call->kind = Call::Kind::kHealth;
  call->respond = std::move(respond);
  call->context.set_deadline(std::chrono::system_clock::now() +
                             std::chrono::seconds(2));
  // grpc.health.v1.HealthCheckRequest{service: ""} is the empty message.
  grpc::Slice empty("");
  call->request = grpc::ByteBuffer(&empty, 1);
  static const std::string kHealthCheck = "/grpc.health.v1.Health/Check";
  StartUnary(std::move(call), kHealthCheck);
}

void Gateway::StartUnary(std::shared_ptr<Call> call,
                         const std::string& method) {
  call->gateway = this;
  in_flight_->Add(call);
  Call& c = *call;
  c.self = std::move(call);
  c.reader = stub_.PrepareUnaryCall(&c.context, method, c.request,
                                    upstream_queue_->cq());
  c.reader->StartCall();
  // From here on the call may complete (on the queue's thread) at any time.
  c.reader->Finish(&c.reply, &c.status, static_cast<UpstreamQueue::Op*>(&c));
}

void Gateway::OnCallDone(const std::shared_ptr<Call>& call) {
  const grpc::Status& status = call->status;
  if (call->kind == Call::Kind::kHealth) {
    // HealthCheckResponse{status: SERVING} is field 1 = 1.
    const bool serving =
        status.ok() && BufferToString(call->reply) == "\x08\x01";
    HttpResponse response;
    response.status = serving ? 200 : 503;
    response.headers.emplace_back("Content-Type", std::string(kJson));
    response.body =
        absl::StrCat("{\"status\":\"", serving ? "ok" : "unavailable",
                     "\",\"gateway\":\"ok\",\"upstream\":\"",
                     serving ? "serving" : "not_serving", "\"}");
    Answer(call, std::move(response));
    return;
  }
  if (!status.ok() && options_.observer != nullptr) {
    options_.observer->UpstreamError(status.error_code());
  }
  Answer(call,
         status.ok()
             ? RenderReply(*call->plan, BufferToString(call->reply),
                           call->context, call->tenant_slug,
                           options_.secure_cookies, render_options_)
             : RenderUpstreamError(*call->plan, status, call->context,
                                   call->tenant_slug, options_.secure_cookies));
}

void Gateway::Answer(const std::shared_ptr<Call>& call, HttpResponse response) {
  // The responder (which an observer may have wrapped) is used and
  // destroyed before the call leaves the in-flight set: ~Gateway may
  // return, and the observer go, as soon as it has.
  Responder respond = std::move(call->respond);
  respond(std::move(response));
  respond = nullptr;
  in_flight_->Remove(call);
}

void Gateway::Forward(const Route& route, const Variables& variables,
                      HttpRequest request, Responder respond) {
  const RoutePlan& plan = plans_[&route - routes_.routes().data()];
  std::unique_ptr<google::protobuf::Message> message(
      plan.request_prototype->New());
  if (std::optional<Refusal> refused =
          BuildRequestMessage(plan, variables, request, message.get())) {
    respond(RefusalResponse(plan, *refused));
    return;
  }
  auto call = std::make_shared<Call>();
  call->plan = &plan;
  call->tenant_slug = TenantSlugOfPath(request.path);
  UpstreamMetadata metadata;
  if (std::optional<Refusal> refused = CollectUpstreamMetadata(
          plan, request, call->tenant_slug, policy_, &metadata)) {
    respond(RefusalResponse(plan, *refused));
    return;
  }
  if (!metadata.AttachTo(call->context)) {
    // Unreachable: every entry is legal by construction. Refusing beats
    // gRPC's abort of the whole process.
    respond(ErrorResponse(500, "internal_error", "internal error"));
    return;
  }
  if (plan.server_streaming) {
    // Streamed calls complete on gRPC's shared callback queue; destroying
    // the last gateway (at shutdown) must not tear it down.
    PinGrpcCallbackQueue();
    const std::string tenant_slug = call->tenant_slug;
    auto stream = std::make_shared<StreamCall>(
        respond,
        [this, &plan, tenant_slug](const std::string& bytes,
                                   const grpc::ClientContext& context) {
          return RenderReply(plan, bytes, context, tenant_slug,
                             options_.secure_cookies, render_options_);
        },
        [this, &plan, tenant_slug](const grpc::Status& status,
                                   const grpc::ClientContext& context) {
          return RenderUpstreamError(plan, status, context, tenant_slug,
                                     options_.secure_cookies);
        },
        options_.observer,
        [this](const std::shared_ptr<InFlight>& done) {
          in_flight_->Remove(done);
        });
    if (!metadata.AttachTo(stream->context())) {
      // Unreachable, as above.
      respond(ErrorResponse(500, "internal_error", "internal error"));
      return;
    }
    in_flight_->Add(stream);
    stream->Start(stub_, plan.rpc_path, message->SerializeAsString());
    return;
  }
  call->respond = std::move(respond);
  call->context.set_deadline(
      std::chrono::system_clock::now() +
      absl::ToChronoMilliseconds(options_.upstream_deadline));
  grpc::Slice slice(message->SerializeAsString());
  call->request = grpc::ByteBuffer(&slice, 1);
  StartUnary(std::move(call), plan.rpc_path);
}

}  // namespace lumo::gateway
