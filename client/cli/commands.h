// The `lumokeys` CLI as a function of its arguments, environment and
// streams, so that it can be tested without a process.
#ifndef LUMOKEYS_CLIENT_CLI_COMMANDS_H_
#define LUMOKEYS_CLIENT_CLI_COMMANDS_H_

#include <functional>
#include <iosfwd>
#include <memory>
#include <string>

#include "absl/types/span.h"
#include "cli/config.h"
#include "lumokeys_client.h"

namespace lumo::cli {

// Process exit status of the CLI.
enum ExitCode : int {
  kExitOk = 0,
  // `verify`: the server said the key is not valid.
  kExitInvalid = 1,
  // Bad command line, configuration or credential file.
  kExitUsage = 2,
  // The call failed; `error: <CODE>: <message>` was printed.
  kExitRpcError = 3,
};

struct Io {
  std::istream& in;
  std::ostream& out;
  std::ostream& err;
};

// Builds the client for one invocation (tests inject an in-process
// channel).
using ClientFactory = std::function<std::unique_ptr<lumo::client::Client>(
    lumo::client::ClientOptions)>;

// The default factory: lumo::client::Client over an insecure channel.
ClientFactory DefaultClientFactory();

// Runs one CLI invocation. `args` excludes the program name. Replies go to
// io.out, notes and errors to io.err; nothing written to io.err contains a
// full key. Returns the exit status.
int RunCli(absl::Span<const std::string> args, const EnvLookup& env,
           const ClientFactory& make_client, Io io);

}  // namespace lumo::cli

#endif  // LUMOKEYS_CLIENT_CLI_COMMANDS_H_
