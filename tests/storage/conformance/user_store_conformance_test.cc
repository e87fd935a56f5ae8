// The UserStore contract (server/storage/user_store.h): users and roles,
// run against every implementation.
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "server/storage/user_store.h"
#include "tests/storage/conformance/store_fixture.h"

namespace lumo::testing {
namespace {

using storage::RoleRef;
using storage::UserRef;
using ::testing::ElementsAre;

template <typename Impl>
class UserStoreConformanceTest : public SharedStoreTest<Impl> {
 protected:
  storage::RoleRecord AddRole(int64_t tenant_id, absl::string_view slug) {
    storage::RoleFields role;
    role.id = Unique("r");
    role.tenant_id = tenant_id;
    role.slug = std::string(slug);
    role.name = absl::StrCat("Role ", slug);
    role.permissions = {"keys:write", "keys:read"};
    absl::StatusOr<storage::RoleRecord> made =
        this->f().users().InsertRole(role, Event("role.created"));
    EXPECT_TRUE(made.ok()) << made.status();
    return made.value_or(storage::RoleRecord());
  }
  absl::StatusOr<storage::UserRecord> AddUser(int64_t tenant_id,
                                              absl::string_view email,
                                              std::vector<RoleRef> roles = {}) {
    storage::NewUser user;
    user.id = Unique("u");
    user.tenant_id = tenant_id;
    user.email = std::string(email);
    user.name = "Some One";
    user.roles = std::move(roles);
    return this->f().users().InsertUser(user, Event("user.created"));
  }
};
TYPED_TEST_SUITE(UserStoreConformanceTest, Implementations, ImplementationName);

TYPED_TEST(UserStoreConformanceTest, UsersAreFoundByIdAndByEmailAnyCase) {
  StoreFixture& f = this->f();
  const storage::Tenant tenant = NewTenant(f);
  this->AddRole(tenant.id, "writer");
  this->AddRole(tenant.id, "auditor");
  absl::StatusOr<storage::UserRecord> user =
      this->AddUser(tenant.id, "Ada@Example.com",
                    {RoleRef::Slug("writer"), RoleRef::Slug("auditor")});
  ASSERT_TRUE(user.ok()) << user.status();
  EXPECT_EQ(user->email, "Ada@Example.com");
  EXPECT_THAT(user->roles, ElementsAre("auditor", "writer"));
  EXPECT_FALSE(user->blocked);

  absl::StatusOr<storage::UserRecord> by_email =
      f.users().GetUser(tenant.id, UserRef::Email("ada@EXAMPLE.com"));
  ASSERT_TRUE(by_email.ok()) << by_email.status();
  EXPECT_EQ(by_email->id, user->id);
  absl::StatusOr<storage::UserRecord> by_id =
      f.users().GetUser(tenant.id, UserRef::Id(user->id));
  ASSERT_TRUE(by_id.ok()) << by_id.status();
  EXPECT_EQ(by_id->email, "Ada@Example.com");
  EXPECT_THAT(by_id->roles, ElementsAre("auditor", "writer"));
  EXPECT_EQ(by_id->created_at, user->created_at);

  std::vector<storage::StoredAuditEvent> events =
      EventsOf(f, tenant.id, "user.created");
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].event.target_id, user->id);
}

