// lumokeys-gateway: the HTTP/JSON front of lumokeys-server. Routes come from
// the proto annotations; this file only wires flags, the upstream channel,
// the HTTP server and signals.
#include <signal.h>

#include <cstdio>
#include <fstream>
#include <memory>
#include <string>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"
#include "gateway/gateway.h"
#include "gateway/http/http_server.h"
#include "google/protobuf/descriptor.h"
#include "grpcpp/create_channel.h"
#include "grpcpp/security/credentials.h"
#include "lumo/proto_files.h"

ABSL_FLAG(std::string, listen, "127.0.0.1:8080",
          "HTTP listen address host:port");
ABSL_FLAG(std::string, upstream, "127.0.0.1:50051",
          "lumokeys-server gRPC address host:port");
ABSL_FLAG(std::string, service_token_file, "",
          "File with the service token presented to the server (lets it trust "
          "the forwarded client address)");
ABSL_FLAG(int, threads, 0, "HTTP I/O threads (0: one per core)");
ABSL_FLAG(int64_t, max_body_bytes, 1024 * 1024,
          "Largest accepted request body; larger gets 413 before parsing");
ABSL_FLAG(int64_t, max_header_bytes, 16 * 1024,
          "Largest accepted request head; larger gets 431");
ABSL_FLAG(absl::Duration, request_timeout, absl::Seconds(30),
          "Time to receive a whole request and answer it");
ABSL_FLAG(absl::Duration, idle_timeout, absl::Seconds(60),
          "Keep-alive idle timeout");
ABSL_FLAG(absl::Duration, upstream_deadline, absl::Seconds(10),
          "Deadline of each call to the server");
ABSL_FLAG(bool, print_openapi, false,
          "Print the generated OpenAPI document and exit");
ABSL_FLAG(absl::Duration, shutdown_grace, absl::Seconds(10),
          "How long in-flight requests may finish after SIGTERM");
// [portal flags] (issue 6, docs/portal.md)
ABSL_FLAG(std::string, portal_dir, LUMO_DEFAULT_PORTAL_DIR,
          "Directory of the tenant portal's static files; empty: no portal "
          "pages");
ABSL_FLAG(bool, secure_cookies, false,
          "Browsers reach the gateway over HTTPS (directly or through a TLS "
          "proxy): portal cookies get Secure and the __Host- prefix, and "
          "Origin must be https");

namespace {

[[noreturn]] void Fatal(absl::string_view message) {
  fprintf(stderr, "{\"level\":\"fatal\",\"msg\":%s}\n",
          lumo::gateway::JsonQuote(message).c_str());
  exit(1);
}

void Info(absl::string_view message) {
  fprintf(stderr, "{\"level\":\"info\",\"msg\":%s}\n",
          lumo::gateway::JsonQuote(message).c_str());
}

}  // namespace

int main(int argc, char** argv) {
  absl::SetProgramUsageMessage(
      "LumoKeys HTTP/JSON gateway.\n"
      "  lumokeys-gateway --upstream=127.0.0.1:50051 --listen=127.0.0.1:8080");
  absl::ParseCommandLine(argc, argv);

  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  signal(SIGPIPE, SIG_IGN);

  const std::string listen = absl::GetFlag(FLAGS_listen);
  const size_t colon = listen.rfind(':');
  int port = 0;
  if (colon == std::string::npos ||
      !absl::SimpleAtoi(listen.substr(colon + 1), &port) || port < 0 ||
      port > 65535) {
    Fatal(absl::StrCat("--listen: expected host:port, got ", listen));
  }
  std::string host = listen.substr(0, colon);
  if (absl::StartsWith(host, "[") && absl::EndsWith(host, "]")) {
    host = host.substr(1, host.size() - 2);
  }

  lumo::gateway::GatewayOptions options;
  // Every service of every LumoKeys proto file; those without annotated
  // methods simply contribute no routes.
  for (const char* name : lumo::kProtoFiles) {
    const google::protobuf::FileDescriptor* file =
        google::protobuf::DescriptorPool::generated_pool()->FindFileByName(
            name);
    if (file == nullptr) Fatal(absl::StrCat("proto file not linked: ", name));
    for (int i = 0; i < file->service_count(); ++i) {
      options.services.push_back(file->service(i));
    }
  }
  // Replies up to 64 MiB: file exports (at most 10,000 audit events, capped
  // at 32 MiB by the server) exceed gRPC's 4 MiB default.
  grpc::ChannelArguments channel_args;
  channel_args.SetMaxReceiveMessageSize(64 << 20);
  options.upstream = grpc::CreateCustomChannel(
      absl::GetFlag(FLAGS_upstream), grpc::InsecureChannelCredentials(),
      channel_args);
  options.upstream_deadline = absl::GetFlag(FLAGS_upstream_deadline);
  if (!absl::GetFlag(FLAGS_service_token_file).empty()) {
    std::ifstream in(absl::GetFlag(FLAGS_service_token_file));
    if (!in) Fatal("--service_token_file: cannot read the file");
    std::string token;
    std::getline(in, token);
    options.service_token = std::string(absl::StripAsciiWhitespace(token));
  }
  // [portal] (issue 6)
  options.secure_cookies = absl::GetFlag(FLAGS_secure_cookies);
  if (!absl::GetFlag(FLAGS_portal_dir).empty()) {
    lumo::gateway::PortalOptions portal_options;
    portal_options.dir = absl::GetFlag(FLAGS_portal_dir);
    portal_options.secure_cookies = options.secure_cookies;
    absl::StatusOr<std::unique_ptr<lumo::gateway::Portal>> portal =
        lumo::gateway::Portal::Load(portal_options);
    if (!portal.ok()) Fatal(portal.status().message());
    options.portal = *std::move(portal);
  }
  absl::StatusOr<std::unique_ptr<lumo::gateway::Gateway>> gateway =
      lumo::gateway::Gateway::Create(std::move(options));
  if (!gateway.ok()) Fatal(gateway.status().message());
  if (absl::GetFlag(FLAGS_print_openapi)) {
    printf("%s\n", (*gateway)->openapi_json().c_str());
    return 0;
  }

  lumo::gateway::HttpServerOptions http;
  http.address = host;
  http.port = port;
  http.threads = absl::GetFlag(FLAGS_threads);
  http.max_body_bytes = absl::GetFlag(FLAGS_max_body_bytes);
  http.max_header_bytes = absl::GetFlag(FLAGS_max_header_bytes);
  http.request_timeout = absl::GetFlag(FLAGS_request_timeout);
  http.idle_timeout = absl::GetFlag(FLAGS_idle_timeout);
  http.common_headers = lumo::gateway::SecurityHeaders();
  http.error_renderer = [](int status, absl::string_view code,
                           absl::string_view message, absl::string_view) {
    return lumo::gateway::ErrorResponse(status, code, message);
  };
  lumo::gateway::Gateway* g = gateway->get();
  lumo::gateway::HttpServer server(http, [g](lumo::gateway::HttpRequest request,
                                             lumo::gateway::Responder respond) {
    g->Handle(std::move(request), std::move(respond));
  });
  if (absl::Status started = server.Start(); !started.ok()) {
    Fatal(started.message());
  }
  Info(absl::StrCat("serving http://", listen.substr(0, colon), ":",
                    server.bound_port(), " -> ", absl::GetFlag(FLAGS_upstream),
                    " (", (*gateway)->routes().routes().size(), " routes)"));

  int signal_number = 0;
  sigwait(&signals, &signal_number);
  Info("shutting down");
  server.Shutdown(absl::GetFlag(FLAGS_shutdown_grace));
  Info("stopped");
  return 0;
}
