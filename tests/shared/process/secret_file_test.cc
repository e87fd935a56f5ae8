// Secret files (server/shared/process/secret_file.h): the start-up check of
// who may read them, on real files in a temporary folder, and the one rule
// for what a token or password file holds.
#include "server/shared/process/secret_file.h"

#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/strings/match.h"
#include "gtest/gtest.h"

namespace lumo::process {
namespace {

class SecretFileTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char dir[] = "/tmp/lumo-secret-file-XXXXXX";
    ASSERT_NE(mkdtemp(dir), nullptr);
    dir_ = dir;
    path_ = dir_ + "/secret";
    std::ofstream(path_) << "s3cret\n";
  }
  void TearDown() override {
    absl::SetFlag(&FLAGS_allow_insecure_secret_files, false);
    unlink(path_.c_str());
    rmdir(dir_.c_str());
  }
  void Mode(mode_t mode) { ASSERT_EQ(chmod(path_.c_str(), mode), 0); }

  std::string dir_, path_;
};

TEST_F(SecretFileTest, PrivateModesAreAccepted) {
  for (mode_t mode : {0600, 0400, 0640, 0440}) {
    Mode(mode);
    EXPECT_TRUE(CheckSecretFile("--pepper_file", path_).ok()) << mode;
  }
}

TEST_F(SecretFileTest, ModesOthersCanUseAreRefusedWithTheFix) {
  for (mode_t mode : {0644, 0604, 0660, 0620, 0700, 0666, 0641}) {
    Mode(mode);
    absl::Status st = CheckSecretFile("--pepper_file", path_);
    EXPECT_TRUE(absl::IsFailedPrecondition(st)) << mode << " " << st;
    EXPECT_TRUE(absl::StrContains(st.message(), "--pepper_file")) << st;
    EXPECT_TRUE(absl::StrContains(st.message(), "chmod 600")) << st;
  }
}

TEST_F(SecretFileTest, OtherOwnersAndNonFilesAreRefused) {
  EXPECT_TRUE(absl::IsFailedPrecondition(CheckSecretFile("--f", dir_)));
  EXPECT_TRUE(absl::IsNotFound(CheckSecretFile("--f", dir_ + "/missing")));
  if (geteuid() == 0) {
    // Root may own the file; another uid may not.
    Mode(0600);
    ASSERT_EQ(chown(path_.c_str(), 12345, 12345), 0);
    absl::Status st = CheckSecretFile("--service_token_file", path_);
    EXPECT_TRUE(absl::IsFailedPrecondition(st)) << st;
    EXPECT_TRUE(absl::StrContains(st.message(), "uid 12345")) << st;
  }
}

TEST_F(SecretFileTest, OverrideTurnsTheRefusalIntoAWarning) {
  Mode(0644);
  std::string warning;
  EXPECT_FALSE(CheckSecretFileFlag("--pepper_file", path_, &warning).ok());
  absl::SetFlag(&FLAGS_allow_insecure_secret_files, true);
  EXPECT_TRUE(CheckSecretFileFlag("--pepper_file", path_, &warning).ok());
  EXPECT_TRUE(absl::StrContains(warning, "0644")) << warning;
  EXPECT_TRUE(CheckSecretFileFlag("--unset", "", nullptr).ok());
  // A missing file is left to its reader (which names the flag).
  EXPECT_TRUE(CheckSecretFileFlag("--f", dir_ + "/missing", nullptr).ok());
}

TEST_F(SecretFileTest, CheckSecretFilesNamesTheFirstRefusedFlag) {
  Mode(0600);
  const std::string loose = dir_ + "/loose";
  std::ofstream(loose) << "x\n";
  ASSERT_EQ(chmod(loose.c_str(), 0644), 0);
  std::vector<std::string> warnings;
  auto warn = [&](absl::string_view w) { warnings.emplace_back(w); };
  absl::Status st = CheckSecretFiles(
      {{"--pepper_file", path_}, {"--tls_key_file", loose}, {"--unset", ""}},
      warn);
  EXPECT_TRUE(absl::IsFailedPrecondition(st)) << st;
  EXPECT_TRUE(absl::StrContains(st.message(), "--tls_key_file")) << st;
  absl::SetFlag(&FLAGS_allow_insecure_secret_files, true);
  EXPECT_TRUE(CheckSecretFiles(
                  {{"--pepper_file", path_}, {"--tls_key_file", loose}}, warn)
                  .ok());
  ASSERT_EQ(warnings.size(), 1u);
  EXPECT_TRUE(absl::StrContains(warnings[0], "--tls_key_file"));
  unlink(loose.c_str());
}