TYPED_TEST(UserStoreConformanceTest, InsertRefusesTakenEmailsAndUnknownRoles) {
  StoreFixture& f = this->f();
  const storage::Tenant tenant = NewTenant(f);
  ASSERT_TRUE(this->AddUser(tenant.id, "bob@example.com").ok());
  EXPECT_EQ(this->AddUser(tenant.id, "BOB@example.com").status().code(),
            absl::StatusCode::kAlreadyExists);
  EXPECT_EQ(this->AddUser(tenant.id, "carol@example.com",
                          {RoleRef::Slug("no-such-role")})
                .status()
                .code(),
            absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(f.users()
                .GetUser(tenant.id, UserRef::Email("carol@example.com"))
                .status()
                .code(),
            absl::StatusCode::kNotFound);
  EXPECT_EQ(
      this->AddUser(tenant.id + 1000000, "dan@example.com").status().code(),
      absl::StatusCode::kNotFound);
  EXPECT_EQ(EventsOf(f, tenant.id, "user.created").size(), 1u);
}

TYPED_TEST(UserStoreConformanceTest, UsersAndRolesAreScopedByTenant) {
  StoreFixture& f = this->f();
  const storage::Tenant a = NewTenant(f);
  const storage::Tenant b = NewTenant(f);
  const storage::RoleRecord role = this->AddRole(a.id, "ops");
  absl::StatusOr<storage::UserRecord> user =
      this->AddUser(a.id, "eve@example.com");
  ASSERT_TRUE(user.ok()) << user.status();
  EXPECT_EQ(f.users().GetUser(b.id, UserRef::Id(user->id)).status().code(),
            absl::StatusCode::kNotFound);
  EXPECT_EQ(f.users()
                .GetUser(b.id, UserRef::Email("eve@example.com"))
                .status()
                .code(),
            absl::StatusCode::kNotFound);
  EXPECT_EQ(f.users().GetRole(b.id, RoleRef::Id(role.id)).status().code(),
            absl::StatusCode::kNotFound);
  // The same email and slug are free in another tenant.
  EXPECT_TRUE(this->AddUser(b.id, "eve@example.com").ok());
  EXPECT_EQ(this->AddRole(b.id, "ops").slug, "ops");
  EXPECT_EQ(this->AddUser(b.id, "frank@example.com", {RoleRef::Id(role.id)})
                .status()
                .code(),
            absl::StatusCode::kFailedPrecondition);
}

TYPED_TEST(UserStoreConformanceTest, UpdateWritesOnlyWhenSomethingChanges) {
  StoreFixture& f = this->f();
  const storage::Tenant tenant = NewTenant(f);
  this->AddRole(tenant.id, "reader");
  absl::StatusOr<storage::UserRecord> user =
      this->AddUser(tenant.id, "gus@example.com");
  ASSERT_TRUE(user.ok()) << user.status();
  ASSERT_TRUE(this->AddUser(tenant.id, "hal@example.com").ok());

  storage::UserUpdate same;
  same.name = user->name;
  absl::StatusOr<storage::UserWrite> unchanged = f.users().UpdateUser(
      tenant.id, UserRef::Id(user->id), same, Event("user.updated"));
  ASSERT_TRUE(unchanged.ok()) << unchanged.status();
  EXPECT_FALSE(unchanged->changed);
  EXPECT_EQ(EventsOf(f, tenant.id, "user.updated").size(), 0u);

  f.LetTimePass(absl::Milliseconds(2));
  storage::UserUpdate update;
  update.name = "Gus Renamed";
  update.roles = std::vector<RoleRef>{RoleRef::Slug("reader")};
  absl::StatusOr<storage::UserWrite> changed =
      f.users().UpdateUser(tenant.id, UserRef::Email("GUS@example.com"), update,
                           Event("user.updated"));
  ASSERT_TRUE(changed.ok()) << changed.status();
  EXPECT_TRUE(changed->changed);
  EXPECT_EQ(changed->user.name, "Gus Renamed");
  EXPECT_THAT(changed->user.roles, ElementsAre("reader"));
  EXPECT_GT(changed->user.updated_at, user->updated_at);
  std::vector<storage::StoredAuditEvent> events =
      EventsOf(f, tenant.id, "user.updated");
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].event.target_id, user->id);

  storage::UserUpdate clash;
  clash.email = "HAL@example.com";
  EXPECT_EQ(f.users()
                .UpdateUser(tenant.id, UserRef::Id(user->id), clash,
                            Event("user.updated"))
                .status()
                .code(),
            absl::StatusCode::kAlreadyExists);
  EXPECT_EQ(f.users()
                .UpdateUser(tenant.id, UserRef::Id("nobody"), update,
                            Event("user.updated"))
                .status()
                .code(),
            absl::StatusCode::kNotFound);
}

