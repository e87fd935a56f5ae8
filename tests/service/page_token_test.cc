// Page tokens of keyset paging (server/service/page_token.h): round trip,
// NULL fields, and refusal of tokens that were tampered with or made for
// another query, each naming pageToken.
#include "server/service/page_token.h"

#include <string>
#include <vector>

#include "absl/strings/escaping.h"
#include "absl/time/time.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "server/core/field_error.h"
#include "server/service/errors.h"
#include "server/storage/list_page.h"

namespace lumo::service {
namespace {

using ::testing::ElementsAre;
using ::testing::Optional;

const QueryParts kQuery = {"keys", "7", "0", "DESC", "", "0", "0"};

void ExpectRefused(absl::string_view token, const QueryParts& query) {
  absl::StatusOr<std::vector<PositionField>> got =
      DecodePageToken(token, query, 2);
  ASSERT_FALSE(got.ok()) << token;
  EXPECT_EQ(got.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(core::InvalidFieldOf(got.status()), "pageToken") << got.status();
}

TEST(PageTokenTest, RoundTripsAPositionWithNullAndBinaryFields) {
  const std::string name("a\0b\xff", 4);
  const std::string token =
      EncodePageToken(kQuery, {PositionField(name), PositionField("id1")});
  EXPECT_EQ(token.rfind("p1.", 0), 0u);
  absl::StatusOr<std::vector<PositionField>> got =
      DecodePageToken(token, kQuery, 2);
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_THAT(*got, ElementsAre(Optional(name), Optional(std::string("id1"))));

  const std::string with_null =
      EncodePageToken(kQuery, {std::nullopt, PositionField("id2")});
  got = DecodePageToken(with_null, kQuery, 2);
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ((*got)[0], std::nullopt);
  EXPECT_EQ((*got)[1], "id2");
}

TEST(PageTokenTest, TimesSurviveToTheMicrosecond) {
  const absl::Time t = absl::FromUnixMicros(1796000000123456);
  absl::StatusOr<std::optional<absl::Time>> back =
      ParseTimeField(PositionField(TimeField(t)));
  ASSERT_TRUE(back.ok());
  EXPECT_EQ(*back, t);
  EXPECT_FALSE(ParseTimeField(PositionField("12x")).ok());
  EXPECT_FALSE(ParseIntField(std::nullopt).ok());
}

TEST(PageTokenTest, RefusesTokensOfAnotherQueryOrTamperedWith) {
  const std::string token =
      EncodePageToken(kQuery, {PositionField("n"), PositionField("id")});
  ASSERT_TRUE(DecodePageToken(token, kQuery, 2).ok());
  // Another tenant, sort, direction or filter.
  for (size_t i = 1; i < kQuery.size(); ++i) {
    QueryParts other = kQuery;
    other[i] += "x";
    ExpectRefused(token, other);
  }
  // Parts are length-prefixed: moving text between parts changes it.
  QueryParts shifted = kQuery;
  shifted[3] = "DES";
  shifted[4] = "C";
  ExpectRefused(token, shifted);
  // Not a token, another version, cut, extended, or with another field
  // count.
  ExpectRefused("", kQuery);
  ExpectRefused("garbage", kQuery);
  ExpectRefused("p2." + token.substr(3), kQuery);
  ExpectRefused(token.substr(0, token.size() - 2), kQuery);
  ExpectRefused(token + "AAAA", kQuery);
  ExpectRefused(token + "!", kQuery);
  ExpectRefused(std::string(5000, 'p'), kQuery);
  EXPECT_FALSE(DecodePageToken(token, kQuery, 3).ok());
  // A flipped payload byte in the fingerprint.
  std::string payload;
  ASSERT_TRUE(absl::WebSafeBase64Unescape(token.substr(3), &payload));
  payload[0] ^= 1;
  ExpectRefused("p1." + absl::WebSafeBase64Escape(payload), kQuery);
}

TEST(PageTokenTest, PagingFormAndCountDefaults) {
  EXPECT_TRUE(CheckPagingForm(std::nullopt, true).ok());
  EXPECT_TRUE(CheckPagingForm(3, false).ok());
  absl::Status both = CheckPagingForm(1, true);
  EXPECT_EQ(core::InvalidFieldOf(both), "page");
  EXPECT_TRUE(CountFor(std::nullopt, false).wanted);
  EXPECT_FALSE(CountFor(std::nullopt, true).wanted);
  EXPECT_TRUE(CountFor(true, true).wanted);
  EXPECT_FALSE(CountFor(false, false).wanted);
  EXPECT_EQ(CountFor(std::nullopt, false).cap, kTotalCountCap);
}

}  // namespace
}  // namespace lumo::service
