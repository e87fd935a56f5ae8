// Portal unit tests: scrypt password hashing, the login throttle,
// and PortalService's login/session/CSRF/logout rules over an in-memory
// PortalStore: the conformance-checked fake (the MySQL store is covered
// by the portal store conformance suite and end to end in tests/e2e/portal).
#include <atomic>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "gtest/gtest.h"
#include "server/core/password.h"
#include "server/service/portal_service.h"
#include "server/service/registration_service.h"
#include "tests/storage/fakes/fake_stores.h"

namespace lumo {
namespace {

using service::LoginThrottle;
using service::LoginThrottleOptions;
using service::PortalOptions;
using service::PortalService;
using service::Principal;
using service::RequestInfo;

// Cheap parameters for tests that hash many times; the production cost is
// checked separately.
core::ScryptParams Fast() { return core::ScryptParams{10, 8, 1}; }

TEST(PasswordTest, HashUsesOwaspCostByDefaultAndVerifies) {
  absl::StatusOr<std::string> hash = core::HashPassword("s3cret password");
  ASSERT_TRUE(hash.ok()) << hash.status();
  EXPECT_TRUE(absl::StartsWith(*hash, "scrypt$17$8$1$")) << *hash;
  EXPECT_EQ(*core::VerifyPassword("s3cret password", *hash), true);
  EXPECT_EQ(*core::VerifyPassword("s3cret passwore", *hash), false);
}

TEST(PasswordTest, SaltMakesEveryHashDifferent) {
  std::string a = *core::HashPassword("same password", Fast());
  std::string b = *core::HashPassword("same password", Fast());
  EXPECT_NE(a, b);
  EXPECT_TRUE(*core::VerifyPassword("same password", a));
  EXPECT_TRUE(*core::VerifyPassword("same password", b));
  EXPECT_EQ(a.find("same password"), std::string::npos);
}

TEST(PasswordTest, MalformedOrAbsurdHashesAreRejectedNotRun) {
  for (const char* bad :
       {"", "scrypt", "bcrypt$10$8$1$00$00", "scrypt$17$8$1$zz$00",
        "scrypt$40$8$1$00112233$00112233445566778899aabbccddeeff",
        "scrypt$17$8$1$00112233$0011"}) {
    absl::StatusOr<bool> r = core::VerifyPassword("x", bad);
    EXPECT_TRUE(absl::IsInvalidArgument(r.status())) << bad;
    if (*bad != '\0') {
      EXPECT_FALSE(absl::StrContains(r.status().message(), bad)) << bad;
    }
  }
}

TEST(PasswordTest, DummyHashIsAValidHashAtTheRealCost) {
  const std::string& dummy = core::DummyPasswordHash();
  EXPECT_TRUE(absl::StartsWith(dummy, "scrypt$17$8$1$"));
  absl::StatusOr<bool> r = core::VerifyPassword("anything", dummy);
  ASSERT_TRUE(r.ok());
  EXPECT_FALSE(*r);
}

TEST(PasswordTest, LengthLimits) {
  EXPECT_FALSE(core::ValidatePassword("short").ok());
  EXPECT_TRUE(core::ValidatePassword("twelve chars").ok());
  EXPECT_FALSE(core::ValidatePassword(std::string(1025, 'a')).ok());
}

LoginThrottleOptions ThrottleAt(absl::Time* now) {
  LoginThrottleOptions options;
  options.max_failures_per_pair = 3;
  options.max_failures_per_network = 5;
  options.max_failures_per_account = 4;
  options.window = absl::Minutes(15);
  options.now = [now] { return *now; };
  return options;
}

TEST(LoginThrottleTest, PairLimitUntilWindowEndsOtherNetworksUnaffected) {
  absl::Time now = absl::FromUnixSeconds(1000);
  LoginThrottle throttle(ThrottleAt(&now));
  for (int i = 0; i < 3; ++i) EXPECT_TRUE(throttle.Reserve("a", "n1").ok());
  service::LoginReservation refused = throttle.Reserve("a", "n1");
  EXPECT_EQ(refused.refused_by, service::LoginThrottleScope::kPair);
  EXPECT_EQ(refused.retry_after, absl::Minutes(15));
  EXPECT_TRUE(throttle.Reserve("a", "n2").ok());  // another network
  now += absl::Minutes(15);
  EXPECT_TRUE(throttle.Reserve("a", "n1").ok());
}

TEST(LoginThrottleTest, ReservationsCountBeforeTheOutcomeIsKnown) {
  absl::Time now = absl::FromUnixSeconds(1000);
  LoginThrottle throttle(ThrottleAt(&now));
  // Five attempts in flight from one network (none decided yet) fill its
  // budget: a sixth is refused at once.
  std::vector<service::LoginReservation> in_flight;
  for (int i = 0; i < 5; ++i) {
    in_flight.push_back(throttle.Reserve("acct" + std::to_string(i), "n"));
    ASSERT_TRUE(in_flight.back().ok());
  }
  EXPECT_EQ(throttle.Reserve("other", "n").refused_by,
            service::LoginThrottleScope::kNetwork);
  // An attempt that was not decided is refunded; a success too.
  throttle.Cancel(in_flight[0]);
  throttle.Succeeded(in_flight[1]);
  EXPECT_TRUE(throttle.Reserve("other", "n").ok());
  EXPECT_TRUE(throttle.Reserve("other2", "n").ok());
  EXPECT_FALSE(throttle.Reserve("other3", "n").ok());
}

TEST(LoginThrottleTest, ParallelReservationsNeverPassTheLimit) {
  absl::Time now = absl::FromUnixSeconds(1000);
  LoginThrottleOptions options = ThrottleAt(&now);
  options.max_failures_per_network = 20;
  options.max_failures_per_pair = 1000;
  options.max_failures_per_account = 1000;
  LoginThrottle throttle(options);
  std::atomic<int> reserved{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 40; ++i) {
        if (throttle.Reserve(absl::StrCat(t, "/", i), "n").ok()) ++reserved;
      }
    });
  }
  for (std::thread& t : threads) t.join();
  EXPECT_EQ(reserved.load(), 20);
}

