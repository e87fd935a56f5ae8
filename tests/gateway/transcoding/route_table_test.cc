#include "gateway/transcoding/route_table.h"

#include <atomic>
#include <memory>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/string_view.h"
#include "google/api/annotations.pb.h"
#include "google/api/http.pb.h"
#include "google/protobuf/descriptor.h"
#include "google/protobuf/descriptor.pb.h"
#include "gtest/gtest.h"
#include "lumo/api/annotations.pb.h"
#include "lumo/auth/v1/auth.pb.h"
#include "lumo/keys/v1/keys.pb.h"
#include "lumo/ops/v1/ops.pb.h"
#include "tests/gateway/transcoding/transcoding_test.pb.h"

namespace lumo::gateway {
namespace {

using google::protobuf::DescriptorPool;
using google::protobuf::FieldDescriptor;
using google::protobuf::FileDescriptorProto;
using google::protobuf::MethodDescriptor;
using google::protobuf::ServiceDescriptor;

std::vector<const ServiceDescriptor*> RealServices() {
  return {
      lumo::keys::v1::ApiKey::descriptor()->file()->FindServiceByName(
          "KeyService"),
      lumo::auth::v1::VerifyApiKeyRequest::descriptor()
          ->file()
          ->FindServiceByName("AuthService"),
      lumo::ops::v1::Tenant::descriptor()->file()->FindServiceByName(
          "OperatorService"),
  };
}

const ServiceDescriptor* TestService() {
  return lumo::gateway::testing::AllTypes::descriptor()
      ->file()
      ->FindServiceByName("TestService");
}

// A URL for `route` with sample values in place of the variables, and the
// variables it should bind.
std::string SampleUrl(const Route& route, Variables* expected) {
  std::string url;
  size_t variable = 0;
  for (const PathTemplate::Segment& segment : route.path.segments()) {
    url.push_back('/');
    switch (segment.kind) {
      case PathTemplate::Segment::Kind::kLiteral:
        url.append(segment.text);
        break;
      case PathTemplate::Segment::Kind::kVariable: {
        const FieldDescriptor* leaf = route.variable_fields[variable++].back();
        const std::string value = leaf->type() == FieldDescriptor::TYPE_STRING
                                      ? absl::StrCat("sample-", leaf->name())
                                      : "42";
        url.append(value);
        expected->emplace_back(segment.text, value);
        break;
      }
      case PathTemplate::Segment::Kind::kRest:
        ++variable;
        url.append("dir/file.txt");
        expected->emplace_back(segment.text, "dir/file.txt");
        break;
    }
  }
  return url;
}

// For every annotated method: a route exists, and its sample URL resolves
// back to that method with the sample variables.
void CheckEveryAnnotatedMethod(
    const std::vector<const ServiceDescriptor*>& services) {
  absl::StatusOr<RouteTable> table = RouteTable::Build(services);
  ASSERT_TRUE(table.ok()) << table.status();
  size_t annotated = 0;
  for (const ServiceDescriptor* service : services) {
    for (int i = 0; i < service->method_count(); ++i) {
      const MethodDescriptor* method = service->method(i);
      const Route* route = nullptr;
      for (const Route& r : table->routes()) {
        if (r.method == method) route = &r;
      }
      if (!method->options().HasExtension(google::api::http)) {
        EXPECT_EQ(route, nullptr) << method->full_name();
        continue;
      }
      ++annotated;
      ASSERT_NE(route, nullptr) << method->full_name();
      Variables expected;
      const std::string url = SampleUrl(*route, &expected);
      MatchResult match = table->Match(route->verb, url);
      ASSERT_EQ(match.outcome, MatchOutcome::kMatched)
          << method->full_name() << " " << url;
      EXPECT_EQ(match.route->method, method) << url;
      EXPECT_EQ(match.variables, expected) << url;
    }
  }
  EXPECT_EQ(table->routes().size(), annotated);
  EXPECT_GT(annotated, 0u);
}

TEST(RouteTableTest, EveryAnnotatedRealMethodResolves) {
  CheckEveryAnnotatedMethod(RealServices());
}

TEST(RouteTableTest, EveryAnnotatedTestMethodResolves) {
  CheckEveryAnnotatedMethod({TestService()});
}

TEST(RouteTableTest, ApiKeyRoutesOfTheProductSpec) {
  absl::StatusOr<RouteTable> table = RouteTable::Build(RealServices());
  ASSERT_TRUE(table.ok()) << table.status();
  struct Expected {
    const char* verb;
    const char* path;
    const char* method;
    const char* body;
    int status;
    const char* message;
  };
  const std::string base = "/t/{tenant_slug}/api/v1/admin/api-keys";
  const std::string created =
      "API key created. Copy it now: it will not be shown again.";
  const std::vector<Expected> expected = {
      {"GET", "", "ListApiKeys", "", 200, ""},
      {"POST", "", "CreateApiKey", "*", 201, created.c_str()},
      {"GET", "/{id}", "GetApiKey", "", 200, ""},
      {"POST", "/{id}/rotate", "RotateApiKey", "*", 200, ""},
      {"POST", "/{id}/revoke", "RevokeApiKey", "*", 200, ""},
      {"PATCH", "/{id}", "UpdateApiKey", "*", 200, ""},
      {"POST", "/{id}/disable", "DisableApiKey", "*", 200, ""},
      {"POST", "/{id}/enable", "EnableApiKey", "*", 200, ""},
      {"GET", "/{id}/credits", "GetApiKeyCredits", "", 200, ""},
      {"POST", "/{id}/credits", "UpdateApiKeyCredits", "*", 200, ""},
      {"DELETE", "/{id}", "DeleteApiKey", "", 204, ""},
  };
  std::vector<std::string> actual;
  for (const Route& route : table->routes()) {
    actual.push_back(
        absl::StrCat(route.verb, " ", route.path.text(), " ",
                     route.method->full_name(), " body=", route.body, " ",
                     route.success_status, " ", route.success_message));
  }
  std::vector<std::string> wanted;
  for (const Expected& e : expected) {
    wanted.push_back(absl::StrCat(
        e.verb, " ", base, e.path, " lumo.keys.v1.KeyService.", e.method,
        " body=", e.body, " ", e.status, " ", e.message));
  }
  // The limits shared by the keys of one identity (docs/limits.md).
  const std::string identities =
      "/t/{tenant_slug}/api/v1/admin/identity-limits";
  for (const Expected& e :
       std::vector<Expected>{{"GET", "", "GetIdentityLimits", "", 200, ""},
                             {"PUT", "", "SetIdentityLimits", "*", 200, ""}}) {
    wanted.push_back(absl::StrCat(
        e.verb, " ", identities, e.path, " lumo.keys.v1.KeyService.", e.method,
        " body=", e.body, " ", e.status, " ", e.message));
  }
  EXPECT_EQ(actual, wanted);
}

TEST(RouteTableTest, MatchesApiKeyUrls) {
  absl::StatusOr<RouteTable> table = RouteTable::Build(RealServices());
  ASSERT_TRUE(table.ok()) << table.status();
  struct Case {
    const char* verb;
    const char* path;
    MatchOutcome outcome;
    const char* method;  // for kMatched
    Variables variables;
    std::vector<std::string> allowed;
    const char* error;
  };
  const Case cases[] = {
      {"GET",
       "/t/acme-corp/api/v1/admin/api-keys",
       MatchOutcome::kMatched,
       "ListApiKeys",
       {{"tenant_slug", "acme-corp"}},
       {},
       ""},
      {"GET",
       "/t/acme-corp/api/v1/admin/api-keys/",
       MatchOutcome::kMatched,
       "ListApiKeys",
       {{"tenant_slug", "acme-corp"}},
       {},
       ""},
      {"POST",
       "/t/acme-corp/api/v1/admin/api-keys",
       MatchOutcome::kMatched,
       "CreateApiKey",
       {{"tenant_slug", "acme-corp"}},
       {},
       ""},
      {"GET",
       "/t/acme-corp/api/v1/admin/api-keys/AbC123xyz789",
       MatchOutcome::kMatched,
       "GetApiKey",
       {{"tenant_slug", "acme-corp"}, {"id", "AbC123xyz789"}},
       {},
       ""},
      {"POST",
       "/t/acme-corp/api/v1/admin/api-keys/k1/rotate",
       MatchOutcome::kMatched,
       "RotateApiKey",
       {{"tenant_slug", "acme-corp"}, {"id", "k1"}},
       {},
       ""},
      {"POST",
       "/t/acme-corp/api/v1/admin/api-keys/k1/revoke",
       MatchOutcome::kMatched,
       "RevokeApiKey",
       {{"tenant_slug", "acme-corp"}, {"id", "k1"}},
       {},
       ""},
      {"DELETE",
       "/t/acme-corp/api/v1/admin/api-keys/k1",
       MatchOutcome::kMatched,
       "DeleteApiKey",
       {{"tenant_slug", "acme-corp"}, {"id", "k1"}},
       {},
       ""},
      // %2F stays inside the id: no route with one more segment is reached.
      {"GET",
       "/t/acme/api/v1/admin/api-keys/k1%2Frotate",
       MatchOutcome::kMatched,
       "GetApiKey",
       {{"tenant_slug", "acme"}, {"id", "k1/rotate"}},
       {},
       ""},
      {"GET",
       "/t/acme/api/v1/admin/api-keys/..%2f..%2fusers",
       MatchOutcome::kMatched,
       "GetApiKey",
       {{"tenant_slug", "acme"}, {"id", "../../users"}},
       {},
       ""},
      {"POST",
       "/t/acme/api/v1/admin/api-keys/k1/rotate%2F",
       MatchOutcome::kNotFound,
       "",
       {},
       {},
       ""},
      {"GET",
       "/t/acme/api/v1/admin/api-keys/k1/rotate",
       MatchOutcome::kMethodNotAllowed,
       "",
       {},
       {"POST"},
       ""},
      {"PUT",
       "/t/acme/api/v1/admin/api-keys",
       MatchOutcome::kMethodNotAllowed,
       "",
       {},
       {"GET", "POST"},
       ""},
      {"PATCH",
       "/t/acme/api/v1/admin/api-keys/k1",
       MatchOutcome::kMatched,
       "UpdateApiKey",
       {{"tenant_slug", "acme"}, {"id", "k1"}},
       {},
       ""},
      {"PUT",
       "/t/acme/api/v1/admin/api-keys/k1",
       MatchOutcome::kMethodNotAllowed,
       "",
       {},
       {"DELETE", "GET", "PATCH"},
       ""},
      {"get",
       "/t/acme/api/v1/admin/api-keys/k1",
       MatchOutcome::kMethodNotAllowed,
       "",
       {},
       {"DELETE", "GET", "PATCH"},
       ""},
      {"GET",
       "/t/acme/api/v1/admin/users",
       MatchOutcome::kNotFound,
       "",
       {},
       {},
       ""},
      {"GET",
       "/t/acme/api/v1/admin/api-keys/k1/rotate/x",
       MatchOutcome::kNotFound,
       "",
       {},
       {},
       ""},
      {"GET", "/", MatchOutcome::kNotFound, "", {}, {}, ""},
      {"GET",
       "/T/acme/api/v1/admin/api-keys",
       MatchOutcome::kNotFound,
       "",
       {},
       {},
       ""},
      {"GET",
       "/t/acme/api/v1/admin/api-keys/k1/../../users",
       MatchOutcome::kMalformedPath,
       "",
       {},
       {},
       "malformed path: '.' and '..' segments are not allowed"},
      {"GET",
       "/t/acme/api/v1/admin/api-keys/%2e%2e",
       MatchOutcome::kMalformedPath,
       "",
       {},
       {},
       "malformed path: '.' and '..' segments are not allowed"},
      {"GET",
       "/t/acme/api/v1/admin/api-keys/k1%00",
       MatchOutcome::kMalformedPath,
       "",
       {},
       {},
       "malformed path: control character in a segment"},
      {"GET",
       "/t/acme/api/v1/admin//api-keys",
       MatchOutcome::kMalformedPath,
       "",
       {},
       {},
       "malformed path: empty segment"},
      {"GET",
       "/t/acme/api/v1/admin/api-keys//",
       MatchOutcome::kMalformedPath,
       "",
       {},
       {},
       "malformed path: empty segment"},
      {"GET",
       "/t/%FF/api/v1/admin/api-keys",
       MatchOutcome::kMalformedPath,
       "",
       {},
       {},
       "malformed path: a segment is not valid UTF-8"},
      // Decoded once: %252e is the id "%2e", not "." and not "..".
      {"GET",
       "/t/acme/api/v1/admin/api-keys/%252e%252e",
       MatchOutcome::kMatched,
       "GetApiKey",
       {{"tenant_slug", "acme"}, {"id", "%2e%2e"}},
       {},
       ""},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(absl::StrCat(c.verb, " ", c.path));
    MatchResult match = table->Match(c.verb, c.path);
    EXPECT_EQ(match.outcome, c.outcome);
    EXPECT_EQ(match.variables, c.variables);
    EXPECT_EQ(match.allowed_verbs, c.allowed);
    EXPECT_EQ(match.error, c.error);
    if (c.outcome == MatchOutcome::kMatched) {
      ASSERT_NE(match.route, nullptr);
      EXPECT_EQ(match.route->method->full_name(),
                absl::StrCat("lumo.keys.v1.KeyService.", c.method));
    } else {
      EXPECT_EQ(match.route, nullptr);
    }
  }
}

TEST(RouteTableTest, LiteralsTakePrecedenceOverVariables) {
  absl::StatusOr<RouteTable> table = RouteTable::Build({TestService()});
  ASSERT_TRUE(table.ok()) << table.status();
  struct Case {
    const char* verb;
    const char* path;
    MatchOutcome outcome;
    const char* method;
    Variables variables;
    std::vector<std::string> allowed;
  };
  const Case cases[] = {
      {"GET",
       "/items/special",
       MatchOutcome::kMatched,
       "GetSpecialItem",
       {},
       {}},
      {"GET",
       "/items/specials",
       MatchOutcome::kMatched,
       "GetItem",
       {{"item_id", "specials"}},
       {}},
      {"GET",
       "/items/42",
       MatchOutcome::kMatched,
       "GetItem",
       {{"item_id", "42"}},
       {}},
      {"DELETE",
       "/items/special",
       MatchOutcome::kMatched,
       "DeleteItem",
       {{"item_id", "special"}},
       {}},
      {"POST",
       "/items/special",
       MatchOutcome::kMethodNotAllowed,
       "",
       {},
       {"DELETE", "GET"}},
      {"GET",
       "/t/a/files/x/meta",
       MatchOutcome::kMatched,
       "GetFileMeta",
       {{"tenant_slug", "a"}, {"path", "x"}},
       {}},
      {"GET",
       "/t/a/files/x/meta/",
       MatchOutcome::kMatched,
       "GetFileMeta",
       {{"tenant_slug", "a"}, {"path", "x"}},
       {}},
      {"GET",
       "/t/a/files/x/meta/y",
       MatchOutcome::kMatched,
       "GetFile",
       {{"tenant_slug", "a"}, {"path", "x/meta/y"}},
       {}},
      {"GET",
       "/t/a/files/x",
       MatchOutcome::kMatched,
       "GetFile",
       {{"tenant_slug", "a"}, {"path", "x"}},
       {}},
      {"GET",
       "/t/a/files/x/y%2Fz",
       MatchOutcome::kMatched,
       "GetFile",
       {{"tenant_slug", "a"}, {"path", "x/y/z"}},
       {}},
      {"GET", "/t/a/files", MatchOutcome::kNotFound, "", {}, {}},
      {"GET",
       "/items/7/children/bob/v/3",
       MatchOutcome::kMatched,
       "GetChild",
       {{"parent.id", "7"}, {"name", "bob"}, {"version", "3"}},
       {}},
      {"POST",
       "/t/a/echo",
       MatchOutcome::kMatched,
       "EchoPost",
       {{"tenant_slug", "a"}},
       {}},
      {"DELETE",
       "/t/a/echo",
       MatchOutcome::kMethodNotAllowed,
       "",
       {},
       {"GET", "POST"}},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(absl::StrCat(c.verb, " ", c.path));
    MatchResult match = table->Match(c.verb, c.path);
    EXPECT_EQ(match.outcome, c.outcome);
    EXPECT_EQ(match.variables, c.variables);
    EXPECT_EQ(match.allowed_verbs, c.allowed);
    if (c.outcome == MatchOutcome::kMatched) {
      ASSERT_NE(match.route, nullptr);
      EXPECT_EQ(match.route->method->name(), c.method);
    }
  }
}

TEST(RouteTableTest, RouteDetailsFromTheAnnotation) {
  absl::StatusOr<RouteTable> table = RouteTable::Build({TestService()});
  ASSERT_TRUE(table.ok()) << table.status();
  MatchResult match = table->Match("PATCH", "/t/a/settings");
  ASSERT_EQ(match.outcome, MatchOutcome::kMatched);
  EXPECT_EQ(match.route->body, "settings");
  ASSERT_NE(match.route->body_field, nullptr);
  EXPECT_EQ(match.route->body_field->full_name(),
            "lumo.gateway.testing.UpdateSettingsRequest.settings");
  EXPECT_EQ(match.route->success_status, 200);

  match = table->Match("DELETE", "/items/1");
  ASSERT_EQ(match.outcome, MatchOutcome::kMatched);
  EXPECT_EQ(match.route->success_status, 204);
  EXPECT_EQ(match.route->body_field, nullptr);

  match = table->Match("GET", "/items/7/children/bob/v/3");
  ASSERT_EQ(match.outcome, MatchOutcome::kMatched);
  ASSERT_EQ(match.route->variable_fields.size(), 3u);
  EXPECT_EQ(FieldPathName(match.route->variable_fields[0]), "parent.id");
  EXPECT_EQ(FieldPathName(match.route->variable_fields[2]), "version");
}

TEST(RouteTableTest, ConcurrentMatchesAgree) {
  absl::StatusOr<RouteTable> table = RouteTable::Build(RealServices());
  ASSERT_TRUE(table.ok()) << table.status();
  const RouteTable copy = *table;  // copies match on their own routes
  std::atomic<int> mismatches{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      const RouteTable& mine = t % 2 == 0 ? *table : copy;
      for (int i = 0; i < 2000; ++i) {
        const std::string id = absl::StrCat("k", t, "-", i);
        MatchResult match = mine.Match(
            "POST",
            absl::StrCat("/t/acme/api/v1/admin/api-keys/", id, "/rotate"));
        if (match.outcome != MatchOutcome::kMatched ||
            match.route->method->name() != "RotateApiKey" ||
            match.variables.back().second != id ||
            match.route < mine.routes().data() ||
            match.route >= mine.routes().data() + mine.routes().size()) {
          ++mismatches;
        }
      }
    });
  }
  for (std::thread& thread : threads) thread.join();
  EXPECT_EQ(mismatches.load(), 0);
}

