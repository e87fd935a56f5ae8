// MysqlUserStore against the real MariaDB. One migrated database for the
// suite; each test works in its own tenants.
#include "server/storage/mysql/mysql_user_store.h"

#include <atomic>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "server/core/crypto.h"
#include "server/storage/mysql/mysql_key_store.h"
#include "tests/storage/status_testing.h"
#include "tests/storage/test_database.h"

namespace lumo::storage {
namespace {

using ::lumo::testing::TestDatabase;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;

using Rows = std::vector<std::vector<std::string>>;

std::string NewId(const char* prefix) {
  return absl::StrCat(prefix, core::RandomBase62(16).value());
}

std::vector<std::string> Emails(const std::vector<UserRecord>& users) {
  std::vector<std::string> out;
  for (const UserRecord& u : users) out.push_back(u.email);
  return out;
}

std::vector<std::string> Slugs(const std::vector<RoleRecord>& roles) {
  std::vector<std::string> out;
  for (const RoleRecord& r : roles) out.push_back(r.slug);
  return out;
}

class MysqlUserStoreTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    absl::StatusOr<std::unique_ptr<TestDatabase>> db = TestDatabase::Create();
    if (!db.ok()) {
      setup_error_ = new std::string(db.status().ToString());
      return;
    }
    absl::StatusOr<std::unique_ptr<MysqlKeyStore>> keys =
        MysqlKeyStore::Open((*db)->options());
    if (!keys.ok()) {
      setup_error_ = new std::string(keys.status().ToString());
      return;
    }
    db_ = db->release();
    keys_ = keys->release();
    store_ = new MysqlUserStore(keys_->shared_pool());
  }
  static void TearDownTestSuite() {
    delete store_;
    store_ = nullptr;
    delete keys_;
    keys_ = nullptr;
    delete db_;
    db_ = nullptr;
  }
  void SetUp() override { ASSERT_NE(store_, nullptr) << *setup_error_; }

  static int64_t NewTenant() {
    static std::atomic<int> counter{0};
    const std::string slug =
        absl::StrCat("u", counter++, "-",
                     absl::AsciiStrToLower(core::RandomBase62(8).value()));
    return keys_->CreateTenant(slug, slug, nullptr, {}).value().id;
  }

  static AuditEvent Event(const std::string& action) {
    AuditEvent e;
    e.action = action;
    e.category = "user_management";
    e.actor_type = "api_key";
    e.actor_id = "key000000001";
    e.target_type = action.rfind("role", 0) == 0 ? "role" : "user";
    e.request_id = "req-1";
    return e;
  }

  static UserRecord AddUser(int64_t tenant, const std::string& email,
                            const std::string& name = "",
                            std::vector<RoleRef> roles = {},
                            bool blocked = false) {
    NewUser user;
    user.id = NewId("usr_");
    user.tenant_id = tenant;
    user.email = email;
    user.name = name;
    user.blocked = blocked;
    user.roles = std::move(roles);
    absl::StatusOr<UserRecord> created =
        store_->InsertUser(user, Event("user.created"));
    EXPECT_TRUE(created.ok()) << created.status();
    return created.value_or(UserRecord());
  }

  static RoleRecord AddRole(int64_t tenant, const std::string& slug,
                            const std::string& name = "A role") {
    RoleFields role;
    role.id = NewId("rol_");
    role.tenant_id = tenant;
    role.slug = slug;
    role.name = name;
    role.permissions = {"documents:read", "documents:write"};
    absl::StatusOr<RoleRecord> created =
        store_->InsertRole(role, Event("role.created"));
    EXPECT_TRUE(created.ok()) << created.status();
    return created.value_or(RoleRecord());
  }

  static int64_t Count(const std::string& sql) {
    int64_t n = -1;
    const std::string value = db_->QueryValue(sql).value();
    EXPECT_TRUE(absl::SimpleAtoi(value, &n)) << value;
    return n;
  }
  static int64_t AuditCount(int64_t tenant) {
    return Count(absl::StrCat(
        "SELECT COUNT(*) FROM audit_events WHERE tenant_id = ", tenant));
  }
  static int64_t UserCount(int64_t tenant) {
    return Count(
        absl::StrCat("SELECT COUNT(*) FROM users WHERE tenant_id = ", tenant));
  }
  // action, category, target_type, target_id of every event, in order.
  static Rows Audit(int64_t tenant) {
    return db_
        ->Query(absl::StrCat("SELECT action, category, target_type, target_id"
                             " FROM audit_events WHERE tenant_id = ",
                             tenant, " ORDER BY id"))
        .value();
  }

