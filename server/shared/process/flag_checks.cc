#include "server/shared/process/flag_checks.h"

#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"

namespace lumo::process {

absl::Status SetTogether(FlagValue a, FlagValue b) {
  if (a.set() == b.set()) return absl::OkStatus();
  return absl::InvalidArgumentError(
      absl::StrCat(a.name, " and ", b.name, " must be set together"));
}

absl::Status Needs(FlagValue dependent, std::initializer_list<FlagValue> needed,
                   absl::string_view why) {
  if (!dependent.set()) return absl::OkStatus();
  bool all_set = true;
  std::vector<absl::string_view> names;
  for (const FlagValue& flag : needed) {
    all_set = all_set && flag.set();
    names.push_back(flag.name);
  }
  if (all_set) return absl::OkStatus();
  std::string message = absl::StrCat(dependent.name, " needs ");
  for (size_t i = 0; i < names.size(); ++i) {
    if (i > 0)
      absl::StrAppend(&message, i + 1 == names.size() ? " and " : ", ");
    absl::StrAppend(&message, names[i]);
  }
  if (!why.empty()) absl::StrAppend(&message, " (", why, ")");
  return absl::InvalidArgumentError(message);
}

bool IsLoopbackAddress(absl::string_view address) {
  return absl::StartsWith(address, "127.") ||
         absl::StartsWith(address, "localhost:") ||
         absl::StartsWith(address, "[::1]:") ||
         absl::StartsWith(address, "unix:");
}

absl::Status CheckPlaintextAddress(FlagValue address, bool tls,
                                   bool allow_remote_plaintext,
                                   absl::string_view protocol,
                                   absl::string_view tls_hint) {
  if (tls || allow_remote_plaintext || IsLoopbackAddress(address.value)) {
    return absl::OkStatus();
  }
  return absl::FailedPreconditionError(absl::StrCat(
      address.name, "=", address.value, " is not loopback: ", protocol,
      " is refused there unless --allow_remote_plaintext is set (or ", tls_hint,
      ")"));
}

}  // namespace lumo::process