TYPED_TEST(UserStoreConformanceTest, ListFiltersByRoleBlockedAndSearch) {
  StoreFixture& f = this->f();
  const storage::Tenant tenant = NewTenant(f);
  this->AddRole(tenant.id, "billing");
  ASSERT_TRUE(
      this->AddUser(tenant.id, "ann@example.com", {RoleRef::Slug("billing")})
          .ok());
  ASSERT_TRUE(this->AddUser(tenant.id, "ben@example.com").ok());
  absl::StatusOr<storage::UserRecord> cat =
      this->AddUser(tenant.id, "cat@other.org", {RoleRef::Slug("billing")});
  ASSERT_TRUE(cat.ok()) << cat.status();
  storage::UserUpdate block;
  block.blocked = true;
  ASSERT_TRUE(f.users()
                  .UpdateUser(tenant.id, UserRef::Id(cat->id), block,
                              Event("user.updated"))
                  .ok());

  storage::ListUsersQuery by_email;
  by_email.sort_by = storage::UserSortField::kEmail;
  by_email.descending = false;
  absl::StatusOr<storage::UserPage> all =
      f.users().ListUsers(tenant.id, by_email);
  ASSERT_TRUE(all.ok()) << all.status();
  EXPECT_EQ(all->total, 3);
  ASSERT_EQ(all->users.size(), 3u);
  EXPECT_EQ(all->users[0].email, "ann@example.com");
  EXPECT_EQ(all->users[2].email, "cat@other.org");

  storage::ListUsersQuery billing = by_email;
  billing.role = RoleRef::Slug("billing");
  absl::StatusOr<storage::UserPage> holders =
      f.users().ListUsers(tenant.id, billing);
  ASSERT_TRUE(holders.ok()) << holders.status();
  ASSERT_EQ(holders->users.size(), 2u);
  EXPECT_EQ(holders->users[0].email, "ann@example.com");
  EXPECT_EQ(holders->users[1].email, "cat@other.org");
  billing.blocked = false;
  holders = f.users().ListUsers(tenant.id, billing);
  ASSERT_TRUE(holders.ok()) << holders.status();
  ASSERT_EQ(holders->users.size(), 1u);
  EXPECT_EQ(holders->users[0].email, "ann@example.com");

  storage::ListUsersQuery nobody;
  nobody.role = RoleRef::Slug("no-such-role");
  absl::StatusOr<storage::UserPage> none =
      f.users().ListUsers(tenant.id, nobody);
  ASSERT_TRUE(none.ok()) << none.status();
  EXPECT_EQ(none->total, 0);

  storage::ListUsersQuery search = by_email;
  search.search = "EXAMPLE";
  absl::StatusOr<storage::UserPage> found =
      f.users().ListUsers(tenant.id, search);
  ASSERT_TRUE(found.ok()) << found.status();
  EXPECT_EQ(found->total, 2);

  storage::ListUsersQuery bad;
  bad.limit = 101;
  EXPECT_EQ(f.users().ListUsers(tenant.id, bad).status().code(),
            absl::StatusCode::kInvalidArgument);
}

