// Fuzzes the gateway's HTTP -> proto transcoding (gateway/transcoding:
// ParseQueryString, ScanJsonBody, BuildRequest) over the real routes, with
// properties:
//   * a parsed query string has at most kMaxQueryParams non-empty keys and
//     re-encoding the pairs parses back to the same pairs;
//   * JSON the scanner accepts is JSON: protobuf's parser reads it as a
//     google.protobuf.Value, whose re-serialisation the scanner accepts
//     again and which parses back to an equal Value;
//   * BuildRequest returns only OK or INVALID_ARGUMENT (INTERNAL would be a
//     binder bug: the variables come from the route's own template), with a
//     bounded message; on OK the path variables win over the body, and a
//     non-empty body passed the scanner against the route's message type.
// Input: byte 0 picks the route, then the query string, a NUL, the body.
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/string_view.h"
#include "gateway/transcoding/json_scan.h"
#include "gateway/transcoding/route_table.h"
#include "gateway/transcoding/transcoder.h"
#include "google/protobuf/dynamic_message.h"
#include "google/protobuf/struct.pb.h"
#include "google/protobuf/util/json_util.h"
#include "google/protobuf/util/message_differencer.h"
#include "tests/fuzz/fuzz_util.h"

namespace {

namespace pb = google::protobuf;
using lumo::gateway::QueryParams;
using lumo::gateway::Route;

// Value bound to every path variable: valid for string and integer fields.
constexpr absl::string_view kPathValue = "7";

void CheckQuery(absl::string_view raw) {
  absl::StatusOr<QueryParams> params = lumo::gateway::ParseQueryString(raw);
  if (!params.ok()) {
    FUZZ_CHECK(params.status().code() == absl::StatusCode::kInvalidArgument);
    return;
  }
  FUZZ_CHECK(params->size() <= lumo::gateway::kMaxQueryParams);
  std::string encoded;
  for (const auto& [key, value] : *params) {
    FUZZ_CHECK(!key.empty());
    if (!encoded.empty()) encoded.push_back('&');
    absl::StrAppend(&encoded, lumo::fuzz::PercentEncodeSegment(key), "=",
                    lumo::fuzz::PercentEncodeSegment(value));
  }
  absl::StatusOr<QueryParams> again = lumo::gateway::ParseQueryString(encoded);
  FUZZ_CHECK(again.ok());
  FUZZ_CHECK(*again == *params);
}

void CheckJson(absl::string_view body) {
  if (!lumo::gateway::ScanJsonBody(body, nullptr).ok()) return;
  pb::Value value;
  const auto parsed = pb::util::JsonStringToMessage(std::string(body), &value);
  if (!parsed.ok()) {
    // RFC 8259 leaves number range to implementations: protobuf refuses a
    // number a double cannot hold (e.g. 1e400), which BuildRequest reports
    // as a client error. Nothing else may be refused.
    const std::string why = parsed.ToString();
    if (!absl::StrContains(why, "range")) {
      std::fprintf(stderr, "protobuf refused scanned JSON: %s\n", why.c_str());
    }
    FUZZ_CHECK(absl::StrContains(why, "range"));
    return;
  }
  std::string printed;
  FUZZ_CHECK(pb::util::MessageToJsonString(value, &printed).ok());
  FUZZ_CHECK(lumo::gateway::ScanJsonBody(printed, nullptr).ok());
  pb::Value reparsed;
  FUZZ_CHECK(pb::util::JsonStringToMessage(printed, &reparsed).ok());
  FUZZ_CHECK(pb::util::MessageDifferencer::Equals(value, reparsed));
}

// The leaf of `path` in `message` as text; nullopt for kinds not compared.
std::optional<std::string> LeafText(const pb::Message& message,
                                    const lumo::gateway::FieldPath& path) {
  const pb::Message* m = &message;
  for (size_t i = 0; i + 1 < path.size(); ++i) {
    m = &m->GetReflection()->GetMessage(*m, path[i]);
  }
  const pb::FieldDescriptor* leaf = path.back();
  const pb::Reflection* r = m->GetReflection();
  switch (leaf->cpp_type()) {
    case pb::FieldDescriptor::CPPTYPE_STRING:
      return r->GetString(*m, leaf);
    case pb::FieldDescriptor::CPPTYPE_INT32:
      return absl::StrCat(r->GetInt32(*m, leaf));
    case pb::FieldDescriptor::CPPTYPE_INT64:
      return absl::StrCat(r->GetInt64(*m, leaf));
    case pb::FieldDescriptor::CPPTYPE_UINT32:
      return absl::StrCat(r->GetUInt32(*m, leaf));
    case pb::FieldDescriptor::CPPTYPE_UINT64:
      return absl::StrCat(r->GetUInt64(*m, leaf));
    default:
      return std::nullopt;
  }
}

void CheckBuildRequest(const Route& route, absl::string_view raw_query,
                       absl::string_view body) {
  absl::StatusOr<QueryParams> query =
      lumo::gateway::ParseQueryString(raw_query);
  if (!query.ok()) return;
  lumo::gateway::Variables variables;
  for (const std::string& field : route.path.FieldPaths()) {
    variables.emplace_back(field, std::string(kPathValue));
  }
  pb::DynamicMessageFactory factory;
  std::unique_ptr<pb::Message> request(
      factory.GetPrototype(route.method->input_type())->New());
  const absl::Status status = lumo::gateway::BuildRequest(
      route, variables, *query, body, request.get());
  if (!status.ok()) {
    FUZZ_CHECK(status.code() == absl::StatusCode::kInvalidArgument);
    FUZZ_CHECK(!status.message().empty());
    // At most 100 quoted input bytes, each escaped to at most 6 characters
    // (\u001f), plus the fixed text.
    FUZZ_CHECK(status.message().size() <= 100 * 6 + 300);
    return;
  }
  for (const lumo::gateway::FieldPath& path : route.variable_fields) {
    const std::optional<std::string> got = LeafText(*request, path);
    FUZZ_CHECK(!got.has_value() || *got == kPathValue);
  }
  if (body.find_first_not_of(" \t\r\n") != absl::string_view::npos) {
    const pb::Descriptor* target =
        route.body == "*"             ? route.method->input_type()
        : route.body_field != nullptr ? route.body_field->message_type()
                                      : nullptr;
    FUZZ_CHECK(target != nullptr);  // a body on a body-less route is refused
    FUZZ_CHECK(lumo::gateway::ScanJsonBody(body, target).ok());
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0 || size > 64 * 1024) return 0;
  const auto& routes = lumo::fuzz::RealRouteTable().routes();
  const Route& route = routes[data[0] % routes.size()];
  absl::string_view rest(reinterpret_cast<const char*>(data) + 1, size - 1);
  const absl::string_view query = lumo::fuzz::TakeUntil(&rest, '\0');
  const absl::string_view body = rest;
  CheckQuery(query);
  CheckJson(body);
  CheckBuildRequest(route, query, body);
  return 0;
}
