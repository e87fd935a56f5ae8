// A map of strings as the text of a JSON object ({"k":"v",...}), the form
// in which key metadata is stored (docs/api-keys.md, "Owner and metadata").
// Encoding escapes '"', '\' and every byte below 0x20; other bytes (UTF-8)
// are kept. Decoding accepts any JSON object whose values are all strings
// (whitespace, every escape, \u surrogate pairs) and nothing else.
//
// Pure functions, thread-safe.
#ifndef LUMOKEYS_SERVER_CORE_STRING_MAP_JSON_H_
#define LUMOKEYS_SERVER_CORE_STRING_MAP_JSON_H_

#include <map>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace lumo::core {

using StringMap = std::map<std::string, std::string>;

// The JSON text of `map`, members in key order; "" for an empty map (the
// stored form of "no metadata").
std::string EncodeStringMapJson(const StringMap& map);

// The map `text` encodes ("" is the empty map). INVALID_ARGUMENT when the
// text is not a JSON object of strings, or repeats a member.
absl::StatusOr<StringMap> DecodeStringMapJson(absl::string_view text);

}  // namespace lumo::core

#endif  // LUMOKEYS_SERVER_CORE_STRING_MAP_JSON_H_
