#include "server/core/scopes.h"

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "gtest/gtest.h"

namespace lumo::core {
namespace {

using Scopes = std::vector<std::string>;

TEST(ScopesTest, AllScopesInCanonicalOrder) {
  EXPECT_EQ(AllScopes(), (Scopes{"admin:read", "admin:write", "admin:users",
                                 "admin:roles", "admin:groups", "admin:clients",
                                 "admin:webhooks", "admin:audit"}));
}

TEST(ScopesTest, IsKnownScopeIsExact) {
  for (const std::string& scope : AllScopes()) {
    EXPECT_TRUE(IsKnownScope(scope)) << scope;
  }
  for (const char* bad : {"", "admin", "admin:", "Admin:read", "admin:read ",
                          "admin:*", "admin:keys", "read"}) {
    EXPECT_FALSE(IsKnownScope(bad)) << bad;
  }
}

TEST(ScopesTest, CanonicalizeDeduplicatesAndOrders) {
  absl::StatusOr<Scopes> scopes = CanonicalizeScopes(
      Scopes{"admin:audit", "admin:read", "admin:audit", "admin:users"});
  ASSERT_TRUE(scopes.ok()) << scopes.status();
  EXPECT_EQ(*scopes, (Scopes{"admin:read", "admin:users", "admin:audit"}));
}

TEST(ScopesTest, CanonicalizeRejectsEmptyList) {
  absl::StatusOr<Scopes> scopes = CanonicalizeScopes(Scopes{});
  EXPECT_EQ(scopes.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(scopes.status().message(), "scopes must not be empty");
}

TEST(ScopesTest, CanonicalizeRejectsUnknownScopeNamingIt) {
  absl::StatusOr<Scopes> scopes =
      CanonicalizeScopes(Scopes{"admin:read", "admin:keys"});
  EXPECT_EQ(scopes.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(scopes.status().message(), "unknown scope \"admin:keys\"");
}

TEST(ScopesTest, CanonicalizeEscapesAndBoundsUnknownScope) {
  absl::StatusOr<Scopes> scopes =
      CanonicalizeScopes(Scopes{"bad\n\"scope" + std::string(100, 'x')});
  EXPECT_EQ(scopes.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(scopes.status().message(),
            "unknown scope \"bad\\n\\\"scope" + std::string(54, 'x') + "...\"");
}

TEST(ScopesTest, AdminWriteGrantsEveryScope) {
  for (const std::string& scope : AllScopes()) {
    EXPECT_TRUE(Grants(Scopes{"admin:write"}, scope)) << scope;
  }
}

TEST(ScopesTest, OtherScopesGrantOnlyThemselves) {
  for (const std::string& held : AllScopes()) {
    if (held == "admin:write") continue;
    for (const std::string& needed : AllScopes()) {
      EXPECT_EQ(Grants(Scopes{held}, needed), held == needed)
          << held << " -> " << needed;
    }
  }
}

TEST(ScopesTest, UnknownScopeIsNeverGranted) {
  EXPECT_FALSE(Grants(AllScopes(), "admin:keys"));
  EXPECT_FALSE(Grants(Scopes{"admin:keys"}, "admin:keys"));
  EXPECT_FALSE(Grants(Scopes{"admin:write"}, ""));
}

TEST(ScopesTest, NothingIsGrantedByEmptyHeldSet) {
  EXPECT_FALSE(Grants(Scopes{}, "admin:read"));
}

TEST(ScopesTest, GrantsAnyNeedsOneGrantedScope) {
  EXPECT_TRUE(GrantsAny(Scopes{"admin:users"}, Scopes{}));
  EXPECT_TRUE(GrantsAny(Scopes{}, Scopes{}));
  EXPECT_TRUE(
      GrantsAny(Scopes{"admin:users"}, Scopes{"admin:roles", "admin:users"}));
  EXPECT_FALSE(
      GrantsAny(Scopes{"admin:read"}, Scopes{"admin:roles", "admin:users"}));
  EXPECT_TRUE(
      GrantsAny(Scopes{"admin:write"}, Scopes{"admin:roles", "admin:users"}));
}

TEST(ScopesTest, IsSubsetForbidsEscalation) {
  EXPECT_TRUE(IsSubset(Scopes{"admin:write"}, AllScopes()));
  EXPECT_TRUE(
      IsSubset(Scopes{"admin:users", "admin:roles"}, Scopes{"admin:users"}));
  EXPECT_TRUE(IsSubset(Scopes{"admin:users"}, Scopes{}));
  EXPECT_FALSE(IsSubset(Scopes{"admin:users"}, Scopes{"admin:write"}));
  EXPECT_FALSE(IsSubset(Scopes{"admin:read"}, Scopes{"admin:users"}));
  EXPECT_FALSE(
      IsSubset(Scopes{"admin:users"}, Scopes{"admin:users", "admin:audit"}));
}

}  // namespace
}  // namespace lumo::core
