// The pepper coverage verdict for given usage (no database): which missing
// versions refuse a pepper set, which only warn, and the operator report.
#include "server/service/pepper_coverage.h"

#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace lumo::service {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

storage::PepperVersionUsage Usage(int version, int64_t live_keys,
                                  int64_t live_retired, int64_t clients,
                                  int64_t dead_keys, int64_t dead_retired) {
  storage::PepperVersionUsage u;
  u.version = version;
  u.live_keys = live_keys;
  u.live_retired_secrets = live_retired;
  u.client_secrets = clients;
  u.dead_keys = dead_keys;
  u.dead_retired_secrets = dead_retired;
  return u;
}

TEST(PepperCoverageTest, SetHoldingEveryUsedVersionIsOk) {
  PepperCoverage c = ComparePepperCoverage(
      {1, 2, 3}, {Usage(1, 0, 0, 0, 4, 1), Usage(2, 7, 1, 2, 0, 0)});
  EXPECT_FALSE(c.refused());
  EXPECT_FALSE(c.degraded());
  EXPECT_EQ(c.RefusalMessage(), "");
  EXPECT_EQ(c.WarningMessage(), "");
  ASSERT_EQ(c.rows.size(), 3u);  // version 3 is in the set, unused
  EXPECT_EQ(c.rows[2].version, 3);
  EXPECT_TRUE(c.rows[2].current);
  EXPECT_FALSE(c.rows[1].current);
  EXPECT_THAT(c.Report(), HasSubstr("\nOK: the pepper file holds every"));
}

TEST(PepperCoverageTest, EachKindOfLiveSecretRefusesAMissingVersion) {
  for (const storage::PepperVersionUsage& u :
       {Usage(1, 1, 0, 0, 0, 0), Usage(1, 0, 1, 0, 0, 0),
        Usage(1, 0, 0, 1, 0, 0)}) {
    PepperCoverage c = ComparePepperCoverage({2}, {u, Usage(2, 5, 0, 0, 0, 0)});
    EXPECT_TRUE(c.refused());
    EXPECT_FALSE(c.degraded());
    EXPECT_THAT(c.RefusalMessage(),
                HasSubstr("pepper version 1 is missing from the pepper file "
                          "but live secrets use it"));
    EXPECT_THAT(c.Report(), HasSubstr("\nREFUSED: pepper version 1"));
    EXPECT_THAT(c.Report(), Not(HasSubstr("\nOK:")));
  }
}

TEST(PepperCoverageTest, WebhookSigningSecretsRefuseAMissingVersion) {
  storage::PepperVersionUsage webhooks = Usage(1, 0, 0, 0, 0, 0);
  webhooks.webhook_secrets = 2;
  PepperCoverage c =
      ComparePepperCoverage({2}, {webhooks, Usage(2, 1, 0, 0, 0, 0)});
  EXPECT_TRUE(c.refused());
  EXPECT_THAT(c.RefusalMessage(),
              HasSubstr("live secrets use it (2 webhook signing secrets)"));
  EXPECT_THAT(c.Report(), HasSubstr("webhook secrets"));
}

TEST(PepperCoverageTest, MessagesCountEachKindAndNameEveryMissingVersion) {
  PepperCoverage c = ComparePepperCoverage(
      {3}, {Usage(1, 2, 1, 3, 4, 5), Usage(2, 0, 0, 0, 1, 0)});
  EXPECT_TRUE(c.refused());
  EXPECT_TRUE(c.degraded());
  EXPECT_THAT(c.RefusalMessage(),
              HasSubstr("pepper version 1 is missing from the pepper file but "
                        "live secrets use it (2 keys, 1 rotated-away secret "
                        "in its grace period, 3 OAuth client secrets): they "
                        "would stop verifying"));
  EXPECT_THAT(c.RefusalMessage(), Not(HasSubstr("version 2")));
  EXPECT_THAT(c.WarningMessage(),
              HasSubstr("pepper version 1 is missing from the pepper file and "
                        "dead secrets use it (4 revoked or expired keys, 5 "
                        "rotated-away secrets past their grace period); "
                        "pepper version 2 is missing from the pepper file and "
                        "dead secrets use it (1 revoked or expired key): "
                        "they stay refused, but are answered NOT_FOUND"));
}

TEST(PepperCoverageTest, DeadOnlyUseWarnsWithoutRefusing) {
  PepperCoverage c = ComparePepperCoverage(
      {2}, {Usage(1, 0, 0, 0, 3, 2), Usage(2, 1, 0, 0, 0, 0)});
  EXPECT_FALSE(c.refused());
  EXPECT_TRUE(c.degraded());
  EXPECT_THAT(c.Report(), HasSubstr("\nWARNING: pepper version 1"));
  EXPECT_THAT(c.Report(), HasSubstr("MISSING"));
}

TEST(PepperCoverageTest, VersionAboveTheFilesCurrentOneIsMissingToo) {
  // A pepper file older than the database (restored from an old copy).
  PepperCoverage c = ComparePepperCoverage({1}, {Usage(2, 1, 0, 0, 0, 0)});
  EXPECT_TRUE(c.refused());
  EXPECT_THAT(c.RefusalMessage(), HasSubstr("pepper version 2 is missing"));
}

}  // namespace
}  // namespace lumo::service
