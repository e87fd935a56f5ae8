// The start-up check of secret files (server/config/secret_file.h), on real
// files in a temporary folder.
#include "server/config/secret_file.h"

#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/strings/match.h"
#include "gtest/gtest.h"

namespace lumo::config {
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

}  // namespace
}  // namespace lumo::config