TEST(RouteTableTest, DuplicateServicesAreIgnored) {
  std::vector<const ServiceDescriptor*> services = RealServices();
  services.push_back(services[0]);
  absl::StatusOr<RouteTable> table = RouteTable::Build(services);
  ASSERT_TRUE(table.ok()) << table.status();
  // KeyService's routes once: 11 under api-keys, 2 under identity-limits.
  EXPECT_EQ(table->routes().size(), 13u);
}

// Builds services in a private pool from a FileDescriptorProto, with the
// annotation set through the generated extension identifier.
class AnnotatedPool {
 public:
  AnnotatedPool() {
    file_.set_name("lumo/gateway/conflict_test.proto");
    file_.set_package("ct");
    file_.set_syntax("proto3");
    auto* sub = file_.add_message_type();
    sub->set_name("Sub");
    AddField(sub, "x", 1, FieldDescriptorProto::TYPE_STRING);
    auto* req = file_.add_message_type();
    req->set_name("Req");
    AddField(req, "tenant_slug", 1, FieldDescriptorProto::TYPE_STRING);
    AddField(req, "id", 2, FieldDescriptorProto::TYPE_STRING);
    AddField(req, "name", 3, FieldDescriptorProto::TYPE_STRING);
    AddField(req, "tags", 4, FieldDescriptorProto::TYPE_STRING)
        ->set_label(FieldDescriptorProto::LABEL_REPEATED);
    auto* sub_field =
        AddField(req, "sub", 5, FieldDescriptorProto::TYPE_MESSAGE);
    sub_field->set_type_name(".ct.Sub");
    AddField(req, "flag", 6, FieldDescriptorProto::TYPE_BOOL);
    AddField(req, "d", 7, FieldDescriptorProto::TYPE_DOUBLE);
    AddField(req, "n", 8, FieldDescriptorProto::TYPE_INT64);
    file_.add_service()->set_name("S");
  }

