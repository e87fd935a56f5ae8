// Shared set-up of the binding tests: a route table over the test service
// and KeyService, and one call that matches, parses the query and binds.
#ifndef LUMOKEYS_TESTS_GATEWAY_TRANSCODING_BINDING_TEST_UTIL_H_
#define LUMOKEYS_TESTS_GATEWAY_TRANSCODING_BINDING_TEST_UTIL_H_

#include <optional>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "gateway/transcoding/route_table.h"
#include "gateway/transcoding/transcoder.h"
#include "google/protobuf/message.h"
#include "gtest/gtest.h"
#include "lumo/keys/v1/keys.pb.h"
#include "tests/gateway/transcoding/transcoding_test.pb.h"

namespace lumo::gateway {

class BindingTest : public ::testing::Test {
 protected:
  void SetUp() override {
    absl::StatusOr<RouteTable> table = RouteTable::Build(
        {lumo::gateway::testing::AllTypes::descriptor()
             ->file()
             ->FindServiceByName("TestService"),
         lumo::keys::v1::ApiKey::descriptor()->file()->FindServiceByName(
             "KeyService")});
    ASSERT_TRUE(table.ok()) << table.status();
    table_ = *std::move(table);
  }

  // Matches `verb path`, parses `query` and binds everything into
  // `request`. A failed match is reported as UNKNOWN (tests expect OK or
  // INVALID_ARGUMENT).
  absl::Status Bind(absl::string_view verb, absl::string_view path,
                    absl::string_view query, absl::string_view body,
                    google::protobuf::Message* request) {
    MatchResult match = table_.Match(verb, path);
    if (match.outcome != MatchOutcome::kMatched) {
      return absl::UnknownError(absl::StrCat("no match for ", path));
    }
    absl::StatusOr<QueryParams> params = ParseQueryString(query);
    if (!params.ok()) return params.status();
    return BuildRequest(*match.route, match.variables, *params, body, request);
  }

  RouteTable table_;
};

// The field a binding error's message quotes (`field "x"` or
// `parameter "x"`): what the error must name as its field
// (core/field_error.h). "" when it quotes none, or only a truncated name
// ("x..."); nullopt for a quoted name with escapes (checked case by case).
inline std::optional<std::string> QuotedFieldOf(absl::string_view message) {
  for (absl::string_view marker : {"field \"", "parameter \""}) {
    const size_t at = message.find(marker);
    if (at == absl::string_view::npos) continue;
    absl::string_view rest = message.substr(at + marker.size());
    rest = rest.substr(0, rest.find('"'));
    if (rest.find('\\') != absl::string_view::npos) return std::nullopt;
    if (absl::EndsWith(rest, "...")) return "";
    return std::string(rest);
  }
  return "";
}

}  // namespace lumo::gateway

#endif  // LUMOKEYS_TESTS_GATEWAY_TRANSCODING_BINDING_TEST_UTIL_H_
