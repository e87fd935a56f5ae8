// lumokeys-gateway: the HTTP/JSON front of lumokeys-server. Reads its
// configuration (gateway/config), builds the gateway (gateway/commands),
// serves until SIGTERM/SIGINT and reloads its TLS files on SIGHUP. Wiring
// only.
#include <cstdio>
#include <memory>
#include <vector>

#include "absl/status/statusor.h"
#include "gateway/commands/serve.h"
#include "gateway/config/gateway_config.h"
#include "server/shared/process/process.h"
#include "server/shared/process/secret_file.h"

int main(int argc, char** argv) {
  const std::vector<char*> args = lumo::process::Start(
      argc, argv, {"LUMO_GATEWAY_", lumo::gateway::kGatewayUsage});
  absl::StatusOr<lumo::gateway::GatewayConfig> config =
      lumo::gateway::GatewayConfigFromFlags(args);
  if (!config.ok()) lumo::process::Fatal(config.status().message());
  // [secret files] (docs/operations.md "Secret files")
  if (absl::Status fit = lumo::process::CheckSecretFiles(config->SecretFiles());
      !fit.ok()) {
    lumo::process::Fatal(fit.message());
  }

  absl::StatusOr<std::unique_ptr<lumo::gateway::GatewayProcess>> gateway =
      lumo::gateway::GatewayProcess::Create(*config);
  if (!gateway.ok()) lumo::process::Fatal(gateway.status().message());
  if (config->print_openapi) {
    std::printf("%s\n", (*gateway)->openapi_json().c_str());
    return 0;
  }
  if (absl::Status started = (*gateway)->Start(); !started.ok()) {
    lumo::process::Fatal(started.message());
  }
  lumo::process::WaitForStopSignal([&] { (*gateway)->Reload(); });
  (*gateway)->Stop();
  return 0;
}