TYPED_TEST(UserStoreConformanceTest, ListPagesWithPositionsInEverySortOrder) {
  StoreFixture& f = this->f();
  const storage::Tenant tenant = NewTenant(f);
  // Emails in mixed case; every name is the same (the id breaks the ties).
  for (const char* email :
       {"b@x.example", "A@x.example", "c@x.example", "a2@x.example",
        "B2@x.example", "d@x.example", "e@x.example"}) {
    ASSERT_TRUE(this->AddUser(tenant.id, email).ok());
  }
  using Sort = storage::UserSortField;
  for (Sort sort :
       {Sort::kCreatedAt, Sort::kUpdatedAt, Sort::kEmail, Sort::kName}) {
    for (bool descending : {true, false}) {
      storage::ListUsersQuery all;
      all.sort_by = sort;
      all.descending = descending;
      all.limit = 100;
      absl::StatusOr<storage::UserPage> whole =
          f.users().ListUsers(tenant.id, all);
      ASSERT_TRUE(whole.ok()) << whole.status();
      std::vector<std::string> expected;
      for (const auto& u : whole->users) expected.push_back(u.id);
      ASSERT_EQ(expected.size(), 7u);
      for (int limit : {1, 2, 3}) {
        storage::ListUsersQuery walk = all;
        walk.limit = limit;
        walk.count.wanted = false;
        std::vector<std::string> ids;
        for (int pages = 0; pages < 20; ++pages) {
          absl::StatusOr<storage::UserPage> page =
              f.users().ListUsers(tenant.id, walk);
          ASSERT_TRUE(page.ok()) << page.status();
          EXPECT_EQ(page->total_kind, storage::TotalKind::kNotCounted);
          for (const auto& u : page->users) ids.push_back(u.id);
          if (!page->has_more) break;
          ASSERT_EQ(page->users.size(), static_cast<size_t>(limit));
          walk.after = storage::PositionOf(page->users.back(), sort);
        }
        EXPECT_EQ(ids, expected)
            << "sort " << static_cast<int>(sort) << " descending " << descending
            << " limit " << limit;
      }
    }
  }
  storage::ListUsersQuery capped;
  capped.limit = 2;
  capped.count.cap = 3;
  absl::StatusOr<storage::UserPage> page =
      f.users().ListUsers(tenant.id, capped);
  ASSERT_TRUE(page.ok()) << page.status();
  EXPECT_EQ(page->total, 3);
  EXPECT_EQ(page->total_kind, storage::TotalKind::kAtLeast);
  EXPECT_TRUE(page->has_more);
}

TYPED_TEST(UserStoreConformanceTest, AnUpdateTakesRolesAwayToo) {
  StoreFixture& f = this->f();
  const storage::Tenant tenant = NewTenant(f);
  this->AddRole(tenant.id, "alpha");
  this->AddRole(tenant.id, "beta");
  absl::StatusOr<storage::UserRecord> user =
      this->AddUser(tenant.id, "dee@example.com",
                    {RoleRef::Slug("alpha"), RoleRef::Slug("beta")});
  ASSERT_TRUE(user.ok()) << user.status();
  ASSERT_THAT(user->roles, ElementsAre("alpha", "beta"));

  storage::UserUpdate fewer;
  fewer.roles = std::vector<RoleRef>{RoleRef::Slug("beta")};
  absl::StatusOr<storage::UserWrite> changed = f.users().UpdateUser(
      tenant.id, UserRef::Id(user->id), fewer, Event("user.updated"));
  ASSERT_TRUE(changed.ok()) << changed.status();
  EXPECT_TRUE(changed->changed);
  EXPECT_THAT(changed->user.roles, ElementsAre("beta"));
  absl::StatusOr<storage::UserRecord> read =
      f.users().GetUser(tenant.id, UserRef::Id(user->id));
  ASSERT_TRUE(read.ok()) << read.status();
  EXPECT_THAT(read->roles, ElementsAre("beta"));
  storage::ListUsersQuery alpha;
  alpha.role = RoleRef::Slug("alpha");
  absl::StatusOr<storage::UserPage> holders =
      f.users().ListUsers(tenant.id, alpha);
  ASSERT_TRUE(holders.ok()) << holders.status();
  EXPECT_EQ(holders->total, 0);

  storage::UserUpdate none;
  none.roles = std::vector<RoleRef>{};
  changed = f.users().UpdateUser(tenant.id, UserRef::Id(user->id), none,
                                 Event("user.updated"));
  ASSERT_TRUE(changed.ok()) << changed.status();
  EXPECT_TRUE(changed->user.roles.empty());
}

