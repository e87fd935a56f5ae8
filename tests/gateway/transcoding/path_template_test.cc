#include "gateway/transcoding/path_template.h"

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "gtest/gtest.h"

namespace lumo::gateway {
namespace {

using Kind = PathTemplate::Segment::Kind;

TEST(PathTemplateParseTest, ParsesLiteralsAndVariables) {
  absl::StatusOr<PathTemplate> t = PathTemplate::Parse(
      "/t/{tenant_slug}/api/v1/admin/api-keys/{id=*}/rotate");
  ASSERT_TRUE(t.ok()) << t.status();
  const std::vector<PathTemplate::Segment> expected = {
      {Kind::kLiteral, "t"},     {Kind::kVariable, "tenant_slug"},
      {Kind::kLiteral, "api"},   {Kind::kLiteral, "v1"},
      {Kind::kLiteral, "admin"}, {Kind::kLiteral, "api-keys"},
      {Kind::kVariable, "id"},   {Kind::kLiteral, "rotate"}};
  EXPECT_EQ(t->segments(), expected);
  EXPECT_EQ(t->FieldPaths(), (std::vector<std::string>{"tenant_slug", "id"}));
  EXPECT_EQ(t->text(), "/t/{tenant_slug}/api/v1/admin/api-keys/{id=*}/rotate");
}

TEST(PathTemplateParseTest, ParsesRestAndDottedFields) {
  absl::StatusOr<PathTemplate> t =
      PathTemplate::Parse("/a/{parent.id}/b/{path=**}");
  ASSERT_TRUE(t.ok()) << t.status();
  const std::vector<PathTemplate::Segment> expected = {
      {Kind::kLiteral, "a"},
      {Kind::kVariable, "parent.id"},
      {Kind::kLiteral, "b"},
      {Kind::kRest, "path"}};
  EXPECT_EQ(t->segments(), expected);
}

TEST(PathTemplateParseTest, RejectsMalformedTemplates) {
  struct Case {
    const char* text;
    const char* message;
  };
  const Case cases[] = {
      {"", "path template \"\": must start with '/'"},
      {"a/b", "path template \"a/b\": must start with '/'"},
      {"/a//b",
       "path template \"/a//b\": empty segment (no '//' or trailing "
       "'/')"},
      {"/a/", "path template \"/a/\": empty segment (no '//' or trailing '/')"},
      {"/", "path template \"/\": empty segment (no '//' or trailing '/')"},
      {"/a/{x=**}/b",
       "path template \"/a/{x=**}/b\": '**' may only be the "
       "last segment"},
      {"/a/{x=foo/*}",
       "path template \"/a/{x=foo/*}\": a variable must be a "
       "whole segment '{field}'"},
      {"/a/{x=a*}",
       "path template \"/a/{x=a*}\": unsupported variable "
       "pattern 'a*' (only '*' and '**')"},
      {"/a/{}",
       "path template \"/a/{}\": a variable must be a whole segment "
       "'{field}'"},
      {"/a/{1x}",
       "path template \"/a/{1x}\": invalid field path '1x' in a "
       "variable"},
      {"/a/{x.}",
       "path template \"/a/{x.}\": invalid field path 'x.' in a "
       "variable"},
      {"/a/{x}/{x}", "path template \"/a/{x}/{x}\": field 'x' is bound twice"},
      {"/a/x{y}",
       "path template \"/a/x{y}\": character '{' is not allowed "
       "in a literal segment"},
      {"/a/*",
       "path template \"/a/*\": anonymous wildcards are not "
       "supported; name the field: '{field=*}'"},
      {"/a/**",
       "path template \"/a/**\": anonymous wildcards are not "
       "supported; name the field: '{field=*}'"},
      {"/a/..",
       "path template \"/a/..\": '.' and '..' segments are not "
       "allowed"},
      {"/a/%2F",
       "path template \"/a/%2F\": character '%' is not allowed in "
       "a literal segment"},
      {"/a/b?c",
       "path template \"/a/b?c\": character '?' is not allowed in "
       "a literal segment"},
  };
  for (const Case& c : cases) {
    absl::StatusOr<PathTemplate> t = PathTemplate::Parse(c.text);
    ASSERT_FALSE(t.ok()) << c.text;
    EXPECT_EQ(t.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_EQ(std::string(t.status().message()), c.message);
  }
}

TEST(SplitRequestPathTest, SplitsAndDecodes) {
  struct Case {
    const char* path;
    std::vector<std::string> segments;
  };
  const Case cases[] = {
      {"/", {}},
      {"/a", {"a"}},
      {"/a/b", {"a", "b"}},
      {"/a/b/", {"a", "b"}},  // one trailing slash is ignored
      {"/a%2Fb/c", {"a/b", "c"}},
      {"/a%2fb", {"a/b"}},
      {"/..%2f..%2fetc", {"../../etc"}},
      {"/%252e%252e", {"%2e%2e"}},  // decoded once only
      {"/caf%C3%A9", {"caf\xC3\xA9"}},
      {"/caf\xC3\xA9", {"caf\xC3\xA9"}},
      {"/a+b", {"a+b"}},  // '+' is literal in a path
      {"/%41pi-keys", {"Api-keys"}},
      {"/...", {"..."}},
      {"/.a", {".a"}},
  };
  for (const Case& c : cases) {
    absl::StatusOr<std::vector<std::string>> segments =
        SplitRequestPath(c.path);
    ASSERT_TRUE(segments.ok()) << c.path << ": " << segments.status();
    EXPECT_EQ(*segments, c.segments) << c.path;
  }
}

TEST(SplitRequestPathTest, RejectsMalformedPaths) {
  struct Case {
    absl::string_view path;
    const char* message;
  };
  const Case cases[] = {
      {"", "malformed path: must start with '/'"},
      {"a/b", "malformed path: must start with '/'"},
      {"//", "malformed path: empty segment"},
      {"/a//b", "malformed path: empty segment"},
      {"/a/b//", "malformed path: empty segment"},
      {"//a", "malformed path: empty segment"},
      {"/a/./b", "malformed path: '.' and '..' segments are not allowed"},
      {"/a/../b", "malformed path: '.' and '..' segments are not allowed"},
      {"/a/..", "malformed path: '.' and '..' segments are not allowed"},
      {"/a/%2e%2E", "malformed path: '.' and '..' segments are not allowed"},
      {"/a/%2e", "malformed path: '.' and '..' segments are not allowed"},
      {"/a%00b", "malformed path: control character in a segment"},
      {"/a%0a", "malformed path: control character in a segment"},
      {"/a%7F", "malformed path: control character in a segment"},
      {absl::string_view("/a\0b", 4),
       "malformed path: control character in a segment"},
      {"/a%", "malformed path: invalid percent-encoding"},
      {"/a%4", "malformed path: invalid percent-encoding"},
      {"/a%zz", "malformed path: invalid percent-encoding"},
      {"/a%%41", "malformed path: invalid percent-encoding"},
      {"/caf%C3", "malformed path: a segment is not valid UTF-8"},
      {"/%C0%AF", "malformed path: a segment is not valid UTF-8"},
      {"/%ED%A0%80", "malformed path: a segment is not valid UTF-8"},
      {"/\xFF", "malformed path: a segment is not valid UTF-8"},
      {"/a?b=c", "malformed path: '?' or '#' in the path"},
      {"/a#frag", "malformed path: '?' or '#' in the path"},
  };
  for (const Case& c : cases) {
    absl::StatusOr<std::vector<std::string>> segments =
        SplitRequestPath(c.path);
    ASSERT_FALSE(segments.ok()) << c.path;
    EXPECT_EQ(segments.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_EQ(std::string(segments.status().message()), c.message) << c.path;
  }
}

TEST(PathTemplateMatchTest, BindsVariables) {
  struct Case {
    const char* tmpl;
    const char* path;
    bool matches;
    Variables variables;
  };
  const Case cases[] = {
      {"/t/{tenant_slug}/api-keys/{id}",
       "/t/acme/api-keys/k1",
       true,
       {{"tenant_slug", "acme"}, {"id", "k1"}}},
      {"/t/{tenant_slug}/api-keys/{id}", "/t/acme/api-keys", false, {}},
      {"/t/{tenant_slug}/api-keys/{id}", "/t/acme/api-keys/k1/x", false, {}},
      {"/t/{tenant_slug}/api-keys/{id}", "/t/acme/API-keys/k1", false, {}},
      {"/t/{tenant_slug}/api-keys/{id}",
       "/t/acme/api%2Dkeys/k1",
       true,
       {{"tenant_slug", "acme"}, {"id", "k1"}}},
      {"/t/{tenant_slug}/api-keys/{id}",
       "/t/a%2Fb/api-keys/..%2f",
       true,
       {{"tenant_slug", "a/b"}, {"id", "../"}}},
      {"/f/{path=**}", "/f/a", true, {{"path", "a"}}},
      {"/f/{path=**}", "/f/a/b/c", true, {{"path", "a/b/c"}}},
      {"/f/{path=**}", "/f/a%2Fb/c", true, {{"path", "a/b/c"}}},
      {"/f/{path=**}", "/f", false, {}},  // ** needs at least one segment
      {"/f/{path=**}", "/f/", false, {}},
      {"/f/{a.b}", "/f/x", true, {{"a.b", "x"}}},
  };
  for (const Case& c : cases) {
    absl::StatusOr<PathTemplate> t = PathTemplate::Parse(c.tmpl);
    ASSERT_TRUE(t.ok()) << t.status();
    absl::StatusOr<std::vector<std::string>> segments =
        SplitRequestPath(c.path);
    ASSERT_TRUE(segments.ok()) << segments.status();
    Variables variables;
    EXPECT_EQ(t->Match(*segments, &variables), c.matches)
        << c.tmpl << " " << c.path;
    EXPECT_EQ(variables, c.variables) << c.tmpl << " " << c.path;
  }
}

TEST(PathTemplateShapeTest, SameShapeIgnoresVariableNames) {
  auto parse = [](absl::string_view text) {
    return *PathTemplate::Parse(text);
  };
  EXPECT_TRUE(parse("/a/{x}/b").SameShape(parse("/a/{y=*}/b")));
  EXPECT_TRUE(parse("/a/{x=**}").SameShape(parse("/a/{y=**}")));
  EXPECT_FALSE(parse("/a/{x}").SameShape(parse("/a/{x=**}")));
  EXPECT_FALSE(parse("/a/{x}").SameShape(parse("/a/b")));
  EXPECT_FALSE(parse("/a/c").SameShape(parse("/a/b")));
  EXPECT_FALSE(parse("/a/{x}").SameShape(parse("/a/{x}/b")));
}

TEST(PathTemplateShapeTest, PrecedenceLiteralThenVariableThenRest) {
  auto parse = [](absl::string_view text) {
    return *PathTemplate::Parse(text);
  };
  EXPECT_GT(PathTemplate::ComparePrecedence(parse("/a/b"), parse("/a/{x}")), 0);
  EXPECT_LT(
      PathTemplate::ComparePrecedence(parse("/a/{x=**}"), parse("/a/{x}")), 0);
  EXPECT_GT(
      PathTemplate::ComparePrecedence(parse("/a/{x}/c"), parse("/a/{x=**}")),
      0);
  // The leftmost difference decides.
  EXPECT_GT(
      PathTemplate::ComparePrecedence(parse("/a/b/{y}"), parse("/a/{x}/c")), 0);
  EXPECT_EQ(PathTemplate::ComparePrecedence(parse("/a/{x}"), parse("/a/{y}")),
            0);
}

}  // namespace
}  // namespace lumo::gateway
