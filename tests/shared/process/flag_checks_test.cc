// Cross-field flag checks both binaries make
// (server/shared/process/flag_checks.h): their verdicts and the exact
// wording operators see.
#include "server/shared/process/flag_checks.h"

#include "absl/status/status.h"
#include "gtest/gtest.h"

namespace lumo::process {
namespace {

TEST(FlagChecksTest, SetTogetherAcceptsBothOrNeither) {
  EXPECT_TRUE(SetTogether({"--a", ""}, {"--b", ""}).ok());
  EXPECT_TRUE(SetTogether({"--a", "x"}, {"--b", "y"}).ok());
  for (const absl::Status& refused : {SetTogether({"--a", "x"}, {"--b", ""}),
                                      SetTogether({"--a", ""}, {"--b", "y"})}) {
    EXPECT_EQ(refused.code(), absl::StatusCode::kInvalidArgument);
    EXPECT_EQ(refused.message(), "--a and --b must be set together");
  }
}

TEST(FlagChecksTest, NeedsListsEveryNeededFlagAndTheReason) {
  EXPECT_TRUE(Needs({"--d", ""}, {{"--n", ""}}).ok());
  EXPECT_TRUE(Needs({"--d", "x"}, {{"--n", "y"}, {"--m", "z"}}).ok());
  EXPECT_EQ(Needs({"--d", "x"}, {{"--n", ""}}).message(), "--d needs --n");
  EXPECT_EQ(Needs({"--d", "x"}, {{"--n", "y"}, {"--m", ""}}).message(),
            "--d needs --n and --m");
  absl::Status three =
      Needs({"--d", "x"}, {{"--a", ""}, {"--b", "y"}, {"--c", "z"}}, "why");
  EXPECT_EQ(three.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(three.message(), "--d needs --a, --b and --c (why)");
}

TEST(FlagChecksTest, LoopbackAddresses) {
  for (const char* loopback :
       {"127.0.0.1:50051", "127.1.2.3:1", "localhost:8080", "[::1]:443",
        "unix:/run/lumokeys.sock"}) {
    EXPECT_TRUE(IsLoopbackAddress(loopback)) << loopback;
  }
  for (const char* remote :
       {"0.0.0.0:50051", "10.0.0.1:1", "[::]:8080", "[2001:db8::1]:1",
        "example.com:443", "localhost", "::1:80"}) {
    EXPECT_FALSE(IsLoopbackAddress(remote)) << remote;
  }
}

TEST(FlagChecksTest, PlaintextIsRefusedOffLoopbackOnly) {
  const FlagValue remote{"--listen", "10.1.1.1:1"};
  absl::Status refused =
      CheckPlaintextAddress(remote, /*tls=*/false,
                            /*allow_remote_plaintext=*/false, "plain HTTP",
                            "--tls_cert_file and --tls_key_file are");
  EXPECT_EQ(refused.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(refused.message(),
            "--listen=10.1.1.1:1 is not loopback: plain HTTP is refused there "
            "unless --allow_remote_plaintext is set (or --tls_cert_file and "
            "--tls_key_file are)");
  EXPECT_TRUE(CheckPlaintextAddress(remote, true, false, "p", "h").ok());
  EXPECT_TRUE(CheckPlaintextAddress(remote, false, true, "p", "h").ok());
  EXPECT_TRUE(
      CheckPlaintextAddress({"--listen", "127.0.0.1:1"}, false, false, "p", "h")
          .ok());
}

}  // namespace
}  // namespace lumo::process