  using FieldDescriptorProto = google::protobuf::FieldDescriptorProto;

  static FieldDescriptorProto* AddField(google::protobuf::DescriptorProto* m,
                                        const char* name, int number,
                                        FieldDescriptorProto::Type type) {
    FieldDescriptorProto* field = m->add_field();
    field->set_name(name);
    field->set_number(number);
    field->set_type(type);
    field->set_label(FieldDescriptorProto::LABEL_OPTIONAL);
    return field;
  }

  google::protobuf::MethodDescriptorProto* AddMethod(
      const char* name, const google::api::HttpRule& rule,
      const lumo::api::RestRule& rest = lumo::api::RestRule()) {
    auto* method = file_.mutable_service(0)->add_method();
    method->set_name(name);
    method->set_input_type(".ct.Req");
    method->set_output_type(".ct.Sub");
    if (rule.ByteSizeLong() > 0) {
      *method->mutable_options()->MutableExtension(google::api::http) = rule;
    }
    if (rest.ByteSizeLong() > 0) {
      *method->mutable_options()->MutableExtension(lumo::api::rest) = rest;
    }
    return method;
  }

  const ServiceDescriptor* Build() {
    const google::protobuf::FileDescriptor* file = pool_.BuildFile(file_);
    return file == nullptr ? nullptr : file->FindServiceByName("S");
  }

