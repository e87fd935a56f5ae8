#include "server/core/ecdsa.h"

#include <string>

#include "absl/strings/escaping.h"
#include "gtest/gtest.h"
#include "tests/core/ecdsa_test_key.h"

namespace lumo::core {
namespace {

using ::lumo::testing::kEcdsaTestBody;
using ::lumo::testing::kEcdsaTestPublicPem;
using ::lumo::testing::kEcdsaTestSignature;

// A P-384 public key: not accepted.
constexpr char kP384Pem[] =
    "-----BEGIN PUBLIC KEY-----\n"
    "MHYwEAYHKoZIzj0CAQYFK4EEACIDYgAEvPd/OKq+P8ixkj99AlXvRsfOV9JAxseE\n"
    "7wTrMQCsSG3/Sdl+w7EshJV8D0vYyvvF0sPLtrtNAydeeRZndsoqKj8L/WqzhBKM\n"
    "qkQdf3akH0rqrYr83qWbsvgeEKM6fCx2\n"
    "-----END PUBLIC KEY-----\n";

std::string Der(const char* base64) {
  std::string der;
  EXPECT_TRUE(absl::Base64Unescape(base64, &der));
  return der;
}

TEST(EcdsaTest, VerifiesTheSignatureOfExactlyTheSignedBytes) {
  absl::StatusOr<EcdsaP256PublicKey> key =
      EcdsaP256PublicKey::FromPem(kEcdsaTestPublicPem);
  ASSERT_TRUE(key.ok()) << key.status();
  const std::string signature = Der(kEcdsaTestSignature);
  EXPECT_TRUE(key->Verify(kEcdsaTestBody, signature));
  EXPECT_FALSE(key->Verify(std::string(kEcdsaTestBody) + " ", signature));
  EXPECT_FALSE(key->Verify("", signature));
  std::string flipped = signature;
  flipped[10] ^= 1;
  EXPECT_FALSE(key->Verify(kEcdsaTestBody, flipped));
  EXPECT_FALSE(key->Verify(kEcdsaTestBody, signature.substr(0, 20)));
  EXPECT_FALSE(key->Verify(kEcdsaTestBody, ""));
  EXPECT_FALSE(key->Verify(kEcdsaTestBody, "not DER at all"));
}

TEST(EcdsaTest, RefusesWhatIsNotAP256PublicKey) {
  EXPECT_EQ(EcdsaP256PublicKey::FromPem("").status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(EcdsaP256PublicKey::FromPem("-----BEGIN PUBLIC KEY-----\nAAAA\n"
                                        "-----END PUBLIC KEY-----\n")
                .status()
                .code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(EcdsaP256PublicKey::FromPem(kP384Pem).status().code(),
            absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace lumo::core
