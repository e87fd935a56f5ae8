// Portal unit tests (issue 6): scrypt password hashing, the login throttle,
// and PortalService's login/session/CSRF/logout rules over an in-memory
// PortalStore (the MySQL store is covered end to end by portal_e2e_test).
#include <map>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/synchronization/mutex.h"
#include "gtest/gtest.h"
#include "server/core/password.h"
#include "server/service/portal_service.h"
#include "server/service/registration_service.h"

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

TEST(LoginThrottleTest, BlocksAfterLimitUntilWindowEnds) {
  absl::Time now = absl::FromUnixSeconds(1000);
  LoginThrottleOptions options;
  options.window = absl::Minutes(15);
  options.now = [&] { return now; };
  LoginThrottle throttle(options);
  for (int i = 0; i < 3; ++i) {
    EXPECT_FALSE(throttle.Blocked("a", 3).has_value());
    throttle.RecordFailure("a");
  }
  std::optional<absl::Duration> wait = throttle.Blocked("a", 3);
  ASSERT_TRUE(wait.has_value());
  EXPECT_EQ(*wait, absl::Minutes(15));
  EXPECT_FALSE(throttle.Blocked("b", 3).has_value());  // per key
  now += absl::Minutes(15);
  EXPECT_FALSE(throttle.Blocked("a", 3).has_value());
  throttle.RecordFailure("a");
  throttle.Reset("a");
  EXPECT_FALSE(throttle.Blocked("a", 1).has_value());
}

// ------------------------------------------------------------ PortalService

class FakePortalStore : public storage::PortalStore {
 public:
  absl::StatusOr<storage::PortalAdmin> FindAdmin(
      absl::string_view slug, absl::string_view email) override {
    absl::MutexLock lock(&mu_);
    ++find_calls;
    for (const storage::PortalAdmin& a : admins) {
      if (a.tenant_slug == slug && a.email == email) return a;
    }
    return absl::NotFoundError("no admin");
  }
  absl::StatusOr<std::string> UpsertAdmin(absl::string_view slug,
                                          absl::string_view email,
                                          absl::string_view new_user_id,
                                          absl::string_view hash,
                                          const storage::AuditEvent&) override {
    absl::MutexLock lock(&mu_);
    storage::PortalAdmin a;
    a.tenant_id = slug == "acme" ? 1 : 2;
    a.tenant_slug = std::string(slug);
    a.user_id = std::string(new_user_id);
    a.email = std::string(email);
    a.password_hash = std::string(hash);
    admins.push_back(a);
    return a.user_id;
  }
  absl::Status InsertSession(int64_t tenant_id, absl::string_view user_id,
                             const core::Digest& token,
                             const core::Digest& csrf, absl::Duration,
                             const storage::AuditEvent& event) override {
    absl::MutexLock lock(&mu_);
    storage::PortalSessionRecord r;
    r.tenant_id = tenant_id;
    r.tenant_slug = tenant_id == 1 ? "acme" : "globex";
    r.user_id = std::string(user_id);
    r.csrf_sha256 = csrf;
    sessions[std::string(core::AsStringView(token))] = r;
    events.push_back(event);
    return absl::OkStatus();
  }
  absl::StatusOr<storage::PortalSessionRecord> TouchSession(
      const core::Digest& token, absl::Duration, absl::Duration) override {
    absl::MutexLock lock(&mu_);
    auto it = sessions.find(std::string(core::AsStringView(token)));
    if (it == sessions.end()) return absl::NotFoundError("no session");
    return it->second;
  }
  absl::Status DeleteSession(const core::Digest& token,
                             const storage::AuditEvent* event) override {
    absl::MutexLock lock(&mu_);
    if (sessions.erase(std::string(core::AsStringView(token))) > 0 &&
        event != nullptr) {
      events.push_back(*event);
    }
    return absl::OkStatus();
  }

  absl::Mutex mu_;
  std::vector<storage::PortalAdmin> admins;
  // Keyed by the stored token hash (the fake sees only hashes too).
  std::map<std::string, storage::PortalSessionRecord> sessions;
  std::vector<storage::AuditEvent> events;
  int find_calls = 0;
};

class PortalServiceTest : public ::testing::Test {
 protected:
  PortalServiceTest() : portal_(&store_, Options()) {
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
    o.throttle.max_failures_per_account = 3;
    o.throttle.max_failures_per_address = 5;
    return o;
  }
  FakePortalStore store_;
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
  EXPECT_EQ(store_.sessions.size(), 2u);
  for (const auto& [hash, record] : store_.sessions) {
    EXPECT_NE(hash, a->session_token);
    EXPECT_NE(hash, b->session_token);
  }
  ASSERT_FALSE(store_.events.empty());
  EXPECT_EQ(store_.events.back().action, "portal.login");
  EXPECT_EQ(store_.events.back().actor_type, "user");
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

TEST_F(PortalServiceTest, ThrottlesPerAccountThenPerAddress) {
  for (int i = 0; i < 3; ++i) {
    EXPECT_TRUE(absl::IsUnauthenticated(
        portal_.Login("acme", "admin@acme.example", "wrong password!", info_)
            .status()));
  }
  const int finds = store_.find_calls;
  absl::Status throttled =
      portal_.Login("acme", "admin@acme.example", "right password!", info_)
          .status();
  EXPECT_TRUE(absl::IsResourceExhausted(throttled)) << throttled;
  EXPECT_TRUE(throttled.GetPayload(service::kRetryAfterPayload).has_value());
  EXPECT_EQ(store_.find_calls, finds) << "a throttled login does no lookup";
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
  EXPECT_EQ(store_.events.back().action, "portal.logout");
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
