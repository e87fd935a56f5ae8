// lumokeys-bench: the load generator and helpers behind tools/bench/run.py
// (docs/benchmarks.md). One process, one job per invocation:
//
//   --mode=load   closed-loop load of one workload (--rpc) for a fixed
//                 duration after a warm-up; prints one line of JSON with
//                 calls, QPS, p50/p90/p99/p99.9 (µs), errors, unexpected
//                 answers and the CPU the --server_pids used per call.
//                 gRPC workloads use the callback API, --inflight calls in
//                 flight over --channels connections; --rpc=http is a
//                 keep-alive HTTP/1.1 client (one epoll loop, --inflight
//                 connections).
//   --mode=setup  creates --tenant with an admin:write key (operator token)
//                 and writes it to --key_file.
//   --mode=load_keys  inserts --count valid keys for --tenant straight into
//                 the database (multi-row INSERTs on its own connection;
//                 digests made with the server's pepper) and writes the
//                 full keys, one per line, to --keys_out.
//   --mode=stats  prints the server's BenchService.Stats as JSON.
//
// Workloads (--rpc): echo, verify (keys from --key_file, one per line,
// used round-robin), select (ids of --key_file's keys; select_c: the same
// through the server's libmariadb baseline; verify_read: the key store's
// verification read of them, without the verifier), insert, get
// (GetApiKey of the ids in --ids_file with the key in --admin_key_file),
// create, rotate (each loop rotates its own id from --ids_file), http
// (GET --http_path on --target; `{id}` is replaced by ids from --ids_file).
// --expect=valid|invalid decides which VerifyApiKey answers count as
// unexpected.
#include <arpa/inet.h>
#include <dirent.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <functional>
#include <memory>
#include <mutex>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "absl/synchronization/mutex.h"
#include "grpcpp/create_channel.h"
#include "grpcpp/security/credentials.h"
#include "lumo/auth/v1/auth.grpc.pb.h"
#include "lumo/bench/v1/bench.grpc.pb.h"
#include "lumo/keys/v1/keys.grpc.pb.h"
#include "lumo/ops/v1/ops.grpc.pb.h"
#include "server/core/crypto.h"
#include "server/core/key_format.h"
#include "server/core/pepper.h"
#include "server/storage/backend.h"
#include "server/storage/backend_factory.h"

ABSL_FLAG(std::string, mode, "load", "load | setup | load_keys | stats");
ABSL_FLAG(
    std::string, rpc, "verify",
    "echo | verify | select | select_c | verify_read | insert | get | create | "
    "rotate | http");
ABSL_FLAG(std::string, target, "127.0.0.1:50051",
          "server (gRPC) or gateway (http) address host:port");
ABSL_FLAG(std::string, service_token_file, "", "service token file");
ABSL_FLAG(std::string, operator_token_file, "", "operator token (setup)");
ABSL_FLAG(std::string, key_file, "", "API keys, one per line");
ABSL_FLAG(std::string, admin_key_file, "",
          "the admin key for get/create/rotate/http calls");
ABSL_FLAG(std::string, ids_file, "",
          "key ids (or full keys: the id is taken from them), one per line");
ABSL_FLAG(std::string, tenant, "", "tenant slug");
ABSL_FLAG(std::string, expect, "valid", "verify answers: valid | invalid");
ABSL_FLAG(std::string, http_path, "/livez", "path for --rpc=http");
ABSL_FLAG(int, inflight, 16, "calls (or HTTP connections) in flight");
ABSL_FLAG(int, channels, 4, "gRPC channels (distinct connections)");
ABSL_FLAG(double, seconds, 10, "measured duration");
ABSL_FLAG(double, warmup_seconds, 2, "warm-up before measuring");
ABSL_FLAG(std::string, server_pids, "",
          "comma-separated pids whose CPU time is charged to the calls");
ABSL_FLAG(std::string, mysql, "", "admin DSN with database (load_keys)");
ABSL_FLAG(std::string, mysql_password_file, "",
          "file with the database password (load_keys)");
ABSL_FLAG(std::string, pepper_file, "", "the server's pepper file");
ABSL_FLAG(int64_t, max_calls, 0,
          "stop after this many calls (0: run for --seconds); with "
          "--warmup_seconds=0 a pass over --key_file warms the cache");
ABSL_FLAG(int, count, 1000, "keys to insert (load_keys)");
ABSL_FLAG(std::string, keys_out, "", "where load_keys writes the keys");
ABSL_FLAG(std::string, scopes, "admin:read", "scopes of loaded keys");

