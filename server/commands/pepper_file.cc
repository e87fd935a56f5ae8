#include "server/commands/pepper_file.h"

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

namespace lumo::commands {

absl::StatusOr<std::shared_ptr<core::PepperSet>> LoadPeppers(
    const std::string& pepper_file) {
  if (pepper_file.empty()) {
    return absl::InvalidArgumentError("--pepper_file is required");
  }
  absl::StatusOr<std::shared_ptr<core::PepperSet>> peppers =
      core::PepperSet::LoadReloadableFile(pepper_file);
  if (!peppers.ok()) {
    return absl::Status(
        peppers.status().code(),
        absl::StrCat("--pepper_file: ", peppers.status().message()));
  }
  return peppers;
}

}  // namespace lumo::commands
