// Command-line grammar of the `lumokeys` CLI: the command table, a
// hand-written parser and the usage text.
//
//   lumokeys [global flags] <command> [<subcommand>] [options] [args]
//
// Flags are `--name=value` or `--name value`; global flags may appear
// anywhere; `--` ends flag parsing; a lone `-` is an argument (stdin).
// Giving a flag twice is an error. All functions are thread-compatible and
// pure (no I/O).
#ifndef LUMOKEYS_CLIENT_CLI_ARGS_H_
#define LUMOKEYS_CLIENT_CLI_ARGS_H_

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"

namespace lumo::cli {

// One `--flag` of a command.
struct OptionSpec {
  // Without the leading dashes, e.g. "name".
  absl::string_view name;
  // Placeholder of the value in the usage text, e.g. "N"; empty for a
  // boolean flag (which takes no value).
  absl::string_view value;
  absl::string_view help;
};

// One command, e.g. "keys create".
struct CommandSpec {
  // One or two words separated by a space.
  absl::string_view name;
  // Usage text of the positional arguments, e.g. "<id>".
  absl::string_view args;
  int min_args = 0;
  int max_args = 0;
  std::vector<OptionSpec> options;
  absl::string_view summary;
  // Extra paragraphs for `lumokeys <command> --help`; may be empty.
  absl::string_view details;
};

// Every command, in usage order.
const std::vector<CommandSpec>& Commands();

// Flags accepted by every command. Unset optionals mean "not given".
struct GlobalFlags {
  std::optional<std::string> address;
  std::optional<std::string> tenant;
  std::optional<std::string> api_key_file;
  std::optional<std::string> operator_token_file;
  std::optional<std::string> service_token_file;
  std::optional<std::string> timeout;
  bool json = false;
  bool help = false;
};

struct ParsedArgs {
  GlobalFlags globals;
  // The command, or nullptr when none was named (only valid with --help or
  // `help`).
  const CommandSpec* command = nullptr;
  // When only a command group was named (e.g. "keys --help"): its name.
  std::string group;
  // Command options by name (without dashes); boolean options map to "".
  std::map<std::string, std::string> options;
  std::vector<std::string> args;

  bool Has(absl::string_view option) const;
  // The option's value, or `fallback` when it was not given.
  std::string Get(absl::string_view option,
                  absl::string_view fallback = "") const;
};

// Parses `args` (argv without the program name). INVALID_ARGUMENT with a
// message fit for the user on any usage error. `help` and `--help`/`-h`
// set globals.help; the command is then not checked for missing arguments.
absl::StatusOr<ParsedArgs> ParseArgs(absl::Span<const std::string> args);

// The full usage text: every command, its options, and the global flags.
std::string Usage();
// The usage text of one command (with the global flags).
std::string CommandUsage(const CommandSpec& command);
// The usage text of every command of `group` ("keys", "tenant").
std::string GroupUsage(absl::string_view group);

}  // namespace lumo::cli

#endif  // LUMOKEYS_CLIENT_CLI_ARGS_H_
