// Fuzzes the gateway's request-path splitter, path-template parser and the
// real route table (gateway/transcoding) with properties:
//   * Match says kMalformedPath exactly when SplitRequestPath refuses the
//     path, and its message is one of a small fixed set (never echoes it);
//   * a match is the verb's most specific matching route (no other route of
//     the verb matching the same segments has higher precedence), binds one
//     value per template variable, and one-segment variables hold exactly
//     the decoded segment;
//   * kNotFound means no route of any verb matches; kMethodNotAllowed lists
//     sorted, distinct verbs, each with a matching route, never the verb;
//   * decoding is stable: re-encoding the decoded segments and splitting
//     again gives the same segments, route and variables;
//   * a template that parses re-parses from its text to the same segments.
// Input: first byte picks the verb, the rest is the path (or, when the first
// byte is odd and above 0xF0, a template to parse).
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/str_join.h"
#include "absl/strings/string_view.h"
#include "gateway/transcoding/path_template.h"
#include "gateway/transcoding/route_table.h"
#include "tests/fuzz/fuzz_util.h"

namespace {

using lumo::gateway::MatchOutcome;
using lumo::gateway::MatchResult;
using lumo::gateway::PathTemplate;
using lumo::gateway::Route;
using lumo::gateway::RouteTable;
using lumo::gateway::SplitRequestPath;

constexpr absl::string_view kVerbs[] = {"GET",   "POST", "PUT", "DELETE",
                                        "PATCH", "HEAD", "get"};

void CheckTemplate(absl::string_view text) {
  absl::StatusOr<PathTemplate> parsed = PathTemplate::Parse(text);
  if (!parsed.ok()) return;
  FUZZ_CHECK(parsed->text() == text);
  FUZZ_CHECK(!parsed->segments().empty());
  absl::StatusOr<PathTemplate> again = PathTemplate::Parse(parsed->text());
  FUZZ_CHECK(again.ok());
  FUZZ_CHECK(again->segments() == parsed->segments());
  FUZZ_CHECK(PathTemplate::ComparePrecedence(*parsed, *again) == 0);
  FUZZ_CHECK(parsed->SameShape(*again));
  // A path built from the template's literals (and "x" for variables)
  // matches it.
  std::vector<std::string> segments;
  for (const PathTemplate::Segment& s : parsed->segments()) {
    segments.push_back(s.kind == PathTemplate::Segment::Kind::kLiteral
                           ? s.text
                           : std::string("x"));
  }
  lumo::gateway::Variables variables;
  FUZZ_CHECK(parsed->Match(segments, &variables));
  FUZZ_CHECK(variables.size() == parsed->FieldPaths().size());
}

void CheckMatch(const RouteTable& table, absl::string_view verb,
                absl::string_view path) {
  const MatchResult result = table.Match(verb, path);
  absl::StatusOr<std::vector<std::string>> segments = SplitRequestPath(path);
  FUZZ_CHECK((result.outcome == MatchOutcome::kMalformedPath) ==
             !segments.ok());
  if (!segments.ok()) {
    FUZZ_CHECK(!result.error.empty());
    // The message never echoes the path: messages come from a small fixed
    // set (one echoing input would grow it without bound).
    static std::set<std::string>* const messages = new std::set<std::string>;
    messages->insert(result.error);
    FUZZ_CHECK(messages->size() <= 16);
    return;
  }
  for (const std::string& s : *segments) {
    FUZZ_CHECK(!s.empty() && s != "." && s != "..");
  }
  switch (result.outcome) {
    case MatchOutcome::kMatched: {
      FUZZ_CHECK(result.route != nullptr);
      FUZZ_CHECK(result.route->verb == verb);
      FUZZ_CHECK(result.route->path.Match(*segments, nullptr));
      FUZZ_CHECK(result.allowed_verbs.empty());
      const std::vector<std::string> fields = result.route->path.FieldPaths();
      FUZZ_CHECK(result.variables.size() == fields.size());
      size_t var = 0;
      const auto& tmpl = result.route->path.segments();
      for (size_t i = 0; i < tmpl.size(); ++i) {
        if (tmpl[i].kind == PathTemplate::Segment::Kind::kLiteral) continue;
        FUZZ_CHECK(result.variables[var].first == fields[var]);
        if (tmpl[i].kind == PathTemplate::Segment::Kind::kVariable) {
          FUZZ_CHECK(result.variables[var].second == (*segments)[i]);
        }
        ++var;
      }
      for (const Route& other : table.routes()) {
        if (other.verb != verb || !other.path.Match(*segments, nullptr)) {
          continue;
        }
        FUZZ_CHECK(PathTemplate::ComparePrecedence(other.path,
                                                   result.route->path) <= 0);
      }
      break;
    }
    case MatchOutcome::kNotFound:
      for (const Route& route : table.routes()) {
        FUZZ_CHECK(!route.path.Match(*segments, nullptr));
      }
      break;
    case MatchOutcome::kMethodNotAllowed:
      FUZZ_CHECK(!result.allowed_verbs.empty());
      FUZZ_CHECK(std::is_sorted(result.allowed_verbs.begin(),
                                result.allowed_verbs.end()));
      FUZZ_CHECK(std::adjacent_find(result.allowed_verbs.begin(),
                                    result.allowed_verbs.end()) ==
                 result.allowed_verbs.end());
      for (const std::string& allowed : result.allowed_verbs) {
        FUZZ_CHECK(allowed != verb);
        bool found = false;
        for (const Route& route : table.routes()) {
          found |=
              route.verb == allowed && route.path.Match(*segments, nullptr);
        }
        FUZZ_CHECK(found);
      }
      break;
    case MatchOutcome::kMalformedPath:
      FUZZ_CHECK(false);  // handled above
  }

  // Stability of decoding: encode every decoded segment and match again.
  std::vector<std::string> encoded;
  for (const std::string& s : *segments) {
    encoded.push_back(lumo::fuzz::PercentEncodeSegment(s));
  }
  const std::string canonical = "/" + absl::StrJoin(encoded, "/");
  absl::StatusOr<std::vector<std::string>> again = SplitRequestPath(canonical);
  FUZZ_CHECK(again.ok());
  FUZZ_CHECK(*again == *segments);
  const MatchResult second = table.Match(verb, canonical);
  FUZZ_CHECK(second.outcome == result.outcome);
  FUZZ_CHECK(second.route == result.route);
  FUZZ_CHECK(second.variables == result.variables);
  FUZZ_CHECK(second.allowed_verbs == result.allowed_verbs);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const absl::string_view rest(reinterpret_cast<const char*>(data) + 1,
                               size - 1);
  if (data[0] > 0xF0 && data[0] % 2 == 1) {
    CheckTemplate(rest);
    return 0;
  }
  const absl::string_view verb = kVerbs[data[0] % std::size(kVerbs)];
  CheckMatch(lumo::fuzz::RealRouteTable(), verb, rest);
  return 0;
}