TEST(LoginThrottleTest, AccountCapSparesKnownNetworks) {
  absl::Time now = absl::FromUnixSeconds(1000);
  LoginThrottle throttle(ThrottleAt(&now));
  // The owner logged in from "home" once.
  throttle.Succeeded(throttle.Reserve("admin", "home"));
  // Four failures from four networks reach the account cap of 4.
  for (const char* n : {"x1", "x2", "x3", "x4"}) {
    EXPECT_TRUE(throttle.Reserve("admin", n).ok());
  }
  EXPECT_EQ(throttle.Reserve("admin", "x5").refused_by,
            service::LoginThrottleScope::kAccount);
  EXPECT_TRUE(throttle.Reserve("admin", "home").ok());
  // Other accounts are not affected.
  EXPECT_TRUE(throttle.Reserve("someone-else", "x5").ok());
}

TEST(LoginThrottleTest, FullTableRefusesInsteadOfForgetting) {
  absl::Time now = absl::FromUnixSeconds(1000);
  LoginThrottleOptions options = ThrottleAt(&now);
  options.max_tracked = 6;  // two attempts' worth of counters
  LoginThrottle throttle(options);
  EXPECT_TRUE(throttle.Reserve("a", "n1").ok());
  EXPECT_TRUE(throttle.Reserve("b", "n2").ok());
  EXPECT_EQ(throttle.Reserve("c", "n3").refused_by,
            service::LoginThrottleScope::kTableFull);
  // Nothing was forgotten: "a" from n1 still has its failure.
  EXPECT_TRUE(throttle.Reserve("a", "n1").ok());
  EXPECT_TRUE(throttle.Reserve("a", "n1").ok());
  EXPECT_EQ(throttle.Reserve("a", "n1").refused_by,
            service::LoginThrottleScope::kPair);
  // Ended windows make room.
  now += absl::Minutes(15);
  EXPECT_TRUE(throttle.Reserve("c", "n3").ok());
}

// Three replicas' login throttles over one shared store (docs/limits.md
// "Shared throttles"), on the shared store's frozen clock.
class SharedLoginThrottleTest : public ::testing::Test {
 protected:
  SharedLoginThrottleTest() {
    stores_.db->FreezeClock(absl::FromUnixSeconds(1000));
    for (int i = 0; i < 3; ++i) {
      LoginThrottleOptions options = ThrottleAt(&now_);
      options.shared = &stores_.counters;
      replicas_.push_back(std::make_unique<LoginThrottle>(options));
    }
  }
  // An attempt through replica `r`, reserved as PortalService does.
  service::LoginReservation Attempt(int r, absl::string_view account,
                                    absl::string_view network) {
    service::LoginReservation reservation =
        replicas_[r]->Reserve(account, network);
    replicas_[r]->ReserveShared(reservation);
    return reservation;
  }
  void Pass(absl::Duration d) {
    now_ += d;
    stores_.db->AdvanceClock(d);
  }

  absl::Time now_ = absl::FromUnixSeconds(1000);
  testing::FakeStores stores_;
  std::vector<std::unique_ptr<LoginThrottle>> replicas_;
};

