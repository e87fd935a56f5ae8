#include "tests/gateway/fake_upstream.h"

#include <cstdlib>

#include "grpcpp/create_channel.h"
#include "grpcpp/security/credentials.h"
#include "grpcpp/security/server_credentials.h"
#include "grpcpp/server_builder.h"
#include "grpcpp/support/byte_buffer.h"
#include "grpcpp/support/server_callback.h"

namespace lumo::testing {
namespace {

std::string ToString(const grpc::ByteBuffer& buffer) {
  grpc::Slice slice;
  if (!buffer.DumpToSingleSlice(&slice).ok()) return "";
  return std::string(reinterpret_cast<const char*>(slice.begin()),
                     slice.size());
}

// One unary call: read the request, answer, finish; deletes itself.
class UnaryReactor : public grpc::ServerGenericBidiReactor {
 public:
  UnaryReactor(FakeUpstream* owner, grpc::GenericCallbackServerContext* context)
      : owner_(owner), context_(context) {
    StartRead(&request_);
  }

  void OnReadDone(bool ok) override {
    if (!ok) {
      Finish(grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "no request"));
      return;
    }
    UpstreamCall call;
    call.method = context_->method();
    for (const auto& [key, value] : context_->client_metadata()) {
      call.metadata.emplace(std::string(key.data(), key.size()),
                            std::string(value.data(), value.size()));
    }
    call.request = ToString(request_);
    UpstreamAnswer answer = owner_->Receive(std::move(call));
    for (const auto& [key, value] : answer.initial_metadata) {
      context_->AddInitialMetadata(key, value);
    }
    for (const auto& [key, value] : answer.trailing_metadata) {
      context_->AddTrailingMetadata(key, value);
    }
    if (answer.code != grpc::StatusCode::OK) {
      Finish(grpc::Status(answer.code, answer.message, answer.details));
      return;
    }
    grpc::Slice slice(answer.reply);
    reply_ = grpc::ByteBuffer(&slice, 1);
    StartWriteAndFinish(&reply_, grpc::WriteOptions(), grpc::Status::OK);
  }

  void OnDone() override { delete this; }

 private:
  FakeUpstream* const owner_;
  grpc::GenericCallbackServerContext* const context_;
  grpc::ByteBuffer request_;
  grpc::ByteBuffer reply_;
};

class Service : public grpc::CallbackGenericService {
 public:
  explicit Service(FakeUpstream* owner) : owner_(owner) {}
  grpc::ServerGenericBidiReactor* CreateReactor(
      grpc::GenericCallbackServerContext* context) override {
    return new UnaryReactor(owner_, context);
  }

 private:
  FakeUpstream* const owner_;
};

}  // namespace

std::string UpstreamCall::Get(const std::string& key) const {
  auto it = metadata.find(key);
  return it == metadata.end() ? "<absent>" : it->second;
}

FakeUpstream::FakeUpstream(AnswerFn answer, bool record)
    : answer_(std::move(answer)),
      record_(record),
      service_(std::make_unique<Service>(this)) {
  grpc::ServerBuilder builder;
  builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(),
                           &port_);
  builder.RegisterCallbackGenericService(service_.get());
  server_ = builder.BuildAndStart();
  if (server_ == nullptr || port_ == 0) std::abort();  // no test without it
}

FakeUpstream::~FakeUpstream() { server_->Shutdown(); }

std::shared_ptr<grpc::Channel> FakeUpstream::NewChannel() const {
  return grpc::CreateChannel("127.0.0.1:" + std::to_string(port_),
                             grpc::InsecureChannelCredentials());
}

std::vector<UpstreamCall> FakeUpstream::TakeCalls() {
  absl::MutexLock lock(&mu_);
  return std::exchange(calls_, {});
}

UpstreamAnswer FakeUpstream::Receive(UpstreamCall call) {
  UpstreamAnswer answer;
  if (answer_) {
    answer = answer_(call);
  } else if (call.method == "/grpc.health.v1.Health/Check") {
    answer.reply = "\x08\x01";  // HealthCheckResponse{status: SERVING}
  }
  if (record_) {
    absl::MutexLock lock(&mu_);
    calls_.push_back(std::move(call));
  }
  return answer;
}

}  // namespace lumo::testing
