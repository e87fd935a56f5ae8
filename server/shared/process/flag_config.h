// Generic configuration sources for Abseil flags: every flag of a binary is
// also settable by environment variable and by a config file, with no
// per-flag code, so flags added later are covered automatically.
//
// Precedence (highest first): command line > environment > config file >
// the flag's default. Implemented by applying the sources in the reverse
// order: the config file, then the environment, then
// absl::ParseCommandLine, each overwriting what came before.
//
// Environment: `<prefix><FLAG_NAME_UPPERCASE>=value`, e.g. with prefix
// "LUMO_SERVER_", LUMO_SERVER_TLS_CERT_FILE=/etc/lumokeys/server.crt sets
// --tls_cert_file. A variable with the prefix that names no flag is an
// error (a typo must not silently fall back to a default).
//
// Config file (--config=PATH on the command line, else `<prefix>CONFIG`):
// UTF-8 text, one setting per line, `name = value`; `name` is the flag name
// without dashes; the value is the rest of the line with surrounding
// whitespace removed (no quoting: `listen = 127.0.0.1:50051`); blank lines
// and lines whose first non-blank character is `#` are ignored. A name that
// is no flag, a name given twice, a line without `=`, and `config` itself
// are errors naming the file and line.
//
// Values are parsed by the flag's own type parser (absl::ParseFlag), so the
// syntax is the command line's (`true`/`false`, `10s`, ...); a parse error
// names the source (file:line or variable) and the flag.
#ifndef LUMOKEYS_SERVER_SHARED_PROCESS_FLAG_CONFIG_H_
#define LUMOKEYS_SERVER_SHARED_PROCESS_FLAG_CONFIG_H_

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"

namespace lumo::process {

// Applies config-file text (the format above). `source` names the file in
// errors. Stops at the first error: INVALID_ARGUMENT, message
// "<source>:<line>: ...". Settings before the bad line stay applied.
absl::Status ApplyConfigText(absl::string_view text, absl::string_view source);

// Reads `path` and applies it as ApplyConfigText. NOT_FOUND /
// PERMISSION_DENIED (naming the path) when it cannot be read.
absl::Status ApplyConfigFile(const std::string& path);

// Applies every `NAME=value` entry of `environment` whose NAME starts with
// `prefix`, except `<prefix>CONFIG` (the config file, see above). Entries
// without the prefix are ignored. INVALID_ARGUMENT naming the variable for
// one that names no flag or whose value does not parse.
absl::Status ApplyEnvironment(absl::string_view prefix,
                              const std::vector<std::string>& environment);

// The config file path a command line selects: the value of the last
// `--config=V` / `-config=V` / `--config V` before a `--`, else "".
std::string ConfigPathFromArgs(int argc, char** argv);

// The process environment as NAME=value strings.
std::vector<std::string> ProcessEnvironment();

// Replaces absl::ParseCommandLine in a main(): sets the usage message
// (`usage` plus a paragraph on the environment prefix and --config), makes
// --help list the flags of every project file, applies the config file and
// the environment, then parses the command line. On any configuration error
// prints `{"level":"fatal","msg":...}` naming the setting to stderr and
// exits with status 2. Returns the positional arguments like
// absl::ParseCommandLine.
std::vector<char*> ParseFlags(int argc, char** argv,
                              absl::string_view env_prefix,
                              absl::string_view usage);

}  // namespace lumo::process

#endif  // LUMOKEYS_SERVER_SHARED_PROCESS_FLAG_CONFIG_H_