TEST_F(SharedLoginThrottleTest, APairMovingBetweenReplicasGetsOneBudget) {
  // Pair limit 3 a window: three failures through three replicas, then
  // every replica refuses (alone, each would allow three).
  for (int r = 0; r < 3; ++r) EXPECT_TRUE(Attempt(r, "a", "n1").ok()) << r;
  for (int r = 0; r < 3; ++r) {
    service::LoginReservation refused = Attempt(r, "a", "n1");
    EXPECT_EQ(refused.refused_by, service::LoginThrottleScope::kPair) << r;
    // Until the bucket's next token: one window / 3.
    EXPECT_GT(refused.retry_after, absl::ZeroDuration());
    EXPECT_LE(refused.retry_after, absl::Minutes(5) + absl::Seconds(1));
  }
  // A refused attempt counted nothing, here or shared: once a token is
  // back, exactly one more attempt is let through.
  Pass(absl::Minutes(6));
  EXPECT_TRUE(Attempt(1, "a", "n1").ok());
  EXPECT_FALSE(Attempt(2, "a", "n1").ok());
  // Other networks are not affected.
  EXPECT_TRUE(Attempt(0, "a", "n2").ok());
}

TEST_F(SharedLoginThrottleTest, RefundsAndSuccessesReachTheSharedCounters) {
  // Network limit 5: five attempts in flight (undecided) on three replicas.
  std::vector<std::pair<int, service::LoginReservation>> in_flight;
  for (int i = 0; i < 5; ++i) {
    in_flight.emplace_back(i % 3, Attempt(i % 3, absl::StrCat("u", i), "n"));
    ASSERT_TRUE(in_flight.back().second.ok()) << i;
  }
  EXPECT_EQ(Attempt(0, "other", "n").refused_by,
            service::LoginThrottleScope::kNetwork);
  // One not decided, one succeeded: two places for the network again, on
  // any replica.
  replicas_[in_flight[0].first]->Cancel(in_flight[0].second);
  replicas_[in_flight[1].first]->Succeeded(in_flight[1].second);
  EXPECT_TRUE(Attempt(2, "x1", "n").ok());
  EXPECT_TRUE(Attempt(1, "x2", "n").ok());
  EXPECT_FALSE(Attempt(0, "x3", "n").ok());
  // A success clears its pair on every replica: "p" failed twice from
  // "home" (pair limit 3), logged in, and may fail three times again.
  Pass(absl::Minutes(15));
  ASSERT_TRUE(Attempt(0, "p", "home").ok());
  ASSERT_TRUE(Attempt(1, "p", "home").ok());
  service::LoginReservation good = Attempt(2, "p", "home");
  ASSERT_TRUE(good.ok());
  replicas_[2]->Succeeded(good);
  for (int r = 0; r < 3; ++r) EXPECT_TRUE(Attempt(r, "p", "home").ok()) << r;
  EXPECT_EQ(Attempt(0, "p", "home").refused_by,
            service::LoginThrottleScope::kPair);
}

TEST_F(SharedLoginThrottleTest,
       AnAccountLockedEverywhereSparesItsKnownNetwork) {
  // The owner logged in from "home" through replica 0 only.
  service::LoginReservation home = Attempt(0, "admin", "home");
  ASSERT_TRUE(home.ok());
  replicas_[0]->Succeeded(home);
  // An attack from many networks through all replicas: the account limit
  // of 4 holds for the cluster.
  int admitted = 0;
  for (int i = 0; i < 12; ++i) {
    service::LoginReservation r = Attempt(i % 3, "admin", absl::StrCat("x", i));
    if (r.ok()) {
      ++admitted;
    } else {
      EXPECT_EQ(r.refused_by, service::LoginThrottleScope::kAccount);
    }
  }
  EXPECT_EQ(admitted, 4);
  // The owner is let in from home on replicas that never saw them log in.
  EXPECT_TRUE(Attempt(1, "admin", "home").ok());
  EXPECT_TRUE(Attempt(2, "admin", "home").ok());
}

TEST_F(SharedLoginThrottleTest, WithoutTheStoreEachReplicaCountsAlone) {
  stores_.db->SetUnavailable(true);
  // Each replica's own pair limit of 3, as before sharing.
  for (int r = 0; r < 3; ++r) {
    for (int i = 0; i < 3; ++i) EXPECT_TRUE(Attempt(r, "a", "n").ok()) << r;
    EXPECT_EQ(Attempt(r, "a", "n").refused_by,
              service::LoginThrottleScope::kPair);
  }
  stores_.db->SetUnavailable(false);
}