TYPED_TEST(UserStoreConformanceTest, RoleSearchTakesWildcardsLiterally) {
  StoreFixture& f = this->f();
  const storage::Tenant tenant = NewTenant(f);
  auto add = [&](absl::string_view slug, absl::string_view name) {
    storage::RoleFields role;
    role.id = Unique("r");
    role.tenant_id = tenant.id;
    role.slug = std::string(slug);
    role.name = std::string(name);
    absl::StatusOr<storage::RoleRecord> made =
        f.users().InsertRole(role, Event("role.created"));
    EXPECT_TRUE(made.ok()) << made.status();
    return made.value_or(storage::RoleRecord());
  };
  const storage::RoleRecord pct = add("pct", "Full 100% ready");
  add("plain", "Full 100 ready");
  add("under", "x_y");
  add("axy", "xay");
  auto found = [&](absl::string_view search) {
    storage::ListRolesQuery q;
    q.search = std::string(search);
    q.sort_by = storage::RoleSortField::kSlug;
    q.descending = false;
    absl::StatusOr<storage::RolePage> page = f.users().ListRoles(tenant.id, q);
    EXPECT_TRUE(page.ok()) << page.status();
    std::vector<std::string> slugs;
    if (page.ok()) {
      for (const storage::RoleRecord& r : page->roles) slugs.push_back(r.slug);
    }
    return slugs;
  };
  // '%' and '_' are characters to find, not patterns.
  EXPECT_THAT(found("0%"), ElementsAre("pct"));
  EXPECT_THAT(found("x_y"), ElementsAre("under"));
  // Any case, in the slug or the name; the id by its prefix.
  EXPECT_THAT(found("FULL 100"), ElementsAre("pct", "plain"));
  EXPECT_THAT(found("AX"), ElementsAre("axy"));
  EXPECT_THAT(found(pct.id), ElementsAre("pct"));
  EXPECT_TRUE(found("nothing-like-it").empty());
}

TYPED_TEST(UserStoreConformanceTest, ARoleInUseCannotBeDeleted) {
  StoreFixture& f = this->f();
  const storage::Tenant tenant = NewTenant(f);
  const storage::RoleRecord role = this->AddRole(tenant.id, "keeper");
  absl::StatusOr<storage::UserRecord> user =
      this->AddUser(tenant.id, "ivy@example.com", {RoleRef::Id(role.id)});
  ASSERT_TRUE(user.ok()) << user.status();
  EXPECT_EQ(
      f.users()
          .DeleteRole(tenant.id, RoleRef::Slug("keeper"), Event("role.deleted"))
          .status()
          .code(),
      absl::StatusCode::kFailedPrecondition);
  EXPECT_TRUE(f.users().GetRole(tenant.id, RoleRef::Id(role.id)).ok());
  EXPECT_EQ(EventsOf(f, tenant.id, "role.deleted").size(), 0u);

  absl::StatusOr<storage::UserRecord> deleted =
      f.users().DeleteUser(tenant.id, UserRef::Id(user->id),
                           Event("user.deleted"), storage::PortalAdminGuard());
  ASSERT_TRUE(deleted.ok()) << deleted.status();
  EXPECT_EQ(deleted->email, "ivy@example.com");
  EXPECT_EQ(f.users().GetUser(tenant.id, UserRef::Id(user->id)).status().code(),
            absl::StatusCode::kNotFound);
  absl::StatusOr<storage::RoleRecord> gone = f.users().DeleteRole(
      tenant.id, RoleRef::Slug("keeper"), Event("role.deleted"));
  ASSERT_TRUE(gone.ok()) << gone.status();
  EXPECT_EQ(gone->id, role.id);
  EXPECT_EQ(f.users().GetRole(tenant.id, RoleRef::Id(role.id)).status().code(),
            absl::StatusCode::kNotFound);
  EXPECT_EQ(EventsOf(f, tenant.id, "role.deleted").size(), 1u);
}

