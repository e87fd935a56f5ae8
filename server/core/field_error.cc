#include "server/core/field_error.h"

#include <utility>

#include "absl/strings/cord.h"

namespace lumo::core {

absl::Status WithInvalidField(absl::Status status, absl::string_view field) {
  if (!status.ok()) status.SetPayload(kInvalidFieldPayload, absl::Cord(field));
  return status;
}

absl::Status InvalidFieldError(absl::string_view field,
                               absl::string_view message) {
  return WithInvalidField(absl::InvalidArgumentError(message), field);
}

std::string InvalidFieldOf(const absl::Status& status) {
  auto field = status.GetPayload(kInvalidFieldPayload);
  return field.has_value() ? std::string(*field) : std::string();
}

}  // namespace lumo::core