 private:
  FileDescriptorProto file_;
  DescriptorPool pool_;
};

google::api::HttpRule Get(const char* path) {
  google::api::HttpRule rule;
  rule.set_get(path);
  return rule;
}

google::api::HttpRule Post(const char* path, const char* body = "") {
  google::api::HttpRule rule;
  rule.set_post(path);
  rule.set_body(body);
  return rule;
}

TEST(RouteTableBuildTest, ExtensionSurvivesTheTestPool) {
  AnnotatedPool pool;
  pool.AddMethod("A", Get("/t/{tenant_slug}/x/{id}"));
  const ServiceDescriptor* service = pool.Build();
  ASSERT_NE(service, nullptr);
  absl::StatusOr<RouteTable> table = RouteTable::Build({service});
  ASSERT_TRUE(table.ok()) << table.status();
  ASSERT_EQ(table->routes().size(), 1u);
  EXPECT_EQ(table->routes()[0].method->full_name(), "ct.S.A");
}

TEST(RouteTableBuildTest, DetectsConflicts) {
  struct Case {
    google::api::HttpRule a;
    google::api::HttpRule b;
    const char* message;  // "" when the two may coexist
  };
  const Case cases[] = {
      {Get("/t/{tenant_slug}/x/{id}"), Get("/t/{tenant_slug}/x/{name}"),
       "conflicting routes: ct.S.A (GET /t/{tenant_slug}/x/{id}) and ct.S.B "
       "(GET /t/{tenant_slug}/x/{name}) match the same paths"},
      {Get("/x/{id}"), Get("/x/{id=*}"),
       "conflicting routes: ct.S.A (GET /x/{id}) and ct.S.B (GET /x/{id=*}) "
       "match the same paths"},
      {Get("/x/{id=**}"), Get("/x/{name=**}"),
       "conflicting routes: ct.S.A (GET /x/{id=**}) and ct.S.B (GET "
       "/x/{name=**}) match the same paths"},
      {Get("/x/y"), Get("/x/y"),
       "conflicting routes: ct.S.A (GET /x/y) and ct.S.B (GET /x/y) match the "
       "same paths"},
      {Get("/x/{id}"), Post("/x/{name}"), ""},
      {Get("/x/{id}"), Get("/x/{id=**}"), ""},
      {Get("/x/y"), Get("/x/{id}"), ""},
      {Get("/x/{id}/y"), Get("/x/y/{id}"), ""},
      {Get("/x/{id}"), Get("/x/{id}/y"), ""},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.message);
    AnnotatedPool pool;
    pool.AddMethod("A", c.a);
    pool.AddMethod("B", c.b);
    const ServiceDescriptor* service = pool.Build();
    ASSERT_NE(service, nullptr);
    absl::StatusOr<RouteTable> table = RouteTable::Build({service});
    if (*c.message == '\0') {
      EXPECT_TRUE(table.ok()) << table.status();
    } else {
      ASSERT_FALSE(table.ok());
      EXPECT_EQ(table.status().code(), absl::StatusCode::kFailedPrecondition);
      EXPECT_EQ(std::string(table.status().message()), c.message);
    }
  }
}

