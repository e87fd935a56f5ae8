#include "server/core/ecdsa.h"

#include <string>

#include "absl/strings/escaping.h"
#include "gtest/gtest.h"

namespace lumo::core {
namespace {

// A P-256 key pair made by the openssl CLI, and its signature of kBody
// (openssl dgst -sha256 -sign), base64.
constexpr char kPublicPem[] =
    "-----BEGIN PUBLIC KEY-----\n"
    "MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEA79/V1mQz0H4BXvuH4+s6eEpu8QJ\n"
    "mMJjwbJOjWO85bXPKR4VrvU0wvpVThbG7kMUT8qfh5jDHwy8XKHO+CvmOg==\n"
    "-----END PUBLIC KEY-----\n";
constexpr char kBody[] = "[{\"token\":\"lmk_x\"}]";
constexpr char kSignature[] =
    "MEUCIQCOWussk0KG9ZzsawaY//FBHJW4buayTY6rv/vKkH4tKwIgT8XO6hxF1ZYyN9OkLE/"
    "m7l6xXtE85U4X/15q8gMmLNU=";
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
      EcdsaP256PublicKey::FromPem(kPublicPem);
  ASSERT_TRUE(key.ok()) << key.status();
  const std::string signature = Der(kSignature);
  EXPECT_TRUE(key->Verify(kBody, signature));
  EXPECT_FALSE(key->Verify(std::string(kBody) + " ", signature));
  EXPECT_FALSE(key->Verify("", signature));
  std::string flipped = signature;
  flipped[10] ^= 1;
  EXPECT_FALSE(key->Verify(kBody, flipped));
  EXPECT_FALSE(key->Verify(kBody, signature.substr(0, 20)));
  EXPECT_FALSE(key->Verify(kBody, ""));
  EXPECT_FALSE(key->Verify(kBody, "not DER at all"));
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
