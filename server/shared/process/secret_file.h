// Files that hold secrets (the pepper, service and operator tokens, TLS
// private keys, the database password), one rule for the server and the
// gateway (docs/operations.md "Secret files"): who may read the file
// (checked at start-up), and what a file holding one value must contain.
//
// Who may read it. A secret file must be a regular file, readable by nobody but
// its owner and at most its group (mode 0600, 0400, 0640 or 0440: no write or
// execute for the group, nothing for others, no execute for the owner), and
// owned by the user the binary runs as or by root. Anything else means another
// local account could read or replace the secret, so the binary refuses to
// start, naming the flag, the file, what is wrong and how to fix it.
// `--allow_insecure_secret_files` (defined here, for both binaries) turns
// the refusal into a warning for unusual set-ups.
//
// What it holds. A token or password file holds one value: the file's text
// with surrounding ASCII whitespace (spaces, tabs, line ends) removed. The
// value must be non-empty, one line, free of control characters and at
// most kMaxSecretValueBytes long. A token (service, operator) must also be
// printable ASCII (bytes 0x20-0x7E: what gRPC metadata can carry, so the
// gateway can present exactly what the server hashed) and at least
// kMinTokenLength characters long. Errors name the flag and say what is
// wrong, never the content.
//
// Thread-compatible: call from main() before serving.
#ifndef LUMOKEYS_SERVER_SHARED_PROCESS_SECRET_FILE_H_
#define LUMOKEYS_SERVER_SHARED_PROCESS_SECRET_FILE_H_

#include <cstddef>
#include <string>
#include <utility>
#include <vector>

#include "absl/flags/declare.h"
#include "absl/functional/function_ref.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

ABSL_DECLARE_FLAG(bool, allow_insecure_secret_files);

namespace lumo::process {

inline constexpr size_t kMaxSecretValueBytes = 4096;
inline constexpr size_t kMinTokenLength = 16;

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

// CheckSecretFiles that logs each override warning (a `warning` log line).
absl::Status CheckSecretFiles(
    const std::vector<std::pair<std::string, std::string>>& flag_paths);

// The value of a token file's text `text` (the rule above). `flag` names
// the setting ("--service_token_file") and `label` the token ("service
// token") in errors: INVALID_ARGUMENT "<flag>: the file holds no token",
// "<flag>: the <label> holds characters ...", "<flag>: the <label> must be
// at least 16 characters", "<flag>: the <label> is longer than 4096 bytes".
absl::StatusOr<std::string> TokenFromText(absl::string_view flag,
                                          absl::string_view label,
                                          absl::string_view text);

// The value of a password file's text (the rule above, without the token
// extras): INVALID_ARGUMENT "<flag>: the file holds no password" and the
// like.
absl::StatusOr<std::string> PasswordFromText(absl::string_view flag,
                                             absl::string_view text);

// The whole text of `path`, read for `flag`: NOT_FOUND "<flag>: cannot read
// <path>: <reason>" when it cannot be opened, INVALID_ARGUMENT when it is
// larger than `max_bytes`.
absl::StatusOr<std::string> ReadFlagFile(absl::string_view flag,
                                         const std::string& path,
                                         size_t max_bytes = 16 << 20);

// ReadFlagFile, then TokenFromText / PasswordFromText.
absl::StatusOr<std::string> ReadTokenFile(absl::string_view flag,
                                          const std::string& path,
                                          absl::string_view label);
absl::StatusOr<std::string> ReadPasswordFile(absl::string_view flag,
                                             const std::string& path);

}  // namespace lumo::process

#endif  // LUMOKEYS_SERVER_SHARED_PROCESS_SECRET_FILE_H_
