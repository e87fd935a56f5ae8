#include "server/core/pepper.h"

#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <fstream>
#include <initializer_list>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "gtest/gtest.h"
#include "server/core/crypto.h"

namespace lumo::core {
namespace {

// A distinct 32-byte secret per (seed, version), as hex.
std::string SecretHex(int seed, int version) {
  return HexEncode(
      AsStringView(Sha256(absl::StrCat("pepper ", seed, "/", version))));
}

std::string SecretBytes(int seed, int version) {
  return *HexDecode(SecretHex(seed, version));
}

std::shared_ptr<const PepperSet> MakeSet(int seed) {
  absl::StatusOr<std::shared_ptr<const PepperSet>> set = PepperSet::Parse(
      absl::StrCat("1:", SecretHex(seed, 1), "\n2:", SecretHex(seed, 2), "\n"));
  EXPECT_TRUE(set.ok()) << set.status();
  return *set;
}

std::string Hex(const Digest& d) { return HexEncode(AsStringView(d)); }

// Expects `contents` to be rejected with exactly `message`, which must not
// leak the secret `hex` (when given).
void ExpectParseError(absl::string_view contents, absl::string_view message,
                      absl::string_view hex = "") {
  absl::StatusOr<std::shared_ptr<const PepperSet>> set =
      PepperSet::Parse(contents);
  ASSERT_FALSE(set.ok());
  EXPECT_EQ(set.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(set.status().message(), message);
  if (!hex.empty()) {
    EXPECT_FALSE(absl::StrContains(set.status().ToString(), hex.substr(0, 8)));
  }
}

class TempFile {
 public:
  explicit TempFile(absl::string_view contents) {
    char name[] = "/tmp/lumo_pepper_test_XXXXXX";
    const int fd = mkstemp(name);
    EXPECT_GE(fd, 0);
    close(fd);
    path_ = name;
    std::ofstream(path_) << contents;
  }
  ~TempFile() { std::remove(path_.c_str()); }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

TEST(PepperSetTest, ParseSkipsCommentsAndBlankLinesAndPicksHighestVersion) {
  const std::string contents =
      absl::StrCat("# lumokeys pepper set\n\n  \n3:", SecretHex(0, 3),
                   "\r\n1:", SecretHex(0, 1), "\n   # indented comment\n");
  absl::StatusOr<std::shared_ptr<const PepperSet>> set =
      PepperSet::Parse(contents);
  ASSERT_TRUE(set.ok()) << set.status();
  EXPECT_EQ((*set)->current_version(), 3);
  EXPECT_TRUE((*set)->HasVersion(1));
  EXPECT_FALSE((*set)->HasVersion(2));
  EXPECT_TRUE((*set)->HasVersion(3));
  EXPECT_EQ((*set)->Versions(), (std::vector<int>{1, 3}));
}

TEST(PepperSetTest, ParseAcceptsSecretsLongerThan32Bytes) {
  const std::string hex(262, 'a');  // 131 bytes
  absl::StatusOr<std::shared_ptr<const PepperSet>> set =
      PepperSet::Parse(absl::StrCat("7:", hex));
  ASSERT_TRUE(set.ok()) << set.status();
  EXPECT_EQ((*set)->current_version(), 7);
}

TEST(PepperSetTest, ParseRejectsEmptyFile) {
  ExpectParseError("", "pepper file contains no pepper");
  ExpectParseError("# only a comment\n\n", "pepper file contains no pepper");
}

TEST(PepperSetTest, ParseErrorNamesLineOfMissingColon) {
  const std::string hex = SecretHex(1, 1);
  ExpectParseError(absl::StrCat("# c\n", hex, "\n"),
                   "pepper file line 2: expected <version>:<hex secret>", hex);
}

TEST(PepperSetTest, ParseErrorNamesLineOfBadVersion) {
  const std::string hex = SecretHex(1, 1);
  for (absl::string_view version :
       {"0", "-1", "+1", "abc", "", "1 ", "1.5", "1000000000"}) {
    ExpectParseError(
        absl::StrCat("1:", SecretHex(2, 1), "\n", version, ":", hex),
        "pepper file line 2: version must be a positive integer below 10^9",
        hex);
  }
}

TEST(PepperSetTest, ParseErrorNamesLineOfDuplicateVersion) {
  const std::string hex = SecretHex(1, 2);
  ExpectParseError(absl::StrCat("2:", SecretHex(1, 1), "\n\n2:", hex, "\n"),
                   "pepper file line 3: duplicate version 2", hex);
}

TEST(PepperSetTest, ParseErrorNamesLineOfNonHexSecret) {
  std::string hex = SecretHex(1, 1);
  hex[10] = 'g';
  ExpectParseError(
      absl::StrCat("1:", hex),
      "pepper file line 1: secret must be an even number of hex digits", hex);
}

TEST(PepperSetTest, ParseErrorNamesLineOfOddLengthSecret) {
  const std::string hex = SecretHex(1, 1) + "a";
  ExpectParseError(
      absl::StrCat("\n\n\n1:", hex),
      "pepper file line 4: secret must be an even number of hex digits", hex);
}

TEST(PepperSetTest, ParseErrorNamesLineOfShortSecret) {
  const std::string hex = SecretHex(1, 1).substr(0, 62);  // 31 bytes
  ExpectParseError(
      absl::StrCat("1:", SecretHex(1, 2), "\n2:", hex),
      "pepper file line 2: secret must be at least 32 bytes (64 hex digits)",
      hex);
}

TEST(PepperSetTest, MacMatchesOneShotHmac) {
  std::shared_ptr<const PepperSet> set = MakeSet(5);
  for (int version : {1, 2}) {
    for (absl::string_view data : {"", "a", "lmk_0123456789Ab_secret"}) {
      absl::StatusOr<Digest> mac = set->Mac(version, data);
      ASSERT_TRUE(mac.ok()) << mac.status();
      EXPECT_EQ(Hex(*mac), Hex(HmacSha256(SecretBytes(5, version), data)));
    }
  }
}

TEST(PepperSetTest, MacMatchesRfc4231LongKeyVector) {
  // RFC 4231 test case 6: a key longer than the SHA-256 block.
  absl::StatusOr<std::shared_ptr<const PepperSet>> set =
      PepperSet::Parse(absl::StrCat("1:", std::string(262, 'a')));
  ASSERT_TRUE(set.ok()) << set.status();
  for (int i = 0; i < 3; ++i) {  // a warm context gives the same answer
    absl::StatusOr<Digest> mac = (*set)->Mac(
        1, "Test Using Larger Than Block-Size Key - Hash Key First");
    ASSERT_TRUE(mac.ok()) << mac.status();
    EXPECT_EQ(
        Hex(*mac),
        "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54");
  }
}

TEST(PepperSetTest, MacOfUnknownVersionIsNotFound) {
  std::shared_ptr<const PepperSet> set = MakeSet(5);
  absl::StatusOr<Digest> mac = set->Mac(3, "data");
  EXPECT_EQ(mac.status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(mac.status().message(), "no pepper with version 3");
}

TEST(PepperSetTest, MacIsCorrectAcrossThreadsAndTwoSets) {
  std::shared_ptr<const PepperSet> a = MakeSet(1);
  std::shared_ptr<const PepperSet> b = MakeSet(2);
  // Same versions, different secrets: a cache keyed by version alone would
  // mix them up.
  EXPECT_NE(Hex(*a->Mac(1, "x")), Hex(*b->Mac(1, "x")));

  std::vector<std::thread> threads;
  std::vector<int> failures(8, 0);
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 500; ++i) {
        const std::string data = absl::StrCat("thread ", t, " call ", i);
        const int version = 1 + (i + t) % 2;
        const bool use_a = (i / 2 + t) % 2 == 0;
        const PepperSet& set = use_a ? *a : *b;
        const std::string expected =
            Hex(HmacSha256(SecretBytes(use_a ? 1 : 2, version), data));
        absl::StatusOr<Digest> mac = set.Mac(version, data);
        if (!mac.ok() || Hex(*mac) != expected) ++failures[t];
      }
    });
  }
  for (std::thread& thread : threads) thread.join();
  for (int t = 0; t < 8; ++t) EXPECT_EQ(failures[t], 0) << "thread " << t;
}

// Sets created after others were destroyed may reuse their addresses; their
// serial differs, so a stale context is never used.
TEST(PepperSetTest, MacNeverUsesContextOfDestroyedSet) {
  for (int seed = 0; seed < 50; ++seed) {
    std::shared_ptr<const PepperSet> set = MakeSet(seed);
    for (int version : {1, 2}) {
      absl::StatusOr<Digest> mac = set->Mac(version, "data");
      ASSERT_TRUE(mac.ok()) << mac.status();
      ASSERT_EQ(Hex(*mac), Hex(HmacSha256(SecretBytes(seed, version), "data")))
          << "seed " << seed << " version " << version;
    }
  }
}

TEST(PepperSetTest, MacIsCorrectWithMoreLiveSetsThanCachedContexts) {
  std::vector<std::shared_ptr<const PepperSet>> sets;
  for (int seed = 0; seed < 20; ++seed) sets.push_back(MakeSet(seed));
  for (int round = 0; round < 3; ++round) {
    for (int seed = 0; seed < 20; ++seed) {
      for (int version : {1, 2}) {
        absl::StatusOr<Digest> mac = sets[seed]->Mac(version, "data");
        ASSERT_TRUE(mac.ok()) << mac.status();
        ASSERT_EQ(Hex(*mac),
                  Hex(HmacSha256(SecretBytes(seed, version), "data")));
      }
    }
  }
}

TEST(PepperSetTest, LoadFileReadsFile) {
  TempFile file(absl::StrCat("1:", SecretHex(3, 1), "\n"));
  absl::StatusOr<std::shared_ptr<const PepperSet>> set =
      PepperSet::LoadFile(file.path());
  ASSERT_TRUE(set.ok()) << set.status();
  EXPECT_EQ(Hex(*(*set)->Mac(1, "d")), Hex(HmacSha256(SecretBytes(3, 1), "d")));
}

TEST(PepperSetTest, LoadFileOfMissingFileIsNotFound) {
  absl::StatusOr<std::shared_ptr<const PepperSet>> set =
      PepperSet::LoadFile("/nonexistent/lumo/pepper");
  EXPECT_EQ(set.status().code(), absl::StatusCode::kNotFound);
}

TEST(PepperSetTest, LoadFileOfUnreadableFileIsPermissionDenied) {
  TempFile file(absl::StrCat("1:", SecretHex(3, 1), "\n"));
  ASSERT_EQ(chmod(file.path().c_str(), 0), 0);
  if (geteuid() != 0) {
    EXPECT_EQ(PepperSet::LoadFile(file.path()).status().code(),
              absl::StatusCode::kPermissionDenied);
    return;
  }
  // Root reads any file: check from a child that drops to "nobody".
  std::fflush(nullptr);  // the child must not repeat buffered output
  const pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    if (setgid(65534) != 0 || setuid(65534) != 0) _exit(2);
    _exit(PepperSet::LoadFile(file.path()).status().code() ==
                  absl::StatusCode::kPermissionDenied
              ? 0
              : 1);
  }
  int wstatus = 0;
  ASSERT_EQ(waitpid(pid, &wstatus, 0), pid);
  ASSERT_TRUE(WIFEXITED(wstatus));
  EXPECT_EQ(WEXITSTATUS(wstatus), 0) << "1: wrong code, 2: cannot drop root";
}

