#include "server/rpc/metrics_interceptor.h"

#include <chrono>
#include <map>
#include <string>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "google/protobuf/message.h"
#include "grpcpp/support/interceptor.h"
#include "lumo/api/annotations.pb.h"
#include "server/observability/log.h"

namespace lumo::rpc {
namespace {

using grpc::experimental::InterceptionHookPoints;

// Tenant slugs are short identifiers; anything longer is cut in logs.
constexpr size_t kMaxTenantInLog = 64;

class MetricsInterceptor : public grpc::experimental::Interceptor {
 public:
  explicit MetricsInterceptor(MetricsInterceptorFactory::MethodMetrics& m)
      : m_(m), start_(std::chrono::steady_clock::now()) {}

  void Intercept(
      grpc::experimental::InterceptorBatchMethods* methods) override {
    if (methods->QueryInterceptionHookPoint(
            InterceptionHookPoints::POST_RECV_MESSAGE) &&
        m_.tenant_field != nullptr) {
      // Every method of this server is a protobuf method, and generated
      // message classes derive (singly) from google::protobuf::Message, so
      // the received object is a Message at the same address. The type is
      // checked before any field is read.
      // The request outlives the sending of the status, so the tenant is
      // read only when a line is actually written.
      request_ = static_cast<const google::protobuf::Message*>(
          methods->GetRecvMessage());
    }
    if (methods->QueryInterceptionHookPoint(
            InterceptionHookPoints::PRE_SEND_INITIAL_METADATA)) {
      if (auto* md = methods->GetSendInitialMetadata()) {
        auto it = md->find("x-request-id");
        if (it != md->end()) request_id_ = it->second;
      }
    }
    if (methods->QueryInterceptionHookPoint(
            InterceptionHookPoints::PRE_SEND_STATUS)) {
      Record(static_cast<int>(methods->GetSendStatus().error_code()));
    }
    methods->Proceed();
  }

 private:
  void Record(int code) {
    const double seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start_)
            .count();
    m_.ForCode(code).Increment();
    m_.Latency().Observe(seconds);
    const log::Level level =
        m_.quiet && code == 0 ? log::Level::kDebug : log::Level::kInfo;
    if (!log::Enabled(level)) return;
    std::string tenant;
    if (request_ != nullptr && request_->GetDescriptor() == m_.input_type) {
      tenant = request_->GetReflection()->GetString(*request_, m_.tenant_field);
      if (tenant.size() > kMaxTenantInLog) tenant.resize(kMaxTenantInLog);
    }
    log::Line(level, "rpc")
        .Str("rpc", m_.rpc)
        .Str("code", metrics::GrpcCodeName(code))
        .Num("latency_ms", seconds * 1e3)
        .Str("request_id", request_id_)
        .Str("tenant", tenant);
  }

  MetricsInterceptorFactory::MethodMetrics& m_;
  const std::chrono::steady_clock::time_point start_;
  const google::protobuf::Message* request_ = nullptr;  // set with a tenant
  std::string request_id_;
};

}  // namespace

bool MayLogField(const google::protobuf::FieldDescriptor& field) {
  return field.options().GetExtension(lumo::api::field).secret() ==
         lumo::api::SECRET_NONE;
}

metrics::Counter& MetricsInterceptorFactory::MethodMetrics::ForCode(int code) {
  if (code < 0 || code > 16) code = 2;  // UNKNOWN
  metrics::Counter* c = by_code[code].load(std::memory_order_acquire);
  if (c == nullptr) {
    // Racing threads get the same series from the family.
    c = &requests->WithLabels({rpc, metrics::GrpcCodeName(code)});
    by_code[code].store(c, std::memory_order_release);
  }
  return *c;
}

metrics::Histogram& MetricsInterceptorFactory::MethodMetrics::Latency() {
  metrics::Histogram* h = latency.load(std::memory_order_acquire);
  if (h == nullptr) {
    h = &latency_family->WithLabels({rpc});
    latency.store(h, std::memory_order_release);
  }
  return *h;
}

MetricsInterceptorFactory::MetricsInterceptorFactory(
    metrics::Registry& registry,
    const std::vector<const google::protobuf::ServiceDescriptor*>& services)
    : requests_(registry.AddCounter(
          "lumo_grpc_server_requests_total",
          "gRPC calls answered, by method and status code", {"rpc", "code"})),
      latency_(registry.AddHistogram(
          "lumo_grpc_server_request_duration_seconds",
          "Time from a call's arrival to its status being sent, by method",
          {"rpc"}, metrics::LatencyBuckets())) {
  for (const google::protobuf::ServiceDescriptor* service : services) {
    for (int i = 0; i < service->method_count(); ++i) {
      const google::protobuf::MethodDescriptor* method = service->method(i);
      const std::string path =
          absl::StrCat("/", service->full_name(), "/", method->name());
      Prepare(path, method);
    }
  }
}

MetricsInterceptorFactory::MethodMetrics& MetricsInterceptorFactory::Prepare(
    absl::string_view path, const google::protobuf::MethodDescriptor* method) {
  auto m = std::make_unique<MethodMetrics>();
  m->rpc = std::string(absl::StripPrefix(path, "/"));
  m->quiet = path == "/lumo.auth.v1.AuthService/VerifyApiKey" ||
             absl::StartsWith(path, "/grpc.health.");
  if (method != nullptr) {
    m->input_type = method->input_type();
    const google::protobuf::FieldDescriptor* field =
        m->input_type->FindFieldByName("tenant_slug");
    if (field != nullptr && !field->is_repeated() &&
        field->type() == google::protobuf::FieldDescriptor::TYPE_STRING &&
        MayLogField(*field)) {
      m->tenant_field = field;
    }
  }
  m->requests = &requests_;
  m->latency_family = &latency_;
  MethodMetrics& out = *m;
  if (method != nullptr) {
    known_[std::string(path)] = std::move(m);
  } else {
    others_[std::string(path)] = std::move(m);
  }
  return out;
}

MetricsInterceptorFactory::MethodMetrics& MetricsInterceptorFactory::Lookup(
    absl::string_view path) {
  auto it = known_.find(path);
  if (it != known_.end()) return *it->second;
  absl::MutexLock lock(&mu_);
  auto other = others_.find(path);
  if (other != others_.end()) return *other->second;
  // Unregistered paths get one shared series, so a client cannot create
  // series at will.
  if (others_.size() >= 32) {
    auto fallback = others_.find("/other");
    if (fallback != others_.end()) return *fallback->second;
    return Prepare("/other", nullptr);
  }
  return Prepare(path, nullptr);
}

grpc::experimental::Interceptor*
MetricsInterceptorFactory::CreateServerInterceptor(
    grpc::experimental::ServerRpcInfo* info) {
  return new MetricsInterceptor(Lookup(info->method()));
}

}  // namespace lumo::rpc
