// The PortalStore contract (server/storage/portal_store.h): portal
// administrators' credentials and browser sessions, run against every
// implementation.
#include <string>

#include "gtest/gtest.h"
#include "server/storage/portal_store.h"
#include "server/storage/user_store.h"
#include "tests/storage/conformance/store_fixture.h"

namespace lumo::testing {
namespace {

constexpr absl::Duration kLong = absl::Hours(1);

template <typename Impl>
class PortalStoreConformanceTest : public SharedStoreTest<Impl> {
 protected:
  // A tenant with one portal admin; returns the admin's user id.
  std::string NewAdmin(const storage::Tenant& tenant,
                       absl::string_view email = "admin@example.com") {
    absl::StatusOr<std::string> id =
        this->f().portal().UpsertAdmin(tenant.slug, email, Unique("u"),
                                       "$argon2id$one", Event("portal.admin"));
    EXPECT_TRUE(id.ok()) << id.status();
    return id.value_or("");
  }
  // A new session of `user_id`; returns its token hash.
  core::Digest NewSession(const storage::Tenant& tenant,
                          const std::string& user_id,
                          absl::Duration absolute_ttl = kLong,
                          core::Digest csrf = RandomDigest()) {
    const core::Digest token = RandomDigest();
    EXPECT_TRUE(this->f()
                    .portal()
                    .InsertSession(tenant.id, user_id, token, csrf,
                                   absolute_ttl, Event("portal.login"))
                    .ok());
    return token;
  }
};
TYPED_TEST_SUITE(PortalStoreConformanceTest, Implementations,
                 ImplementationName);

TYPED_TEST(PortalStoreConformanceTest, AdminsAreUpsertedAndFoundAnyCase) {
  StoreFixture& f = this->f();
  const storage::Tenant tenant = NewTenant(f);
  const std::string id = this->NewAdmin(tenant, "Root@Example.com");
  absl::StatusOr<storage::PortalAdmin> admin =
      f.portal().FindAdmin(tenant.slug, "root@EXAMPLE.com");
  ASSERT_TRUE(admin.ok()) << admin.status();
  EXPECT_EQ(admin->user_id, id);
  EXPECT_EQ(admin->tenant_id, tenant.id);
  EXPECT_EQ(admin->tenant_slug, tenant.slug);
  EXPECT_EQ(admin->password_hash, "$argon2id$one");
  EXPECT_FALSE(admin->blocked);
  // The portal admin is a tenant user.
  absl::StatusOr<storage::UserRecord> user =
      f.users().GetUser(tenant.id, storage::UserRef::Id(id));
  ASSERT_TRUE(user.ok()) << user.status();

  // Setting the password again keeps the user.
  absl::StatusOr<std::string> again =
      f.portal().UpsertAdmin(tenant.slug, "ROOT@example.com", Unique("u"),
                             "$argon2id$two", Event("portal.admin"));
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_EQ(*again, id);
  admin = f.portal().FindAdmin(tenant.slug, "root@example.com");
  ASSERT_TRUE(admin.ok()) << admin.status();
  EXPECT_EQ(admin->password_hash, "$argon2id$two");
  EXPECT_EQ(EventsOf(f, tenant.id, "portal.admin").size(), 2u);
}

TYPED_TEST(PortalStoreConformanceTest, UnknownTenantsUsersAndCredentials) {
  StoreFixture& f = this->f();
  const storage::Tenant tenant = NewTenant(f);
  this->NewAdmin(tenant);
  EXPECT_EQ(
      f.portal().FindAdmin(Unique("nope"), "admin@example.com").status().code(),
      absl::StatusCode::kNotFound);
  EXPECT_EQ(
      f.portal().FindAdmin(tenant.slug, "other@example.com").status().code(),
      absl::StatusCode::kNotFound);
  storage::NewUser plain;
  plain.id = Unique("u");
  plain.tenant_id = tenant.id;
  plain.email = "plain@example.com";
  ASSERT_TRUE(f.users().InsertUser(plain, Event("user.created")).ok());
  EXPECT_EQ(
      f.portal().FindAdmin(tenant.slug, "plain@example.com").status().code(),
      absl::StatusCode::kNotFound);
  EXPECT_EQ(f.portal()
                .UpsertAdmin(Unique("nope"), "a@example.com", Unique("u"),
                             "$argon2id$x", Event("portal.admin"))
                .status()
                .code(),
            absl::StatusCode::kNotFound);
}

TYPED_TEST(PortalStoreConformanceTest, ALiveSessionIsFoundAndTouched) {
  StoreFixture& f = this->f();
  const storage::Tenant tenant = NewTenant(f);
  const std::string id = this->NewAdmin(tenant);
  const core::Digest csrf = RandomDigest();
  const core::Digest token = this->NewSession(tenant, id, kLong, csrf);
  EXPECT_EQ(EventsOf(f, tenant.id, "portal.login").size(), 1u);

  absl::StatusOr<storage::PortalSessionRecord> first =
      f.portal().TouchSession(token, kLong, kLong);
  ASSERT_TRUE(first.ok()) << first.status();
  EXPECT_EQ(first->tenant_id, tenant.id);
  EXPECT_EQ(first->tenant_slug, tenant.slug);
  EXPECT_EQ(first->user_id, id);
  EXPECT_EQ(first->email, "admin@example.com");
  EXPECT_EQ(first->csrf_sha256, csrf);
  EXPECT_EQ(first->expires_at, first->created_at + kLong);
  EXPECT_GE(first->db_now, first->last_seen_at);

  f.LetTimePass(absl::Milliseconds(20));
  // Within touch_every: last_seen_at stays.
  absl::StatusOr<storage::PortalSessionRecord> second =
      f.portal().TouchSession(token, kLong, kLong);
  ASSERT_TRUE(second.ok()) << second.status();
  EXPECT_EQ(second->last_seen_at, first->last_seen_at);
  // Past touch_every: it moves to now.
  absl::StatusOr<storage::PortalSessionRecord> third =
      f.portal().TouchSession(token, kLong, absl::Milliseconds(10));
  ASSERT_TRUE(third.ok()) << third.status();
  absl::StatusOr<storage::PortalSessionRecord> fourth =
      f.portal().TouchSession(token, kLong, kLong);
  ASSERT_TRUE(fourth.ok()) << fourth.status();
  EXPECT_GT(fourth->last_seen_at, first->last_seen_at);

  EXPECT_EQ(
      f.portal().TouchSession(RandomDigest(), kLong, kLong).status().code(),
      absl::StatusCode::kNotFound);
}

TYPED_TEST(PortalStoreConformanceTest, SessionsEndIdleAbsolutelyAndBlocked) {
  StoreFixture& f = this->f();
  const storage::Tenant tenant = NewTenant(f);
  const std::string id = this->NewAdmin(tenant);
  const core::Digest idle = this->NewSession(tenant, id);
  const core::Digest brief =
      this->NewSession(tenant, id, absl::Milliseconds(100));
  const core::Digest fine = this->NewSession(tenant, id);
  f.LetTimePass(absl::Milliseconds(150));
  EXPECT_EQ(f.portal()
                .TouchSession(idle, absl::Milliseconds(100), kLong)
                .status()
                .code(),
            absl::StatusCode::kNotFound);
  EXPECT_EQ(f.portal().TouchSession(brief, kLong, kLong).status().code(),
            absl::StatusCode::kNotFound);
  ASSERT_TRUE(f.portal().TouchSession(fine, kLong, kLong).ok());

  // A second admin lets the first be blocked; its sessions stop.
  this->NewAdmin(tenant, "second@example.com");
  storage::UserUpdate block;
  block.blocked = true;
  block.guard.may_manage_admins = true;
  ASSERT_TRUE(f.users()
                  .UpdateUser(tenant.id, storage::UserRef::Id(id), block,
                              Event("user.updated"))
                  .ok());
  EXPECT_EQ(f.portal().TouchSession(fine, kLong, kLong).status().code(),
            absl::StatusCode::kNotFound);
  absl::StatusOr<storage::PortalAdmin> admin =
      f.portal().FindAdmin(tenant.slug, "admin@example.com");
  ASSERT_TRUE(admin.ok()) << admin.status();
  EXPECT_TRUE(admin->blocked);
}

TYPED_TEST(PortalStoreConformanceTest, LogoutIsIdempotentAndAuditedOnce) {
  StoreFixture& f = this->f();
  const storage::Tenant tenant = NewTenant(f);
  const std::string id = this->NewAdmin(tenant);
  const core::Digest token = this->NewSession(tenant, id);
  const storage::AuditEvent logout = Event("portal.logout");
  ASSERT_TRUE(f.portal().DeleteSession(token, &logout).ok());
  EXPECT_EQ(f.portal().TouchSession(token, kLong, kLong).status().code(),
            absl::StatusCode::kNotFound);
  ASSERT_TRUE(f.portal().DeleteSession(token, &logout).ok());
  ASSERT_TRUE(f.portal().DeleteSession(RandomDigest(), nullptr).ok());
  EXPECT_EQ(EventsOf(f, tenant.id, "portal.logout").size(), 1u);
}

}  // namespace
}  // namespace lumo::testing
