#include "server/core/webhook_crypto.h"

#include <string>

#include "gtest/gtest.h"

namespace lumo::core {
namespace {

TEST(WebhookSignatureTest, SignsTimestampDotBodyWithEverySecret) {
  // Expected values: Python's hmac.new(secret, b"1700000000." + body,
  // hashlib.sha256).hexdigest() (the receivers' recipe in docs/webhooks.md).
  EXPECT_EQ(WebhookSignatureHeader(1700000000, R"({"a":1})", {"whsec_test"}),
            "t=1700000000,v1=38877139021993b830af32feea6e18a8da83eb2f6e49ee5"
            "0bd9e4cf4ca4d3789");
  EXPECT_EQ(
      WebhookSignatureHeader(1700000000, R"({"a":1})",
                             {"whsec_test", "whsec_old"}),
      "t=1700000000,v1=38877139021993b830af32feea6e18a8da83eb2f6e49ee50bd9e4cf"
      "4ca4d3789,v1=b9d801502bb535e960ee9aeee7a294b082bda5089d79c7db610b85116"
      "ce6faa6");
  // The timestamp is signed too.
  EXPECT_NE(WebhookSignatureHeader(1700000001, R"({"a":1})", {"whsec_test"})
                .substr(17),
            WebhookSignatureHeader(1700000000, R"({"a":1})", {"whsec_test"})
                .substr(17));
}

TEST(SealTest, OpensOnlyWithTheSameKeyAndAssociatedData) {
  const std::string key(32, 'k');
  absl::StatusOr<std::string> sealed =
      Seal(key, "whsec_secret", "whk_0123456789abcdef");
  ASSERT_TRUE(sealed.ok()) << sealed.status();
  EXPECT_EQ(sealed->size(), 12 + 12 + 16u);
  EXPECT_EQ(sealed->find("whsec_secret"), std::string::npos);
  absl::StatusOr<std::string> opened =
      Open(key, *sealed, "whk_0123456789abcdef");
  ASSERT_TRUE(opened.ok()) << opened.status();
  EXPECT_EQ(*opened, "whsec_secret");

  // A fresh nonce each time.
  absl::StatusOr<std::string> again =
      Seal(key, "whsec_secret", "whk_0123456789abcdef");
  ASSERT_TRUE(again.ok());
  EXPECT_NE(*again, *sealed);

  EXPECT_EQ(Open(std::string(32, 'x'), *sealed, "whk_0123456789abcdef")
                .status()
                .code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(Open(key, *sealed, "whk_other").status().code(),
            absl::StatusCode::kInvalidArgument);
  std::string altered = *sealed;
  altered[14] ^= 1;
  EXPECT_EQ(Open(key, altered, "whk_0123456789abcdef").status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(Open(key, "short", "").status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(Seal("short key", "x", "").status().code(),
            absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace lumo::core