TYPED_TEST(UserStoreConformanceTest, RolesUpdateAndKeepSlugsUnique) {
  StoreFixture& f = this->f();
  const storage::Tenant tenant = NewTenant(f);
  const storage::RoleRecord one = this->AddRole(tenant.id, "one");
  this->AddRole(tenant.id, "two");
  EXPECT_THAT(one.permissions, ElementsAre("keys:write", "keys:read"));

  storage::RoleFields fields;
  fields.slug = "uno";
  fields.name = "Uno";
  fields.description = "the first";
  fields.permissions = {"audit:read"};
  absl::StatusOr<storage::RoleRecord> updated = f.users().UpdateRole(
      tenant.id, RoleRef::Slug("one"), fields, Event("role.updated"));
  ASSERT_TRUE(updated.ok()) << updated.status();
  EXPECT_EQ(updated->id, one.id);
  EXPECT_EQ(updated->slug, "uno");
  EXPECT_THAT(updated->permissions, ElementsAre("audit:read"));
  EXPECT_EQ(EventsOf(f, tenant.id, "role.updated").size(), 1u);
  // The same values again change nothing and write nothing.
  ASSERT_TRUE(f.users()
                  .UpdateRole(tenant.id, RoleRef::Id(one.id), fields,
                              Event("role.updated"))
                  .ok());
  EXPECT_EQ(EventsOf(f, tenant.id, "role.updated").size(), 1u);

  fields.slug = "two";
  EXPECT_EQ(f.users()
                .UpdateRole(tenant.id, RoleRef::Id(one.id), fields,
                            Event("role.updated"))
                .status()
                .code(),
            absl::StatusCode::kAlreadyExists);
  storage::RoleFields dup;
  dup.id = Unique("r");
  dup.tenant_id = tenant.id;
  dup.slug = "two";
  dup.name = "Dup";
  EXPECT_EQ(f.users().InsertRole(dup, Event("role.created")).status().code(),
            absl::StatusCode::kAlreadyExists);

  storage::ListRolesQuery by_slug;
  by_slug.sort_by = storage::RoleSortField::kSlug;
  by_slug.descending = false;
  absl::StatusOr<storage::RolePage> roles =
      f.users().ListRoles(tenant.id, by_slug);
  ASSERT_TRUE(roles.ok()) << roles.status();
  ASSERT_EQ(roles->roles.size(), 2u);
  EXPECT_EQ(roles->roles[0].slug, "two");
  EXPECT_EQ(roles->roles[1].slug, "uno");
}

TYPED_TEST(UserStoreConformanceTest, PortalAdminsAreGuarded) {
  StoreFixture& f = this->f();
  const storage::Tenant tenant = NewTenant(f);
  absl::StatusOr<std::string> admin =
      f.portal().UpsertAdmin(tenant.slug, "root@example.com", Unique("u"),
                             "$argon2id$stub", Event("portal.admin_set"));
  ASSERT_TRUE(admin.ok()) << admin.status();

  storage::UserUpdate block;
  block.blocked = true;
  EXPECT_EQ(f.users()
                .UpdateUser(tenant.id, UserRef::Id(*admin), block,
                            Event("user.updated"))
                .status()
                .code(),
            absl::StatusCode::kPermissionDenied);
  block.guard.may_manage_admins = true;
  absl::Status last = f.users()
                          .UpdateUser(tenant.id, UserRef::Id(*admin), block,
                                      Event("user.updated"))
                          .status();
  EXPECT_EQ(last.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_TRUE(last.GetPayload(storage::kLastPortalAdminPayload).has_value())
      << last;
  storage::PortalAdminGuard may;
  may.may_manage_admins = true;
  EXPECT_EQ(f.users()
                .DeleteUser(tenant.id, UserRef::Id(*admin),
                            Event("user.deleted"), may)
                .status()
                .code(),
            absl::StatusCode::kFailedPrecondition);

  // With a second admin, the first may be blocked.
  ASSERT_TRUE(f.portal()
                  .UpsertAdmin(tenant.slug, "second@example.com", Unique("u"),
                               "$argon2id$stub", Event("portal.admin_set"))
                  .ok());
  absl::StatusOr<storage::UserWrite> blocked = f.users().UpdateUser(
      tenant.id, UserRef::Id(*admin), block, Event("user.updated"));
  ASSERT_TRUE(blocked.ok()) << blocked.status();
  EXPECT_TRUE(blocked->user.blocked);
}

}  // namespace
}  // namespace lumo::testing
