#include "gateway/transcoding/field_path.h"

#include <algorithm>
#include <cstddef>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/string_view.h"
#include "google/protobuf/descriptor.h"

namespace lumo::gateway {

using google::protobuf::Descriptor;
using google::protobuf::FieldDescriptor;

absl::StatusOr<FieldPath> ResolveFieldPath(const Descriptor* root,
                                           absl::string_view path,
                                           bool accept_json_names) {
  if (path.empty()) return absl::InvalidArgumentError("empty field path");
  FieldPath result;
  const Descriptor* current = root;
  for (absl::string_view name : absl::StrSplit(path, '.')) {
    if (current == nullptr) {
      return absl::InvalidArgumentError(
          absl::StrCat("'", FieldPathName(result), "' is not a message"));
    }
    const std::string name_str(name);
    const FieldDescriptor* field = current->FindFieldByName(name_str);
    for (int i = 0;
         field == nullptr && accept_json_names && i < current->field_count();
         ++i) {
      if (current->field(i)->json_name() == name_str) field = current->field(i);
    }
    if (field == nullptr) {
      return absl::NotFoundError(
          absl::StrCat("no field '", name, "' in ", current->full_name()));
    }
    result.push_back(field);
    const bool singular_message =
        field->cpp_type() == FieldDescriptor::CPPTYPE_MESSAGE &&
        !field->is_repeated();
    current = singular_message ? field->message_type() : nullptr;
  }
  return result;
}

std::string FieldPathName(const FieldPath& path) {
  std::string name;
  for (const FieldDescriptor* field : path) {
    if (!name.empty()) name.push_back('.');
    name.append(field->name());
  }
  return name;
}

bool FieldPathsOverlap(const FieldPath& a, const FieldPath& b) {
  const size_t n = std::min(a.size(), b.size());
  return std::equal(a.begin(), a.begin() + n, b.begin());
}

}  // namespace lumo::gateway
