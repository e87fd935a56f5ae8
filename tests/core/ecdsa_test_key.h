// A fixed ECDSA P-256 key pair for tests of signature checks: the public key
// (made with the openssl CLI), a body and the key's signature of it
// (openssl dgst -sha256 -sign), DER, base64. The private key is not kept:
// tests can check this one signature only.
#ifndef LUMOKEYS_TESTS_CORE_ECDSA_TEST_KEY_H_
#define LUMOKEYS_TESTS_CORE_ECDSA_TEST_KEY_H_

namespace lumo::testing {

inline constexpr char kEcdsaTestPublicPem[] =
    "-----BEGIN PUBLIC KEY-----\n"
    "MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEA79/V1mQz0H4BXvuH4+s6eEpu8QJ\n"
    "mMJjwbJOjWO85bXPKR4VrvU0wvpVThbG7kMUT8qfh5jDHwy8XKHO+CvmOg==\n"
    "-----END PUBLIC KEY-----\n";
inline constexpr char kEcdsaTestBody[] = "[{\"token\":\"lmk_x\"}]";
inline constexpr char kEcdsaTestSignature[] =
    "MEUCIQCOWussk0KG9ZzsawaY//FBHJW4buayTY6rv/vKkH4tKwIgT8XO6hxF1ZYyN9OkLE/"
    "m7l6xXtE85U4X/15q8gMmLNU=";

}  // namespace lumo::testing

#endif  // LUMOKEYS_TESTS_CORE_ECDSA_TEST_KEY_H_