TEST(PepperSetTest, LoadFileErrorNamesPathAndLineButNotSecret) {
  const std::string hex = SecretHex(3, 1).substr(0, 40);
  TempFile file(absl::StrCat("# pepper\n1:", hex, "\n"));
  absl::StatusOr<std::shared_ptr<const PepperSet>> set =
      PepperSet::LoadFile(file.path());
  EXPECT_EQ(set.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(set.status().message(),
            absl::StrCat(file.path(),
                         ": pepper file line 2: secret must be at least 32 "
                         "bytes (64 hex digits)"));
  EXPECT_FALSE(absl::StrContains(set.status().message(), hex.substr(0, 8)));
}

TEST(PepperSetTest, GeneratedFileHasOneVersionOf32RandomBytes) {
  absl::StatusOr<std::string> a = GeneratePepperFile();
  absl::StatusOr<std::string> b = GeneratePepperFile();
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_EQ(a->size(), 2 + 64 + 1u);
  EXPECT_TRUE(absl::StartsWith(*a, "1:"));
  EXPECT_TRUE(absl::EndsWith(*a, "\n"));
  EXPECT_TRUE(HexDecode(a->substr(2, 64)).ok());
  EXPECT_NE(*a, *b);
  absl::StatusOr<std::shared_ptr<const PepperSet>> set = PepperSet::Parse(*a);
  ASSERT_TRUE(set.ok()) << set.status();
  EXPECT_EQ((*set)->current_version(), 1);
}

std::string File(int seed, std::initializer_list<int> versions) {
  std::string out;
  for (int v : versions)
    absl::StrAppend(&out, v, ":", SecretHex(seed, v), "\n");
  return out;
}

TEST(PepperSetTest, ReloadAddsVersionAndKeepsOldOnesVerifying) {
  TempFile first(File(7, {1}));
  absl::StatusOr<std::shared_ptr<PepperSet>> set =
      PepperSet::LoadReloadableFile(first.path());
  ASSERT_TRUE(set.ok()) << set.status();
  const std::string before = Hex(*(*set)->Mac(1, "lmk_key"));
  EXPECT_EQ((*set)->current_version(), 1);
  EXPECT_FALSE((*set)->HasVersion(2));

  TempFile second(File(7, {1, 2}));
  ASSERT_TRUE((*set)->Reload(second.path()).ok());
  EXPECT_EQ((*set)->current_version(), 2);
  ASSERT_TRUE((*set)->HasVersion(2));
  EXPECT_EQ((*set)->Versions(), (std::vector<int>{1, 2}));
  // A digest stored under version 1 still matches after the reload.
  EXPECT_EQ(Hex(*(*set)->Mac(1, "lmk_key")), before);
  EXPECT_EQ(Hex(*(*set)->Mac(2, "lmk_key")),
            Hex(HmacSha256(SecretBytes(7, 2), "lmk_key")));
}

TEST(PepperSetTest, ReloadThatDropsAVersionFailsAndChangesNothing) {
  TempFile first(File(8, {1, 2}));
  std::shared_ptr<PepperSet> set = *PepperSet::LoadReloadableFile(first.path());
  TempFile dropped(File(8, {2, 3}));
  absl::Status reloaded = set->Reload(dropped.path());
  EXPECT_EQ(reloaded.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(absl::StrContains(reloaded.message(), "version 1 is missing"))
      << reloaded;
  EXPECT_EQ(set->current_version(), 2);
  EXPECT_TRUE(set->HasVersion(1));
  EXPECT_FALSE(set->HasVersion(3));
}

TEST(PepperSetTest, ReloadThatChangesASecretFailsWithoutLeakingIt) {
  TempFile first(File(9, {1}));
  std::shared_ptr<PepperSet> set = *PepperSet::LoadReloadableFile(first.path());
  const std::string before = Hex(*set->Mac(1, "x"));
  // Version 1 with another seed's secret.
  TempFile changed(absl::StrCat(File(10, {1}), File(9, {2})));
  absl::Status reloaded = set->Reload(changed.path());
  EXPECT_EQ(reloaded.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(absl::StrContains(reloaded.message(), "different secret"));
  EXPECT_FALSE(
      absl::StrContains(reloaded.ToString(), SecretHex(10, 1).substr(0, 8)));
  EXPECT_EQ(Hex(*set->Mac(1, "x")), before);
  EXPECT_EQ(set->current_version(), 1);
}

TEST(PepperSetTest, MacIsCorrectWhileReloadsRun) {
  TempFile first(File(11, {1}));
  std::shared_ptr<PepperSet> set = *PepperSet::LoadReloadableFile(first.path());
  const std::string expected = Hex(HmacSha256(SecretBytes(11, 1), "k"));
  std::atomic<bool> stop{false};
  std::atomic<int> wrong{0};
  std::vector<std::thread> readers;
  for (int t = 0; t < 4; ++t) {
    readers.emplace_back([&] {
      while (!stop.load()) {
        absl::StatusOr<Digest> mac = set->Mac(1, "k");
        if (!mac.ok() || Hex(*mac) != expected) wrong.fetch_add(1);
      }
    });
  }
  for (int v = 2; v <= 20; ++v) {
    std::string contents;
    for (int i = 1; i <= v; ++i) absl::StrAppend(&contents, File(11, {i}));
    TempFile next(contents);
    ASSERT_TRUE(set->Reload(next.path()).ok());
    EXPECT_EQ(set->current_version(), v);
  }
  stop.store(true);
  for (std::thread& t : readers) t.join();
  EXPECT_EQ(wrong.load(), 0);
}

}  // namespace
}  // namespace lumo::core
