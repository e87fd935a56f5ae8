#include "server/core/crypto.h"

#include <openssl/crypto.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <cstdint>
#include <cstdio>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/string_view.h"
#include "gtest/gtest.h"

namespace lumo::core {
namespace {

std::string Bytes(size_t n, uint8_t value) {
  return std::string(n, static_cast<char>(value));
}

std::string HexOf(const Digest& d) { return HexEncode(AsStringView(d)); }

// The binary runs against the library its target was built for, and only it
// (OpenSSL and BoringSSL must never share a process).
TEST(CryptoTest, LinkedAgainstExpectedCryptoLibrary) {
  EXPECT_TRUE(
      absl::StartsWith(OpenSSL_version(OPENSSL_VERSION), LUMO_EXPECT_CRYPTO))
      << OpenSSL_version(OPENSSL_VERSION);
}

TEST(CryptoTest, Sha256MatchesFips180Vectors) {
  EXPECT_EQ(HexOf(Sha256("")),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ(HexOf(Sha256("abc")),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  EXPECT_EQ(
      HexOf(Sha256("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq")),
      "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
}

struct HmacVector {
  int test_case;
  std::string key;
  std::string data;
  // Full digest, or its first 128 bits for test case 5 (truncated output).
  std::string hex;
};

class Rfc4231Test : public testing::TestWithParam<HmacVector> {};

TEST_P(Rfc4231Test, HmacSha256MatchesVector) {
  const HmacVector& v = GetParam();
  const std::string actual = HexOf(HmacSha256(v.key, v.data));
  EXPECT_EQ(actual.substr(0, v.hex.size()), v.hex);
}

std::string Rfc4231Key4() {
  std::string key;
  for (int i = 1; i <= 25; ++i) key.push_back(static_cast<char>(i));
  return key;
}

INSTANTIATE_TEST_SUITE_P(
    AllTestCases, Rfc4231Test,
    testing::Values(
        HmacVector{
            1, Bytes(20, 0x0b), "Hi There",
            "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7"},
        HmacVector{
            2, "Jefe", "what do ya want for nothing?",
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"},
        HmacVector{
            3, Bytes(20, 0xaa), Bytes(50, 0xdd),
            "773ea91e36800e46854db8ebd09181a72959098b3ef8c122d9635514ced565fe"},
        HmacVector{
            4, Rfc4231Key4(), Bytes(50, 0xcd),
            "82558a389a443c0ea4cc819899f2083a85f0faa3e578f8077a2e3ff46729665b"},
        HmacVector{5, Bytes(20, 0x0c), "Test With Truncation",
                   "a3b6167473100ee06e0c796c2955552b"},
        HmacVector{
            6, Bytes(131, 0xaa),
            "Test Using Larger Than Block-Size Key - Hash Key First",
            "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54"},
        HmacVector{
            7, Bytes(131, 0xaa),
            "This is a test using a larger than block-size key and a larger "
            "than block-size data. The key needs to be hashed before being "
            "used by the HMAC algorithm.",
            "9b09ffa71b942fcb27635fbcd5b0e944bfdc63644f0713938a7f51535c3a35e"
            "2"}),
    [](const testing::TestParamInfo<HmacVector>& info) {
      return "TestCase" + std::to_string(info.param.test_case);
    });

TEST(CryptoTest, HmacSha256AcceptsEmptyKeyAndData) {
  EXPECT_EQ(HexOf(HmacSha256("", "")),
            "b613679a0814d9ec772f95d778c35fc5ff1697c493715653c6c712144292c5ad");
}

TEST(CryptoTest, ConstantTimeEqualsComparesDigests) {
  Digest a = Sha256("a");
  Digest b = a;
  EXPECT_TRUE(ConstantTimeEquals(a, b));
  b[kDigestSize - 1] ^= 1;
  EXPECT_FALSE(ConstantTimeEquals(a, b));
  b = a;
  b[0] ^= 0x80;
  EXPECT_FALSE(ConstantTimeEquals(a, b));
}

TEST(CryptoTest, ConstantTimeEqualsComparesStrings) {
  EXPECT_TRUE(ConstantTimeEquals(absl::string_view(""), absl::string_view("")));
  EXPECT_TRUE(ConstantTimeEquals(absl::string_view("secret"),
                                 absl::string_view("secret")));
  EXPECT_FALSE(ConstantTimeEquals(absl::string_view("secret"),
                                  absl::string_view("secreT")));
  EXPECT_FALSE(ConstantTimeEquals(absl::string_view("secret"),
                                  absl::string_view("secret2")));
  EXPECT_FALSE(
      ConstantTimeEquals(absl::string_view(""), absl::string_view("x")));
}

TEST(CryptoTest, CleanseEmptiesTheString) {
  std::string s = "a secret that is longer than the small-string buffer";
  Cleanse(s);
  EXPECT_EQ(s, "");
  std::string empty;
  Cleanse(empty);
  EXPECT_EQ(empty, "");
}

TEST(CryptoTest, HexEncodeIsLowerCase) {
  EXPECT_EQ(HexEncode(""), "");
  EXPECT_EQ(HexEncode(std::string("\x00\xff\x10\xab", 4)), "00ff10ab");
}

TEST(CryptoTest, HexDecodeAcceptsBothCases) {
  absl::StatusOr<std::string> lower = HexDecode("00ff10ab");
  ASSERT_TRUE(lower.ok()) << lower.status();
  EXPECT_EQ(*lower, std::string("\x00\xff\x10\xab", 4));
  absl::StatusOr<std::string> upper = HexDecode("00FF10AB");
  ASSERT_TRUE(upper.ok()) << upper.status();
  EXPECT_EQ(*upper, *lower);
  absl::StatusOr<std::string> empty = HexDecode("");
  ASSERT_TRUE(empty.ok()) << empty.status();
  EXPECT_EQ(*empty, "");
}

TEST(CryptoTest, HexDecodeRejectsOddLengthWithoutEchoingInput) {
  absl::StatusOr<std::string> decoded = HexDecode("abcdef0");
  EXPECT_EQ(decoded.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(decoded.status().message(), "hex string has an odd length");
}

TEST(CryptoTest, HexDecodeRejectsNonHexWithoutEchoingInput) {
  for (absl::string_view bad : {"zz", "0g", "a ", "-1", "0x"}) {
    absl::StatusOr<std::string> decoded = HexDecode(bad);
    EXPECT_EQ(decoded.status().code(), absl::StatusCode::kInvalidArgument)
        << bad;
    EXPECT_EQ(decoded.status().message(), "hex string has a non-hex character");
  }
}

TEST(CryptoTest, HexRoundTripsEveryByte) {
  std::string all;
  for (int i = 0; i < 256; ++i) all.push_back(static_cast<char>(i));
  absl::StatusOr<std::string> decoded = HexDecode(HexEncode(all));
  ASSERT_TRUE(decoded.ok()) << decoded.status();
  EXPECT_EQ(*decoded, all);
}

TEST(CryptoTest, RandomBytesFillsTheBufferFreshEachTime) {
  std::array<uint8_t, 32> a{};
  std::array<uint8_t, 32> b{};
  ASSERT_TRUE(RandomBytes(a.data(), a.size()).ok());
  ASSERT_TRUE(RandomBytes(b.data(), b.size()).ok());
  EXPECT_NE(a, b);
  EXPECT_NE(a, (std::array<uint8_t, 32>{}));
  EXPECT_TRUE(RandomBytes(nullptr, 0).ok());
}

TEST(CryptoTest, RandomBase62ReturnsExactLengthInAlphabet) {
  for (size_t n : {0, 1, 12, 43, 200, 1000}) {
    absl::StatusOr<std::string> s = RandomBase62(n);
    ASSERT_TRUE(s.ok()) << s.status();
    EXPECT_EQ(s->size(), n);
    EXPECT_EQ(s->find_first_not_of("0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"
                                   "abcdefghijklmnopqrstuvwxyz"),
              std::string::npos);
  }
}

// Without rejection sampling, "0".."7" (bytes 248..255 mod 62) would come up
// 25% more often than the other characters.
TEST(CryptoTest, RandomBase62IsUnbiased) {
  constexpr size_t kPerChar = 10000;
  absl::StatusOr<std::string> s = RandomBase62(62 * kPerChar);
  ASSERT_TRUE(s.ok()) << s.status();
  std::array<size_t, 256> counts{};
  for (char c : *s) ++counts[static_cast<uint8_t>(c)];
  const absl::string_view alphabet =
      "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
  for (char c : alphabet) {
    // Standard deviation is about 99; 700 is over 7 sigma.
    EXPECT_NEAR(static_cast<double>(counts[static_cast<uint8_t>(c)]),
                static_cast<double>(kPerChar), 700.0)
        << c;
  }
}

// Random output is buffered per thread; a forked child must not repeat what
// its parent hands out next.
TEST(CryptoTest, RandomBase62DiffersBetweenParentAndForkedChild) {
  ASSERT_TRUE(RandomBase62(43).ok());  // fill this thread's buffer
  int fds[2];
  ASSERT_EQ(pipe(fds), 0);
  std::fflush(nullptr);  // the child must not repeat buffered output
  const pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    absl::StatusOr<std::string> child = RandomBase62(43);
    const bool ok = child.ok() && write(fds[1], child->data(), child->size()) ==
                                      static_cast<ssize_t>(child->size());
    _exit(ok ? 0 : 1);
  }
  close(fds[1]);
  absl::StatusOr<std::string> parent = RandomBase62(43);
  ASSERT_TRUE(parent.ok());
  std::string child(43, '\0');
  size_t got = 0;
  while (got < child.size()) {
    const ssize_t n = read(fds[0], &child[got], child.size() - got);
    if (n <= 0) break;
    got += static_cast<size_t>(n);
  }
  close(fds[0]);
  int wstatus = 0;
  ASSERT_EQ(waitpid(pid, &wstatus, 0), pid);
  ASSERT_TRUE(WIFEXITED(wstatus) && WEXITSTATUS(wstatus) == 0);
  ASSERT_EQ(got, child.size());
  EXPECT_NE(*parent, child);
}

}  // namespace
}  // namespace lumo::core