  static TestDatabase* db_;
  static MysqlKeyStore* keys_;
  static MysqlUserStore* store_;
  static std::string* setup_error_;
};

TestDatabase* MysqlUserStoreTest::db_ = nullptr;
MysqlKeyStore* MysqlUserStoreTest::keys_ = nullptr;
MysqlUserStore* MysqlUserStoreTest::store_ = nullptr;
std::string* MysqlUserStoreTest::setup_error_ = nullptr;

// ---------------------------------------------------------------------------
// Users

TEST_F(MysqlUserStoreTest, InsertThenGetByIdOrByEmailInAnyCase) {
  const int64_t tenant = NewTenant();
  AddRole(tenant, "viewer");
  AddRole(tenant, "admin");
  const UserRecord created = AddUser(
      tenant, "Ada.Lovelace@Example.com", "Ada",
      {RoleRef::Slug("viewer"), RoleRef::Slug("admin")}, /*blocked=*/true);
  EXPECT_EQ(created.email, "Ada.Lovelace@Example.com");
  EXPECT_EQ(created.name, "Ada");
  EXPECT_TRUE(created.blocked);
  EXPECT_THAT(created.roles, ElementsAre("admin", "viewer"));
  EXPECT_EQ(created.created_at, created.updated_at);

  ASSERT_OK_AND_ASSIGN(UserRecord by_id,
                       store_->GetUser(tenant, UserRef::Id(created.id)));
  ASSERT_OK_AND_ASSIGN(
      UserRecord by_email,
      store_->GetUser(tenant, UserRef::Email("ada.lovelace@EXAMPLE.COM")));
  for (const UserRecord& got : {by_id, by_email}) {
    EXPECT_EQ(got.id, created.id);
    EXPECT_EQ(got.email, created.email);
    EXPECT_THAT(got.roles, ElementsAre("admin", "viewer"));
    EXPECT_EQ(got.created_at, created.created_at);
  }
}

TEST_F(MysqlUserStoreTest, EmailIsUniquePerTenantIgnoringCase) {
  const int64_t tenant = NewTenant();
  AddUser(tenant, "bob@example.com");
  const int64_t events = AuditCount(tenant);
  NewUser dup;
  dup.id = NewId("usr_");
  dup.tenant_id = tenant;
  dup.email = "BOB@example.com";
  EXPECT_CODE(store_->InsertUser(dup, Event("user.created")),
              absl::StatusCode::kAlreadyExists);
  // The failed write left neither a row nor an event.
  EXPECT_EQ(UserCount(tenant), 1);
  EXPECT_EQ(AuditCount(tenant), events);

  // Another tenant may use the same address.
  const int64_t other = NewTenant();
  dup.tenant_id = other;
  EXPECT_OK(store_->InsertUser(dup, Event("user.created")));
}

TEST_F(MysqlUserStoreTest, DuplicateIdIsAlreadyExists) {
  const int64_t tenant = NewTenant();
  const UserRecord first = AddUser(tenant, "one@example.com");
  NewUser again;
  again.id = first.id;
  again.tenant_id = tenant;
  again.email = "two@example.com";
  EXPECT_CODE(store_->InsertUser(again, Event("user.created")),
              absl::StatusCode::kAlreadyExists);
}

