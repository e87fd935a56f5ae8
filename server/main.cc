// lumokeys-server: reads its configuration, then runs one command - serve
// (the default) until SIGTERM/SIGINT, reloading on SIGHUP, or one of the
// operator commands migrate, purge-audit and check-peppers
// (server/config/server_config.h). Wiring only.
#include <memory>
#include <vector>

#include "absl/status/statusor.h"
#include "server/commands/admin.h"
#include "server/commands/serve.h"
#include "server/config/server_config.h"
#include "server/shared/process/process.h"
#include "server/shared/process/secret_file.h"

int main(int argc, char** argv) {
  const std::vector<char*> args = lumo::process::Start(
      argc, argv, {"LUMO_SERVER_", lumo::config::kServerUsage});
  absl::StatusOr<lumo::config::ServerConfig> config =
      lumo::config::ServerConfigFromFlags(args);
  if (!config.ok()) lumo::process::Fatal(config.status().message());
  // [secret files] every file holding a secret is the running user's (or
  // root's) and unreadable by others, else no command runs.
  if (absl::Status fit = lumo::process::CheckSecretFiles(config->SecretFiles());
      !fit.ok()) {
    lumo::process::Fatal(fit.message());
  }

  if (config->command != lumo::config::ServerCommand::kServe) {
    absl::StatusOr<int> exit_status = lumo::commands::RunAdminCommand(*config);
    if (!exit_status.ok()) lumo::process::Fatal(exit_status.status().message());
    return *exit_status;
  }

  absl::StatusOr<std::unique_ptr<lumo::commands::ServerProcess>> server =
      lumo::commands::ServerProcess::Start(*config);
  if (!server.ok()) lumo::process::Fatal(server.status().message());
  const int signal_number =
      lumo::process::WaitForStopSignal([&] { (*server)->Reload(); });
  (*server)->Stop(signal_number);
  return 0;
}
