#include "gateway/transcoding/route_table.h"

#include <algorithm>
#include <string>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_set.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "gateway/transcoding/field_path.h"
#include "gateway/transcoding/path_template.h"
#include "google/api/annotations.pb.h"
#include "google/api/http.pb.h"
#include "google/protobuf/descriptor.h"
#include "lumo/api/annotations.pb.h"

namespace lumo::gateway {
namespace {

// The one message type a server-streaming route may stream.
constexpr char kHttpBodyType[] = "lumo.api.HttpBody";

using google::protobuf::Descriptor;
using google::protobuf::FieldDescriptor;
using google::protobuf::MethodDescriptor;
using google::protobuf::ServiceDescriptor;

absl::Status MethodError(const MethodDescriptor* method,
                         absl::string_view why) {
  return absl::InvalidArgumentError(
      absl::StrCat(method->full_name(), ": ", why));
}

// The verb and template text of a rule; false when no verb is set.
bool VerbAndTemplate(const google::api::HttpRule& rule, std::string* verb,
                     std::string* text) {
  switch (rule.pattern_case()) {
    case google::api::HttpRule::kGet:
      *verb = "GET";
      *text = rule.get();
      return true;
    case google::api::HttpRule::kPut:
      *verb = "PUT";
      *text = rule.put();
      return true;
    case google::api::HttpRule::kPost:
      *verb = "POST";
      *text = rule.post();
      return true;
    case google::api::HttpRule::kDelete:
      *verb = "DELETE";
      *text = rule.delete_();
      return true;
    case google::api::HttpRule::kPatch:
      *verb = "PATCH";
      *text = rule.patch();
      return true;
    case google::api::HttpRule::kCustom:  // refused by MakeRoute
    case google::api::HttpRule::PATTERN_NOT_SET:
      break;
  }
  return false;
}

bool IsStringOrInteger(const FieldDescriptor* field) {
  switch (field->type()) {
    case FieldDescriptor::TYPE_STRING:
    case FieldDescriptor::TYPE_INT32:
    case FieldDescriptor::TYPE_INT64:
    case FieldDescriptor::TYPE_UINT32:
    case FieldDescriptor::TYPE_UINT64:
    case FieldDescriptor::TYPE_SINT32:
    case FieldDescriptor::TYPE_SINT64:
    case FieldDescriptor::TYPE_FIXED32:
    case FieldDescriptor::TYPE_FIXED64:
    case FieldDescriptor::TYPE_SFIXED32:
    case FieldDescriptor::TYPE_SFIXED64:
      return true;
    default:
      return false;
  }
}

// `rule` is the method's (google.api.http) route, `rest` its
// (lumo.api.rest) reply shaping (default when absent).
absl::StatusOr<Route> MakeRoute(const MethodDescriptor* method,
                                const google::api::HttpRule& rule,
                                const lumo::api::RestRule& rest) {
  Route route;
  route.method = method;
  // Parts of the standard rule the gateway does not serve are refused, so
  // that no tool reading the annotation sees a route this gateway lacks.
  if (rule.pattern_case() == google::api::HttpRule::kCustom) {
    return MethodError(method, "(google.api.http) custom verbs are not served");
  }
  if (rule.additional_bindings_size() > 0) {
    return MethodError(method,
                       "(google.api.http) additional_bindings are not served");
  }
  if (!rule.response_body().empty()) {
    return MethodError(method, "(google.api.http) response_body is not served");
  }
  std::string text;
  if (!VerbAndTemplate(rule, &route.verb, &text)) {
    return MethodError(method, "(google.api.http) sets no verb");
  }
  if (method->client_streaming()) {
    return MethodError(method,
                       "client-streaming methods cannot have an HTTP route");
  }
  if (method->server_streaming() &&
      method->output_type()->full_name() != kHttpBodyType) {
    return MethodError(method,
                       "a server-streaming route must stream lumo.api.HttpBody"
                       " (its messages' data, concatenated, are the body)");
  }
  absl::StatusOr<PathTemplate> path = PathTemplate::Parse(text);
  if (!path.ok()) return MethodError(method, path.status().message());
  route.path = *std::move(path);

  const Descriptor* input = method->input_type();
  for (const PathTemplate::Segment& segment : route.path.segments()) {
    if (segment.kind == PathTemplate::Segment::Kind::kLiteral) continue;
    absl::StatusOr<FieldPath> field_path =
        ResolveFieldPath(input, segment.text, /*accept_json_names=*/false);
    if (!field_path.ok()) {
      return MethodError(method,
                         absl::StrCat("path variable '", segment.text,
                                      "': ", field_path.status().message()));
    }
    const FieldDescriptor* leaf = field_path->back();
    if (leaf->is_repeated() || !IsStringOrInteger(leaf)) {
      return MethodError(method, absl::StrCat("path variable '", segment.text,
                                              "' must be a singular string or "
                                              "integer field"));
    }
    if (segment.kind == PathTemplate::Segment::Kind::kRest &&
        leaf->type() != FieldDescriptor::TYPE_STRING) {
      return MethodError(method, absl::StrCat("'**' variable '", segment.text,
                                              "' must be a string field"));
    }
    route.variable_fields.push_back(*std::move(field_path));
  }

  route.body = rule.body();
  if (!route.body.empty() && route.body != "*") {
    const FieldDescriptor* field = input->FindFieldByName(route.body);
    if (field == nullptr) {
      return MethodError(
          method, absl::StrCat("body field '", route.body,
                               "' does not exist in ", input->full_name()));
    }
    if (field->cpp_type() != FieldDescriptor::CPPTYPE_MESSAGE ||
        field->is_repeated()) {
      return MethodError(method,
                         absl::StrCat("body field '", route.body,
                                      "' must be a singular message field"));
    }
    route.body_field = field;
  }

  route.success_status =
      rest.success_status() == 0 ? 200 : rest.success_status();
  if (route.success_status < 200 || route.success_status > 299) {
    return MethodError(method, "success_status must be 0 or 200-299");
  }
  route.success_message = rest.success_message();
  if (route.success_status == 204 && !route.success_message.empty()) {
    return MethodError(method,
                       "a 204 route cannot have a success_message (no body)");
  }
  return route;
}

}  // namespace

absl::StatusOr<RouteTable> RouteTable::Build(
    const std::vector<const ServiceDescriptor*>& services) {
  RouteTable table;
  absl::flat_hash_set<const ServiceDescriptor*> seen;
  for (const ServiceDescriptor* service : services) {
    if (service == nullptr || !seen.insert(service).second) continue;
    for (int i = 0; i < service->method_count(); ++i) {
      const MethodDescriptor* method = service->method(i);
      const google::protobuf::MethodOptions& options = method->options();
      if (!options.HasExtension(google::api::http)) {
        if (options.HasExtension(lumo::api::rest)) {
          return MethodError(method,
                             "(lumo.api.rest) without a (google.api.http) "
                             "route");
        }
        continue;
      }
      absl::StatusOr<Route> route =
          MakeRoute(method, options.GetExtension(google::api::http),
                    options.GetExtension(lumo::api::rest));
      if (!route.ok()) return route.status();
      for (const Route& existing : table.routes_) {
        if (existing.verb == route->verb &&
            existing.path.SameShape(route->path)) {
          return absl::FailedPreconditionError(
              absl::StrCat("conflicting routes: ", existing.method->full_name(),
                           " (", existing.verb, " ", existing.path.text(),
                           ") and ", method->full_name(), " (", route->verb,
                           " ", route->path.text(), ") match the same paths"));
        }
      }
      table.routes_.push_back(*std::move(route));
    }
  }
  return table;
}

MatchResult RouteTable::Match(absl::string_view verb,
                              absl::string_view path) const {
  MatchResult result;
  absl::StatusOr<std::vector<std::string>> segments = SplitRequestPath(path);
  if (!segments.ok()) {
    result.outcome = MatchOutcome::kMalformedPath;
    result.error = std::string(segments.status().message());
    return result;
  }
  const Route* best = nullptr;
  for (const Route& route : routes_) {
    if (!route.path.Match(*segments, nullptr)) continue;
    if (route.verb != verb) {
      if (std::find(result.allowed_verbs.begin(), result.allowed_verbs.end(),
                    route.verb) == result.allowed_verbs.end()) {
        result.allowed_verbs.push_back(route.verb);
      }
      continue;
    }
    if (best == nullptr ||
        PathTemplate::ComparePrecedence(route.path, best->path) > 0) {
      best = &route;
    }
  }
  if (best != nullptr) {
    result.outcome = MatchOutcome::kMatched;
    result.route = best;
    result.allowed_verbs.clear();
    best->path.Match(*segments, &result.variables);
    return result;
  }
  if (result.allowed_verbs.empty()) {
    result.outcome = MatchOutcome::kNotFound;
    return result;
  }
  std::sort(result.allowed_verbs.begin(), result.allowed_verbs.end());
  result.outcome = MatchOutcome::kMethodNotAllowed;
  return result;
}

}  // namespace lumo::gateway
