#include "server/shared/process/secret_file.h"

#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>

#include "absl/flags/flag.h"
#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "server/observability/log.h"

ABSL_FLAG(bool, allow_insecure_secret_files, false,
          "Start even when a secret file (pepper, tokens, TLS keys, database "
          "password) is readable by others or owned by another user "
          "(logged as a warning); for unusual set-ups only");

namespace lumo::process {

absl::Status CheckSecretFile(absl::string_view flag, const std::string& path) {
  struct stat st;
  if (stat(path.c_str(), &st) != 0) {
    return absl::NotFoundError(absl::StrCat(flag, ": cannot inspect ", path,
                                            ": ", std::strerror(errno)));
  }
  if (!S_ISREG(st.st_mode)) {
    return absl::FailedPreconditionError(
        absl::StrCat(flag, ": ", path, " is not a regular file"));
  }
  const mode_t mode = st.st_mode & 07777;
  // Group may read; nobody else may do anything; nothing executes it.
  if ((mode & 07137) != 0) {
    return absl::FailedPreconditionError(absl::StrFormat(
        "%s: %s has mode %04o, which lets other accounts read or change the "
        "secret; make it 0600 (or 0640 for a group the service shares), "
        "e.g. chmod 600 %s (--allow_insecure_secret_files overrides)",
        flag, path, mode, path));
  }
  const uid_t me = geteuid();
  if (st.st_uid != me && st.st_uid != 0) {
    return absl::FailedPreconditionError(absl::StrFormat(
        "%s: %s is owned by uid %d, not by the running user (uid %d) or "
        "root; chown it (--allow_insecure_secret_files overrides)",
        flag, path, static_cast<int>(st.st_uid), static_cast<int>(me)));
  }
  return absl::OkStatus();
}

absl::Status CheckSecretFileFlag(absl::string_view flag,
                                 const std::string& path,
                                 std::string* warning) {
  if (path.empty()) return absl::OkStatus();
  absl::Status checked = CheckSecretFile(flag, path);
  // A file that cannot be inspected is left to the code that reads it,
  // which names the flag in its own error.
  if (absl::IsNotFound(checked)) return absl::OkStatus();
  if (checked.ok() || !absl::GetFlag(FLAGS_allow_insecure_secret_files)) {
    return checked;
  }
  if (warning != nullptr) *warning = std::string(checked.message());
  return absl::OkStatus();
}

absl::Status CheckSecretFiles(
    const std::vector<std::pair<std::string, std::string>>& flag_paths,
    absl::FunctionRef<void(absl::string_view)> warn) {
  for (const auto& [flag, path] : flag_paths) {
    std::string warning;
    if (absl::Status fit = CheckSecretFileFlag(flag, path, &warning);
        !fit.ok()) {
      return fit;
    }
    if (!warning.empty()) warn(warning);
  }
  return absl::OkStatus();
}

absl::Status CheckSecretFiles(
    const std::vector<std::pair<std::string, std::string>>& flag_paths) {
  return CheckSecretFiles(
      flag_paths, [](absl::string_view warning) { log::Warning(warning); });
}

namespace {

// Overwrites `text` (a secret that is about to be dropped) so that the
// bytes do not linger in freed memory; volatile keeps the stores.
void Wipe(std::string& text) {
  volatile char* bytes = text.data();
  for (size_t i = 0; i < text.size(); ++i) bytes[i] = 0;
}

// The rule every one-value secret file follows; `token` adds the token
// extras (printable ASCII, a minimum length).
absl::StatusOr<std::string> OneValue(absl::string_view flag,
                                     absl::string_view noun,
                                     absl::string_view label,
                                     absl::string_view text, bool token) {
  const absl::string_view value = absl::StripAsciiWhitespace(text);
  if (value.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat(flag, ": the file holds no ", noun));
  }
  if (value.size() > kMaxSecretValueBytes) {
    return absl::InvalidArgumentError(
        absl::StrCat(flag, ": the ", label, " is longer than ",
                     kMaxSecretValueBytes, " bytes"));
  }
  for (const char c : value) {
    const unsigned char byte = static_cast<unsigned char>(c);
    const bool control = byte < 0x20 || byte == 0x7f;
    if (control || (token && byte > 0x7e)) {
      return absl::InvalidArgumentError(absl::StrCat(
          flag, ": the ", label,
          token ? " holds characters gRPC metadata cannot carry (one line "
                  "of printable ASCII is expected)"
                : " holds control characters (one line is expected)"));
    }
  }
  if (token && value.size() < kMinTokenLength) {
    return absl::InvalidArgumentError(
        absl::StrCat(flag, ": the ", label, " must be at least ",
                     kMinTokenLength, " characters"));
  }
  return std::string(value);
}

}  // namespace

absl::StatusOr<std::string> TokenFromText(absl::string_view flag,
                                          absl::string_view label,
                                          absl::string_view text) {
  return OneValue(flag, "token", label, text, /*token=*/true);
}

absl::StatusOr<std::string> PasswordFromText(absl::string_view flag,
                                             absl::string_view text) {
  return OneValue(flag, "password", "password", text, /*token=*/false);
}

absl::StatusOr<std::string> ReadFlagFile(absl::string_view flag,
                                         const std::string& path,
                                         size_t max_bytes) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    return absl::NotFoundError(
        absl::StrCat(flag, ": cannot read ", path, ": ", std::strerror(errno)));
  }
  std::string text;
  char buffer[4096];
  while (in.read(buffer, sizeof(buffer)) || in.gcount() > 0) {
    text.append(buffer, static_cast<size_t>(in.gcount()));
    if (text.size() > max_bytes) {
      return absl::InvalidArgumentError(absl::StrCat(
          flag, ": ", path, " is larger than ", max_bytes, " bytes"));
    }
  }
  if (in.bad()) {
    return absl::NotFoundError(absl::StrCat(flag, ": cannot read ", path));
  }
  return text;
}

absl::StatusOr<std::string> ReadTokenFile(absl::string_view flag,
                                          const std::string& path,
                                          absl::string_view label) {
  absl::StatusOr<std::string> text =
      ReadFlagFile(flag, path, 2 * kMaxSecretValueBytes);
  if (!text.ok()) return text.status();
  absl::StatusOr<std::string> token = TokenFromText(flag, label, *text);
  Wipe(*text);
  return token;
}

absl::StatusOr<std::string> ReadPasswordFile(absl::string_view flag,
                                             const std::string& path) {
  absl::StatusOr<std::string> text =
      ReadFlagFile(flag, path, 2 * kMaxSecretValueBytes);
  if (!text.ok()) return text.status();
  absl::StatusOr<std::string> password = PasswordFromText(flag, *text);
  Wipe(*text);
  return password;
}

}  // namespace lumo::process