namespace {

using Clock = std::chrono::steady_clock;

[[noreturn]] void Die(const std::string& message) {
  fprintf(stderr, "lumokeys-bench: %s\n", message.c_str());
  exit(2);
}

std::vector<std::string> ReadLines(const std::string& path) {
  std::ifstream in(path);
  if (!in) Die("cannot read " + path);
  std::vector<std::string> out;
  std::string line;
  while (std::getline(in, line)) {
    std::string s(absl::StripAsciiWhitespace(line));
    if (!s.empty()) out.push_back(std::move(s));
  }
  return out;
}

std::string ReadFirstLine(const std::string& path) {
  std::vector<std::string> lines = ReadLines(path);
  if (lines.empty()) Die(path + " is empty");
  return lines[0];
}

// A key's id (lmk_<id>_...) or the line itself when it is not a key.
std::string IdOf(const std::string& line) {
  if (line.size() >= 16 && line.compare(0, 4, "lmk_") == 0) {
    return line.substr(4, 12);
  }
  return line;
}

// utime + stime of `pid` in clock ticks; 0 when unreadable.
uint64_t CpuTicks(int pid) {
  std::ifstream in(absl::StrCat("/proc/", pid, "/stat"));
  std::string stat;
  std::getline(in, stat);
  // Fields after the command name, which is in parentheses.
  size_t close = stat.rfind(')');
  if (close == std::string::npos) return 0;
  std::vector<std::string> fields = absl::StrSplit(stat.substr(close + 2), ' ');
  // Field 3 (state) is index 0 here; utime is field 14, stime 15.
  uint64_t utime = 0, stime = 0;
  if (fields.size() < 13 || !absl::SimpleAtoi(fields[11], &utime) ||
      !absl::SimpleAtoi(fields[12], &stime)) {
    return 0;
  }
  return utime + stime;
}

// Voluntary context switches of every thread of `pid` so far: each is a
// thread going to sleep to wait (for I/O, a lock, another thread), so their
// number per call counts hand-offs independently of the machine's load
// (involuntary ones, preemptions, are left out: they follow the load).
// Threads that have exited are not counted.
uint64_t VoluntarySwitches(int pid) {
  const std::string task_dir = absl::StrCat("/proc/", pid, "/task");
  DIR* dir = opendir(task_dir.c_str());
  if (dir == nullptr) return 0;
  uint64_t total = 0;
  while (const dirent* entry = readdir(dir)) {
    if (entry->d_name[0] == '.') continue;
    std::ifstream in(absl::StrCat(task_dir, "/", entry->d_name, "/status"));
    std::string line;
    while (std::getline(in, line)) {
      absl::string_view rest = line;
      uint64_t n = 0;
      if (absl::ConsumePrefix(&rest, "voluntary_ctxt_switches:") &&
          absl::SimpleAtoi(absl::StripAsciiWhitespace(rest), &n)) {
        total += n;
      }
    }
  }
  closedir(dir);
  return total;
}

uint64_t TotalTicks(const std::vector<int>& pids) {
  uint64_t total = 0;
  for (int pid : pids) total += CpuTicks(pid);
  return total;
}

// Shared by every loop of one run.
struct Run {
  std::atomic<bool> measuring{false};
  std::atomic<bool> stopping{false};
  std::atomic<int> active{0};
  std::atomic<uint64_t> errors{0};
  std::atomic<uint64_t> unexpected{0};
  std::atomic<int64_t> issued{0};
  // Calls that started and ended inside the measured window.
  std::atomic<uint64_t> measured_calls{0};
  int64_t max_calls = 0;  // 0: unlimited
  std::mutex mu;
  std::string first_error;
};

// One result of one call, reported by a workload.
enum class Outcome { kOk, kUnexpected, kError };

// One closed loop: the next call is issued from the previous one's
// completion. Latencies of calls that started and ended inside the
// measured window are kept per loop (no lock on the hot path).
class Loop {
 public:
  // Issues one call; `done` must be called exactly once, on any thread.
  using IssueFn = std::function<void(grpc::ClientContext*,
                                     std::function<void(Outcome)> done)>;
  Loop(Run* run, IssueFn issue) : run_(run), issue_(std::move(issue)) {
    latencies_us_.reserve(1 << 16);
  }
  void Start() {
    run_->active++;
    Next();
  }
  std::vector<float>& latencies() { return latencies_us_; }
  grpc::ClientContext* context() { return context_.get(); }

 private:
  void Next() {
    if (run_->stopping ||
        (run_->max_calls > 0 && run_->issued++ >= run_->max_calls)) {
      run_->active--;
      return;
    }
    context_ = std::make_unique<grpc::ClientContext>();
    context_->set_deadline(std::chrono::system_clock::now() +
                           std::chrono::seconds(10));
    started_ = Clock::now();
    const bool measured = run_->measuring;
    issue_(context_.get(), [this, measured](Outcome outcome) {
      const float us =
          std::chrono::duration<float, std::micro>(Clock::now() - started_)
              .count();
      if (outcome == Outcome::kError) run_->errors++;
      if (outcome == Outcome::kUnexpected) run_->unexpected++;
      if (measured && run_->measuring) {
        latencies_us_.push_back(us);
        run_->measured_calls++;
      }
      Next();
    });
  }