TEST_F(MysqlUserStoreTest,
       UnknownOrForeignRoleIsFailedPreconditionAndWritesNothing) {
  const int64_t tenant = NewTenant();
  const int64_t other = NewTenant();
  const RoleRecord foreign = AddRole(other, "foreign");
  AddRole(tenant, "known");
  for (const RoleRef& ref :
       {RoleRef::Slug("missing"), RoleRef::Slug("foreign"),
        RoleRef::Id(foreign.id), RoleRef::Slug("bad slug")}) {
    NewUser user;
    user.id = NewId("usr_");
    user.tenant_id = tenant;
    user.email = "carol@example.com";
    user.roles = {RoleRef::Slug("known"), ref};
    absl::StatusOr<UserRecord> created =
        store_->InsertUser(user, Event("user.created"));
    EXPECT_CODE(created, absl::StatusCode::kFailedPrecondition);
    EXPECT_THAT(created.status().message(), HasSubstr("roles"));
  }
  EXPECT_EQ(UserCount(tenant), 0);
  EXPECT_EQ(AuditCount(tenant), 1);  // the role's creation only
}

TEST_F(MysqlUserStoreTest, InsertIntoUnknownTenantIsNotFound) {
  NewUser user;
  user.id = NewId("usr_");
  user.tenant_id = 987654321;
  user.email = "x@example.com";
  EXPECT_CODE(store_->InsertUser(user, Event("user.created")),
              absl::StatusCode::kNotFound);
}

TEST_F(MysqlUserStoreTest, AnotherTenantsUserBehavesExactlyLikeAMissingOne) {
  const int64_t tenant = NewTenant();
  const int64_t other = NewTenant();
  const UserRecord theirs = AddUser(other, "theirs@example.com");
  const int64_t their_events = AuditCount(other);
  UserUpdate update;
  update.name = "hijacked";
  for (const UserRef& ref :
       {UserRef::Id(theirs.id), UserRef::Email("theirs@example.com"),
        UserRef::Id(NewId("usr_")), UserRef::Email("nobody@example.com"),
        UserRef::Id("usr_ x"), UserRef::Id("")}) {
    SCOPED_TRACE(ref.value);
    absl::StatusOr<UserRecord> got = store_->GetUser(tenant, ref);
    EXPECT_CODE(got, absl::StatusCode::kNotFound);
    EXPECT_EQ(got.status().message(), "user not found");
    EXPECT_CODE(store_->UpdateUser(tenant, ref, update, Event("user.updated")),
                absl::StatusCode::kNotFound);
    EXPECT_CODE(store_->DeleteUser(tenant, ref, Event("user.deleted"), {}),
                absl::StatusCode::kNotFound);
  }
  ASSERT_OK_AND_ASSIGN(UserRecord still,
                       store_->GetUser(other, UserRef::Id(theirs.id)));
  EXPECT_EQ(still.name, "");
  EXPECT_EQ(AuditCount(tenant), 0);
  EXPECT_EQ(AuditCount(other), their_events);
}

TEST_F(MysqlUserStoreTest, UpdateChangesOnlyTheGivenFieldsWithOneEvent) {
  const int64_t tenant = NewTenant();
  AddRole(tenant, "editor");
  const UserRecord user =
      AddUser(tenant, "dan@example.com", "Dan", {RoleRef::Slug("editor")});
  const int64_t events = AuditCount(tenant);

  UserUpdate update;
  update.name = "Daniel";
  ASSERT_OK_AND_ASSIGN(
      UserWrite written,
      store_->UpdateUser(tenant, UserRef::Email("DAN@example.com"), update,
                         Event("user.updated")));
  EXPECT_TRUE(written.changed);
  EXPECT_EQ(written.user.name, "Daniel");
  EXPECT_EQ(written.user.email, "dan@example.com");
  EXPECT_FALSE(written.user.blocked);
  EXPECT_THAT(written.user.roles, ElementsAre("editor"));
  EXPECT_GT(written.user.updated_at, user.updated_at);
  EXPECT_EQ(written.user.created_at, user.created_at);
  EXPECT_EQ(AuditCount(tenant), events + 1);
  // The store names the target by id even when addressed by email.
  EXPECT_EQ(Audit(tenant).back(),
            (std::vector<std::string>{"user.updated", "user_management", "user",
                                      user.id}));
}

