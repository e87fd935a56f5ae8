// The gateway's request path against a real gRPC upstream (FakeUpstream):
// which request headers become which metadata, and that no header value
// can make gRPC abort the process (docs/gateway.md, "Headers forwarded as
// metadata"; "The client address behind proxies").
#include <atomic>
#include <chrono>
#include <future>
#include <memory>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "gateway/gateway.h"
#include "gtest/gtest.h"
#include "lumo/api/annotations.pb.h"
#include "lumo/keys/v1/keys.pb.h"
#include "tests/gateway/fake_upstream.h"

namespace lumo::gateway {
namespace {

using ::lumo::testing::FakeUpstream;
using ::lumo::testing::UpstreamCall;

constexpr char kListKeys[] = "/t/acme/api/v1/admin/api-keys";
constexpr char kServiceToken[] = "service-token-0123456789";

class GatewayUpstreamTest : public ::testing::Test {
 protected:
  std::unique_ptr<Gateway> NewGateway(GatewayOptions options = {}) {
    return NewGatewayTo(upstream_, std::move(options));
  }

  // A gateway in front of `upstream` (a fake with its own answers).
  static std::unique_ptr<Gateway> NewGatewayTo(const FakeUpstream& upstream,
                                               GatewayOptions options = {}) {
    absl::StatusOr<std::vector<const google::protobuf::ServiceDescriptor*>>
        services = LumoServices();
    EXPECT_TRUE(services.ok()) << services.status();
    options.services = *services;
    options.upstream = upstream.NewChannel();
    absl::StatusOr<std::unique_ptr<Gateway>> gateway =
        Gateway::Create(std::move(options));
    EXPECT_TRUE(gateway.ok()) << gateway.status();
    return gateway.ok() ? *std::move(gateway) : nullptr;
  }

  static GatewayOptions WithToken() {
    GatewayOptions options;
    options.service_token = kServiceToken;
    return options;
  }

  static HttpRequest Get(absl::string_view path, HttpHeaders headers) {
    HttpRequest request;
    request.method = "GET";
    request.target = std::string(path);
    request.path = std::string(path);
    request.headers = std::move(headers);
    request.headers.emplace_back("host", "gateway.test");
    request.remote_ip = "127.0.0.1";
    request.request_id = "req-1";
    return request;
  }

  // The gateway's answer (it may come from a gRPC thread).
  static HttpResponse Send(Gateway& gateway, HttpRequest request) {
    auto promise = std::make_shared<std::promise<HttpResponse>>();
    std::future<HttpResponse> answer = promise->get_future();
    gateway.Handle(std::move(request), [promise](HttpResponse response) {
      promise->set_value(std::move(response));
    });
    // Generous: the fake answers at once.
    EXPECT_EQ(answer.wait_for(std::chrono::seconds(60)),
              std::future_status::ready);
    return answer.get();
  }

  // The one call the upstream got since the last look.
  UpstreamCall OnlyCall() {
    std::vector<UpstreamCall> calls = upstream_.TakeCalls();
    EXPECT_EQ(calls.size(), 1u);
    return calls.empty() ? UpstreamCall() : calls.front();
  }