TEST(SecretValueTest, TokenIsTheTextWithoutSurroundingWhitespace) {
  const std::string token = "0123456789abcdef-_~.+/=";
  for (const std::string& text :
       {token, token + "\n", token + "\r\n", "  " + token + "\t\n\n"}) {
    absl::StatusOr<std::string> read =
        TokenFromText("--service_token_file", "service token", text);
    ASSERT_TRUE(read.ok()) << read.status();
    EXPECT_EQ(*read, token);
  }
  // Inner spaces are printable ASCII, which gRPC metadata carries.
  EXPECT_TRUE(TokenFromText("--f", "t", "a token with spaces").ok());
}

TEST(SecretValueTest, TokenRuleRefusalsNameTheFlagAndNeverTheContent) {
  const struct {
    std::string text;
    std::string message;
  } cases[] = {
      {"", "--service_token_file: the file holds no token"},
      {" \n\t\r\n", "--service_token_file: the file holds no token"},
      {"0123456789abcdef\nsecond-line-0123",
       "--service_token_file: the service token holds characters gRPC "
       "metadata cannot carry (one line of printable ASCII is expected)"},
      {"0123456789\tabcdef",
       "--service_token_file: the service token holds characters gRPC "
       "metadata cannot carry (one line of printable ASCII is expected)"},
      {"t\xc3\xb6ken-0123456789abcdef",
       "--service_token_file: the service token holds characters gRPC "
       "metadata cannot carry (one line of printable ASCII is expected)"},
      {"0123456789abcde",
       "--service_token_file: the service token must be at least 16 "
       "characters"},
      {std::string(kMaxSecretValueBytes + 1, 'a'),
       "--service_token_file: the service token is longer than 4096 bytes"},
  };
  for (const auto& c : cases) {
    absl::StatusOr<std::string> read =
        TokenFromText("--service_token_file", "service token", c.text);
    ASSERT_FALSE(read.ok()) << c.text;
    EXPECT_EQ(read.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_EQ(read.status().message(), c.message);
  }
  EXPECT_TRUE(TokenFromText("--f", "t", std::string(16, 'a')).ok());
  EXPECT_TRUE(
      TokenFromText("--f", "t", std::string(kMaxSecretValueBytes, 'a')).ok());
}

TEST(SecretValueTest, PasswordRuleAllowsAnyOneLineWithoutControls) {
  for (const std::string& password : {"x", "correct horse", "p\xc3\xa4ss"}) {
    absl::StatusOr<std::string> read =
        PasswordFromText("--mysql_password_file", password + "\n");
    ASSERT_TRUE(read.ok()) << read.status();
    EXPECT_EQ(*read, password);
  }
  EXPECT_EQ(PasswordFromText("--mysql_password_file", "\n").status().message(),
            "--mysql_password_file: the file holds no password");
  EXPECT_EQ(
      PasswordFromText("--mysql_password_file", "one\ntwo").status().message(),
      "--mysql_password_file: the password holds control characters "
      "(one line is expected)");
}

TEST_F(SecretFileTest, TokenFilesAreReadWithTheRule) {
  std::ofstream(path_) << "0123456789abcdefghij\n";
  absl::StatusOr<std::string> token =
      ReadTokenFile("--operator_token_file", path_, "operator token");
  ASSERT_TRUE(token.ok()) << token.status();
  EXPECT_EQ(*token, "0123456789abcdefghij");
  std::ofstream(path_) << "short\n";
  EXPECT_EQ(ReadTokenFile("--operator_token_file", path_, "operator token")
                .status()
                .message(),
            "--operator_token_file: the operator token must be at least 16 "
            "characters");
  absl::StatusOr<std::string> missing =
      ReadTokenFile("--operator_token_file", dir_ + "/missing", "t");
  EXPECT_TRUE(absl::IsNotFound(missing.status())) << missing.status();
  EXPECT_TRUE(absl::StartsWith(
      missing.status().message(),
      "--operator_token_file: cannot read " + dir_ + "/missing"))
      << missing.status();
  // A huge file is refused without holding it all.
  std::ofstream(path_) << std::string(3 * kMaxSecretValueBytes, 'a');
  EXPECT_TRUE(absl::StrContains(
      ReadTokenFile("--f", path_, "t").status().message(), "is larger than"));
}

TEST_F(SecretFileTest, PasswordFilesAreReadWithTheRule) {
  std::ofstream(path_) << "s3cret pass\n";
  absl::StatusOr<std::string> password =
      ReadPasswordFile("--mysql_password_file", path_);
  ASSERT_TRUE(password.ok()) << password.status();
  EXPECT_EQ(*password, "s3cret pass");
}

}  // namespace
}  // namespace lumo::process
