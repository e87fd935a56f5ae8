// lumokeys-gateway's flags -> GatewayConfig (gateway/config/gateway_config.h):
// the options a flag set produces and the documented error of each bad
// combination. Flags are set through the config-file path
// (process::ApplyConfigText), i.e. by each flag's own parser.
#include "gateway/config/gateway_config.h"

#include <string>
#include <utility>
#include <vector>

#include "absl/flags/reflection.h"
#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/time/time.h"
#include "gtest/gtest.h"
#include "tests/shared/process/flag_conversion_test.h"

namespace lumo::gateway {
namespace {

constexpr char kDev[] = "insecure_dev_no_service_token = true\n";

using GatewayConfigTest =
    process::FlagConversionTest<GatewayConfig, GatewayConfigFromFlags>;

TEST_F(GatewayConfigTest, DefaultsServePlainHttpOnLoopback) {
  absl::StatusOr<GatewayConfig> config = ConfigFor(kDev);
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_FALSE(config->print_openapi);
  EXPECT_EQ(config->listen, "127.0.0.1:8080");
  EXPECT_EQ(config->http.address, "127.0.0.1");
  EXPECT_EQ(config->http.port, 8080);
  EXPECT_EQ(config->http.threads, 0);
  EXPECT_EQ(config->http.max_body_bytes, 1024u * 1024u);
  EXPECT_EQ(config->http.max_header_bytes, 16u * 1024u);
  EXPECT_EQ(config->http.request_timeout, absl::Seconds(30));
  EXPECT_EQ(config->http.idle_timeout, absl::Seconds(60));
  EXPECT_EQ(config->http.tls_cert_file, "");
  EXPECT_EQ(config->upstream, "127.0.0.1:50051");
  EXPECT_EQ(config->upstream_tls.ca_file, "");
  EXPECT_EQ(config->upstream_deadline, absl::Seconds(10));
  EXPECT_EQ(config->service_token_file, "");
  EXPECT_TRUE(config->insecure_dev_no_service_token);
  EXPECT_TRUE(config->trusted_proxies.empty());
  EXPECT_FALSE(config->portal_dir.empty());
  EXPECT_FALSE(config->secure_cookies);
  EXPECT_EQ(config->shutdown_grace, absl::Seconds(10));
}

TEST_F(GatewayConfigTest, FlagSetProducesTheOptions) {
  absl::StatusOr<GatewayConfig> config = ConfigFor(
      "listen = [::1]:0\n"
      "upstream = 10.0.0.5:50052\n"
      "upstream_tls_ca_file = /etc/lumokeys/ca.crt\n"
      "upstream_tls_cert_file = /etc/lumokeys/gw.crt\n"
      "upstream_tls_key_file = /etc/lumokeys/gw.key\n"
      "upstream_tls_server_name = lumokeys.internal\n"
      "upstream_deadline = 3s\n"
      "service_token_file = /etc/lumokeys/service.token\n"
      "trusted_proxies = 10.20.0.0/16\n"
      "forwarded_header = forwarded\n"
      "threads = 3\n"
      "max_body_bytes = 2048\n"
      "max_header_bytes = 512\n"
      "request_timeout = 5s\n"
      "idle_timeout = 7s\n"
      "portal_dir =\n"
      "secure_cookies = true\n"
      "shutdown_grace = 2s\n");
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->http.address, "::1");
  EXPECT_EQ(config->http.port, 0);
  EXPECT_EQ(config->http.threads, 3);
  EXPECT_EQ(config->http.max_body_bytes, 2048u);
  EXPECT_EQ(config->http.max_header_bytes, 512u);
  EXPECT_EQ(config->http.request_timeout, absl::Seconds(5));
  EXPECT_EQ(config->http.idle_timeout, absl::Seconds(7));
  EXPECT_EQ(config->upstream, "10.0.0.5:50052");
  EXPECT_EQ(config->upstream_tls.ca_file, "/etc/lumokeys/ca.crt");
  EXPECT_EQ(config->upstream_tls.cert_file, "/etc/lumokeys/gw.crt");
  EXPECT_EQ(config->upstream_tls.key_file, "/etc/lumokeys/gw.key");
  EXPECT_EQ(config->upstream_tls.server_name, "lumokeys.internal");
  EXPECT_EQ(config->upstream_deadline, absl::Seconds(3));
  EXPECT_EQ(config->service_token_file, "/etc/lumokeys/service.token");
  EXPECT_FALSE(config->trusted_proxies.empty());
  EXPECT_EQ(config->trusted_proxies.header_name(), "Forwarded");
  EXPECT_EQ(config->portal_dir, "");
  EXPECT_TRUE(config->secure_cookies);
  EXPECT_EQ(config->shutdown_grace, absl::Seconds(2));
  EXPECT_EQ(config->SecretFiles(),
            (std::vector<std::pair<std::string, std::string>>{
                {"--service_token_file", "/etc/lumokeys/service.token"},
                {"--tls_key_file", ""},
                {"--upstream_tls_key_file", "/etc/lumokeys/gw.key"}}));
}

TEST_F(GatewayConfigTest, ServingHttpsImpliesSecureCookiesAndAllowsRemote) {
  absl::StatusOr<GatewayConfig> config =
      ConfigFor(std::string(kDev) +
                "listen = 0.0.0.0:443\n"
                "tls_cert_file = /etc/lumokeys/gw.crt\n"
                "tls_key_file = /etc/lumokeys/gw.key\n");
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_TRUE(config->secure_cookies);
  EXPECT_EQ(config->http.tls_cert_file, "/etc/lumokeys/gw.crt");
  EXPECT_EQ(config->http.tls_key_file, "/etc/lumokeys/gw.key");
}

TEST_F(GatewayConfigTest, PrintOpenApiNeedsNoServiceToken) {
  absl::StatusOr<GatewayConfig> config = ConfigFor("print_openapi = true\n");
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_TRUE(config->print_openapi);
}

TEST_F(GatewayConfigTest, BadSettingsGiveTheDocumentedErrors) {
  const struct {
    std::string settings;
    absl::StatusCode code;
    std::string message;
  } cases[] = {
      {std::string(kDev) + "listen = 8080\n",
       absl::StatusCode::kInvalidArgument,
       "--listen: expected host:port, got 8080"},
      {std::string(kDev) + "listen = 127.0.0.1:99999\n",
       absl::StatusCode::kInvalidArgument,
       "--listen: expected host:port, got 127.0.0.1:99999"},
      {std::string(kDev) + "tls_cert_file = /c\n",
       absl::StatusCode::kInvalidArgument,
       "--tls_cert_file and --tls_key_file must be set together"},
      {std::string(kDev) +
           "upstream_tls_ca_file = /ca\nupstream_tls_key_file = /k\n",
       absl::StatusCode::kInvalidArgument,
       "--upstream_tls_cert_file and --upstream_tls_key_file must be set "
       "together"},
      {std::string(kDev) +
           "upstream_tls_cert_file = /c\nupstream_tls_key_file = /k\n",
       absl::StatusCode::kInvalidArgument,
       "--upstream_tls_cert_file needs --upstream_tls_ca_file"},
      {std::string(kDev) + "upstream_tls_server_name = x\n",
       absl::StatusCode::kInvalidArgument,
       "--upstream_tls_server_name needs --upstream_tls_ca_file"},
      {std::string(kDev) + "listen = 10.3.3.3:8080\n",
       absl::StatusCode::kFailedPrecondition,
       "--listen=10.3.3.3:8080 is not loopback: plain HTTP is refused there "
       "unless --allow_remote_plaintext is set (or --tls_cert_file and "
       "--tls_key_file are)"},
      {std::string(kDev) + "upstream = 10.4.4.4:50051\n",
       absl::StatusCode::kFailedPrecondition,
       "--upstream=10.4.4.4:50051 is not loopback: plaintext gRPC is refused "
       "there unless --allow_remote_plaintext is set (or "
       "--upstream_tls_ca_file is)"},
      {"", absl::StatusCode::kInvalidArgument,
       "--service_token_file is required: without a service token the server "
       "sees the gateway's address for every client, so key CIDR lists and "
       "per-address limits do not hold. For a development set-up without "
       "one, pass --insecure_dev_no_service_token"},
      {std::string(kDev) + "service_token_file = /t\n",
       absl::StatusCode::kInvalidArgument,
       "--insecure_dev_no_service_token contradicts --service_token_file: set "
       "one of them"},
      {std::string(kDev) + "trusted_proxies = 10.0.0.0/8\n",
       absl::StatusCode::kInvalidArgument,
       "--trusted_proxies needs --service_token_file"},
      {std::string(kDev) + "threads = -1\n", absl::StatusCode::kInvalidArgument,
       "--threads, --max_body_bytes and --max_header_bytes must not be "
       "negative"},
      {std::string(kDev) + "max_body_bytes = -1\n",
       absl::StatusCode::kInvalidArgument,
       "--threads, --max_body_bytes and --max_header_bytes must not be "
       "negative"},
  };
  for (const auto& c : cases) {
    absl::FlagSaver saver;
    EXPECT_EQ(Refusal(c.settings, c.code), c.message) << c.settings;
  }
}

TEST_F(GatewayConfigTest, UnparsableProxySettingsNameTheEntry) {
  {
    absl::FlagSaver saver;
    const std::string message = Refusal(
        "service_token_file = /t\ntrusted_proxies = 10.0.0.0/8,proxy\n");
    EXPECT_TRUE(
        absl::StartsWith(message, "--trusted_proxies / --forwarded_header: "))
        << message;
    EXPECT_TRUE(absl::StrContains(message, "proxy")) << message;
  }
  const std::string message =
      Refusal(std::string(kDev) + "forwarded_header = x-real-ip\n");
  EXPECT_TRUE(absl::StrContains(message, "x-real-ip")) << message;
}

TEST_F(GatewayConfigTest, RemotePlaintextNeedsTheOverride) {
  absl::StatusOr<GatewayConfig> config =
      ConfigFor(std::string(kDev) +
                "listen = 10.3.3.3:8080\nupstream = 10.4.4.4:50051\n"
                "allow_remote_plaintext = true\n");
  EXPECT_TRUE(config.ok()) << config.status();
}

TEST_F(GatewayConfigTest, PositionalArgumentsAreRefused) {
  EXPECT_EQ(Refusal(kDev, absl::StatusCode::kInvalidArgument, {"serve"}),
            "unexpected argument 'serve' (lumokeys-gateway takes flags only)");
}

}  // namespace
}  // namespace lumo::gateway