TEST(HashPoolTest, RefusesWhenFullAndAnswersLateJobsWithoutRunningThem) {
  service::HashPoolOptions options;
  options.threads = 1;
  options.max_queue = 1;
  options.max_wait = absl::Milliseconds(20);
  options.nice_increment = 0;
  service::HashPool pool(options);
  absl::Notification release, first_started;
  std::atomic<int> ran{0};
  std::atomic<bool> second_in_time{true};
  ASSERT_TRUE(pool.Submit([&](bool) {
    first_started.Notify();
    release.WaitForNotification();
    ++ran;
  }));
  first_started.WaitForNotification();
  // One may wait; the next is refused at once (never queued, never run).
  const absl::Time queued_at = absl::Now();
  ASSERT_TRUE(pool.Submit([&](bool in_time) {
    second_in_time = in_time;
    ++ran;
  }));
  EXPECT_FALSE(pool.Submit([&](bool) { ADD_FAILURE() << "ran"; }));
  // Hold the only thread until the queued job has waited past max_wait.
  while (absl::Now() - queued_at <= options.max_wait * 2) {
    absl::SleepFor(absl::Milliseconds(5));
  }
  release.Notify();
  pool.Stop();
  EXPECT_EQ(ran.load(), 2);
  EXPECT_FALSE(second_in_time.load()) << "a late job must not hash";
}

// ------------------------------------------------------------ PortalService

class PortalServiceTest : public ::testing::Test {
 protected:
  PortalServiceTest() : portal_(&stores_.portal, Options()) {
    for (const char* slug : {"acme", "globex"}) {
      EXPECT_TRUE(stores_.keys.CreateTenant(slug, slug, nullptr, {}).ok());
    }
    info_.ip_address = "192.0.2.1";
    EXPECT_TRUE(
        portal_.SetAdmin("acme", "admin@acme.example", "right password!", info_)
            .ok());
    EXPECT_TRUE(portal_
                    .SetAdmin("globex", "admin@globex.example",
                              "right password!", info_)
                    .ok());
  }
  static PortalOptions Options() {
    PortalOptions o;
    o.scrypt = Fast();
    o.throttle.max_failures_per_pair = 3;
    o.throttle.max_failures_per_network = 5;
    return o;
  }
  // The conformance-checked fakes (tests/storage/fakes); the portal's
  // audit events land in their shared database.
  testing::FakeStores stores_;
  PortalService portal_;
  RequestInfo info_;
};

TEST_F(PortalServiceTest, LoginIssuesFreshTokensStoredOnlyAsHashes) {
  auto a =
      portal_.Login("acme", "admin@acme.example", "right password!", info_);
  auto b =
      portal_.Login("acme", "admin@acme.example", "right password!", info_);
  ASSERT_TRUE(a.ok()) << a.status();
  ASSERT_TRUE(b.ok());
  EXPECT_NE(a->session_token, b->session_token);
  EXPECT_NE(a->csrf_token, b->csrf_token);
  EXPECT_TRUE(absl::StartsWith(a->session_token, "lps_"));
  const std::vector<std::string> stored = stores_.portal.StoredSessionHashes();
  EXPECT_EQ(stored.size(), 2u);
  for (const std::string& hash : stored) {
    EXPECT_NE(hash, a->session_token);
    EXPECT_NE(hash, b->session_token);
  }
  const std::vector<storage::AuditEvent> events = stores_.keys.events();
  ASSERT_FALSE(events.empty());
  EXPECT_EQ(events.back().action, "portal.login");
  EXPECT_EQ(events.back().actor_type, "user");
}

TEST_F(PortalServiceTest, BadLoginsAllLookTheSame) {
  std::vector<absl::Status> failures = {
      portal_.Login("acme", "admin@acme.example", "wrong password!", info_)
          .status(),
      portal_.Login("acme", "nobody@acme.example", "right password!", info_)
          .status(),
      portal_.Login("nope", "admin@acme.example", "right password!", info_)
          .status(),
      portal_.Login("acme", "admin@acme.example", std::string(2000, 'x'), info_)
          .status(),
  };
  EXPECT_TRUE(absl::IsInvalidArgument(
      portal_.Login("acme", "admin@acme.example", "", info_).status()));
  for (const absl::Status& s : failures) {
    EXPECT_TRUE(absl::IsUnauthenticated(s)) << s;
    EXPECT_EQ(s.message(), failures[0].message());
  }
}

