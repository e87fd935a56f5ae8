// Resolution of dotted field paths ("created_by.id") against message
// descriptors, shared by the route table (template variables, body) and the
// request binder (query parameters). Thread-safe (pure functions).
#ifndef LUMOKEYS_GATEWAY_TRANSCODING_FIELD_PATH_H_
#define LUMOKEYS_GATEWAY_TRANSCODING_FIELD_PATH_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "google/protobuf/descriptor.h"

namespace lumo::gateway {

// A chain of fields from a root message to a leaf: every element but the
// last is a singular (non-repeated, non-map) message field.
using FieldPath = std::vector<const google::protobuf::FieldDescriptor*>;

// Resolves `path` (names separated by '.') in `root`. Each name is a proto
// field name; with `accept_json_names` also the field's JSON name
// ("sortBy"). NOT_FOUND when a name names no field; INVALID_ARGUMENT when a
// non-final name is not a singular message field or the path is empty. The
// messages name the path only (it is quoted by the caller if needed).
absl::StatusOr<FieldPath> ResolveFieldPath(
    const google::protobuf::Descriptor* root, absl::string_view path,
    bool accept_json_names);

// The proto names of `path` joined with '.', e.g. "created_by.id".
std::string FieldPathName(const FieldPath& path);

// True when one path equals or is a prefix of the other (setting one would
// touch the other).
bool FieldPathsOverlap(const FieldPath& a, const FieldPath& b);

}  // namespace lumo::gateway

#endif  // LUMOKEYS_GATEWAY_TRANSCODING_FIELD_PATH_H_
