#include "gateway/transcoding/json_render.h"

#include <cmath>
#include <cstdint>
#include <limits>
#include <string>
#include <vector>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "gateway/transcoding/route_table.h"
#include "google/protobuf/empty.pb.h"
#include "google/protobuf/timestamp.pb.h"
#include "gtest/gtest.h"
#include "lumo/keys/v1/keys.pb.h"
#include "tests/gateway/transcoding/transcoding_test.pb.h"

namespace lumo::gateway {
namespace {

using lumo::gateway::testing::AllTypes;
using lumo::gateway::testing::Inner;
using lumo::keys::v1::ApiKey;

// Renders only the fields named (JSON names) by omitting all others.
std::string Only(const google::protobuf::Message& message,
                 const std::vector<std::string>& json_names) {
  RenderOptions options;
  const google::protobuf::Descriptor* descriptor = message.GetDescriptor();
  for (int i = 0; i < descriptor->field_count(); ++i) {
    const google::protobuf::FieldDescriptor* field = descriptor->field(i);
    bool keep = false;
    for (const std::string& name : json_names)
      keep |= field->json_name() == name;
    if (!keep) options.omit_fields.insert(field->full_name());
  }
  return RenderJson(message, options);
}

std::string Quoted(absl::string_view s) {
  std::string out;
  AppendJsonString(s, &out);
  return out;
}

TEST(JsonStringTest, EscapesPerRfc8259) {
  struct Case {
    std::string in;
    std::string out;
  };
  const Case cases[] = {
      {"", "\"\""},
      {"plain", "\"plain\""},
      {"a\"b\\c/d", "\"a\\\"b\\\\c/d\""},
      {"\n\r\t\b\f", "\"\\u000a\\u000d\\u0009\\u0008\\u000c\""},
      {std::string("\0\x01\x1f\x7f", 4), "\"\\u0000\\u0001\\u001f\\u007f\""},
      {"caf\xC3\xA9 \xE2\x82\xAC \xF0\x9F\x98\x80",
       "\"caf\xC3\xA9 \xE2\x82\xAC \xF0\x9F\x98\x80\""},
      {"</script>", "\"</script>\""},
      // Each maximal ill-formed subsequence becomes one U+FFFD.
      {"a\xFF"
       "b",
       "\"a\xEF\xBF\xBD"
       "b\""},
      {"\xE2\x82", "\"\xEF\xBF\xBD\""},
      {"\xE2\x82x", "\"\xEF\xBF\xBDx\""},
      {"\xF0\x9F\x98", "\"\xEF\xBF\xBD\""},
      {"\xC0\xAF", "\"\xEF\xBF\xBD\xEF\xBF\xBD\""},
      {"\xED\xA0\x80", "\"\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD\""},
      {"\xF4\x90\x80\x80",
       "\"\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD\""},
      {"\x80\x80", "\"\xEF\xBF\xBD\xEF\xBF\xBD\""},
  };
  for (const Case& c : cases) EXPECT_EQ(Quoted(c.in), c.out);
}

TEST(JsonStringTest, QuoteForMessageTruncatesAtCharacterBoundaries) {
  EXPECT_EQ(QuoteForMessage("short"), "\"short\"");
  EXPECT_EQ(QuoteForMessage(std::string(64, 'a')),
            absl::StrCat("\"", std::string(64, 'a'), "\""));
  EXPECT_EQ(QuoteForMessage(std::string(65, 'a')),
            absl::StrCat("\"", std::string(64, 'a'), "...\""));
  // "aé" cut after 2 bytes would split the é: cut before it.
  EXPECT_EQ(QuoteForMessage("a\xC3\xA9z", 2), "\"a...\"");
  EXPECT_EQ(QuoteForMessage("a\nb", 10), "\"a\\u000ab\"");
}

TEST(JsonRenderTest, ApiKeyWithNullsForUnsetMessages) {
  ApiKey key;
  key.set_id("AbC123xyz789");
  key.set_name("CI \"bot\"");
  key.set_prefix("lmk_AbC123xyz789");
  key.add_scopes("admin:read");
  key.add_scopes("admin:write");
  key.set_status("active");
  key.mutable_created_at()->set_seconds(1795778553);
  key.mutable_created_at()->set_nanos(123456000);
  key.mutable_created_by()->set_type("user");
  key.mutable_created_by()->set_id("u1");
  key.mutable_expires_at()->set_seconds(1798859045);
  key.add_allowed_cidrs("10.0.0.0/8");
  key.set_version(2);
  EXPECT_EQ(RenderJson(key),
            "{\"id\":\"AbC123xyz789\",\"name\":\"CI \\\"bot\\\"\","
            "\"prefix\":\"lmk_AbC123xyz789\","
            "\"scopes\":[\"admin:read\",\"admin:write\"],\"status\":\"active\","
            "\"createdAt\":\"2026-11-27T11:22:33.123456Z\","
            "\"createdBy\":{\"type\":\"user\",\"id\":\"u1\"},"
            "\"lastUsedAt\":null,\"expiresAt\":\"2027-01-02T03:04:05Z\","
            "\"rotatedAt\":null,\"revokedAt\":null,"
            "\"allowedCidrs\":[\"10.0.0.0/8\"],\"rateLimitPerMinute\":0,"
            "\"version\":2,\"key\":\"\",\"previousSecretValidUntil\":null,"
            "\"externalId\":\"\",\"metadata\":{},\"disabledAt\":null,\"state\":"
            "null,\"rateLimits\":[],\"decoy\":null,\"credits\":null,"
            "\"previousSecretUsers\":[]}");
}

TEST(JsonRenderTest, OmitOptions) {
  ApiKey key;
  key.set_id("k1");
  RenderOptions options;
  options.omit_fields = {"lumo.keys.v1.ApiKey.version",
                         "lumo.keys.v1.ApiKey.previous_secret_valid_until"};
  options.omit_fields_when_unset = {
      "lumo.keys.v1.ApiKey.key", "lumo.keys.v1.ApiKey.scopes",
      "lumo.keys.v1.ApiKey.rotated_at", "lumo.keys.v1.ApiKey.decoy",
      "lumo.keys.v1.ApiKey.previous_secret_users"};
  EXPECT_EQ(
      RenderJson(key, options),
      "{\"id\":\"k1\",\"name\":\"\",\"prefix\":\"\",\"status\":\"\","
      "\"createdAt\":null,\"createdBy\":null,\"lastUsedAt\":null,"
      "\"expiresAt\":null,\"revokedAt\":null,\"allowedCidrs\":[],"
      "\"rateLimitPerMinute\":0,\"externalId\":\"\",\"metadata\":{},"
      "\"disabledAt\":null,\"state\":null,\"rateLimits\":[],\"credits\":null}");
  key.set_key("lmk_k1_secret");
  key.add_scopes("admin:read");
  key.mutable_rotated_at();
  key.set_version(3);
  EXPECT_EQ(RenderJson(key, options),
            "{\"id\":\"k1\",\"name\":\"\",\"prefix\":\"\","
            "\"scopes\":[\"admin:read\"],\"status\":\"\","
            "\"createdAt\":null,\"createdBy\":null,\"lastUsedAt\":null,"
            "\"expiresAt\":null,\"rotatedAt\":\"1970-01-01T00:00:00Z\","
            "\"revokedAt\":null,\"allowedCidrs\":[],"
            "\"rateLimitPerMinute\":0,\"key\":\"lmk_k1_secret\","
            "\"externalId\":\"\",\"metadata\":{},\"disabledAt\":null,\"state\":"
            "null,\"rateLimits\":[],\"credits\":null}");
}

TEST(JsonRenderTest, DefaultsOfEveryKind) {
  EXPECT_EQ(
      RenderJson(AllTypes()),
      "{\"tenantSlug\":\"\",\"text\":\"\",\"i32\":0,\"i64\":0,\"u32\":0,"
      "\"u64\":0,\"si32\":0,\"si64\":0,\"f32\":0,\"f64\":0,\"sf32\":0,"
      "\"sf64\":0,\"flag\":false,\"dbl\":0,\"flt\":0,"
      "\"color\":\"COLOR_UNSPECIFIED\",\"raw\":\"\",\"when\":null,"
      "\"inner\":null,\"tags\":[],\"numbers\":[],\"colors\":[],\"times\":[],"
      "\"counts\":{},\"wrapped\":null,\"maybe\":null,\"inners\":[],"
      "\"extra\":null,\"wait\":null,\"nothing\":null,\"namesById\":{},"
      "\"mask\":null,\"any\":null,\"bigNumbers\":[]}");
}

TEST(JsonRenderTest, Int64AsNumberUpToTwoToThe53) {
  constexpr int64_t kTwo53 = int64_t{1} << 53;
  struct Case {
    int64_t value;
    const char* json;
  };
  const Case cases[] = {
      {0, "0"},
      {kTwo53, "9007199254740992"},
      {kTwo53 + 1, "\"9007199254740993\""},
      {-kTwo53, "-9007199254740992"},
      {-kTwo53 - 1, "\"-9007199254740993\""},
      {std::numeric_limits<int64_t>::max(), "\"9223372036854775807\""},
      {std::numeric_limits<int64_t>::min(), "\"-9223372036854775808\""},
  };
  for (const Case& c : cases) {
    AllTypes m;
    m.set_i64(c.value);
    m.set_si64(c.value);
    m.set_sf64(c.value);
    m.add_big_numbers(c.value);
    m.mutable_wrapped()->set_value(c.value);
    EXPECT_EQ(Only(m, {"i64", "si64", "sf64", "bigNumbers", "wrapped"}),
              absl::StrCat("{\"i64\":", c.json, ",\"si64\":", c.json,
                           ",\"sf64\":", c.json, ",\"wrapped\":", c.json,
                           ",\"bigNumbers\":[", c.json, "]}"));
  }
  AllTypes m;
  m.set_u64(std::numeric_limits<uint64_t>::max());
  m.set_f64(static_cast<uint64_t>(kTwo53));
  m.set_u32(std::numeric_limits<uint32_t>::max());
  m.set_i32(std::numeric_limits<int32_t>::min());
  EXPECT_EQ(Only(m, {"u64", "f64", "u32", "i32"}),
            "{\"i32\":-2147483648,\"u32\":4294967295,"
            "\"u64\":\"18446744073709551615\",\"f64\":9007199254740992}");
  m.set_u64(static_cast<uint64_t>(kTwo53) + 1);
  EXPECT_EQ(Only(m, {"u64"}), "{\"u64\":\"9007199254740993\"}");
}

TEST(JsonRenderTest, Timestamps) {
  struct Case {
    int64_t seconds;
    int32_t nanos;
    const char* json;
  };
  const Case cases[] = {
      {0, 0, "\"1970-01-01T00:00:00Z\""},
      {1795778553, 0, "\"2026-11-27T11:22:33Z\""},
      {1795778553, 123000000, "\"2026-11-27T11:22:33.123Z\""},
      {1795778553, 123456000, "\"2026-11-27T11:22:33.123456Z\""},
      {1795778553, 123456789, "\"2026-11-27T11:22:33.123456789Z\""},
      {1795778553, 100000000, "\"2026-11-27T11:22:33.100Z\""},
      {1795778553, 1000, "\"2026-11-27T11:22:33.000001Z\""},
      {1795778553, 1, "\"2026-11-27T11:22:33.000000001Z\""},
      {-1, 0, "\"1969-12-31T23:59:59Z\""},
      {-62135596800, 0, "\"0001-01-01T00:00:00Z\""},
      {253402300799, 999999999, "\"9999-12-31T23:59:59.999999999Z\""},
      {-62135596801, 0, "null"},
      {253402300800, 0, "null"},
      {0, -1, "null"},
      {0, 1000000000, "null"},
  };
  for (const Case& c : cases) {
    AllTypes m;
    m.mutable_when()->set_seconds(c.seconds);
    m.mutable_when()->set_nanos(c.nanos);
    google::protobuf::Timestamp* t = m.add_times();
    t->set_seconds(c.seconds);
    t->set_nanos(c.nanos);
    EXPECT_EQ(Only(m, {"when", "times"}),
              absl::StrCat("{\"when\":", c.json, ",\"times\":[", c.json, "]}"));
  }
}

TEST(JsonRenderTest, FloatingPointAndEnumsAndBytes) {
  struct Case {
    double dbl;
    float flt;
    const char* json;
  };
  const Case cases[] = {
      {1.5, 1.5f, "{\"dbl\":1.5,\"flt\":1.5}"},
      {0.1, 0.1f, "{\"dbl\":0.1,\"flt\":0.1}"},
      {1e21, 3.4028235e38f, "{\"dbl\":1e+21,\"flt\":3.4028235e+38}"},
      {1e-7, -2.0f, "{\"dbl\":1e-07,\"flt\":-2}"},
      {-0.0, 0.0f, "{\"dbl\":-0,\"flt\":0}"},
      {std::nan(""), std::numeric_limits<float>::infinity(),
       "{\"dbl\":\"NaN\",\"flt\":\"Infinity\"}"},
      {-std::numeric_limits<double>::infinity(), 1e-45f,
       "{\"dbl\":\"-Infinity\",\"flt\":1e-45}"},
  };
  for (const Case& c : cases) {
    AllTypes m;
    m.set_dbl(c.dbl);
    m.set_flt(c.flt);
    EXPECT_EQ(Only(m, {"dbl", "flt"}), c.json);
  }
  AllTypes m;
  m.set_color(lumo::gateway::testing::RED);
  m.add_colors(lumo::gateway::testing::GREEN);
  m.add_colors(static_cast<lumo::gateway::testing::Color>(7));
  m.set_raw(std::string("\0\xFF", 2));
  m.set_flag(true);
  EXPECT_EQ(Only(m, {"color", "colors", "raw", "flag"}),
            "{\"flag\":true,\"color\":\"RED\",\"raw\":\"AP8=\","
            "\"colors\":[\"GREEN\",7]}");
}

TEST(JsonRenderTest, MapsOneofsOptionalsAndRepeatedMessages) {
  AllTypes m;
  (*m.mutable_counts())["b"] = 2;
  (*m.mutable_counts())["a"] = 1;
  (*m.mutable_counts())["a\"\n"] = 3;
  (*m.mutable_names_by_id())[10] = "x";
  (*m.mutable_names_by_id())[2] = "y";
  (*m.mutable_names_by_id())[-1] = "z";
  EXPECT_EQ(Only(m, {"counts", "namesById"}),
            "{\"counts\":{\"a\":1,\"a\\\"\\u000a\":3,\"b\":2},"
            "\"namesById\":{\"-1\":\"z\",\"2\":\"y\",\"10\":\"x\"}}");

  EXPECT_EQ(Only(m, {"byName", "byNumber", "maybe"}), "{\"maybe\":null}");
  m.set_by_number(5);
  m.set_maybe(0);
  EXPECT_EQ(Only(m, {"byName", "byNumber", "maybe"}),
            "{\"maybe\":0,\"byNumber\":5}");
  m.set_by_name("");
  EXPECT_EQ(Only(m, {"byName", "byNumber"}), "{\"byName\":\"\"}");

  m.add_inners()->set_id("a");
  m.add_inners()->mutable_child()->set_count(-3);
  EXPECT_EQ(Only(m, {"inners"}),
            "{\"inners\":[{\"id\":\"a\",\"count\":0,\"child\":null},"
            "{\"id\":\"\",\"count\":0,\"child\":{\"id\":\"\",\"count\":-3,"
            "\"child\":null}}]}");
}

TEST(JsonRenderTest, WellKnownTypes) {
  AllTypes m;
  m.mutable_nothing();
  m.mutable_wait()->set_seconds(1);
  m.mutable_wait()->set_nanos(500000000);
  m.mutable_mask()->add_paths("created_at");
  m.mutable_mask()->add_paths("name");
  m.mutable_mask()->add_paths("created_by.id");
  auto& fields = *m.mutable_extra()->mutable_fields();
  fields["b"].mutable_list_value()->add_values()->set_number_value(1);
  fields["b"].mutable_list_value()->add_values()->set_string_value("x");
  fields["b"].mutable_list_value()->add_values()->set_bool_value(true);
  fields["b"].mutable_list_value()->add_values()->set_null_value(
      google::protobuf::NULL_VALUE);
  fields["b"].mutable_list_value()->add_values()->mutable_struct_value();
  fields["b"].mutable_list_value()->add_values();  // no kind
  fields["b"].mutable_list_value()->add_values()->set_number_value(
      std::nan(""));
  fields["a"].set_number_value(2.5);
  EXPECT_EQ(Only(m, {"nothing", "wait", "mask", "extra"}),
            "{\"extra\":{\"a\":2.5,\"b\":[1,\"x\",true,null,{},null,null]},"
            "\"wait\":\"1.500s\",\"nothing\":{},"
            "\"mask\":\"createdAt,name,createdBy.id\"}");

  struct DurationCase {
    int64_t seconds;
    int32_t nanos;
    const char* json;
  };
  const DurationCase durations[] = {
      {3, 0, "\"3s\""},
      {0, -1, "\"-0.000000001s\""},
      {-2, -250000000, "\"-2.250s\""},
      {0, 0, "\"0s\""},
      {1, -1, "null"},
      {315576000001, 0, "null"},
  };
  for (const DurationCase& c : durations) {
    m.mutable_wait()->set_seconds(c.seconds);
    m.mutable_wait()->set_nanos(c.nanos);
    EXPECT_EQ(Only(m, {"wait"}), absl::StrCat("{\"wait\":", c.json, "}"));
  }

  Inner inner;
  inner.set_id("x");
  m.mutable_any()->PackFrom(inner);
  EXPECT_EQ(Only(m, {"any"}),
            "{\"any\":{\"@type\":\"type.googleapis.com/"
            "lumo.gateway.testing.Inner\",\"id\":\"x\",\"count\":0,"
            "\"child\":null}}");
  google::protobuf::Timestamp one_second;
  one_second.set_seconds(1);
  m.mutable_any()->PackFrom(one_second);
  EXPECT_EQ(Only(m, {"any"}),
            "{\"any\":{\"@type\":\"type.googleapis.com/"
            "google.protobuf.Timestamp\",\"value\":\"1970-01-01T00:00:01Z\"}}");
  m.mutable_any()->set_type_url("type.googleapis.com/no.such.Type");
  EXPECT_EQ(Only(m, {"any"}), "{\"any\":null}");
}

TEST(JsonRenderTest, DeepNestingIsCutOff) {
  Inner root;
  Inner* current = &root;
  for (int i = 0; i < 70; ++i) current = current->mutable_child();
  const std::string json = RenderJson(root);
  size_t objects = 0;
  for (size_t pos = json.find("{\"id\""); pos != std::string::npos;
       pos = json.find("{\"id\"", pos + 1)) {
    ++objects;
  }
  EXPECT_EQ(objects, 65u);  // depths 0..64
  EXPECT_NE(json.find("\"child\":null}"), std::string::npos);
}

class EnvelopeTest : public ::testing::Test {
 protected:
  void SetUp() override {
    absl::StatusOr<RouteTable> table = RouteTable::Build(
        {ApiKey::descriptor()->file()->FindServiceByName("KeyService"),
         AllTypes::descriptor()->file()->FindServiceByName("TestService")});
    ASSERT_TRUE(table.ok()) << table.status();
    table_ = *std::move(table);
  }

