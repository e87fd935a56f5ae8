#include "server/service/key_state_sweeper.h"

#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/storage/fakes/fake_database.h"
#include "tests/storage/fakes/fake_key_store.h"

namespace lumo::service {
namespace {

using testing::FakeDatabase;
using testing::FakeKeyStore;
using ::testing::HasSubstr;

class KeyStateSweeperTest : public ::testing::Test {
 protected:
  void SetUp() override {
    absl::StatusOr<storage::Tenant> tenant =
        store_.CreateTenant("acme", "Acme", nullptr, {});
    ASSERT_TRUE(tenant.ok()) << tenant.status();
    tenant_id_ = tenant->id;
    storage::KeyPolicy policy;
    policy.rotation_period_days = 30;
    policy.inactive_after_days = 60;
    FakeDatabase& db = store_.database();
    absl::MutexLock lock(&db.mu);
    db.settings[tenant_id_].key_policy = policy;
  }

  std::string Insert(absl::string_view id,
                     std::optional<absl::Time> expires_at = std::nullopt) {
    storage::NewKey key;
    key.id = std::string(id);
    key.tenant_id = tenant_id_;
    key.name = "k";
    key.scopes = {"admin:read"};
    key.created_by_type = "system";
    key.created_by_id = "test";
    key.expires_at = expires_at;
    storage::AuditEvent created;
    created.action = "api_key.created";
    EXPECT_TRUE(store_.InsertKey(key, created).ok());
    return key.id;
  }

  std::vector<storage::AuditEvent> Announced() {
    std::vector<storage::AuditEvent> out;
    for (const storage::AuditEvent& e : store_.events()) {
      if (e.actor_id == "key-state-sweep") out.push_back(e);
    }
    return out;
  }

  KeyStateSweeperOptions Options(absl::string_view holder) {
    KeyStateSweeperOptions options;
    options.interval = absl::Seconds(1);
    options.holder = std::string(holder);
    options.batch_size = 2;  // several batches
    return options;
  }

  FakeKeyStore store_;  // its clock stands still unless moved
  int64_t tenant_id_ = 0;
};

TEST_F(KeyStateSweeperTest, AnnouncesEachStateOnceAndOnlyUnderTheLease) {
  const absl::Duration day = absl::Hours(24);
  const absl::Time now = *store_.Now();
  Insert("AAAAexpiring", now + day * 2);
  Insert("BBBBduesoon0");
  Insert("CCCCinactive");
  Insert("DDDDfresh000");
  store_.Advance(day * 31);  // B, C (and D) are due; A expiring is past
  KeyStateSweeper a(&store_, Options("replica-a"));
  KeyStateSweeper b(&store_, Options("replica-b"));
  absl::StatusOr<SweepRound> round = a.SweepOnce();
  ASSERT_TRUE(round.ok()) << round.status();
  EXPECT_TRUE(round->held);
  // A expired at day 2: dead keys have no states. B, C, D are due.
  EXPECT_EQ(round->events, 3);
  round = b.SweepOnce();
  ASSERT_TRUE(round.ok()) << round.status();
  EXPECT_FALSE(round->held);
  round = a.SweepOnce();
  ASSERT_TRUE(round.ok()) << round.status();
  EXPECT_EQ(round->events, 0);

  // After a's lease (3 x interval) runs out, b sweeps: nothing is
  // announced twice, only what turned on since.
  store_.Advance(day * 30);  // all idle for 61 days
  round = b.SweepOnce();
  ASSERT_TRUE(round.ok()) << round.status();
  EXPECT_TRUE(round->held);
  EXPECT_EQ(round->events, 3);  // inactive: B, C, D
  std::vector<std::string> seen;
  for (const storage::AuditEvent& e : Announced()) {
    seen.push_back(e.target_id + " " + e.action);
    EXPECT_EQ(e.category, "api_keys");
    EXPECT_EQ(e.actor_type, "system");
    EXPECT_EQ(e.target_type, "api_key");
  }
  EXPECT_THAT(
      seen, ::testing::UnorderedElementsAre("BBBBduesoon0 api_key.rotation_due",
                                            "CCCCinactive api_key.rotation_due",
                                            "DDDDfresh000 api_key.rotation_due",
                                            "BBBBduesoon0 api_key.inactive",
                                            "CCCCinactive api_key.inactive",
                                            "DDDDfresh000 api_key.inactive"));
  EXPECT_THAT(Announced()[0].metadata_json, HasSubstr("\"rotationDueAt\":"));
  EXPECT_EQ(a.events_written() + b.events_written(), 6);
}

TEST_F(KeyStateSweeperTest, AnExpiringKeyIsAnnouncedWithItsExpiry) {
  const absl::Time now = *store_.Now();
  const std::string id = Insert("EEEEexpiring", now + absl::Hours(24 * 3));
  KeyStateSweeper sweeper(&store_, Options("one"));
  absl::StatusOr<SweepRound> round = sweeper.SweepOnce();
  ASSERT_TRUE(round.ok()) << round.status();
  ASSERT_EQ(round->events, 1);
  const storage::AuditEvent e = Announced().at(0);
  EXPECT_EQ(e.action, "api_key.expiring");
  EXPECT_EQ(e.target_id, id);
  EXPECT_THAT(e.metadata_json, HasSubstr("\"expiresAt\":\""));
}

TEST_F(KeyStateSweeperTest, BackgroundRoundsRunUntilStopped) {
  const absl::Time now = *store_.Now();
  Insert("FFFFexpiring", now + absl::Hours(24));
  KeyStateSweeperOptions options = Options("bg");
  options.interval = absl::Milliseconds(10);
  KeyStateSweeper sweeper(&store_, options);
  sweeper.Start();
  const absl::Time give_up = absl::Now() + absl::Seconds(30);
  while (sweeper.events_written() < 1 && absl::Now() < give_up) {
    absl::SleepFor(absl::Milliseconds(5));
  }
  sweeper.Stop();
  EXPECT_EQ(sweeper.events_written(), 1);
  sweeper.Stop();  // idempotent
}

}  // namespace
}  // namespace lumo::service
