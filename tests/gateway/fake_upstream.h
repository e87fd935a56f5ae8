// A stand-in for lumokeys-server behind the gateway in tests and the
// whole-gateway fuzzer: a real gRPC server on a loopback port (so gRPC
// encodes, sends and checks metadata exactly as with the real server) with
// one generic handler that answers every method as an `AnswerFn` says, and
// records what it received.
//
// Thread-safe.
#ifndef LUMOKEYS_TESTS_GATEWAY_FAKE_UPSTREAM_H_
#define LUMOKEYS_TESTS_GATEWAY_FAKE_UPSTREAM_H_

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "grpcpp/channel.h"
#include "grpcpp/generic/async_generic_service.h"
#include "grpcpp/server.h"

namespace lumo::testing {

// One call the fake received.
struct UpstreamCall {
  std::string method;  // "/pkg.Service/Method"
  // Every metadata entry the client sent (gRPC's own included).
  std::multimap<std::string, std::string> metadata;
  std::string request;  // the serialized request message

  // The first value of `key`, or "<absent>".
  std::string Get(const std::string& key) const;
};

// How to answer one call. `reply` must parse as the method's reply type
// (the empty message parses as any). Metadata values are sent as given, so
// they must be legal (the real server escapes them too).
struct UpstreamAnswer {
  grpc::StatusCode code = grpc::StatusCode::OK;
  std::string message;
  std::string reply;
  std::vector<std::pair<std::string, std::string>> initial_metadata;
  std::vector<std::pair<std::string, std::string>> trailing_metadata;
  // The status details (sent as grpc-status-details-bin when the code is
  // not OK).
  std::string details;
  // Hold the call: it stays unanswered (without blocking a gRPC thread)
  // until ReleaseHeld answers it with this answer, or until the client
  // cancels it, which finishes it with CANCELLED.
  bool hold = false;
};

using AnswerFn = std::function<UpstreamAnswer(const UpstreamCall&)>;

// A call being answered (fake_upstream.cc).
class HeldCall;

class FakeUpstream {
 public:
  // Starts serving on 127.0.0.1 (a free port). Without `answer`, every
  // call gets OK and the empty reply, and grpc.health.v1.Health/Check
  // SERVING. `answer` is called on gRPC threads. Without `record`, calls
  // are answered but not kept (long fuzz runs).
  explicit FakeUpstream(AnswerFn answer = nullptr, bool record = true);
  // Answers the held calls, then stops serving.
  ~FakeUpstream();

  FakeUpstream(const FakeUpstream&) = delete;
  FakeUpstream& operator=(const FakeUpstream&) = delete;

  // A new channel to the fake (a gateway's upstream).
  std::shared_ptr<grpc::Channel> NewChannel() const;
  // The calls received since the last TakeCalls, in arrival order.
  std::vector<UpstreamCall> TakeCalls();

  // The calls held now (UpstreamAnswer::hold) and not cancelled.
  int held() const;
  // Answers every held call.
  void ReleaseHeld();

  // For the handler: records `call` and returns the answer; keeping and
  // dropping held calls.
  UpstreamAnswer Receive(UpstreamCall call);
  void Hold(HeldCall* call);
  // False when ReleaseHeld has already taken the call.
  bool Unhold(HeldCall* call);

 private:
  const AnswerFn answer_;
  const bool record_;
  std::unique_ptr<grpc::CallbackGenericService> service_;
  std::unique_ptr<grpc::Server> server_;
  int port_ = 0;
  mutable absl::Mutex mu_;
  std::vector<UpstreamCall> calls_ ABSL_GUARDED_BY(mu_);
  std::vector<HeldCall*> held_ ABSL_GUARDED_BY(mu_);
};

}  // namespace lumo::testing

#endif  // LUMOKEYS_TESTS_GATEWAY_FAKE_UPSTREAM_H_