TEST_F(MysqlUserStoreTest, UpdateThatChangesNothingWritesNothing) {
  const int64_t tenant = NewTenant();
  AddRole(tenant, "editor");
  const UserRecord user =
      AddUser(tenant, "erin@example.com", "Erin", {RoleRef::Slug("editor")});
  const int64_t events = AuditCount(tenant);
  UserUpdate update;
  update.email = "erin@example.com";
  update.name = "Erin";
  update.blocked = false;
  update.roles = std::vector<RoleRef>{RoleRef::Slug("editor")};
  ASSERT_OK_AND_ASSIGN(UserWrite written,
                       store_->UpdateUser(tenant, UserRef::Id(user.id), update,
                                          Event("user.updated")));
  EXPECT_FALSE(written.changed);
  EXPECT_EQ(written.user.updated_at, user.updated_at);
  EXPECT_THAT(written.user.roles, ElementsAre("editor"));
  EXPECT_EQ(AuditCount(tenant), events);
}

TEST_F(MysqlUserStoreTest, UpdateToATakenEmailIsAlreadyExistsAndRollsBack) {
  const int64_t tenant = NewTenant();
  AddUser(tenant, "fay@example.com");
  const UserRecord gus = AddUser(tenant, "gus@example.com", "Gus");
  const int64_t events = AuditCount(tenant);
  UserUpdate update;
  update.email = "FAY@example.com";
  update.name = "Changed";
  EXPECT_CODE(store_->UpdateUser(tenant, UserRef::Id(gus.id), update,
                                 Event("user.updated")),
              absl::StatusCode::kAlreadyExists);
  ASSERT_OK_AND_ASSIGN(UserRecord after,
                       store_->GetUser(tenant, UserRef::Id(gus.id)));
  EXPECT_EQ(after.email, "gus@example.com");
  EXPECT_EQ(after.name, "Gus");
  EXPECT_EQ(AuditCount(tenant), events);

  // Changing only the case of one's own email is fine.
  update.email = "GUS@example.com";
  ASSERT_OK_AND_ASSIGN(UserWrite written,
                       store_->UpdateUser(tenant, UserRef::Id(gus.id), update,
                                          Event("user.updated")));
  EXPECT_EQ(written.user.email, "GUS@example.com");
}

TEST_F(MysqlUserStoreTest, SettingRolesReplacesTheSet) {
  const int64_t tenant = NewTenant();
  const RoleRecord a = AddRole(tenant, "a-role");
  AddRole(tenant, "b-role");
  AddRole(tenant, "c-role");
  const UserRecord user =
      AddUser(tenant, "hal@example.com", "", {RoleRef::Slug("a-role")});
  UserUpdate update;
  update.roles = std::vector<RoleRef>{
      RoleRef::Slug("c-role"), RoleRef::Slug("b-role"), RoleRef::Id(a.id),
      RoleRef::Slug("a-role")};  // duplicates collapse
  ASSERT_OK_AND_ASSIGN(UserWrite written,
                       store_->UpdateUser(tenant, UserRef::Id(user.id), update,
                                          Event("user.roles_updated")));
  EXPECT_TRUE(written.changed);
  EXPECT_THAT(written.user.roles, ElementsAre("a-role", "b-role", "c-role"));

  update.roles = std::vector<RoleRef>{RoleRef::Slug("b-role")};
  ASSERT_OK_AND_ASSIGN(written,
                       store_->UpdateUser(tenant, UserRef::Id(user.id), update,
                                          Event("user.roles_updated")));
  EXPECT_THAT(written.user.roles, ElementsAre("b-role"));

  update.roles =
      std::vector<RoleRef>{RoleRef::Slug("b-role"), RoleRef::Slug("nope")};
  EXPECT_CODE(store_->UpdateUser(tenant, UserRef::Id(user.id), update,
                                 Event("user.roles_updated")),
              absl::StatusCode::kFailedPrecondition);
  update.roles = std::vector<RoleRef>{};
  ASSERT_OK_AND_ASSIGN(written,
                       store_->UpdateUser(tenant, UserRef::Id(user.id), update,
                                          Event("user.roles_updated")));
  EXPECT_THAT(written.user.roles, IsEmpty());
  EXPECT_EQ(Count(absl::StrCat(
                "SELECT COUNT(*) FROM audit_events WHERE tenant_id = ", tenant,
                " AND action = 'user.roles_updated'")),
            3);
}

