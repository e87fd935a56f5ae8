// Property tests with a fixed seed: mutated inputs never crash and only ever
// produce OK or INVALID_ARGUMENT with short, valid-UTF-8 messages.
#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "gateway/transcoding/json_render.h"
#include "gateway/transcoding/route_table.h"
#include "gateway/transcoding/transcoder.h"
#include "gtest/gtest.h"
#include "server/core/validation.h"
#include "tests/gateway/transcoding/binding_test_util.h"
#include "tests/gateway/transcoding/transcoding_test.pb.h"

namespace lumo::gateway {
namespace {

// Replaces, inserts or deletes a few bytes, favouring JSON/URL syntax.
std::string Mutate(std::string s, std::mt19937* rng) {
  static constexpr char kAlphabet[] =
      "{}[]\":,\\/%+=&?.*01239aeflnrstuEZ-_ \t\n\x00\x7f\xc3\xa9\xed\xa0\xff";
  std::uniform_int_distribution<int> count(1, 4);
  std::uniform_int_distribution<int> op(0, 2);
  std::uniform_int_distribution<size_t> byte(0, sizeof(kAlphabet) - 2);
  for (int n = count(*rng); n > 0; --n) {
    const size_t pos = std::uniform_int_distribution<size_t>(0, s.size())(*rng);
    const char c = kAlphabet[byte(*rng)];
    switch (op(*rng)) {
      case 0:
        if (pos < s.size()) s[pos] = c;
        break;
      case 1:
        s.insert(s.begin() + pos, c);
        break;
      default:
        if (pos < s.size()) s.erase(pos, 1);
        break;
    }
  }
  return s;
}

void ExpectClientError(const absl::Status& status, const std::string& input) {
  EXPECT_TRUE(status.ok() ||
              status.code() == absl::StatusCode::kInvalidArgument)
      << status << " for " << input;
  EXPECT_LE(status.message().size(), 260u) << input;
  EXPECT_TRUE(lumo::core::IsValidUtf8(status.message())) << input;
}

class RobustnessTest : public BindingTest {};

TEST_F(RobustnessTest, MutatedBodiesAndQueries) {
  std::mt19937 rng(20260101);
  const std::vector<std::string> bodies = {
      "{\"text\":\"hi\",\"i64\":\"5\",\"bigNumbers\":[1,\"2\"]}",
      "{\"inner\":{\"id\":\"x\",\"child\":{\"count\":2}},\"tags\":[\"a\"]}",
      "{\"extra\":{\"k\":[1,\"x\",true,null,{\"a\":{}}]},\"counts\":{\"a\":1}}",
      "{\"when\":\"2026-11-27T11:22:33.5Z\",\"color\":\"RED\",\"byName\":"
      "\"a\"}",
  };
  const std::vector<std::string> queries = {
      "text=a+b&i32=-5&tags=a,b&when=2026-01-02T03:04:05Z",
      "inner.child.id=x&colors=RED,1&dbl=1.5e3&flag=true&wrapped=7",
  };
  for (int i = 0; i < 20000; ++i) {
    const std::string body = Mutate(bodies[i % bodies.size()], &rng);
    lumo::gateway::testing::AllTypes request;
    ExpectClientError(Bind("POST", "/t/acme/echo", "", body, &request), body);
    // Whatever was bound renders.
    const std::string json = RenderJson(request);
    EXPECT_TRUE(lumo::core::IsValidUtf8(json));

    const std::string query = Mutate(queries[i % queries.size()], &rng);
    absl::StatusOr<QueryParams> params = ParseQueryString(query);
    ExpectClientError(params.status(), query);
    if (params.ok()) {
      MatchResult match = table_.Match("GET", "/t/acme/echo");
      ASSERT_EQ(match.outcome, MatchOutcome::kMatched);
      ExpectClientError(
          BuildRequest(*match.route, match.variables, *params, "", &request),
          query);
    }
  }
}

TEST_F(RobustnessTest, MutatedPaths) {
  std::mt19937 rng(7);
  const std::vector<std::string> paths = {
      "/t/acme/api/v1/admin/api-keys/k1/rotate",
      "/t/a%2Fb/files/x/y%2Fz/meta",
      "/items/7/children/bob/v/3",
  };
  for (int i = 0; i < 20000; ++i) {
    const std::string path = Mutate(paths[i % paths.size()], &rng);
    MatchResult match = table_.Match("GET", path);
    if (match.outcome == MatchOutcome::kMalformedPath) {
      EXPECT_FALSE(match.error.empty());
      EXPECT_TRUE(lumo::core::IsValidUtf8(match.error));
    }
    if (match.outcome != MatchOutcome::kMatched) continue;
    for (const auto& [name, value] : match.variables) {
      EXPECT_TRUE(lumo::core::IsValidUtf8(value)) << path;
      EXPECT_NE(value, "..");
      EXPECT_NE(value, ".");
    }
  }
}

TEST(RobustnessJsonStringTest, RandomBytesEscapeToValidUtf8) {
  std::mt19937 rng(99);
  std::uniform_int_distribution<int> byte(0, 255);
  for (int i = 0; i < 20000; ++i) {
    std::string s(static_cast<size_t>(i % 17), '\0');
    for (char& c : s) c = static_cast<char>(byte(rng));
    std::string out;
    AppendJsonString(s, &out);
    EXPECT_TRUE(lumo::core::IsValidUtf8(out));
    for (char c : out) EXPECT_GE(static_cast<unsigned char>(c), 0x20);
  }
}

}  // namespace
}  // namespace lumo::gateway