  const Route& RouteFor(const char* verb, const char* path) {
    MatchResult match = table_.Match(verb, path);
    EXPECT_EQ(match.outcome, MatchOutcome::kMatched) << verb << " " << path;
    return *match.route;
  }

  RouteTable table_;
};

constexpr char kBareKey[] =
    "{\"id\":\"k1\",\"name\":\"\",\"prefix\":\"\",\"scopes\":[],\"status\":"
    "\"\",\"createdAt\":null,\"createdBy\":null,\"lastUsedAt\":null,"
    "\"expiresAt\":null,\"rotatedAt\":null,\"revokedAt\":null,"
    "\"allowedCidrs\":[],\"rateLimitPerMinute\":0,\"version\":0,\"key\":"
    "\"\",\"previousSecretValidUntil\":null,"
    "\"externalId\":\"\",\"metadata\":{},\"disabledAt\":null,\"state\":null,"
    "\"rateLimits\":[],\"decoy\":null,\"credits\":null,"
    "\"previousSecretUsers\":[]}";

// Without render options an unset `optional` field is null; the gateway
// omits meta.nextCursor, nextPageToken and totalRelation when unset (its
// render options, checked end to end).
TEST_F(EnvelopeTest, ListEnvelope) {
  const Route& list = RouteFor("GET", "/t/acme/api/v1/admin/api-keys");
  lumo::keys::v1::ListApiKeysResponse reply;
  EXPECT_EQ(RenderEnvelope(list, reply), "{\"data\":[],\"meta\":null}");
  reply.add_data()->set_id("k1");
  reply.mutable_meta()->set_total(1);
  reply.mutable_meta()->set_page(1);
  reply.mutable_meta()->set_limit(25);
  reply.mutable_meta()->set_total_pages(1);
  EXPECT_EQ(RenderEnvelope(list, reply),
            absl::StrCat("{\"data\":[", kBareKey,
                         "],\"meta\":{\"total\":1,\"page\":1,\"limit\":25,"
                         "\"totalPages\":1,\"hasNextPage\":false,"
                         "\"hasPreviousPage\":false,\"nextCursor\":null,"
                         "\"nextPageToken\":null,\"totalRelation\":null}}"));

  const Route& inners = RouteFor("GET", "/inners");
  lumo::gateway::testing::ListInnersResponse inner_reply;
  inner_reply.add_data()->set_count(2);
  inner_reply.mutable_meta()->set_has_next_page(true);
  EXPECT_EQ(RenderEnvelope(inners, inner_reply),
            "{\"data\":[{\"id\":\"\",\"count\":2,\"child\":null}],"
            "\"meta\":{\"total\":0,\"page\":0,\"limit\":0,\"totalPages\":0,"
            "\"hasNextPage\":true,\"hasPreviousPage\":false,"
            "\"nextCursor\":null,\"nextPageToken\":null,"
            "\"totalRelation\":null}}");
}

TEST_F(EnvelopeTest, SingleResourceEnvelopes) {
  ApiKey key;
  key.set_id("k1");
  EXPECT_EQ(
      RenderEnvelope(RouteFor("GET", "/t/acme/api/v1/admin/api-keys/k1"), key),
      absl::StrCat("{\"data\":", kBareKey, "}"));
  EXPECT_EQ(
      RenderEnvelope(
          RouteFor("POST", "/t/acme/api/v1/admin/api-keys/k1/rotate"), key),
      absl::StrCat("{\"data\":", kBareKey, "}"));

  const Route& create = RouteFor("POST", "/t/acme/api/v1/admin/api-keys");
  EXPECT_EQ(create.success_status, 201);
  EXPECT_EQ(RenderEnvelope(create, key),
            absl::StrCat("{\"data\":", kBareKey,
                         ",\"message\":\"API key created. Copy it now: it "
                         "will not be shown again.\"}"));

  const Route& remove = RouteFor("DELETE", "/t/acme/api/v1/admin/api-keys/k1");
  EXPECT_EQ(remove.success_status, 204);
  EXPECT_EQ(RenderEnvelope(remove, google::protobuf::Empty()), "{\"data\":{}}");

  lumo::gateway::testing::Settings settings;
  settings.set_require_api_key(true);
  EXPECT_EQ(RenderEnvelope(RouteFor("PATCH", "/t/acme/settings"), settings),
            "{\"data\":{\"enabled\":false,\"requireApiKey\":true}}");
}

TEST_F(EnvelopeTest, OptionsApplyInsideEnvelopes) {
  RenderOptions options;
  options.omit_fields_when_unset = {
      "lumo.keys.v1.ApiKey.key", "lumo.keys.v1.ApiKey.decoy",
      "lumo.keys.v1.ApiKey.previous_secret_users"};
  options.omit_fields = {"lumo.keys.v1.ApiKey.version",
                         "lumo.keys.v1.ApiKey.previous_secret_valid_until"};
  ApiKey key;
  key.set_id("k1");
  const std::string without =
      "{\"id\":\"k1\",\"name\":\"\",\"prefix\":\"\",\"scopes\":[],"
      "\"status\":\"\",\"createdAt\":null,\"createdBy\":null,"
      "\"lastUsedAt\":null,\"expiresAt\":null,\"rotatedAt\":null,"
      "\"revokedAt\":null,\"allowedCidrs\":[],\"rateLimitPerMinute\":0";
  const std::string added =
      ",\"externalId\":\"\",\"metadata\":{},\"disabledAt\":null,\"state\":null,"
      "\"rateLimits\":[],\"credits\":null";
  lumo::keys::v1::ListApiKeysResponse list;
  *list.add_data() = key;
  EXPECT_EQ(RenderEnvelope(RouteFor("GET", "/t/acme/api/v1/admin/api-keys"),
                           list, options),
            absl::StrCat("{\"data\":[", without, added, "}],\"meta\":null}"));
  key.set_key("lmk_k1_x");
  EXPECT_EQ(RenderEnvelope(RouteFor("POST", "/t/acme/api/v1/admin/api-keys"),
                           key, options),
            absl::StrCat("{\"data\":", without, ",\"key\":\"lmk_k1_x\"", added,
                         "},\"message\":\"API key created. "
                         "Copy it now: it will not be shown again.\"}"));
}

}  // namespace
}  // namespace lumo::gateway