TEST_F(MysqlUserStoreTest, DeleteRemovesTheUserAndItsAssignmentsOnce) {
  const int64_t tenant = NewTenant();
  AddRole(tenant, "member");
  const UserRecord user =
      AddUser(tenant, "ivy@example.com", "Ivy", {RoleRef::Slug("member")});
  const int64_t events = AuditCount(tenant);
  ASSERT_OK_AND_ASSIGN(
      UserRecord deleted,
      store_->DeleteUser(tenant, UserRef::Email("ivy@example.com"),
                         Event("user.deleted"), {}));
  EXPECT_EQ(deleted.id, user.id);
  EXPECT_THAT(deleted.roles, ElementsAre("member"));
  EXPECT_CODE(store_->GetUser(tenant, UserRef::Id(user.id)),
              absl::StatusCode::kNotFound);
  EXPECT_EQ(Count(absl::StrCat(
                "SELECT COUNT(*) FROM user_roles WHERE tenant_id = ", tenant)),
            0);
  EXPECT_CODE(store_->DeleteUser(tenant, UserRef::Id(user.id),
                                 Event("user.deleted"), {}),
              absl::StatusCode::kNotFound);
  EXPECT_EQ(AuditCount(tenant), events + 1);
  EXPECT_EQ(Audit(tenant).back()[3], user.id);
  // The address is free again.
  AddUser(tenant, "ivy@example.com");
}

// ---------------------------------------------------------------------------
// Listing users

class MysqlUserStoreListTest : public MysqlUserStoreTest {
 protected:
  void SetUp() override {
    MysqlUserStoreTest::SetUp();
    tenant_ = NewTenant();
    admin_ = AddRole(tenant_, "admin");
    AddRole(tenant_, "viewer");
    // Created in this order (created_at ascending).
    AddUser(tenant_, "carol@example.com", "Carol Jones",
            {RoleRef::Slug("admin")});
    AddUser(tenant_, "alice@example.com", "Alice Smith",
            {RoleRef::Slug("viewer")});
    AddUser(tenant_, "Bob@Example.org", "bob stone", {}, /*blocked=*/true);
    AddUser(tenant_, "dave_100%@example.com", "Dave",
            {RoleRef::Slug("admin"), RoleRef::Slug("viewer")});
    AddUser(tenant_, "erin@example.net", "Érin", {}, /*blocked=*/true);
    // Noise in another tenant.
    const int64_t other = NewTenant();
    AddRole(other, "admin");
    AddUser(other, "alice@example.com", "Alice Smith",
            {RoleRef::Slug("admin")});
  }

  UserPage List(ListUsersQuery query) {
    absl::StatusOr<UserPage> page = store_->ListUsers(tenant_, query);
    EXPECT_TRUE(page.ok()) << page.status();
    return page.value_or(UserPage());
  }

  int64_t tenant_ = 0;
  RoleRecord admin_;
};

TEST_F(MysqlUserStoreListTest, PagesNewestFirstWithTheTotal) {
  ListUsersQuery query;
  query.limit = 2;
  UserPage page = List(query);
  EXPECT_EQ(page.total, 5);
  EXPECT_THAT(Emails(page.users),
              ElementsAre("erin@example.net", "dave_100%@example.com"));
  EXPECT_THAT(page.users[1].roles, ElementsAre("admin", "viewer"));
  query.page = 3;
  page = List(query);
  EXPECT_EQ(page.total, 5);
  EXPECT_THAT(Emails(page.users), ElementsAre("carol@example.com"));
  EXPECT_THAT(page.users[0].roles, ElementsAre("admin"));
  query.page = 9;  // past the end: no rows, still the total
  page = List(query);
  EXPECT_EQ(page.total, 5);
  EXPECT_THAT(page.users, IsEmpty());
}

TEST_F(MysqlUserStoreListTest, RejectsOutOfRangePaging) {
  ListUsersQuery query;
  query.page = 0;
  EXPECT_CODE(store_->ListUsers(tenant_, query),
              absl::StatusCode::kInvalidArgument);
  query.page = 1;
  query.limit = 101;
  EXPECT_CODE(store_->ListUsers(tenant_, query),
              absl::StatusCode::kInvalidArgument);
}