  FakeUpstream upstream_;
};

TEST_F(GatewayUpstreamTest, UserAgentBytesGrpcRefusesAreEscaped) {
  std::unique_ptr<Gateway> gateway = NewGateway(WithToken());
  ASSERT_NE(gateway, nullptr);
  HttpResponse response =
      Send(*gateway,
           Get(kListKeys, {{"authorization", "Bearer lmk_x"},
                           {"user-agent", "caf\xc3\xa9-app/1.0\t(x) 100%"}}));
  EXPECT_EQ(response.status, 200) << response.body;
  UpstreamCall call = OnlyCall();
  EXPECT_EQ(call.Get("x-lumo-user-agent"), "caf%C3%A9-app/1.0%09(x) 100%");
  // Everything else as before.
  EXPECT_EQ(call.Get("authorization"), "Bearer lmk_x");
  EXPECT_EQ(call.Get("x-lumo-service-token"), kServiceToken);
  EXPECT_EQ(call.Get("x-lumo-client-ip"), "127.0.0.1");
  EXPECT_EQ(call.Get("x-lumo-http-method"), "GET");
  EXPECT_EQ(call.Get("x-lumo-http-route"),
            "/t/{tenant_slug}/api/v1/admin/api-keys");
  EXPECT_EQ(call.Get("x-request-id"), "req-1");
}

TEST_F(GatewayUpstreamTest, EveryByteInTheUserAgentIsForwardedOrEscaped) {
  std::unique_ptr<Gateway> gateway = NewGateway(WithToken());
  ASSERT_NE(gateway, nullptr);
  for (int b = 0; b < 256; ++b) {
    const std::string agent = "ua/" + std::string(1, static_cast<char>(b));
    HttpResponse response =
        Send(*gateway, Get(kListKeys, {{"user-agent", agent}}));
    ASSERT_EQ(response.status, 200) << b;
    const std::string forwarded = OnlyCall().Get("x-lumo-user-agent");
    if (b >= 0x20 && b <= 0x7e) {
      EXPECT_EQ(forwarded, agent) << b;
    } else {
      EXPECT_EQ(forwarded.size(), 6u) << b;  // "ua/%XX"
      EXPECT_EQ(forwarded[3], '%') << b;
    }
  }
}

TEST_F(GatewayUpstreamTest, TheUserAgentIsCutWithoutSplittingAnEscape) {
  std::unique_ptr<Gateway> gateway = NewGateway(WithToken());
  ASSERT_NE(gateway, nullptr);
  const std::string agent = std::string(510, 'a') + "\xc3\xa9";
  Send(*gateway, Get(kListKeys, {{"user-agent", agent}}));
  EXPECT_EQ(OnlyCall().Get("x-lumo-user-agent"), std::string(510, 'a'));
}

TEST_F(GatewayUpstreamTest, CredentialsGrpcWouldRefuseAreRefusedWith400) {
  std::unique_ptr<Gateway> gateway = NewGateway(WithToken());
  ASSERT_NE(gateway, nullptr);
  const struct {
    const char* header;
    const char* name;
    std::string value;
  } cases[] = {
      {"authorization", "Authorization", "Bearer\tlmk_x"},
      {"authorization", "Authorization", "Bearer lmk_caf\xc3\xa9"},
      {"authorization", "Authorization", "Bearer lmk_\x7f"},
      {"x-api-key", "X-API-Key", "lmk_x\ty"},
      {"x-api-key", "X-API-Key", "\xff"},
  };
  for (const auto& c : cases) {
    HttpResponse response =
        Send(*gateway, Get(kListKeys, {{c.header, c.value}}));
    EXPECT_EQ(response.status, 400) << c.value;
    EXPECT_TRUE(absl::StartsWith(response.body,
                                 "{\"error\":true,\"status\":400,\"code\":"
                                 "\"invalid_request\",\"message\":\"the "))
        << response.body;
    EXPECT_TRUE(absl::StrContains(response.body, c.name)) << response.body;
    // The value itself is not echoed.
    EXPECT_FALSE(absl::StrContains(response.body, "lmk_")) << response.body;
    EXPECT_TRUE(upstream_.TakeCalls().empty()) << c.value;
  }
  // Without a service token too (the credential is forwarded either way).
  std::unique_ptr<Gateway> plain = NewGateway();
  ASSERT_NE(plain, nullptr);
  EXPECT_EQ(Send(*plain, Get(kListKeys, {{"x-api-key", "k\tv"}})).status, 400);
  EXPECT_TRUE(upstream_.TakeCalls().empty());
}

TEST_F(GatewayUpstreamTest, OversizedCredentialsAre431NotAnUpstreamError) {
  std::unique_ptr<Gateway> gateway = NewGateway(WithToken());
  ASSERT_NE(gateway, nullptr);
  // Under the limit: forwarded.
  const std::string fits = "Bearer " + std::string(4000, 'a');
  EXPECT_EQ(Send(*gateway, Get(kListKeys, {{"authorization", fits}})).status,
            200);
  EXPECT_EQ(OnlyCall().Get("authorization"), fits);
  // Over it (alone, or summed over several lines): refused before the
  // call, which the server would refuse as RESOURCE_EXHAUSTED (429).
  for (const HttpHeaders& headers :
       {HttpHeaders{{"authorization", "Bearer " + std::string(7000, 'a')}},
        HttpHeaders{{"x-api-key", std::string(3500, 'k')},
                    {"x-api-key", std::string(3500, 'k')}}}) {
    HttpResponse response = Send(*gateway, Get(kListKeys, headers));
    EXPECT_EQ(response.status, 431) << response.body;
    EXPECT_TRUE(absl::StrContains(response.body, "\"header_too_large\""))
        << response.body;
    EXPECT_TRUE(upstream_.TakeCalls().empty());
  }
}

TEST_F(GatewayUpstreamTest, EveryByteInAKeyHeaderIsForwardedOrRefused) {
  std::unique_ptr<Gateway> gateway = NewGateway(WithToken());
  ASSERT_NE(gateway, nullptr);
  for (int b = 0; b < 256; ++b) {
    const std::string key = "lmk_" + std::string(1, static_cast<char>(b));
    HttpResponse response =
        Send(*gateway, Get(kListKeys, {{"x-api-key", key}}));
    if (b >= 0x20 && b <= 0x7e) {
      ASSERT_EQ(response.status, 200) << b;
      EXPECT_EQ(OnlyCall().Get("x-api-key"), key) << b;
    } else {
      ASSERT_EQ(response.status, 400) << b;
      EXPECT_TRUE(upstream_.TakeCalls().empty()) << b;
    }
  }
}

TEST_F(GatewayUpstreamTest, TheCsrfHeaderOfASessionIsForwardedOrRefused) {
  std::unique_ptr<Gateway> gateway = NewGateway(WithToken());
  ASSERT_NE(gateway, nullptr);
  HttpResponse response =
      Send(*gateway, Get(kListKeys, {{"cookie", "lumo_session=abc123"},
                                     {"x-csrf-token", "csrf_ok"}}));
  EXPECT_EQ(response.status, 200) << response.body;
  UpstreamCall call = OnlyCall();
  EXPECT_EQ(call.Get("x-lumo-session"), "abc123");
  EXPECT_EQ(call.Get("x-lumo-csrf-token"), "csrf_ok");

  response = Send(*gateway, Get(kListKeys, {{"cookie", "lumo_session=abc123"},
                                            {"x-csrf-token", "caf\xc3\xa9"}}));
  EXPECT_EQ(response.status, 400);
  EXPECT_TRUE(absl::StrContains(response.body, "X-CSRF-Token"))
      << response.body;
  EXPECT_TRUE(upstream_.TakeCalls().empty());

  // Without a session the header is not forwarded at all (as before).
  response = Send(*gateway, Get(kListKeys, {{"x-csrf-token", "a\tb"}}));
  EXPECT_EQ(response.status, 200);
  EXPECT_EQ(OnlyCall().Get("x-lumo-csrf-token"), "<absent>");
}

TEST_F(GatewayUpstreamTest, ForwardedAddressesCountOnlyFromTrustedProxies) {
  GatewayOptions options = WithToken();
  options.trusted_proxies =
      *TrustedProxies::Parse("10.0.0.0/8", "x-forwarded-for");
  std::unique_ptr<Gateway> gateway = NewGateway(std::move(options));
  ASSERT_NE(gateway, nullptr);

  HttpRequest from_proxy =
      Get(kListKeys, {{"x-forwarded-for", "1.1.1.1, 203.0.113.7, 10.0.0.2"},
                      {"forwarded", "for=198.51.100.1"}});
  from_proxy.remote_ip = "10.0.0.1";
  EXPECT_EQ(Send(*gateway, from_proxy).status, 200);
  EXPECT_EQ(OnlyCall().Get("x-lumo-client-ip"), "203.0.113.7");

  HttpRequest direct = Get(kListKeys, {{"x-forwarded-for", "203.0.113.7"}});
  direct.remote_ip = "198.51.100.9";
  EXPECT_EQ(Send(*gateway, direct).status, 200);
  EXPECT_EQ(OnlyCall().Get("x-lumo-client-ip"), "198.51.100.9");

  HttpRequest malformed =
      Get(kListKeys, {{"x-forwarded-for", "203.0.113.7:x"}});
  malformed.remote_ip = "10.0.0.1";
  HttpResponse response = Send(*gateway, malformed);
  EXPECT_EQ(response.status, 400);
  EXPECT_TRUE(
      absl::StrContains(response.body, "malformed X-Forwarded-For header"))
      << response.body;
  EXPECT_TRUE(upstream_.TakeCalls().empty());
}

// The invalid field of an upstream error comes from the status details
// (lumo.api.ErrorDetail), never from the message text.
TEST_F(GatewayUpstreamTest, TheInvalidFieldComesFromTheStatusDetails) {
  lumo::api::ErrorDetail detail;
  detail.set_code("validation_error");
  detail.set_field("expiresAt");
  lumo::api::ErrorStatus details;
  details.set_code(3);
  details.set_message("expiresAt: must be in the future");
  details.add_details()->PackFrom(detail);
  struct Case {
    std::string details;
    const char* expected_details;
  } cases[] = {
      {details.SerializeAsString(), "{\"field\":\"expiresAt\"}"},
      // The same message without details names no field.
      {"", "{}"},
      // Details that do not parse are ignored.
      {"\xff\x01garbage", "{}"},
  };
  for (const Case& c : cases) {
    FakeUpstream upstream([&c](const UpstreamCall&) {
      lumo::testing::UpstreamAnswer answer;
      answer.code = grpc::StatusCode::INVALID_ARGUMENT;
      answer.message = "expiresAt: must be in the future";
      answer.trailing_metadata = {{"lumo-error-code", "validation_error"}};
      answer.details = c.details;
      return answer;
    });
    std::unique_ptr<Gateway> gateway = NewGatewayTo(upstream);
    ASSERT_NE(gateway, nullptr);
    HttpResponse response = Send(*gateway, Get(kListKeys, {}));
    EXPECT_EQ(response.status, 400);
    EXPECT_EQ(response.body,
              std::string("{\"error\":true,\"status\":400,\"code\":"
                          "\"validation_error\",\"message\":\"expiresAt: must "
                          "be in the future\",\"details\":") +
                  c.expected_details + "}");
  }
}

// Reply fields marked in the protos: a SECRET_SHOWN_ONCE field only when
// set, a SECRET_NEVER_SHOWN field never.
TEST_F(GatewayUpstreamTest, SecretFieldsAreRenderedAsTheirMarksSay) {
  std::string reply;
  FakeUpstream upstream([&reply](const UpstreamCall&) {
    lumo::testing::UpstreamAnswer answer;
    answer.reply = reply;
    return answer;
  });
  std::unique_ptr<Gateway> gateway = NewGatewayTo(upstream);
  ASSERT_NE(gateway, nullptr);

  lumo::keys::v1::ApiKey key;
  key.set_id("abc");
  reply = key.SerializeAsString();
  HttpResponse got = Send(*gateway, Get(kListKeys + std::string("/abc"), {}));
  EXPECT_EQ(got.status, 200) << got.body;
  EXPECT_FALSE(absl::StrContains(got.body, "\"key\"")) << got.body;
  key.set_key("lmk_abc_secret");
  reply = key.SerializeAsString();
  got = Send(*gateway, Get(kListKeys + std::string("/abc"), {}));
  EXPECT_TRUE(absl::StrContains(got.body, "\"key\":\"lmk_abc_secret\""))
      << got.body;

  // Every field marked SECRET_NEVER_SHOWN in a reply type is left out even
  // when set (here the login reply's tokens, which also become cookies).
  RenderOptions options = RenderOptionsFromFieldRules(*LumoServices());
  EXPECT_TRUE(options.omit_fields.contains(
      "lumo.portal.v1.LoginResponse.session_token"));
  EXPECT_TRUE(
      options.omit_fields.contains("lumo.portal.v1.LoginResponse.csrf_token"));
  EXPECT_TRUE(options.omit_fields_when_unset.contains(
      "lumo.admin.v1.OAuthClient.client_secret"));
  EXPECT_TRUE(
      options.omit_fields_when_unset.contains("lumo.api.PageMeta.next_cursor"));
  EXPECT_TRUE(
      options.omit_fields_when_unset.contains("lumo.keys.v1.ApiKey.key"));
  // Request-only secrets are never rendered, so they need no rule here.
  EXPECT_FALSE(
      options.omit_fields.contains("lumo.portal.v1.LoginRequest.password"));
}

// Unary calls complete on the gateway's UpstreamQueue threads: however many
// run at once, from however many threads, each answer reaches the responder
// of its own request.
TEST_F(GatewayUpstreamTest, ConcurrentCallsEachGetTheirOwnReply) {
  FakeUpstream upstream(
      [](const UpstreamCall& call) {
        lumo::keys::v1::GetApiKeyRequest request;
        EXPECT_TRUE(request.ParseFromString(call.request));
        lumo::keys::v1::ApiKey key;
        key.set_id(request.id());
        lumo::testing::UpstreamAnswer answer;
        answer.reply = key.SerializeAsString();
        return answer;
      },
      /*record=*/false);
  for (int upstream_threads : {1, 3}) {
    GatewayOptions options = WithToken();
    options.upstream_threads = upstream_threads;
    std::unique_ptr<Gateway> gateway =
        NewGatewayTo(upstream, std::move(options));
    ASSERT_NE(gateway, nullptr);
    constexpr int kThreads = 6;
    constexpr int kCalls = 60;
    std::atomic<int> right{0};
    std::vector<std::thread> threads;
    for (int t = 0; t < kThreads; ++t) {
      threads.emplace_back([&, t] {
        // Several in flight per thread, answered in any order.
        std::vector<std::future<HttpResponse>> answers;
        for (int i = 0; i < kCalls; ++i) {
          auto promise = std::make_shared<std::promise<HttpResponse>>();
          answers.push_back(promise->get_future());
          gateway->Handle(Get(absl::StrCat(kListKeys, "/k", t, "x", i), {}),
                          [promise](HttpResponse response) {
                            promise->set_value(std::move(response));
                          });
        }
        for (int i = 0; i < kCalls; ++i) {
          if (answers[i].wait_for(std::chrono::seconds(60)) !=
              std::future_status::ready) {
            continue;
          }
          HttpResponse response = answers[i].get();
          if (response.status == 200 &&
              absl::StrContains(response.body,
                                absl::StrCat("\"id\":\"k", t, "x", i, "\""))) {
            right.fetch_add(1);
          }
        }
      });
    }
    for (std::thread& t : threads) t.join();
    EXPECT_EQ(right.load(), kThreads * kCalls) << upstream_threads;
  }
}

TEST_F(GatewayUpstreamTest, CreateRefusesUnsafeSettings) {
  absl::StatusOr<std::vector<const google::protobuf::ServiceDescriptor*>>
      services = LumoServices();
  ASSERT_TRUE(services.ok());
  GatewayOptions bad_token;
  bad_token.services = *services;
  bad_token.service_token = "token\twith tab";
  EXPECT_EQ(Gateway::Create(std::move(bad_token)).status().code(),
            absl::StatusCode::kInvalidArgument);

  GatewayOptions proxies_without_token;
  proxies_without_token.services = *services;
  proxies_without_token.trusted_proxies =
      *TrustedProxies::Parse("10.0.0.0/8", "x-forwarded-for");
  EXPECT_EQ(Gateway::Create(std::move(proxies_without_token)).status().code(),
            absl::StatusCode::kFailedPrecondition);
}

// Counts what the gateway tells it and answers through a wrapper that
// records the status, so the test can see both were used before the
// gateway was gone (the observer of a real gateway dies right after it).
class RecordingObserver : public GatewayObserver {
 public:
  Responder Observe(const RequestLabels&, Responder respond) override {
    return [this, respond = std::move(respond)](HttpResponse response) {
      {
        absl::MutexLock lock(&mu_);
        statuses_.push_back(response.status);
      }
      respond(std::move(response));
    };
  }
  void UpstreamError(grpc::StatusCode code) override {
    absl::MutexLock lock(&mu_);
    upstream_errors_.push_back(code);
  }
  std::vector<int> statuses() {
    absl::MutexLock lock(&mu_);
    return statuses_;
  }
  std::vector<grpc::StatusCode> upstream_errors() {
    absl::MutexLock lock(&mu_);
    return upstream_errors_;
  }

