#include "cli/config.h"

#include <sys/stat.h>

#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"

namespace lumo::cli {
namespace {

constexpr absl::string_view kDefaultAddress = "127.0.0.1:50051";
constexpr double kDefaultTimeoutSeconds = 5;
// Anything longer is a mistake, and a deadline that overflows is worse.
constexpr double kMaxTimeoutSeconds = 24 * 3600;

// The flag if given, else the variable, else nullopt.
std::optional<std::string> FlagOrEnv(const std::optional<std::string>& flag,
                                     const EnvLookup& env, const char* name) {
  if (flag.has_value()) return flag;
  return env(name);
}

absl::StatusOr<std::string> LoadFromFileSetting(
    const std::optional<std::string>& flag, const EnvLookup& env,
    const char* env_name, absl::string_view what, absl::string_view flag_name,
    std::vector<std::string>& warnings) {
  const std::optional<std::string> path = FlagOrEnv(flag, env, env_name);
  if (!path.has_value() || path->empty()) {
    return absl::FailedPreconditionError(absl::StrCat(
        "no ", what, ": give --", flag_name, " or set ", env_name));
  }
  if (auto warning = SecretFileWarning(*path)) warnings.push_back(*warning);
  return ReadSecretFile(*path, what);
}

}  // namespace

EnvLookup ProcessEnv() {
  return [](const char* name) -> std::optional<std::string> {
    const char* value = std::getenv(name);
    if (value == nullptr || *value == '\0') return std::nullopt;
    return std::string(value);
  };
}

absl::StatusOr<Settings> ResolveSettings(const GlobalFlags& flags,
                                         const EnvLookup& env) {
  Settings settings;
  settings.address = FlagOrEnv(flags.address, env, "LUMOKEYS_ADDRESS")
                         .value_or(std::string(kDefaultAddress));
  if (settings.address.empty()) {
    return absl::InvalidArgumentError("--address must not be empty");
  }
  settings.tenant =
      FlagOrEnv(flags.tenant, env, "LUMOKEYS_TENANT").value_or("");
  settings.json = flags.json;

  double seconds = kDefaultTimeoutSeconds;
  if (auto text = FlagOrEnv(flags.timeout, env, "LUMOKEYS_TIMEOUT")) {
    if (!absl::SimpleAtod(*text, &seconds) || !std::isfinite(seconds) ||
        seconds <= 0 || seconds > kMaxTimeoutSeconds) {
      return absl::InvalidArgumentError(
          absl::StrCat("--timeout must be a number of seconds in (0, ",
                       kMaxTimeoutSeconds, "], not \"", *text, "\""));
    }
  }
  settings.timeout = absl::Seconds(seconds);
  return settings;
}

std::optional<std::string> SecretFileWarning(const std::string& path) {
  struct stat st;
  if (::stat(path.c_str(), &st) != 0) return std::nullopt;
  if ((st.st_mode & (S_IRWXG | S_IRWXO)) != 0) {
    return absl::StrCat("warning: ", path,
                        " is accessible by other users; chmod 600 it");
  }
  return std::nullopt;
}

absl::StatusOr<std::string> ReadSecretFile(const std::string& path,
                                           absl::string_view what) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    return absl::FailedPreconditionError(absl::StrCat(
        "cannot read the ", what, " file ", path, ": ", std::strerror(errno)));
  }
  std::ostringstream content;
  content << in.rdbuf();
  if (in.bad()) {
    return absl::FailedPreconditionError(
        absl::StrCat("cannot read the ", what, " file ", path));
  }
  std::string value = content.str();
  absl::StripTrailingAsciiWhitespace(&value);
  if (value.empty()) {
    return absl::FailedPreconditionError(
        absl::StrCat("the ", what, " file ", path, " is empty"));
  }
  for (char c : value) {
    if (absl::ascii_isspace(static_cast<unsigned char>(c)) ||
        !absl::ascii_isprint(static_cast<unsigned char>(c))) {
      // The content is secret: say what is wrong, not what is there.
      return absl::FailedPreconditionError(
          absl::StrCat("the ", what, " file ", path,
                       " must hold one token on one line (no spaces or control "
                       "characters)"));
    }
  }
  return value;
}

absl::StatusOr<std::string> LoadApiKey(const GlobalFlags& flags,
                                       const EnvLookup& env,
                                       std::vector<std::string>& warnings) {
  if (flags.api_key_file.has_value()) {
    return LoadFromFileSetting(flags.api_key_file, env, "LUMOKEYS_API_KEY_FILE",
                               "API key", "api-key-file", warnings);
  }
  const std::optional<std::string> file = env("LUMOKEYS_API_KEY_FILE");
  std::optional<std::string> key = env("LUMOKEYS_API_KEY");
  if (file.has_value() && key.has_value()) {
    return absl::FailedPreconditionError(
        "both LUMOKEYS_API_KEY and LUMOKEYS_API_KEY_FILE are set; set only "
        "one (or give --api-key-file)");
  }
  if (file.has_value()) {
    return LoadFromFileSetting(std::nullopt, env, "LUMOKEYS_API_KEY_FILE",
                               "API key", "api-key-file", warnings);
  }
  if (!key.has_value()) {
    return absl::FailedPreconditionError(
        "no API key: give --api-key-file, or set LUMOKEYS_API_KEY_FILE or "
        "LUMOKEYS_API_KEY");
  }
  absl::StripAsciiWhitespace(&*key);
  return *std::move(key);
}

absl::StatusOr<std::string> LoadOperatorToken(
    const GlobalFlags& flags, const EnvLookup& env,
    std::vector<std::string>& warnings) {
  return LoadFromFileSetting(flags.operator_token_file, env,
                             "LUMOKEYS_OPERATOR_TOKEN_FILE", "operator token",
                             "operator-token-file", warnings);
}

absl::StatusOr<std::string> LoadServiceToken(
    const GlobalFlags& flags, const EnvLookup& env,
    std::vector<std::string>& warnings) {
  return LoadFromFileSetting(flags.service_token_file, env,
                             "LUMOKEYS_SERVICE_TOKEN_FILE", "service token",
                             "service-token-file", warnings);
}

}  // namespace lumo::cli