TEST_F(MysqlUserStoreListTest, SortsByEveryFieldInBothDirections) {
  ListUsersQuery query;
  query.sort_by = UserSortField::kEmail;
  query.descending = false;
  EXPECT_THAT(
      Emails(List(query).users),
      ElementsAre("alice@example.com", "Bob@Example.org", "carol@example.com",
                  "dave_100%@example.com", "erin@example.net"));
  query.sort_by = UserSortField::kName;
  query.descending = true;
  EXPECT_THAT(
      Emails(List(query).users),
      ElementsAre("erin@example.net", "dave_100%@example.com",
                  "carol@example.com", "Bob@Example.org", "alice@example.com"));
  query.sort_by = UserSortField::kCreatedAt;
  query.descending = false;
  EXPECT_THAT(
      Emails(List(query).users),
      ElementsAre("carol@example.com", "alice@example.com", "Bob@Example.org",
                  "dave_100%@example.com", "erin@example.net"));
  query.sort_by = UserSortField::kUpdatedAt;
  EXPECT_EQ(List(query).users.size(), 5u);
}

TEST_F(MysqlUserStoreListTest, SearchesEmailNameAndIdCaseInsensitively) {
  ListUsersQuery query;
  query.sort_by = UserSortField::kEmail;
  query.descending = false;
  query.search = "EXAMPLE.ORG";
  EXPECT_THAT(Emails(List(query).users), ElementsAre("Bob@Example.org"));
  query.search = "smith";
  EXPECT_THAT(Emails(List(query).users), ElementsAre("alice@example.com"));
  query.search = "érin";
  EXPECT_THAT(Emails(List(query).users), ElementsAre("erin@example.net"));
  // Wildcards are literal.
  query.search = "100%";
  EXPECT_THAT(Emails(List(query).users), ElementsAre("dave_100%@example.com"));
  query.search = "e_1";
  EXPECT_THAT(Emails(List(query).users), ElementsAre("dave_100%@example.com"));
  query.search = "%";
  EXPECT_EQ(List(query).total, 1);
  // An id prefix.
  const UserRecord carol =
      store_->GetUser(tenant_, UserRef::Email("carol@example.com")).value();
  query.search = carol.id.substr(0, 12);
  EXPECT_THAT(Emails(List(query).users), ElementsAre("carol@example.com"));
}

TEST_F(MysqlUserStoreListTest, FiltersByBlockedAndByRole) {
  ListUsersQuery query;
  query.sort_by = UserSortField::kEmail;
  query.descending = false;
  query.blocked = true;
  EXPECT_THAT(Emails(List(query).users),
              ElementsAre("Bob@Example.org", "erin@example.net"));
  query.blocked = false;
  EXPECT_EQ(List(query).total, 3);
  query.blocked.reset();
  query.role = RoleRef::Slug("admin");
  EXPECT_THAT(Emails(List(query).users),
              ElementsAre("carol@example.com", "dave_100%@example.com"));
  query.role = RoleRef::Id(admin_.id);
  EXPECT_EQ(List(query).total, 2);
  query.role = RoleRef::Slug("viewer");
  query.blocked = false;
  query.search = "alice";
  EXPECT_THAT(Emails(List(query).users), ElementsAre("alice@example.com"));
  query = ListUsersQuery();
  query.role = RoleRef::Slug("no-such-role");
  EXPECT_EQ(List(query).total, 0);
  query.role = RoleRef::Slug("has space");
  EXPECT_EQ(List(query).total, 0);
}

// ---------------------------------------------------------------------------
// Roles