  Run* run_;
  IssueFn issue_;
  std::unique_ptr<grpc::ClientContext> context_;
  Clock::time_point started_;
  std::vector<float> latencies_us_;
};

Outcome FromStatus(Run* run, const grpc::Status& status) {
  if (status.ok()) return Outcome::kOk;
  std::lock_guard<std::mutex> lock(run->mu);
  if (run->first_error.empty()) {
    run->first_error =
        absl::StrCat(status.error_code(), " ", status.error_message());
  }
  return Outcome::kError;
}

std::vector<std::shared_ptr<grpc::Channel>> Channels(const std::string& target,
                                                     int n) {
  std::vector<std::shared_ptr<grpc::Channel>> out;
  for (int i = 0; i < std::max(1, n); ++i) {
    grpc::ChannelArguments args;
    args.SetInt("lumo.bench.channel", i);  // distinct args: distinct channel
    args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
    out.push_back(grpc::CreateCustomChannel(
        target, grpc::InsecureChannelCredentials(), args));
  }
  return out;
}

// Builds the issue function of loop `index` for the chosen workload.
Loop::IssueFn MakeIssue(Run* run, const std::string& rpc,
                        std::shared_ptr<grpc::Channel> channel, int index,
                        const std::string& service_token,
                        const std::string& admin_key,
                        std::shared_ptr<const std::vector<std::string>> keys,
                        std::shared_ptr<const std::vector<std::string>> ids) {
  const int inflight = absl::GetFlag(FLAGS_inflight);
  const std::string tenant = absl::GetFlag(FLAGS_tenant);
  const bool expect_valid = absl::GetFlag(FLAGS_expect) == "valid";
  // Round-robin position over keys/ids, distinct per loop.
  auto cursor = std::make_shared<size_t>(static_cast<size_t>(index));
  auto next_of = [cursor, inflight](
                     const std::vector<std::string>& v) -> const std::string& {
    const std::string& s = v[*cursor % v.size()];
    *cursor += static_cast<size_t>(inflight);
    return s;
  };
  if (rpc == "echo") {
    auto stub = std::shared_ptr<lumo::bench::v1::BenchService::Stub>(
        lumo::bench::v1::BenchService::NewStub(channel));
    auto req = std::make_shared<lumo::bench::v1::EchoRequest>();
    auto resp = std::make_shared<lumo::bench::v1::EchoResponse>();
    return [=](grpc::ClientContext* ctx, std::function<void(Outcome)> done) {
      ctx->AddMetadata("x-lumo-service-token", service_token);
      stub->async()->Echo(ctx, req.get(), resp.get(),
                          [=](grpc::Status s) { done(FromStatus(run, s)); });
    };
  }
  if (rpc == "verify") {
    if (!keys || keys->empty()) Die("--rpc=verify needs --key_file");
    auto stub = std::shared_ptr<lumo::auth::v1::AuthService::Stub>(
        lumo::auth::v1::AuthService::NewStub(channel));
    auto req = std::make_shared<lumo::auth::v1::VerifyApiKeyRequest>();
    auto resp = std::make_shared<lumo::auth::v1::VerifyApiKeyResponse>();
    req->set_tenant_slug(tenant);
    return [=](grpc::ClientContext* ctx, std::function<void(Outcome)> done) {
      ctx->AddMetadata("x-lumo-service-token", service_token);
      req->set_key(next_of(*keys));
      stub->async()->VerifyApiKey(
          ctx, req.get(), resp.get(), [=](grpc::Status s) {
            Outcome o = FromStatus(run, s);
            if (o == Outcome::kOk && resp->valid() != expect_valid) {
              o = Outcome::kUnexpected;
            }
            done(o);
          });
    };
  }
  if (rpc == "select" || rpc == "select_c" || rpc == "verify_read") {
    if (!ids || ids->empty()) Die("--rpc=select needs --ids_file");
    const bool c_client = rpc == "select_c";
    const bool verify_read = rpc == "verify_read";
    auto stub = std::shared_ptr<lumo::bench::v1::BenchService::Stub>(
        lumo::bench::v1::BenchService::NewStub(channel));
    auto req = std::make_shared<lumo::bench::v1::PointSelectRequest>();
    auto resp = std::make_shared<lumo::bench::v1::PointSelectResponse>();
    return [=](grpc::ClientContext* ctx, std::function<void(Outcome)> done) {
      ctx->AddMetadata("x-lumo-service-token", service_token);
      req->set_id(next_of(*ids));
      req->set_c_client(c_client);
      req->set_verify_read(verify_read);
      stub->async()->PointSelect(ctx, req.get(), resp.get(),
                                 [=](grpc::Status s) {
                                   Outcome o = FromStatus(run, s);
                                   if (o == Outcome::kOk && !resp->found()) {
                                     o = Outcome::kUnexpected;
                                   }
                                   done(o);
                                 });
    };
  }
  if (rpc == "insert") {
    auto stub = std::shared_ptr<lumo::bench::v1::BenchService::Stub>(
        lumo::bench::v1::BenchService::NewStub(channel));
    auto req = std::make_shared<lumo::bench::v1::InsertCommitRequest>();
    auto resp = std::make_shared<lumo::bench::v1::InsertCommitResponse>();
    return [=](grpc::ClientContext* ctx, std::function<void(Outcome)> done) {
      ctx->AddMetadata("x-lumo-service-token", service_token);
      stub->async()->InsertCommit(
          ctx, req.get(), resp.get(),
          [=](grpc::Status s) { done(FromStatus(run, s)); });
    };
  }
  auto keys_stub = std::shared_ptr<lumo::keys::v1::KeyService::Stub>(
      lumo::keys::v1::KeyService::NewStub(channel));
  if (rpc == "get") {
    if (!ids || ids->empty()) Die("--rpc=get needs --ids_file");
    auto req = std::make_shared<lumo::keys::v1::GetApiKeyRequest>();
    auto resp = std::make_shared<lumo::keys::v1::ApiKey>();
    req->set_tenant_slug(tenant);
    return [=](grpc::ClientContext* ctx, std::function<void(Outcome)> done) {
      ctx->AddMetadata("x-api-key", admin_key);
      req->set_id(next_of(*ids));
      keys_stub->async()->GetApiKey(
          ctx, req.get(), resp.get(),
          [=](grpc::Status s) { done(FromStatus(run, s)); });
    };
  }
  if (rpc == "create") {
    auto req = std::make_shared<lumo::keys::v1::CreateApiKeyRequest>();
    auto resp = std::make_shared<lumo::keys::v1::ApiKey>();
    req->set_tenant_slug(tenant);
    req->set_name("bench-created");
    req->add_scopes("admin:read");
    return [=](grpc::ClientContext* ctx, std::function<void(Outcome)> done) {
      ctx->AddMetadata("x-api-key", admin_key);
      keys_stub->async()->CreateApiKey(
          ctx, req.get(), resp.get(),
          [=](grpc::Status s) { done(FromStatus(run, s)); });
    };
  }
  if (rpc == "rotate") {
    if (!ids || static_cast<int>(ids->size()) < inflight) {
      Die("--rpc=rotate needs at least --inflight ids in --ids_file");
    }
    auto req = std::make_shared<lumo::keys::v1::RotateApiKeyRequest>();
    auto resp = std::make_shared<lumo::keys::v1::ApiKey>();
    req->set_tenant_slug(tenant);
    req->set_id((*ids)[index]);  // this loop's own key: no lock contention
    return [=](grpc::ClientContext* ctx, std::function<void(Outcome)> done) {
      ctx->AddMetadata("x-api-key", admin_key);
      keys_stub->async()->RotateApiKey(
          ctx, req.get(), resp.get(),
          [=](grpc::Status s) { done(FromStatus(run, s)); });
    };
  }
  Die("unknown --rpc=" + rpc);
}

struct Result {
  std::vector<float> latencies;
  double elapsed = 0;
  uint64_t cpu_ticks = 0;
  // The same per --server_pids entry, in order, and their voluntary
  // context switches.
  std::vector<uint64_t> cpu_ticks_by_pid;
  std::vector<uint64_t> switches_by_pid;
};

void Measure(Run* run, const std::vector<int>& pids, Result* result,
             const std::function<void()>& start,
             const std::function<void()>& wait_stopped) {
  start();
  std::this_thread::sleep_for(
      std::chrono::duration<double>(absl::GetFlag(FLAGS_warmup_seconds)));
  run->errors = 0;
  run->unexpected = 0;
  std::vector<uint64_t> ticks0_by_pid, switches0_by_pid;
  for (int pid : pids) {
    ticks0_by_pid.push_back(CpuTicks(pid));
    switches0_by_pid.push_back(VoluntarySwitches(pid));
  }
  const uint64_t ticks0 = TotalTicks(pids);
  const auto begin = Clock::now();
  run->measuring = true;
  const auto end =
      begin + std::chrono::duration_cast<Clock::duration>(
                  std::chrono::duration<double>(absl::GetFlag(FLAGS_seconds)));
  // The window ends after --seconds, or later, once a call has completed
  // inside it (up to a minute more): calls slower than the window (a short
  // --smoke run on a loaded machine) would otherwise leave the row empty.
  // QPS is over the time actually measured.
  const auto latest = end + std::chrono::seconds(60);
  while (!(run->max_calls > 0 && run->active == 0)) {
    const auto now = Clock::now();
    if (now >= end && (run->measured_calls > 0 || now >= latest)) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  run->measuring = false;
  result->elapsed = std::chrono::duration<double>(Clock::now() - begin).count();
  result->cpu_ticks = TotalTicks(pids) - ticks0;
  for (size_t i = 0; i < pids.size(); ++i) {
    result->cpu_ticks_by_pid.push_back(CpuTicks(pids[i]) - ticks0_by_pid[i]);
    result->switches_by_pid.push_back(VoluntarySwitches(pids[i]) -
                                      switches0_by_pid[i]);
  }
  run->stopping = true;
  wait_stopped();
}

// ------------------------------------------------------------ HTTP client

// A keep-alive HTTP/1.1 connection that sends one GET at a time and reads
// a response framed by Content-Length.
struct HttpConn {
  int fd = -1;
  std::string request;
  size_t sent = 0;
  std::string in;
  Clock::time_point started;
  bool measured = false;
  std::vector<float> latencies;
  size_t cursor = 0;
};

int ConnectLoopback(const std::string& target) {
  std::vector<std::string> parts = absl::StrSplit(target, ':');
  int port = 0;
  if (parts.size() != 2 || !absl::SimpleAtoi(parts[1], &port)) {
    Die("--target must be host:port");
  }
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  if (inet_pton(AF_INET,
                parts[0] == "localhost" ? "127.0.0.1" : parts[0].c_str(),
                &addr.sin_addr) != 1) {
    Die("--target host must be an IPv4 address");
  }
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0 ||
      connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    Die("cannot connect to " + target);
  }
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  return fd;
}

// The end of a chunked body that starts at `pos` of `in` (after its
// trailer), 0 when more bytes are needed, -1 when it cannot be framed.
long ChunkedBodyEnd(const std::string& in, size_t pos) {
  for (;;) {
    const size_t line_end = in.find("\r\n", pos);
    if (line_end == std::string::npos) return 0;
    std::string size_text = in.substr(pos, line_end - pos);
    size_text = size_text.substr(0, size_text.find(';'));  // extensions
    size_t chunk = 0;
    if (!absl::SimpleHexAtoi(absl::StripAsciiWhitespace(size_text), &chunk)) {
      return -1;
    }
    pos = line_end + 2;
    if (chunk == 0) break;
    if (in.size() < pos + chunk + 2) return 0;
    pos += chunk + 2;
  }
  for (;;) {  // trailer fields, up to an empty line
    const size_t end = in.find("\r\n", pos);
    if (end == std::string::npos) return 0;
    if (end == pos) return static_cast<long>(end + 2);
    pos = end + 2;
  }
}

// Returns the size of a complete response at the start of `in` (0 when
// more bytes are needed, -1 when it cannot be framed) and its status.
// Bodies are framed by Content-Length (ours) or chunked (the peer
// gateway's, for some replies).
long ParseResponse(const std::string& in, int* status) {
  size_t header_end = in.find("\r\n\r\n");
  if (header_end == std::string::npos) return 0;
  if (in.size() < 12 || !absl::SimpleAtoi(in.substr(9, 3), status)) return -1;
  std::string head = absl::AsciiStrToLower(in.substr(0, header_end));
  size_t te = head.find("\r\ntransfer-encoding:");
  if (te != std::string::npos) {
    const size_t end = head.find("\r\n", te + 2);
    if (head.substr(te, end - te).find("chunked") == std::string::npos) {
      return -1;
    }
    return ChunkedBodyEnd(in, header_end + 4);
  }
  size_t cl = head.find("\r\ncontent-length:");
  size_t length = 0;
  if (cl != std::string::npos) {
    size_t start = cl + 17;
    size_t end = head.find("\r\n", start);
    if (!absl::SimpleAtoi(
            absl::StripAsciiWhitespace(head.substr(start, end - start)),
            &length)) {
      return -1;
    }
  } else if (*status != 204 && *status != 304) {
    return -1;  // neither framing
  }
  size_t total = header_end + 4 + length;
  return in.size() >= total ? static_cast<long>(total) : 0;
}

void RunHttp(Run* run, const std::vector<int>& pids, Result* result,
             const std::string& admin_key,
             std::shared_ptr<const std::vector<std::string>> ids) {
  const std::string target = absl::GetFlag(FLAGS_target);
  const std::string path = absl::GetFlag(FLAGS_http_path);
  const int n = std::max(1, absl::GetFlag(FLAGS_inflight));
  if (path.find("{id}") != std::string::npos && (!ids || ids->empty())) {
    Die("--http_path with {id} needs --ids_file");
  }
  int ep = epoll_create1(0);
  std::vector<HttpConn> conns(n);
  auto build = [&](HttpConn& c) {
    std::string p = path;
    if (ids && !ids->empty()) {
      p = absl::StrReplaceAll(path, {{"{id}", (*ids)[c.cursor % ids->size()]}});
      c.cursor += n;
    }
    c.request = absl::StrCat("GET ", p, " HTTP/1.1\r\nHost: ", target, "\r\n");
    if (!admin_key.empty())
      absl::StrAppend(&c.request, "x-api-key: ", admin_key, "\r\n");
    c.request += "\r\n";
    c.sent = 0;
    c.started = Clock::now();
    c.measured = run->measuring;
  };
  auto send_some = [&](HttpConn& c) {
    while (c.sent < c.request.size()) {
      ssize_t w = send(c.fd, c.request.data() + c.sent,
                       c.request.size() - c.sent, MSG_NOSIGNAL);
      if (w <= 0) return;
      c.sent += static_cast<size_t>(w);
    }
  };
  std::atomic<bool> done{false};
  std::thread loop([&] {
    for (int i = 0; i < n; ++i) {
      HttpConn& c = conns[i];
      c.cursor = static_cast<size_t>(i);
      c.fd = ConnectLoopback(target);
      epoll_event ev{};
      ev.events = EPOLLIN;
      ev.data.u32 = static_cast<uint32_t>(i);
      epoll_ctl(ep, EPOLL_CTL_ADD, c.fd, &ev);
      build(c);
      send_some(c);
    }
    std::vector<epoll_event> events(n);
    char buf[65536];
    while (!run->stopping) {
      int k = epoll_wait(ep, events.data(), n, 100);
      for (int e = 0; e < k; ++e) {
        HttpConn& c = conns[events[e].data.u32];
        ssize_t r = recv(c.fd, buf, sizeof(buf), 0);
        if (r <= 0) Die("gateway closed a keep-alive connection");
        c.in.append(buf, static_cast<size_t>(r));
        int status = 0;
        long used = ParseResponse(c.in, &status);
        if (used < 0) Die("cannot frame the HTTP response");
        if (used == 0) continue;
        c.in.erase(0, static_cast<size_t>(used));
        const float us =
            std::chrono::duration<float, std::micro>(Clock::now() - c.started)
                .count();
        if (status != 200) {
          run->errors++;
          std::lock_guard<std::mutex> lock(run->mu);
          if (run->first_error.empty()) {
            run->first_error = absl::StrCat("HTTP ", status);
          }
        }
        if (c.measured && run->measuring) {
          c.latencies.push_back(us);
          run->measured_calls++;
        }
        build(c);
        send_some(c);
      }
    }
    done = true;
  });
  Measure(
      run, pids, result, [] {}, [&] { loop.join(); });
  for (HttpConn& c : conns) {
    result->latencies.insert(result->latencies.end(), c.latencies.begin(),
                             c.latencies.end());
    if (c.fd >= 0) close(c.fd);
  }
  close(ep);
}

int LoadMode() {
  const std::string rpc = absl::GetFlag(FLAGS_rpc);
  std::vector<int> pids;
  for (absl::string_view p : absl::StrSplit(absl::GetFlag(FLAGS_server_pids),
                                            ',', absl::SkipEmpty())) {
    int pid = 0;
    if (!absl::SimpleAtoi(p, &pid)) Die("bad --server_pids");
    pids.push_back(pid);
  }
  std::string service_token;
  if (!absl::GetFlag(FLAGS_service_token_file).empty()) {
    service_token = ReadFirstLine(absl::GetFlag(FLAGS_service_token_file));
  }
  std::string admin_key;
  if (!absl::GetFlag(FLAGS_admin_key_file).empty()) {
    admin_key = ReadFirstLine(absl::GetFlag(FLAGS_admin_key_file));
  }
  std::shared_ptr<const std::vector<std::string>> keys, ids;
  if (!absl::GetFlag(FLAGS_key_file).empty()) {
    auto k = std::make_shared<std::vector<std::string>>(
        ReadLines(absl::GetFlag(FLAGS_key_file)));
    keys = k;
    if (absl::GetFlag(FLAGS_ids_file).empty()) {
      auto i = std::make_shared<std::vector<std::string>>();
      for (const std::string& key : *k) i->push_back(IdOf(key));
      ids = i;
    }
  }
  if (!absl::GetFlag(FLAGS_ids_file).empty()) {
    auto i = std::make_shared<std::vector<std::string>>();
    for (const std::string& line : ReadLines(absl::GetFlag(FLAGS_ids_file))) {
      i->push_back(IdOf(line));
    }
    ids = i;
  }

  Run run;
  run.max_calls = absl::GetFlag(FLAGS_max_calls);
  Result result;
  if (rpc == "http") {
    RunHttp(&run, pids, &result, admin_key, ids);
  } else {
    std::vector<std::shared_ptr<grpc::Channel>> channels =
        Channels(absl::GetFlag(FLAGS_target), absl::GetFlag(FLAGS_channels));
    std::vector<std::unique_ptr<Loop>> loops;
    for (int i = 0; i < absl::GetFlag(FLAGS_inflight); ++i) {
      loops.push_back(std::make_unique<Loop>(
          &run, MakeIssue(&run, rpc, channels[i % channels.size()], i,
                          service_token, admin_key, keys, ids)));
    }
    Measure(
        &run, pids, &result,
        [&] {
          for (auto& loop : loops) loop->Start();
        },
        [&] {
          while (run.active > 0) {
            std::this_thread::sleep_for(std::chrono::milliseconds(5));
          }
        });
    for (auto& loop : loops) {
      result.latencies.insert(result.latencies.end(), loop->latencies().begin(),
                              loop->latencies().end());
    }
  }
  std::vector<float>& lat = result.latencies;
  std::sort(lat.begin(), lat.end());
  auto pct = [&](double p) -> double {
    return lat.empty() ? 0.0
                       : lat[std::min(lat.size() - 1,
                                      static_cast<size_t>(p * lat.size()))];
  };
  const double calls = static_cast<double>(lat.size());
  const double cpu_us = pids.empty() || calls == 0
                            ? 0.0
                            : static_cast<double>(result.cpu_ticks) * 1e6 /
                                  static_cast<double>(sysconf(_SC_CLK_TCK)) /
                                  calls;
  // Each process's share, e.g. the gateway's own CPU beside the server's.
  std::string by_pid;
  for (uint64_t ticks : result.cpu_ticks_by_pid) {
    char one[32];
    snprintf(one, sizeof(one), "%s%.1f", by_pid.empty() ? "" : ",",
             calls == 0
                 ? 0.0
                 : static_cast<double>(ticks) * 1e6 /
                       static_cast<double>(sysconf(_SC_CLK_TCK)) / calls);
    by_pid += one;
  }
  std::string switches_by_pid;
  for (uint64_t n : result.switches_by_pid) {
    char one[32];
    snprintf(one, sizeof(one), "%s%.2f", switches_by_pid.empty() ? "" : ",",
             calls == 0 ? 0.0 : static_cast<double>(n) / calls);
    switches_by_pid += one;
  }
  std::string first_error;
  {
    std::lock_guard<std::mutex> lock(run.mu);
    first_error = run.first_error;
  }
  std::string escaped;
  for (char c : first_error) {
    if (c == '"' || c == '\\') escaped += '\\';
    if (static_cast<unsigned char>(c) >= 0x20) escaped += c;
  }
  printf(
      "{\"rpc\":\"%s\",\"calls\":%.0f,\"seconds\":%.2f,\"qps\":%.0f,"
      "\"p50_us\":%.0f,\"p90_us\":%.0f,\"p99_us\":%.0f,\"p999_us\":%.0f,"
      "\"errors\":%llu,\"unexpected\":%llu,\"server_cpu_us_per_call\":%.1f,"
      "\"cpu_us_per_call_by_pid\":[%s],"
      "\"voluntary_switches_per_call_by_pid\":[%s],\"first_error\":\"%s\"}\n",
      rpc.c_str(), calls, result.elapsed, calls / result.elapsed, pct(0.50),
      pct(0.90), pct(0.99), pct(0.999),
      static_cast<unsigned long long>(run.errors.load()),
      static_cast<unsigned long long>(run.unexpected.load()), cpu_us,
      by_pid.c_str(), switches_by_pid.c_str(), escaped.c_str());
  return 0;
}

// ------------------------------------------------------------ setup, stats

int SetupMode() {
  auto channel = grpc::CreateChannel(absl::GetFlag(FLAGS_target),
                                     grpc::InsecureChannelCredentials());
  auto stub = lumo::ops::v1::OperatorService::NewStub(channel);
  const std::string token =
      ReadFirstLine(absl::GetFlag(FLAGS_operator_token_file));
  lumo::ops::v1::CreateTenantRequest req;
  req.set_slug(absl::GetFlag(FLAGS_tenant));
  req.mutable_initial_key()->set_name("bench-admin");
  req.mutable_initial_key()->add_scopes("admin:write");
  lumo::ops::v1::CreateTenantResponse resp;
  grpc::ClientContext ctx;
  ctx.AddMetadata("x-lumo-operator-token", token);
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(30));
  grpc::Status s = stub->CreateTenant(&ctx, req, &resp);
  if (!s.ok()) Die("CreateTenant: " + s.error_message());
  std::ofstream out(absl::GetFlag(FLAGS_key_file));
  out << resp.initial_key().key() << "\n";
  printf("{\"tenant_id\":%lld}\n", static_cast<long long>(resp.tenant().id()));
  return out.good() ? 0 : 1;
}

