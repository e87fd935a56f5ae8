// Redirect-URI and client-metadata rules (client_validation.h), and the
// RFC 7591 defaults of a registration (registration_service.h).
#include "server/service/client_validation.h"

#include <string>
#include <vector>

#include "absl/strings/cord.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "server/rpc/status.h"
#include "server/service/registration_service.h"

namespace lumo::service {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;

// The REST code the RPC edge sends for `s`.
std::string CodeOf(const absl::Status& s) { return rpc::ErrorCodeOf(s); }

struct UriCase {
  const char* uri;
  bool ok;
};

TEST(RedirectUriTest, AcceptsHttpsAndLoopbackHttpOnly) {
  const UriCase cases[] = {
      {"https://app.example.com/callback", true},
      {"https://app.example.com", true},
      {"https://app.example.com:8443/cb?x=1&y=%20", true},
      {"HTTPS://APP.EXAMPLE.COM/cb", true},
      {"https://192.0.2.10/cb", true},
      {"https://[2001:db8::1]:443/cb", true},
      {"http://localhost/cb", true},
      {"http://LOCALHOST:8080/cb", true},
      {"http://127.0.0.1:53682/cb", true},
      {"http://[::1]:8080/cb", true},
      {"https://xn--bcher-kva.example/cb", true},
      // Plain http elsewhere.
      {"http://evil.example", false},
      {"http://evil.example/cb", false},
      {"http://127.0.0.2/cb", false},
      {"http://localhost.evil.example/cb", false},
      {"http://[::2]/cb", false},
      // Fragments, userinfo.
      {"https://app.example.com/cb#frag", false},
      {"https://app.example.com/cb#", false},
      {"https://user@app.example.com/cb", false},
      {"https://user:pw@app.example.com/cb", false},
      {"http://localhost@evil.example/cb", false},
      // Not absolute, other schemes, malformed.
      {"/callback", false},
      {"callback", false},
      {"//app.example.com/cb", false},
      {"", false},
      {"https://", false},
      {"https:///cb", false},
      {"https:app.example.com/cb", false},
      {"ftp://app.example.com/cb", false},
      {"javascript://app.example.com/%0aalert(1)", false},
      {"com.example.app://cb", false},
      {"https://app.example.com:0/cb", false},
      {"https://app.example.com:65536/cb", false},
      {"https://app.example.com:/cb", false},
      {"https://app.example.com:80x/cb", false},
      {"https://[::1/cb", false},
      {"https://[1.2.3.4]/cb", false},
      {"https://app..example.com/cb", false},
      {"https://app_example.com/cb", false},
      {"https://*.example.com/cb", false},
      {"https://app.example.com/c b", false},
      {"https://app.example.com/c\tb", false},
      {"https://app.example.com/caf\xc3\xa9", false},
      {"https://app.example.com/%zz", false},
      {"https://app.example.com/%4", false},
  };
  for (const UriCase& c : cases) {
    absl::Status s = ValidateRedirectUri("redirect_uris[0]", c.uri);
    EXPECT_EQ(s.ok(), c.ok) << c.uri << " -> " << s;
    if (!s.ok()) {
      EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << c.uri;
      EXPECT_EQ(CodeOf(s), "invalid_redirect_uri") << c.uri;
      EXPECT_THAT(std::string(s.message()), HasSubstr("redirect_uris[0]"));
    }
  }
}

TEST(RedirectUriTest, LengthLimitIs2048) {
  const std::string base = "https://app.example.com/";
  EXPECT_TRUE(
      ValidateRedirectUri("u", base + std::string(2048 - base.size(), 'a'))
          .ok());
  EXPECT_FALSE(
      ValidateRedirectUri("u", base + std::string(2049 - base.size(), 'a'))
          .ok());
}

TEST(RedirectUriTest, MessageNeverEchoesTheValue) {
  absl::Status s =
      ValidateRedirectUri("redirect_uris[3]", "http://secret-host.example/x");
  ASSERT_FALSE(s.ok());
  EXPECT_THAT(std::string(s.message()), ::testing::Not(HasSubstr("secret")));
}

// RFC 8252: native clients may also use private-use schemes in reverse
// domain name form and loopback http on any port; web clients may not use
// private-use schemes.
TEST(RedirectUriTest, NativeClientsAcceptRfc8252Forms) {
  struct Case {
    const char* uri;
    bool native_ok;
    bool web_ok;
  };
  const Case cases[] = {
      {"com.example.app:/oauth2redirect/example-provider", true, false},
      {"com.example.app:/cb", true, false},
      {"COM.Example.App:/cb", true, false},
      {"com.example.app://cb", true, false},
      {"io.my-company.cli:/callback?x=1", true, false},
      {"http://127.0.0.1:51004/cb", true, true},
      {"http://[::1]:61023/oauth2redirect", true, true},
      {"http://localhost:1/cb", true, true},
      {"https://app.example.com/cb", true, true},
      // Not reverse domain name form, or not a scheme a native app owns.
      {"myapp:/cb", false, false},
      {"com.example.app:cb", false, false},
      {"com.example.app:", false, false},
      {"com..app:/cb", false, false},
      {".com.example:/cb", false, false},
      {"com.1example.app:/cb", false, false},
      {"com.exa_mple.app:/cb", false, false},
      {"com.example.app:/cb#frag", false, false},
      {"javascript:alert(1)", false, false},
      {"data:text/html,x", false, false},
      {"file:///etc/passwd", false, false},
      {"http://192.0.2.1:8080/cb", false, false},
      {"http://127.0.0.2:8080/cb", false, false},
  };
  for (const Case& c : cases) {
    absl::Status native = ValidateRedirectUri("redirect_uris[0]", c.uri,
                                              ApplicationType::kNative);
    EXPECT_EQ(native.ok(), c.native_ok) << c.uri << " -> " << native;
    absl::Status web =
        ValidateRedirectUri("redirect_uris[0]", c.uri, ApplicationType::kWeb);
    EXPECT_EQ(web.ok(), c.web_ok) << c.uri << " -> " << web;
    for (const absl::Status& s : {native, web}) {
      if (s.ok()) continue;
      EXPECT_EQ(CodeOf(s), "invalid_redirect_uri") << c.uri;
      EXPECT_THAT(std::string(s.message()), HasSubstr("redirect_uris[0]"));
    }
  }
  EXPECT_THAT(
      std::string(ValidateRedirectUri("redirect_uris[0]", "com.example.app:/cb",
                                      ApplicationType::kWeb)
                      .message()),
      HasSubstr("private-use URI schemes are for native clients"));
}

storage::ClientFields Valid() {
  storage::ClientFields f;
  f.name = "My app";
  f.redirect_uris = {"https://app.example.com/cb"};
  f.grant_types = {"authorization_code", "refresh_token"};
  f.response_types = {"code"};
  return f;
}

struct MetadataCase {
  const char* name;
  void (*mutate)(storage::ClientFields&);
  const char* code;  // "" when valid
};

TEST(ClientFieldsTest, TableOfRules) {
  const MetadataCase cases[] = {
      {"valid", [](storage::ClientFields&) {}, ""},
      {"client credentials only",
       [](storage::ClientFields& f) {
         f.grant_types = {"client_credentials"};
         f.response_types = {};
         f.redirect_uris = {};
       },
       ""},
      {"public with pkce",
       [](storage::ClientFields& f) { f.token_endpoint_auth_method = "none"; },
       ""},
      {"native",
       [](storage::ClientFields& f) { f.application_type = "native"; }, ""},
      {"client_secret_post",
       [](storage::ClientFields& f) {
         f.token_endpoint_auth_method = "client_secret_post";
       },
       ""},
      {"empty name", [](storage::ClientFields& f) { f.name = ""; },
       "invalid_client_metadata"},
      {"control character in name",
       [](storage::ClientFields& f) { f.name = "a\nb"; },
       "invalid_client_metadata"},
      {"name too long",
       [](storage::ClientFields& f) { f.name = std::string(101, 'x'); },
       "invalid_client_metadata"},
      {"implicit grant",
       [](storage::ClientFields& f) { f.grant_types = {"implicit"}; },
       "invalid_client_metadata"},
      {"password grant",
       [](storage::ClientFields& f) { f.grant_types.push_back("password"); },
       "invalid_client_metadata"},
      {"unknown grant",
       [](storage::ClientFields& f) { f.grant_types = {"magic"}; },
       "invalid_client_metadata"},
      {"no grant", [](storage::ClientFields& f) { f.grant_types = {}; },
       "invalid_client_metadata"},
      {"token response type",
       [](storage::ClientFields& f) { f.response_types = {"token"}; },
       "invalid_client_metadata"},
      {"code without authorization_code",
       [](storage::ClientFields& f) { f.grant_types = {"client_credentials"}; },
       "invalid_client_metadata"},
      {"authorization_code without code",
       [](storage::ClientFields& f) { f.response_types = {}; },
       "invalid_client_metadata"},
      {"no redirect uri for code flow",
       [](storage::ClientFields& f) { f.redirect_uris = {}; },
       "invalid_redirect_uri"},
      {"bad redirect uri",
       [](storage::ClientFields& f) {
         f.redirect_uris.push_back("http://evil.example");
       },
       "invalid_redirect_uri"},
      {"too many redirect uris",
       [](storage::ClientFields& f) {
         f.redirect_uris.clear();
         for (int i = 0; i < 21; ++i) {
           f.redirect_uris.push_back("https://app.example.com/cb" +
                                     std::to_string(i));
         }
       },
       "invalid_redirect_uri"},
      {"bad post-logout uri",
       [](storage::ClientFields& f) {
         f.post_logout_redirect_uris = {"https://app.example.com/#x"};
       },
       "invalid_redirect_uri"},
      {"bad client_uri",
       [](storage::ClientFields& f) { f.client_uri = "http://evil.example"; },
       "invalid_client_metadata"},
      {"bad logo_uri",
       [](storage::ClientFields& f) { f.logo_uri = "/logo.png"; },
       "invalid_client_metadata"},
      {"scope with quote",
       [](storage::ClientFields& f) { f.scopes = {"read\"x"}; },
       "invalid_client_metadata"},
      {"too many scopes",
       [](storage::ClientFields& f) {
         for (int i = 0; i < 51; ++i)
           f.scopes.push_back("s" + std::to_string(i));
       },
       "invalid_client_metadata"},
      {"bad application type",
       [](storage::ClientFields& f) { f.application_type = "desktop"; },
       "invalid_client_metadata"},
      {"bad auth method",
       [](storage::ClientFields& f) {
         f.token_endpoint_auth_method = "private_key_jwt";
       },
       "invalid_client_metadata"},
      {"public client_credentials",
       [](storage::ClientFields& f) {
         f.token_endpoint_auth_method = "none";
         f.grant_types.push_back("client_credentials");
       },
       "invalid_client_metadata"},
      {"public without pkce",
       [](storage::ClientFields& f) {
         f.token_endpoint_auth_method = "none";
         f.pkce_required = false;
       },
       "invalid_client_metadata"},
  };
  for (const MetadataCase& c : cases) {
    storage::ClientFields f = Valid();
    c.mutate(f);
    absl::Status s = ValidateClientFields(f, FieldNaming::kCamelCase);
    if (std::string(c.code).empty()) {
      EXPECT_TRUE(s.ok()) << c.name << ": " << s;
    } else {
      EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << c.name;
      EXPECT_EQ(CodeOf(s), c.code) << c.name << ": " << s;
    }
  }
}

TEST(ClientFieldsTest, MessagesUseTheCallersFieldNames) {
  storage::ClientFields f = Valid();
  f.redirect_uris = {"https://ok.example/cb", "http://evil.example"};
  storage::ClientFields g = f;
  EXPECT_THAT(
      std::string(ValidateClientFields(f, FieldNaming::kCamelCase).message()),
      HasSubstr("redirectUris[1]"));
  EXPECT_THAT(
      std::string(ValidateClientFields(g, FieldNaming::kSnakeCase).message()),
      HasSubstr("redirect_uris[1]"));
}

TEST(ClientFieldsTest, NameIsOptionalOnlyForRegistration) {
  storage::ClientFields f = Valid();
  f.name = "";
  EXPECT_TRUE(ValidateClientFields(f, FieldNaming::kSnakeCase).ok());
  EXPECT_FALSE(ValidateClientFields(f, FieldNaming::kCamelCase).ok());
}

TEST(ClientFieldsTest, ListsAreDeduplicatedInOrder) {
  storage::ClientFields f = Valid();
  f.redirect_uris = {"https://b.example/cb", "https://a.example/cb",
                     "https://b.example/cb"};
  f.scopes = {"read", "write", "read"};
  f.grant_types = {"refresh_token", "authorization_code", "refresh_token"};
  ASSERT_TRUE(ValidateClientFields(f, FieldNaming::kCamelCase).ok());
  EXPECT_THAT(f.redirect_uris,
              ElementsAre("https://b.example/cb", "https://a.example/cb"));
  EXPECT_THAT(f.scopes, ElementsAre("read", "write"));
  EXPECT_THAT(f.grant_types,
              ElementsAre("refresh_token", "authorization_code"));
}

TEST(RegistrationFieldsTest, AppliesRfc7591Defaults) {
  RegistrationRequest r;
  r.redirect_uris = {"https://app.example.com/cb"};
  storage::ClientFields f = RegistrationFields(r);
  EXPECT_THAT(f.grant_types, ElementsAre("authorization_code"));
  EXPECT_THAT(f.response_types, ElementsAre("code"));
  EXPECT_EQ(f.application_type, "web");
  EXPECT_EQ(f.token_endpoint_auth_method, "client_secret_basic");
  EXPECT_TRUE(f.pkce_required);
  EXPECT_THAT(f.scopes, IsEmpty());
  EXPECT_TRUE(ValidateClientFields(f, FieldNaming::kSnakeCase).ok());
}

TEST(RegistrationFieldsTest, NoCodeResponseTypeWithoutAuthorizationCode) {
  RegistrationRequest r;
  r.redirect_uris = {"https://app.example.com/cb"};
  r.grant_types = {"client_credentials"};
  r.scope = "  read   write ";
  storage::ClientFields f = RegistrationFields(r);
  EXPECT_THAT(f.response_types, IsEmpty());
  EXPECT_THAT(f.scopes, ElementsAre("read", "write"));
  EXPECT_TRUE(ValidateClientFields(f, FieldNaming::kSnakeCase).ok());
}

}  // namespace
TEST(ClientFieldsTest, ApplicationTypeDecidesTheRedirectRules) {
  storage::ClientFields native = Valid();
  native.application_type = "native";
  native.redirect_uris = {"com.example.app:/cb", "http://127.0.0.1:4000/cb"};
  native.post_logout_redirect_uris = {"com.example.app:/logged-out"};
  EXPECT_TRUE(ValidateClientFields(native, FieldNaming::kSnakeCase).ok());

  storage::ClientFields web = Valid();
  web.redirect_uris = {"com.example.app:/cb"};
  absl::Status s = ValidateClientFields(web, FieldNaming::kSnakeCase);
  EXPECT_EQ(CodeOf(s), "invalid_redirect_uri") << s;
  EXPECT_THAT(std::string(s.message()), HasSubstr("redirect_uris[0]"));

  storage::ClientFields web_logout = Valid();
  web_logout.post_logout_redirect_uris = {"com.example.app:/bye"};
  s = ValidateClientFields(web_logout, FieldNaming::kCamelCase);
  EXPECT_EQ(CodeOf(s), "invalid_redirect_uri") << s;
  EXPECT_THAT(std::string(s.message()), HasSubstr("postLogoutRedirectUris[0]"));

  // client_uri is a web page even for a native client.
  storage::ClientFields native_info = native;
  native_info.client_uri = "com.example.app:/about";
  EXPECT_FALSE(ValidateClientFields(native_info, FieldNaming::kSnakeCase).ok());
}

}  // namespace lumo::service