TEST_F(MysqlUserStoreTest, RoleRoundTripsAndIsFoundByIdOrSlug) {
  const int64_t tenant = NewTenant();
  const RoleRecord created = AddRole(tenant, "billing-admin", "Billing admin");
  EXPECT_EQ(created.slug, "billing-admin");
  EXPECT_EQ(created.name, "Billing admin");
  EXPECT_THAT(created.permissions,
              ElementsAre("documents:read", "documents:write"));
  for (const RoleRef& ref :
       {RoleRef::Id(created.id), RoleRef::Slug("billing-admin")}) {
    ASSERT_OK_AND_ASSIGN(RoleRecord got, store_->GetRole(tenant, ref));
    EXPECT_EQ(got.id, created.id);
    EXPECT_EQ(got.permissions, created.permissions);
  }
  const int64_t other = NewTenant();
  EXPECT_CODE(store_->GetRole(other, RoleRef::Id(created.id)),
              absl::StatusCode::kNotFound);
  EXPECT_CODE(store_->GetRole(other, RoleRef::Slug("billing-admin")),
              absl::StatusCode::kNotFound);
}

TEST_F(MysqlUserStoreTest,
       RoleSlugIsUniquePerTenantAndAFailedInsertWritesNothing) {
  const int64_t tenant = NewTenant();
  AddRole(tenant, "ops");
  const int64_t events = AuditCount(tenant);
  RoleFields dup;
  dup.id = NewId("rol_");
  dup.tenant_id = tenant;
  dup.slug = "ops";
  dup.name = "Ops again";
  EXPECT_CODE(store_->InsertRole(dup, Event("role.created")),
              absl::StatusCode::kAlreadyExists);
  EXPECT_EQ(AuditCount(tenant), events);
  dup.tenant_id = NewTenant();
  EXPECT_OK(store_->InsertRole(dup, Event("role.created")));
}

TEST_F(MysqlUserStoreTest, UpdateRoleReplacesFieldsAndHoldersSeeTheNewSlug) {
  const int64_t tenant = NewTenant();
  const RoleRecord role = AddRole(tenant, "old-slug");
  AddRole(tenant, "taken");
  const UserRecord user =
      AddUser(tenant, "jo@example.com", "", {RoleRef::Slug("old-slug")});
  const int64_t events = AuditCount(tenant);

  RoleFields fields;
  fields.slug = "new-slug";
  fields.name = "Renamed";
  fields.description = "Now with a description";
  fields.permissions = {"reports:read"};
  ASSERT_OK_AND_ASSIGN(RoleRecord updated,
                       store_->UpdateRole(tenant, RoleRef::Slug("old-slug"),
                                          fields, Event("role.updated")));
  EXPECT_EQ(updated.id, role.id);
  EXPECT_EQ(updated.slug, "new-slug");
  EXPECT_EQ(updated.description, "Now with a description");
  EXPECT_THAT(updated.permissions, ElementsAre("reports:read"));
  EXPECT_THAT(store_->GetUser(tenant, UserRef::Id(user.id))->roles,
              ElementsAre("new-slug"));
  EXPECT_EQ(AuditCount(tenant), events + 1);

  // The same values again: nothing written.
  EXPECT_OK(store_->UpdateRole(tenant, RoleRef::Id(role.id), fields,
                               Event("role.updated")));
  EXPECT_EQ(AuditCount(tenant), events + 1);

  fields.slug = "taken";
  EXPECT_CODE(store_->UpdateRole(tenant, RoleRef::Id(role.id), fields,
                                 Event("role.updated")),
              absl::StatusCode::kAlreadyExists);
  EXPECT_EQ(AuditCount(tenant), events + 1);
  EXPECT_CODE(store_->UpdateRole(NewTenant(), RoleRef::Id(role.id), fields,
                                 Event("role.updated")),
              absl::StatusCode::kNotFound);
}