int StatsMode() {
  auto channel = grpc::CreateChannel(absl::GetFlag(FLAGS_target),
                                     grpc::InsecureChannelCredentials());
  auto stub = lumo::bench::v1::BenchService::NewStub(channel);
  grpc::ClientContext ctx;
  ctx.AddMetadata("x-lumo-service-token",
                  ReadFirstLine(absl::GetFlag(FLAGS_service_token_file)));
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
  lumo::bench::v1::StatsResponse resp;
  grpc::Status s = stub->Stats(&ctx, lumo::bench::v1::StatsRequest(), &resp);
  if (!s.ok()) Die("Stats: " + s.error_message());
  printf(
      "{\"db_queries\":%llu,\"db_statements\":%llu,"
      "\"verify_cache_entries\":%llu}\n",
      static_cast<unsigned long long>(resp.db_queries()),
      static_cast<unsigned long long>(resp.db_statements()),
      static_cast<unsigned long long>(resp.verify_cache_entries()));
  return 0;
}

// ------------------------------------------------------------ key loader

// Writes --count new keys of --tenant to the database (one transaction per
// kKeysPerCommit, through the backend's bulk loader) and their full text to
// --keys_out.
int LoadKeysMode() {
  lumo::storage::BackendOptions db;
  db.dsn = absl::GetFlag(FLAGS_mysql);
  if (!absl::GetFlag(FLAGS_mysql_password_file).empty()) {
    db.password = ReadFirstLine(absl::GetFlag(FLAGS_mysql_password_file));
  }
  if (absl::Status usable = lumo::storage::CheckBackendOptions(db);
      !usable.ok()) {
    Die("--mysql: " + std::string(usable.message()));
  }
  auto peppers =
      lumo::core::PepperSet::LoadFile(absl::GetFlag(FLAGS_pepper_file));
  if (!peppers.ok()) Die("--pepper_file: " + peppers.status().ToString());
  const int version = (*peppers)->current_version();
  auto backend = lumo::storage::OpenBackend(db);
  if (!backend.ok()) Die("database: " + backend.status().ToString());
  const std::string tenant = absl::GetFlag(FLAGS_tenant);
  for (char c : tenant) {
    if (!absl::ascii_isalnum(c) && c != '-') Die("bad --tenant");
  }
  // Scopes are a space-separated canonical list; only [a-z:] expected.
  const std::string scopes = absl::GetFlag(FLAGS_scopes);
  for (char c : scopes) {
    if (!absl::ascii_isalpha(c) && c != ':' && c != ' ') Die("bad --scopes");
  }
  std::ofstream out(absl::GetFlag(FLAGS_keys_out));
  if (!out) Die("cannot write --keys_out");
  const int count = absl::GetFlag(FLAGS_count);
  constexpr int kKeysPerCommit = 50000;
  const auto begin = Clock::now();
  std::vector<lumo::storage::NewKey> batch;
  for (int done = 0; done < count;) {
    batch.clear();
    const int rows = std::min(kKeysPerCommit, count - done);
    std::vector<std::string> full_keys;
    for (int r = 0; r < rows; ++r) {
      absl::StatusOr<std::string> id = lumo::core::GenerateKeyId();
      if (!id.ok()) Die(id.status().ToString());
      absl::StatusOr<std::string> key = lumo::core::GenerateKey(*id);
      if (!key.ok()) Die(key.status().ToString());
      absl::StatusOr<lumo::core::Digest> digest =
          (*peppers)->Mac(version, *key);
      if (!digest.ok()) Die(digest.status().ToString());
      lumo::storage::NewKey& k = batch.emplace_back();
      k.id = *id;
      k.name = "bench-loaded";
      k.scopes = absl::StrSplit(scopes, ' ', absl::SkipEmpty());
      k.created_by_type = "system";
      k.created_by_id = "bench";
      k.secret = {*digest, version};
      full_keys.push_back(*std::move(key));
    }
    if (absl::Status loaded = (*backend)->bench().LoadKeys(tenant, batch);
        !loaded.ok()) {
      Die("load keys: " + loaded.ToString());
    }
    for (const std::string& key : full_keys) out << key << "\n";
    done += rows;
  }
  out.close();
  printf("{\"loaded\":%d,\"seconds\":%.1f}\n", count,
         std::chrono::duration<double>(Clock::now() - begin).count());
  return out.good() || !out.fail() ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  absl::ParseCommandLine(argc, argv);
  // As in the server: Debian's Abseil keeps deadlock detection on, which
  // gRPC's own mutexes pay for on every call.
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
  const std::string mode = absl::GetFlag(FLAGS_mode);
  try {
    if (mode == "load") return LoadMode();
    if (mode == "setup") return SetupMode();
    if (mode == "stats") return StatsMode();
    if (mode == "load_keys") return LoadKeysMode();
  } catch (const std::exception& e) {
    Die(std::string("error: ") + e.what());
  }
  Die("unknown --mode=" + mode);
}
