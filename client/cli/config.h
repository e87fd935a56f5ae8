// Resolution of the CLI's settings from flags and the environment, and
// loading of credentials from files.
//
// Precedence: a flag beats its environment variable. The API key comes from
// --api-key-file, else from exactly one of LUMOKEYS_API_KEY_FILE and
// LUMOKEYS_API_KEY (both set is an error rather than a silent choice).
//
// Errors are INVALID_ARGUMENT (bad value) or FAILED_PRECONDITION (missing
// credential, unreadable file); messages name files and variables but never
// contain a secret.
#ifndef LUMOKEYS_CLIENT_CLI_CONFIG_H_
#define LUMOKEYS_CLIENT_CLI_CONFIG_H_

#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "cli/args.h"

namespace lumo::cli {

// Looks up an environment variable; nullopt when unset. Empty values count
// as unset.
using EnvLookup = std::function<std::optional<std::string>(const char*)>;

// The process environment.
EnvLookup ProcessEnv();

struct Settings {
  std::string address;
  // Empty when not given.
  std::string tenant;
  absl::Duration timeout;
  bool json = false;
};

// Address, tenant, timeout and output mode. Does not read any file.
absl::StatusOr<Settings> ResolveSettings(const GlobalFlags& flags,
                                         const EnvLookup& env);

// Reads a one-line secret from `path`: the content without trailing
// whitespace. Fails when the file is unreadable, empty, or holds more than
// one token. `what` names the secret in messages ("API key").
absl::StatusOr<std::string> ReadSecretFile(const std::string& path,
                                           absl::string_view what);

// The credentials, each loaded only when a command needs it. Non-fatal
// notes (a token file readable by other users) are appended to `warnings`.
absl::StatusOr<std::string> LoadApiKey(const GlobalFlags& flags,
                                       const EnvLookup& env,
                                       std::vector<std::string>& warnings);
absl::StatusOr<std::string> LoadOperatorToken(
    const GlobalFlags& flags, const EnvLookup& env,
    std::vector<std::string>& warnings);
absl::StatusOr<std::string> LoadServiceToken(
    const GlobalFlags& flags, const EnvLookup& env,
    std::vector<std::string>& warnings);

// A note when `path` is readable or writable by group or others, else
// nullopt.
std::optional<std::string> SecretFileWarning(const std::string& path);

}  // namespace lumo::cli

#endif  // LUMOKEYS_CLIENT_CLI_CONFIG_H_
