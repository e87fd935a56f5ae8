#include "tests/gateway/fake_upstream.h"

#include <algorithm>
#include <cstdlib>

#include "gateway/grpc_callback_queue.h"
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

}  // namespace

// One unary call: read the request, answer (now, or when released if the
// answer holds it), finish; deletes itself.
class HeldCall : public grpc::ServerGenericBidiReactor {
 public:
  HeldCall(FakeUpstream* owner, grpc::GenericCallbackServerContext* context)
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
    answer_ = owner_->Receive(std::move(call));
    if (answer_.hold) {
      owner_->Hold(this);
      return;
    }
    Answer();
  }

  // Sends answer_ and finishes. Called once: from OnReadDone, or for a held
  // call by whoever took it out of the owner's held list.
  void Answer() {
    for (const auto& [key, value] : answer_.initial_metadata) {
      context_->AddInitialMetadata(key, value);
    }
    for (const auto& [key, value] : answer_.trailing_metadata) {
      context_->AddTrailingMetadata(key, value);
    }
    if (answer_.code != grpc::StatusCode::OK) {
      Finish(grpc::Status(answer_.code, answer_.message, answer_.details));
      return;
    }
    grpc::Slice slice(answer_.reply);
    reply_ = grpc::ByteBuffer(&slice, 1);
    StartWriteAndFinish(&reply_, grpc::WriteOptions(), grpc::Status::OK);
  }

  void OnCancel() override {
    if (owner_->Unhold(this)) {
      Finish(grpc::Status(grpc::StatusCode::CANCELLED, "cancelled"));
    }
  }

  void OnDone() override { delete this; }

 private:
  FakeUpstream* const owner_;
  grpc::GenericCallbackServerContext* const context_;
  grpc::ByteBuffer request_;
  grpc::ByteBuffer reply_;
  UpstreamAnswer answer_;
};

namespace {

class Service : public grpc::CallbackGenericService {
 public:
  explicit Service(FakeUpstream* owner) : owner_(owner) {}
  grpc::ServerGenericBidiReactor* CreateReactor(
      grpc::GenericCallbackServerContext* context) override {
    return new HeldCall(owner_, context);
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
  // The callback service runs on gRPC's shared callback queue; stopping
  // the last fake (between test cases) must not tear that queue down while
  // its threads run (the gateway itself pins it only for streamed calls).
  ::lumo::gateway::PinGrpcCallbackQueue();
  grpc::ServerBuilder builder;
  builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(),
                           &port_);
  builder.RegisterCallbackGenericService(service_.get());
  server_ = builder.BuildAndStart();
  if (server_ == nullptr || port_ == 0) std::abort();  // no test without it
}

FakeUpstream::~FakeUpstream() {
  ReleaseHeld();
  server_->Shutdown();
}

int FakeUpstream::held() const {
  absl::MutexLock lock(&mu_);
  return static_cast<int>(held_.size());
}

void FakeUpstream::ReleaseHeld() {
  std::vector<HeldCall*> held;
  {
    absl::MutexLock lock(&mu_);
    held.swap(held_);
  }
  for (HeldCall* call : held) call->Answer();
}

void FakeUpstream::Hold(HeldCall* call) {
  absl::MutexLock lock(&mu_);
  held_.push_back(call);
}

bool FakeUpstream::Unhold(HeldCall* call) {
  absl::MutexLock lock(&mu_);
  auto it = std::find(held_.begin(), held_.end(), call);
  if (it == held_.end()) return false;
  held_.erase(it);
  return true;
}

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