TEST_F(MysqlUserStoreTest,
       DeletingAHeldRoleIsFailedPreconditionAndWritesNothing) {
  const int64_t tenant = NewTenant();
  const RoleRecord role = AddRole(tenant, "held");
  const UserRecord user =
      AddUser(tenant, "kim@example.com", "", {RoleRef::Slug("held")});
  AddUser(tenant, "lee@example.com", "", {RoleRef::Slug("held")});
  const int64_t events = AuditCount(tenant);
  absl::StatusOr<RoleRecord> refused =
      store_->DeleteRole(tenant, RoleRef::Slug("held"), Event("role.deleted"));
  EXPECT_CODE(refused, absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(refused.status().message(), HasSubstr("2 users"));
  EXPECT_OK(store_->GetRole(tenant, RoleRef::Id(role.id)));
  EXPECT_EQ(AuditCount(tenant), events);

  // Once nobody holds it, it goes, with one event.
  EXPECT_OK(store_->DeleteUser(tenant, UserRef::Email("lee@example.com"),
                               Event("user.deleted"), {}));
  UserUpdate none;
  none.roles = std::vector<RoleRef>{};
  EXPECT_OK(store_->UpdateUser(tenant, UserRef::Id(user.id), none,
                               Event("user.roles_updated")));
  ASSERT_OK_AND_ASSIGN(
      RoleRecord deleted,
      store_->DeleteRole(tenant, RoleRef::Id(role.id), Event("role.deleted")));
  EXPECT_EQ(deleted.slug, "held");
  EXPECT_EQ(Audit(tenant).back(),
            (std::vector<std::string>{"role.deleted", "user_management", "role",
                                      role.id}));
  EXPECT_CODE(store_->GetRole(tenant, RoleRef::Id(role.id)),
              absl::StatusCode::kNotFound);
  EXPECT_CODE(
      store_->DeleteRole(tenant, RoleRef::Id(role.id), Event("role.deleted")),
      absl::StatusCode::kNotFound);
}

TEST_F(MysqlUserStoreTest, ListRolesPagesSearchesAndSorts) {
  const int64_t tenant = NewTenant();
  AddRole(tenant, "support", "Support desk");
  AddRole(tenant, "admin", "Administrators");
  AddRole(tenant, "billing", "Billing");
  AddRole(NewTenant(), "admin", "Elsewhere");
  ListRolesQuery query;
  query.limit = 2;
  ASSERT_OK_AND_ASSIGN(RolePage page, store_->ListRoles(tenant, query));
  EXPECT_EQ(page.total, 3);
  EXPECT_THAT(Slugs(page.roles), ElementsAre("billing", "admin"));
  query.limit = 25;
  query.sort_by = RoleSortField::kSlug;
  query.descending = false;
  ASSERT_OK_AND_ASSIGN(page, store_->ListRoles(tenant, query));
  EXPECT_THAT(Slugs(page.roles), ElementsAre("admin", "billing", "support"));
  query.sort_by = RoleSortField::kName;
  query.descending = true;
  ASSERT_OK_AND_ASSIGN(page, store_->ListRoles(tenant, query));
  EXPECT_THAT(Slugs(page.roles), ElementsAre("support", "billing", "admin"));
  query.search = "DESK";
  ASSERT_OK_AND_ASSIGN(page, store_->ListRoles(tenant, query));
  EXPECT_THAT(Slugs(page.roles), ElementsAre("support"));
  query.search = "bill";
  ASSERT_OK_AND_ASSIGN(page, store_->ListRoles(tenant, query));
  EXPECT_THAT(Slugs(page.roles), ElementsAre("billing"));
}

TEST_F(MysqlUserStoreTest, EveryWriteWritesExactlyOneEventInItsCategory) {
  const int64_t tenant = NewTenant();
  AddRole(tenant, "r1");
  const UserRecord user = AddUser(tenant, "meg@example.com");
  UserUpdate update;
  update.blocked = true;
  ASSERT_OK(store_->UpdateUser(tenant, UserRef::Id(user.id), update,
                               Event("user.blocked")));
  ASSERT_OK(store_->UpdateUser(tenant, UserRef::Id(user.id), update,
                               Event("user.blocked")));  // no change
  ASSERT_OK(store_->DeleteUser(tenant, UserRef::Id(user.id),
                               Event("user.deleted"), {}));
  ASSERT_OK(
      store_->DeleteRole(tenant, RoleRef::Slug("r1"), Event("role.deleted")));
  const Rows audit = Audit(tenant);
  std::vector<std::string> actions;
  for (const auto& row : audit) {
    actions.push_back(row[0]);
    EXPECT_EQ(row[1], "user_management");
    EXPECT_FALSE(row[3].empty());
  }
  EXPECT_THAT(actions,
              ElementsAre("role.created", "user.created", "user.blocked",
                          "user.deleted", "role.deleted"));
}

}  // namespace
}  // namespace lumo::storage
