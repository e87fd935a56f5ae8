// The gateway's route table, built once at start-up from the standard
// `(google.api.http)` annotations of the services' methods (with our
// `(lumo.api.rest)` reply shaping beside them), and the matcher
// that maps (verb, path) to a route and its path variables.
#ifndef LUMOKEYS_GATEWAY_TRANSCODING_ROUTE_TABLE_H_
#define LUMOKEYS_GATEWAY_TRANSCODING_ROUTE_TABLE_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "gateway/transcoding/field_path.h"
#include "gateway/transcoding/path_template.h"
#include "google/protobuf/descriptor.h"

namespace lumo::gateway {

// One annotated method. Descriptors are borrowed from their pool, which must
// outlive the route.
struct Route {
  // "GET", "PUT", "POST", "DELETE" or "PATCH".
  std::string verb;
  PathTemplate path;
  // "" (no body allowed), "*" (the body is the request message) or the name
  // of a top-level singular message field of the request.
  std::string body;
  // The HTTP status of a success: 200 when the annotation says 0. For 204
  // the reply is sent without a body.
  int success_status = 200;
  // Added to the envelope as "message" when non-empty.
  std::string success_message;
  const google::protobuf::MethodDescriptor* method = nullptr;
  // The resolved field of each template variable, in template order
  // (parallel to path.FieldPaths()).
  std::vector<FieldPath> variable_fields;
  // Set when `body` names a field.
  const google::protobuf::FieldDescriptor* body_field = nullptr;
};

// Outcome of RouteTable::Match, one per HTTP answer.
enum class MatchOutcome {
  kMatched,           // `route` and `variables` are set
  kMalformedPath,     // 400: `error` says why (never echoes the path)
  kNotFound,          // 404: no route has a template matching the path
  kMethodNotAllowed,  // 405: `allowed_verbs` lists the verbs that match
};

struct MatchResult {
  MatchOutcome outcome = MatchOutcome::kNotFound;
  const Route* route = nullptr;
  Variables variables;
  // Sorted alphabetically, e.g. {"DELETE", "GET"}.
  std::vector<std::string> allowed_verbs;
  std::string error;
};

// Immutable after Build; Match is thread-safe. Copyable and movable; a
// `Route*` from Match stays valid while the table it came from (or the table
// it was moved into) lives.
class RouteTable {
 public:
  // Walks every method of `services` (duplicates ignored) and adds a route
  // for each one carrying `(google.api.http)`. Errors name the method(s):
  //   INVALID_ARGUMENT: no verb or an empty/malformed template; a custom
  //     verb, additional_bindings or response_body (not served); a
  //     `(lumo.api.rest)` without a route; a template
  //     variable that is not a field of the input message, or whose field is
  //     not a singular string or integer (messages on the way must be
  //     singular messages); a body that is neither "", "*" nor a top-level
  //     singular message field; success_status outside 200-299; a message on
  //     a 204 route; a streaming method;
  //   FAILED_PRECONDITION: two methods with the same verb and templates of
  //     the same shape (they would match the same paths at the same
  //     precedence).
  static absl::StatusOr<RouteTable> Build(
      const std::vector<const google::protobuf::ServiceDescriptor*>& services);

  // Matches an HTTP verb (case-sensitive, upper case) and a request path
  // (without query string). Among the templates of `verb` that match, the
  // most specific wins: segments are compared left to right and a literal
  // beats a variable, which beats `**`. See MatchOutcome for the rest.
  MatchResult Match(absl::string_view verb, absl::string_view path) const;

  const std::vector<Route>& routes() const { return routes_; }

 private:
  std::vector<Route> routes_;
};

}  // namespace lumo::gateway

#endif  // LUMOKEYS_GATEWAY_TRANSCODING_ROUTE_TABLE_H_
