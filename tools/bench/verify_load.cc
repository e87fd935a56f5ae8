// verify_load: a minimal closed-loop load generator for
// AuthService.VerifyApiKey (callback API, N calls in flight over M
// channels, fixed duration after a warm-up). Prints QPS and latency
// percentiles as one line of JSON. The full benchmark suite is
// tools/bench/run.py; this tool measures one scenario against whatever server
// it is pointed at.
//
//   verify_load --target=127.0.0.1:50051 --service_token_file=F
//       --key_file=K --tenant=acme-corp --inflight=32 --channels=4
//       --seconds=10 --warmup_seconds=2
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "grpcpp/create_channel.h"
#include "grpcpp/security/credentials.h"
#include "lumo/auth/v1/auth.grpc.pb.h"

ABSL_FLAG(std::string, target, "127.0.0.1:50051", "server address");
ABSL_FLAG(std::string, service_token_file, "", "service token file");
ABSL_FLAG(std::string, key_file, "", "file holding the API key to verify");
ABSL_FLAG(std::string, tenant, "", "tenant slug sent with each verify");
ABSL_FLAG(int, inflight, 32, "calls in flight");
ABSL_FLAG(int, channels, 4, "gRPC channels (distinct connections)");
ABSL_FLAG(int, seconds, 10, "measured duration");
ABSL_FLAG(int, warmup_seconds, 2, "warm-up before measuring");

namespace {

using Clock = std::chrono::steady_clock;

std::string ReadFirstLine(const std::string& path) {
  std::ifstream in(path);
  std::string line;
  std::getline(in, line);
  return std::string(absl::StripAsciiWhitespace(line));
}

struct Shared {
  std::atomic<bool> measuring{false};
  std::atomic<bool> stopping{false};
  std::atomic<int> active{0};
  std::atomic<uint64_t> errors{0};
  std::atomic<uint64_t> invalid{0};
  std::mutex mu;
  std::vector<double> latencies_us;  // measured calls only
};

// One closed loop: issues the next call from the previous one's callback.
class Loop {
 public:
  Loop(lumo::auth::v1::AuthService::Stub* stub, Shared* shared,
       const std::string& token, const std::string& key,
       const std::string& tenant)
      : stub_(stub), shared_(shared), token_(token) {
    request_.set_key(key);
    request_.set_tenant_slug(tenant);
  }
  void Start() {
    shared_->active++;
    Issue();
  }

 private:
  void Issue() {
    if (shared_->stopping) {
      shared_->active--;
      return;
    }
    context_ = std::make_unique<grpc::ClientContext>();
    context_->AddMetadata("x-lumo-service-token", token_);
    context_->set_deadline(std::chrono::system_clock::now() +
                           std::chrono::seconds(5));
    started_ = Clock::now();
    const bool measured = shared_->measuring;
    stub_->async()->VerifyApiKey(
        context_.get(), &request_, &response_,
        [this, measured](grpc::Status status) {
          const double us =
              std::chrono::duration<double, std::micro>(Clock::now() - started_)
                  .count();
          if (!status.ok()) {
            shared_->errors++;
          } else if (!response_.valid()) {
            shared_->invalid++;
          }
          if (measured && shared_->measuring) {
            std::lock_guard<std::mutex> lock(shared_->mu);
            shared_->latencies_us.push_back(us);
          }
          Issue();
        });
  }

  lumo::auth::v1::AuthService::Stub* stub_;
  Shared* shared_;
  std::string token_;
  lumo::auth::v1::VerifyApiKeyRequest request_;
  lumo::auth::v1::VerifyApiKeyResponse response_;
  std::unique_ptr<grpc::ClientContext> context_;
  Clock::time_point started_;
};

}  // namespace

int main(int argc, char** argv) {
  absl::ParseCommandLine(argc, argv);
  const std::string token =
      ReadFirstLine(absl::GetFlag(FLAGS_service_token_file));
  const std::string key = ReadFirstLine(absl::GetFlag(FLAGS_key_file));
  std::vector<std::unique_ptr<lumo::auth::v1::AuthService::Stub>> stubs;
  for (int i = 0; i < std::max(1, absl::GetFlag(FLAGS_channels)); ++i) {
    grpc::ChannelArguments args;
    args.SetInt("lumo.bench.channel", i);  // distinct args: distinct channel
    args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
    stubs.push_back(lumo::auth::v1::AuthService::NewStub(
        grpc::CreateCustomChannel(absl::GetFlag(FLAGS_target),
                                  grpc::InsecureChannelCredentials(), args)));
  }
  Shared shared;
  std::vector<std::unique_ptr<Loop>> loops;
  for (int i = 0; i < absl::GetFlag(FLAGS_inflight); ++i) {
    loops.push_back(std::make_unique<Loop>(stubs[i % stubs.size()].get(),
                                           &shared, token, key,
                                           absl::GetFlag(FLAGS_tenant)));
  }
  for (auto& loop : loops) loop->Start();
  std::this_thread::sleep_for(
      std::chrono::seconds(absl::GetFlag(FLAGS_warmup_seconds)));
  shared.errors = 0;
  shared.invalid = 0;
  const auto begin = Clock::now();
  shared.measuring = true;
  std::this_thread::sleep_for(
      std::chrono::seconds(absl::GetFlag(FLAGS_seconds)));
  shared.measuring = false;
  const double elapsed =
      std::chrono::duration<double>(Clock::now() - begin).count();
  shared.stopping = true;
  while (shared.active > 0)
    std::this_thread::sleep_for(std::chrono::milliseconds(10));

  std::vector<double> lat;
  {
    std::lock_guard<std::mutex> lock(shared.mu);
    lat = shared.latencies_us;
  }
  std::sort(lat.begin(), lat.end());
  auto pct = [&](double p) {
    return lat.empty() ? 0.0
                       : lat[std::min(lat.size() - 1,
                                      static_cast<size_t>(p * lat.size()))];
  };
  printf(
      "{\"calls\":%zu,\"seconds\":%.2f,\"qps\":%.0f,\"p50_us\":%.0f,"
      "\"p90_us\":%.0f,\"p99_us\":%.0f,\"errors\":%llu,\"invalid\":%llu}\n",
      lat.size(), elapsed, lat.size() / elapsed, pct(0.50), pct(0.90),
      pct(0.99), static_cast<unsigned long long>(shared.errors.load()),
      static_cast<unsigned long long>(shared.invalid.load()));
  return shared.errors > 0 ? 1 : 0;
}