 private:
  absl::Mutex mu_;
  std::vector<int> statuses_ ABSL_GUARDED_BY(mu_);
  std::vector<grpc::StatusCode> upstream_errors_ ABSL_GUARDED_BY(mu_);
};

// An upstream answer that holds the call (without blocking a gRPC thread).
testing::UpstreamAnswer HoldEveryCall(const UpstreamCall&) {
  testing::UpstreamAnswer answer;
  answer.hold = true;
  return answer;
}

TEST_F(GatewayUpstreamTest, DestroyingTheGatewayAnswersItsCallsInFlightFirst) {
  FakeUpstream holding(HoldEveryCall);
  RecordingObserver observer;
  GatewayOptions options = WithToken();
  options.observer = &observer;
  options.upstream_deadline = absl::Seconds(600);
  std::unique_ptr<Gateway> gateway = NewGatewayTo(holding, std::move(options));
  ASSERT_NE(gateway, nullptr);

  absl::Mutex answers_mu;
  std::vector<int> answers;
  auto record = [&](HttpResponse response) {
    absl::MutexLock lock(&answers_mu);
    answers.push_back(response.status);
  };
  gateway->Handle(Get(kListKeys, {{"authorization", "Bearer lk_x"}}), record);
  gateway->Handle(Get("/healthz", {}), record);
  const absl::Time deadline = absl::Now() + absl::Seconds(60);
  while (holding.held() < 2 && absl::Now() < deadline) {
    absl::SleepFor(absl::Milliseconds(5));
  }
  ASSERT_EQ(holding.held(), 2) << "the upstream never held both calls";

  gateway.reset();
  // Both calls were answered before the destructor returned: cancelled
  // upstream, so 503 to the client, and the observer heard of it while it
  // was still guaranteed alive.
  {
    absl::MutexLock lock(&answers_mu);
    EXPECT_EQ(answers, (std::vector<int>{503, 503}));
  }
  EXPECT_EQ(observer.statuses(), (std::vector<int>{503, 503}));
  EXPECT_EQ(observer.upstream_errors(),
            std::vector<grpc::StatusCode>{grpc::StatusCode::CANCELLED});
}

TEST_F(GatewayUpstreamTest, DestroyingTheGatewayEndsItsStreamsInFlightFirst) {
  // A streamed export whose upstream never sends its first message.
  FakeUpstream holding(HoldEveryCall);
  RecordingObserver observer;
  GatewayOptions options = WithToken();
  options.observer = &observer;
  std::unique_ptr<Gateway> gateway = NewGatewayTo(holding, std::move(options));
  ASSERT_NE(gateway, nullptr);

  absl::Mutex answers_mu;
  std::vector<int> answers;
  gateway->Handle(Get("/t/acme/api/v1/admin/audit-logs/export",
                      {{"authorization", "Bearer lk_x"}}),
                  [&](HttpResponse response) {
                    absl::MutexLock lock(&answers_mu);
                    answers.push_back(response.status);
                  });
  const absl::Time deadline = absl::Now() + absl::Seconds(60);
  while (holding.held() < 1 && absl::Now() < deadline) {
    absl::SleepFor(absl::Milliseconds(5));
  }
  ASSERT_EQ(holding.held(), 1) << "the upstream never held the stream";
  std::vector<UpstreamCall> calls = holding.TakeCalls();
  ASSERT_EQ(calls.size(), 1u);
  EXPECT_EQ(calls[0].method, "/lumo.audit.v1.AuditService/StreamAuditExport");

  gateway.reset();
  // Answered before the destructor returned, the observer told while it
  // was still guaranteed alive.
  {
    absl::MutexLock lock(&answers_mu);
    EXPECT_EQ(answers, std::vector<int>{503});
  }
  EXPECT_EQ(observer.statuses(), std::vector<int>{503});
  EXPECT_EQ(observer.upstream_errors(),
            std::vector<grpc::StatusCode>{grpc::StatusCode::CANCELLED});
}

}  // namespace
}  // namespace lumo::gateway