TEST_F(PortalServiceTest, PasswordChecksRunOffTheCallingThread) {
  const std::thread::id caller = std::this_thread::get_id();
  for (const char* password : {"wrong password!", "right password!"}) {
    absl::Notification done;
    std::thread::id checked_on;
    absl::Status status;
    portal_.LoginAsync("acme", "admin@acme.example", password, info_,
                       [&](absl::StatusOr<service::LoginResult> result) {
                         checked_on = std::this_thread::get_id();
                         status = result.status();
                         done.Notify();
                       });
    done.WaitForNotification();
    EXPECT_NE(checked_on, caller) << password;
    EXPECT_EQ(status.ok(), absl::string_view(password) == "right password!")
        << status;
  }
}

TEST_F(PortalServiceTest, ThrottlesPerAccountThenPerAddress) {
  for (int i = 0; i < 3; ++i) {
    EXPECT_TRUE(absl::IsUnauthenticated(
        portal_.Login("acme", "admin@acme.example", "wrong password!", info_)
            .status()));
  }
  const int finds = stores_.portal.find_calls();
  absl::Status throttled =
      portal_.Login("acme", "admin@acme.example", "right password!", info_)
          .status();
  EXPECT_TRUE(absl::IsResourceExhausted(throttled)) << throttled;
  EXPECT_TRUE(throttled.GetPayload(service::kRetryAfterPayload).has_value());
  EXPECT_EQ(stores_.portal.find_calls(), finds)
      << "a throttled login does no lookup";
  // The same address, other accounts: 2 more failures reach the limit of 5.
  for (int i = 0; i < 2; ++i) {
    EXPECT_TRUE(absl::IsUnauthenticated(
        portal_.Login("globex", "x@globex.example", "wrong password!", info_)
            .status()));
  }
  EXPECT_TRUE(absl::IsResourceExhausted(
      portal_.Login("globex", "admin@globex.example", "right password!", info_)
          .status()));
  // Another address may still log in to the other account.
  RequestInfo elsewhere;
  elsewhere.ip_address = "198.51.100.7";
  EXPECT_TRUE(
      portal_
          .Login("globex", "admin@globex.example", "right password!", elsewhere)
          .ok());
}

TEST_F(PortalServiceTest, SessionsNeedCsrfForWritesAndStayInTheirTenant) {
  auto login =
      portal_.Login("acme", "admin@acme.example", "right password!", info_);
  ASSERT_TRUE(login.ok());
  auto read =
      portal_.Authenticate(login->session_token, "acme", false, std::nullopt);
  ASSERT_TRUE(read.ok()) << read.status();
  EXPECT_EQ(read->kind, Principal::Kind::kSession);
  EXPECT_EQ(read->user_id, login->user_id);
  EXPECT_FALSE(read->scopes.empty());
  EXPECT_TRUE(absl::IsPermissionDenied(
      portal_.Authenticate(login->session_token, "acme", true, std::nullopt)
          .status()));
  EXPECT_TRUE(absl::IsPermissionDenied(
      portal_.Authenticate(login->session_token, "acme", true, "wrong")
          .status()));
  EXPECT_TRUE(portal_
                  .Authenticate(login->session_token, "acme", true,
                                absl::string_view(login->csrf_token))
                  .ok());
  EXPECT_TRUE(absl::IsUnauthenticated(
      portal_.Authenticate(login->session_token, "globex", false, std::nullopt)
          .status()));
  EXPECT_TRUE(absl::IsUnauthenticated(
      portal_.Authenticate("lps_garbage", "acme", false, std::nullopt)
          .status()));
}

TEST_F(PortalServiceTest, LogoutEndsTheSession) {
  auto login =
      portal_.Login("acme", "admin@acme.example", "right password!", info_);
  ASSERT_TRUE(login.ok());
  auto principal =
      portal_.Authenticate(login->session_token, "acme", false, std::nullopt);
  ASSERT_TRUE(principal.ok());
  ASSERT_TRUE(portal_.Logout(*principal, login->session_token, info_).ok());
  EXPECT_EQ(stores_.keys.events().back().action, "portal.logout");
  EXPECT_TRUE(absl::IsUnauthenticated(
      portal_.Authenticate(login->session_token, "acme", false, std::nullopt)
          .status()));
  // Idempotent.
  EXPECT_TRUE(portal_.Logout(*principal, login->session_token, info_).ok());
}

TEST_F(PortalServiceTest, SetAdminValidates) {
  EXPECT_TRUE(absl::IsInvalidArgument(
      portal_.SetAdmin("acme", "not-an-email", "right password!", info_)
          .status()));
  EXPECT_TRUE(absl::IsInvalidArgument(
      portal_.SetAdmin("acme", "a@acme.example", "short", info_).status()));
}

}  // namespace
}  // namespace lumo