TEST(RouteTableBuildTest, DetectsConflictsAcrossServices) {
  AnnotatedPool pool;
  pool.AddMethod("A", Get("/t/{tenant_slug}/api/v1/admin/api-keys/{name}"));
  const ServiceDescriptor* service = pool.Build();
  ASSERT_NE(service, nullptr);
  std::vector<const ServiceDescriptor*> services = RealServices();
  services.push_back(service);
  absl::StatusOr<RouteTable> table = RouteTable::Build(services);
  ASSERT_FALSE(table.ok());
  EXPECT_EQ(table.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(std::string(table.status().message()),
            "conflicting routes: lumo.keys.v1.KeyService.GetApiKey (GET "
            "/t/{tenant_slug}/api/v1/admin/api-keys/{id}) and ct.S.A (GET "
            "/t/{tenant_slug}/api/v1/admin/api-keys/{name}) match the same "
            "paths");
}

TEST(RouteTableBuildTest, RejectsInvalidAnnotations) {
  google::api::HttpRule no_verb;
  no_verb.set_body("*");
  lumo::api::RestRule status_302;
  status_302.set_success_status(302);
  lumo::api::RestRule silent;
  silent.set_success_status(204);
  silent.set_success_message("Deleted.");
  google::api::HttpRule custom;
  custom.mutable_custom()->set_kind("HEAD");
  custom.mutable_custom()->set_path("/x");
  google::api::HttpRule two_bindings = Get("/x");
  *two_bindings.add_additional_bindings() = Get("/y");
  google::api::HttpRule response_body = Get("/x");
  response_body.set_response_body("sub");
  struct Case {
    google::api::HttpRule rule;
    lumo::api::RestRule rest;
    const char* message;
  };
  const Case cases[] = {
      {no_verb, {}, "ct.S.A: (google.api.http) sets no verb"},
      {custom, {}, "ct.S.A: (google.api.http) custom verbs are not served"},
      {two_bindings,
       {},
       "ct.S.A: (google.api.http) additional_bindings are not served"},
      {response_body,
       {},
       "ct.S.A: (google.api.http) response_body is not served"},
      {{}, silent, "ct.S.A: (lumo.api.rest) without a (google.api.http) route"},
      {Get(""), {}, "ct.S.A: path template \"\": must start with '/'"},
      {Get("x/{id}"),
       {},
       "ct.S.A: path template \"x/{id}\": must start with '/'"},
      {Get("/x/{nope}"),
       {},
       "ct.S.A: path variable 'nope': no field 'nope' in ct.Req"},
      {Get("/x/{sub.nope}"),
       {},
       "ct.S.A: path variable 'sub.nope': no field 'nope' in ct.Sub"},
      {Get("/x/{id.y}"),
       {},
       "ct.S.A: path variable 'id.y': 'id' is not a message"},
      {Get("/x/{tags}"),
       {},
       "ct.S.A: path variable 'tags' must be a singular string or integer "
       "field"},
      {Get("/x/{flag}"),
       {},
       "ct.S.A: path variable 'flag' must be a singular string or integer "
       "field"},
      {Get("/x/{d}"),
       {},
       "ct.S.A: path variable 'd' must be a singular string or integer "
       "field"},
      {Get("/x/{sub}"),
       {},
       "ct.S.A: path variable 'sub' must be a singular string or integer "
       "field"},
      {Get("/x/{n=**}"),
       {},
       "ct.S.A: '**' variable 'n' must be a string field"},
      {Post("/x", "nope"),
       {},
       "ct.S.A: body field 'nope' does not exist in ct.Req"},
      {Post("/x", "name"),
       {},
       "ct.S.A: body field 'name' must be a singular message field"},
      {Post("/x", "sub.x"),
       {},
       "ct.S.A: body field 'sub.x' does not exist in ct.Req"},
      {Post("/x", "*"), status_302,
       "ct.S.A: success_status must be 0 or 200-299"},
      {Get("/x"), silent,
       "ct.S.A: a 204 route cannot have a success_message (no body)"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.message);
    AnnotatedPool pool;
    pool.AddMethod("A", c.rule, c.rest);
    const ServiceDescriptor* service = pool.Build();
    ASSERT_NE(service, nullptr);
    absl::StatusOr<RouteTable> table = RouteTable::Build({service});
    ASSERT_FALSE(table.ok());
    EXPECT_EQ(table.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_EQ(std::string(table.status().message()), c.message);
  }
}

TEST(RouteTableBuildTest, RejectsStreamingMethodsOtherThanHttpBodyStreams) {
  {
    AnnotatedPool pool;
    pool.AddMethod("A", Get("/x"))->set_server_streaming(true);
    const ServiceDescriptor* service = pool.Build();
    ASSERT_NE(service, nullptr);
    absl::StatusOr<RouteTable> table = RouteTable::Build({service});
    ASSERT_FALSE(table.ok());
    EXPECT_EQ(std::string(table.status().message()),
              "ct.S.A: a server-streaming route must stream lumo.api.HttpBody"
              " (its messages' data, concatenated, are the body)");
  }
  {
    AnnotatedPool pool;
    pool.AddMethod("A", Get("/x"))->set_client_streaming(true);
    const ServiceDescriptor* service = pool.Build();
    ASSERT_NE(service, nullptr);
    absl::StatusOr<RouteTable> table = RouteTable::Build({service});
    ASSERT_FALSE(table.ok());
    EXPECT_EQ(std::string(table.status().message()),
              "ct.S.A: client-streaming methods cannot have an HTTP route");
  }
}

TEST(RouteTableBuildTest, SubFieldVariablesAreAccepted) {
  AnnotatedPool pool;
  pool.AddMethod("A", Get("/x/{sub.x}/{n}"));
  const ServiceDescriptor* service = pool.Build();
  ASSERT_NE(service, nullptr);
  absl::StatusOr<RouteTable> table = RouteTable::Build({service});
  ASSERT_TRUE(table.ok()) << table.status();
  MatchResult match = table->Match("GET", "/x/a/5");
  ASSERT_EQ(match.outcome, MatchOutcome::kMatched);
  EXPECT_EQ(match.variables, (Variables{{"sub.x", "a"}, {"n", "5"}}));
}

}  // namespace
}  // namespace lumo::gateway
