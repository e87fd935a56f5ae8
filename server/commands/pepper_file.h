// The pepper file (--pepper_file) as the serve and check-peppers commands
// load it.
#ifndef LUMOKEYS_SERVER_COMMANDS_PEPPER_FILE_H_
#define LUMOKEYS_SERVER_COMMANDS_PEPPER_FILE_H_

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "server/core/pepper.h"

namespace lumo::commands {

// Loads `pepper_file` for later Reload() calls: INVALID_ARGUMENT
// "--pepper_file is required" when it is empty; the file's own errors
// prefixed "--pepper_file: ".
absl::StatusOr<std::shared_ptr<core::PepperSet>> LoadPeppers(
    const std::string& pepper_file);

}  // namespace lumo::commands

#endif  // LUMOKEYS_SERVER_COMMANDS_PEPPER_FILE_H_
