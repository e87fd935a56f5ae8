#include "server/config/secret_file.h"

#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "absl/flags/flag.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

ABSL_FLAG(bool, allow_insecure_secret_files, false,
          "Start even when a secret file (pepper, tokens, TLS keys, database "
          "password) is readable by others or owned by another user "
          "(logged as a warning); for unusual set-ups only");

namespace lumo::config {

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

}  // namespace lumo::config
