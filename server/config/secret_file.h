// Start-up check for files that hold secrets (the pepper, service and
// operator tokens, TLS private keys, the database password), shared by the
// server and the gateway (docs/operations.md "Secret files").
//
// A secret file must be a regular file, readable by nobody but its owner
// and at most its group (mode 0600, 0400, 0640 or 0440: no write or execute
// for the group, nothing for others, no execute for the owner), and owned
// by the user the binary runs as or by root. Anything else means another
// local account could read or replace the secret, so the binary refuses to
// start, naming the flag, the file, what is wrong and how to fix it.
// `--allow_insecure_secret_files` (defined here, for both binaries) turns
// the refusal into a warning for unusual set-ups.
//
// Thread-compatible: call from main() before serving.
#ifndef LUMOKEYS_SERVER_CONFIG_SECRET_FILE_H_
#define LUMOKEYS_SERVER_CONFIG_SECRET_FILE_H_

#include <string>
#include <utility>
#include <vector>

#include "absl/flags/declare.h"
#include "absl/functional/function_ref.h"
#include "absl/status/status.h"
#include "absl/strings/string_view.h"

ABSL_DECLARE_FLAG(bool, allow_insecure_secret_files);

namespace lumo::config {

// OK when `path` (the value of `flag`) is fit to hold a secret; otherwise
// FAILED_PRECONDITION (NOT_FOUND when it cannot be inspected) whose message
// says why and how to fix it. Ignores the override flag.
absl::Status CheckSecretFile(absl::string_view flag, const std::string& path);

// CheckSecretFile honouring --allow_insecure_secret_files: with it, a
// failed check is returned as OK and `*warning` (when given) holds the
// message to log. An empty `path` (flag unset) and a file that cannot be
// inspected (the reader reports it, naming the flag) are OK.
absl::Status CheckSecretFileFlag(absl::string_view flag,
                                 const std::string& path, std::string* warning);

// CheckSecretFileFlag for each (flag, path) of a binary: the first refusal,
// or OK; each override warning is passed to `warn`.
absl::Status CheckSecretFiles(
    const std::vector<std::pair<std::string, std::string>>& flag_paths,
    absl::FunctionRef<void(absl::string_view)> warn);

}  // namespace lumo::config

#endif  // LUMOKEYS_SERVER_CONFIG_SECRET_FILE_H_
