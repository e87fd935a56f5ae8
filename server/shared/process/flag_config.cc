#include "server/shared/process/flag_config.h"

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/reflection.h"
#include "absl/flags/usage.h"
#include "absl/flags/usage_config.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"

extern char** environ;

ABSL_FLAG(std::string, config, "",
          "Config file: lines `flag_name = value` (# comments); command-line "
          "flags and environment variables override it");

namespace lumo::process {
namespace {

// Flags Abseil defines for itself that make no sense from a file or the
// environment (they control parsing itself).
bool IsParserFlag(absl::string_view name) {
  return name == "flagfile" || name == "fromenv" || name == "tryfromenv" ||
         name == "undefok" || name == "config";
}

// Sets flag `name` from `value`; errors are prefixed with `where`.
absl::Status SetFlag(absl::string_view name, absl::string_view value,
                     absl::string_view where) {
  absl::CommandLineFlag* flag = absl::FindCommandLineFlag(name);
  if (flag == nullptr || flag->IsRetired() || IsParserFlag(name)) {
    return absl::InvalidArgumentError(absl::StrCat(
        where, ": unknown setting '", name, "' (no flag --", name, ")"));
  }
  std::string error;
  if (!flag->ParseFrom(value, &error)) {
    return absl::InvalidArgumentError(
        absl::StrCat(where, ": invalid value for --", name, ": ", error));
  }
  return absl::OkStatus();
}

[[noreturn]] void FatalJson(absl::string_view message) {
  std::string line = "{\"level\":\"fatal\",\"msg\":\"";
  for (char c : message) {
    switch (c) {
      case '"':
        line += "\\\"";
        break;
      case '\\':
        line += "\\\\";
        break;
      case '\n':
        line += "\\n";
        break;
      default:
        if (static_cast<unsigned char>(c) < 0x20) {
          line += ' ';
        } else {
          line += c;
        }
    }
  }
  line += "\"}\n";
  fputs(line.c_str(), stderr);
  exit(2);
}

}  // namespace

absl::Status ApplyConfigText(absl::string_view text, absl::string_view source) {
  std::set<std::string> seen;
  int line_number = 0;
  while (!text.empty()) {
    ++line_number;
    const size_t eol = text.find('\n');
    absl::string_view line = text.substr(0, eol);
    text.remove_prefix(eol == absl::string_view::npos ? text.size() : eol + 1);
    line = absl::StripAsciiWhitespace(line);
    if (line.empty() || line[0] == '#') continue;
    const std::string where = absl::StrCat(source, ":", line_number);
    const size_t eq = line.find('=');
    if (eq == absl::string_view::npos) {
      return absl::InvalidArgumentError(
          absl::StrCat(where, ": expected `name = value`"));
    }
    const std::string name(absl::StripAsciiWhitespace(line.substr(0, eq)));
    const absl::string_view value =
        absl::StripAsciiWhitespace(line.substr(eq + 1));
    if (name.empty()) {
      return absl::InvalidArgumentError(
          absl::StrCat(where, ": expected `name = value`"));
    }
    if (!seen.insert(name).second) {
      return absl::InvalidArgumentError(
          absl::StrCat(where, ": '", name, "' is set twice"));
    }
    if (name == "config") {
      return absl::InvalidArgumentError(
          absl::StrCat(where, ": a config file cannot name another one"));
    }
    absl::Status set = SetFlag(name, value, where);
    if (!set.ok()) return set;
  }
  return absl::OkStatus();
}

absl::Status ApplyConfigFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    return absl::NotFoundError(
        absl::StrCat("--config: cannot read config file ", path));
  }
  std::stringstream buffer;
  buffer << in.rdbuf();
  return ApplyConfigText(buffer.str(), path);
}

absl::Status ApplyEnvironment(absl::string_view prefix,
                              const std::vector<std::string>& environment) {
  const std::string config_variable = absl::StrCat(prefix, "CONFIG");
  for (const std::string& entry : environment) {
    if (!absl::StartsWith(entry, prefix)) continue;
    const size_t eq = entry.find('=');
    if (eq == std::string::npos) continue;
    const absl::string_view variable(entry.data(), eq);
    if (variable == config_variable) continue;
    const absl::string_view suffix = variable.substr(prefix.size());
    // Flag names are lower case; the variable is their upper-case spelling.
    if (suffix.empty() || suffix != absl::AsciiStrToUpper(suffix)) {
      return absl::InvalidArgumentError(
          absl::StrCat("environment variable ", variable, ": expected ", prefix,
                       "<FLAG_NAME_IN_UPPER_CASE>"));
    }
    absl::Status set =
        SetFlag(absl::AsciiStrToLower(suffix), entry.substr(eq + 1),
                absl::StrCat("environment variable ", variable));
    if (!set.ok()) return set;
  }
  return absl::OkStatus();
}

std::string ConfigPathFromArgs(int argc, char** argv) {
  std::string path;
  for (int i = 1; i < argc; ++i) {
    absl::string_view arg = argv[i];
    if (arg == "--") break;
    if (!absl::ConsumePrefix(&arg, "--")) {
      if (!absl::ConsumePrefix(&arg, "-")) continue;
    }
    if (absl::ConsumePrefix(&arg, "config=")) {
      path = std::string(arg);
    } else if (arg == "config" && i + 1 < argc) {
      path = argv[++i];
    }
  }
  return path;
}

std::vector<std::string> ProcessEnvironment() {
  std::vector<std::string> result;
  for (char** e = environ; e != nullptr && *e != nullptr; ++e) {
    result.emplace_back(*e);
  }
  return result;
}

std::vector<char*> ParseFlags(int argc, char** argv,
                              absl::string_view env_prefix,
                              absl::string_view usage) {
  absl::SetProgramUsageMessage(absl::StrCat(
      usage, "\n\nEvery flag can also be set by environment variable ",
      env_prefix, "<FLAG_NAME_IN_UPPER_CASE> (e.g. ", env_prefix,
      "LISTEN) and by a config file (--config=PATH or ", env_prefix,
      "CONFIG=PATH) of `flag_name = value` lines; precedence: command line > "
      "environment > config file > default. Unknown settings and invalid "
      "values stop the start with a message naming them."));
  absl::FlagsUsageConfig usage_config;
  // --help lists every flag of the project (main files and libraries), not
  // only those of the main file; Abseil's own flags stay under --helpfull.
  usage_config.contains_help_flags = [](absl::string_view file) {
    return !absl::StrContains(file, "absl/");
  };
  usage_config.contains_helpshort_flags = usage_config.contains_help_flags;
  absl::SetFlagsUsageConfig(usage_config);

  std::string path = ConfigPathFromArgs(argc, argv);
  if (path.empty()) {
    const char* from_env = getenv(absl::StrCat(env_prefix, "CONFIG").c_str());
    if (from_env != nullptr) path = from_env;
  }
  if (!path.empty()) {
    absl::Status applied = ApplyConfigFile(path);
    if (!applied.ok()) FatalJson(applied.message());
    absl::SetFlag(&FLAGS_config, path);
  }
  absl::Status applied = ApplyEnvironment(env_prefix, ProcessEnvironment());
  if (!applied.ok()) FatalJson(applied.message());
  return absl::ParseCommandLine(argc, argv);
}

}  // namespace lumo::process
