// In-process tests of the `lumokeys` CLI: argument grammar, configuration,
// rendering, and whole invocations against the fake services.
#include <sys/stat.h>

#include <fstream>
#include <map>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "cli/args.h"
#include "cli/commands.h"
#include "cli/config.h"
#include "cli/output.h"
#include "fake_server.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace lumo::cli {
namespace {

using ::lumo::testing::FakeServer;
using ::testing::HasSubstr;
using ::testing::Not;
using ::testing::StartsWith;

const std::string kSecret = "S3cr3tS3cr3tS3cr3tS3cr3tS3cr3tS3cr3tS3cr3tAbCdEf";
const std::string kKey = "lmk_AbCdEfGhIjKl_" + kSecret;

absl::StatusOr<ParsedArgs> Parse(std::vector<std::string> args) {
  return ParseArgs(args);
}

EnvLookup FakeEnv(std::map<std::string, std::string> vars) {
  return [vars](const char* name) -> std::optional<std::string> {
    const auto it = vars.find(name);
    if (it == vars.end() || it->second.empty()) return std::nullopt;
    return it->second;
  };
}

std::string TempFile(const std::string& name, const std::string& content) {
  const std::string path =
      absl::StrCat(::testing::TempDir(), "/lumo_cli_test_", name);
  std::ofstream(path) << content;
  ::chmod(path.c_str(), 0600);
  return path;
}

// ----- argument grammar ------------------------------------------------

TEST(ParseArgsTest, CommandOptionsAndGlobalsAnywhere) {
  const auto parsed =
      Parse({"--tenant", "acme", "keys", "create", "--name=CI key", "--scopes",
             "admin:read", "--json", "--timeout=2"});
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  EXPECT_EQ(parsed->command->name, "keys create");
  EXPECT_EQ(parsed->globals.tenant, "acme");
  EXPECT_EQ(parsed->globals.timeout, "2");
  EXPECT_TRUE(parsed->globals.json);
  EXPECT_EQ(parsed->Get("name"), "CI key");
  EXPECT_EQ(parsed->Get("scopes"), "admin:read");
  EXPECT_FALSE(parsed->Has("expires-at"));
}

TEST(ParseArgsTest, PositionalsAndDashes) {
  auto parsed = Parse({"verify", "-"});
  ASSERT_TRUE(parsed.ok());
  EXPECT_THAT(parsed->args, ::testing::ElementsAre("-"));
  parsed = Parse({"keys", "get", "--", "--weird-id"});
  ASSERT_TRUE(parsed.ok());
  EXPECT_THAT(parsed->args, ::testing::ElementsAre("--weird-id"));
  parsed = Parse({"verify"});
  ASSERT_TRUE(parsed.ok());
  EXPECT_TRUE(parsed->args.empty());
}

TEST(ParseArgsTest, UsageErrors) {
  const std::vector<std::vector<std::string>> bad = {
      {},
      {"nope"},
      {"keys"},
      {"keys", "nope"},
      {"keys", "get"},
      {"keys", "get", "a", "b"},
      {"keys", "list", "--nope"},
      {"--nope", "keys", "list"},
      {"--name", "x", "keys", "create"},  // command flag before the command
      {"keys", "create", "--name"},
      {"--json=1", "health"},
      {"--tenant=a", "--tenant=b", "health"},
      {"keys", "create", "--name=a", "--name=b"},
      {"--api-key", "lmk_x", "keys", "list"},
      {"-x", "health"},
  };
  for (const auto& args : bad) {
    EXPECT_FALSE(Parse(args).ok()) << ::testing::PrintToString(args);
  }
}

TEST(ParseArgsTest, Help) {
  auto parsed = Parse({"--help"});
  ASSERT_TRUE(parsed.ok());
  EXPECT_TRUE(parsed->globals.help);
  EXPECT_EQ(parsed->command, nullptr);
  parsed = Parse({"keys", "rotate", "-h"});
  ASSERT_TRUE(parsed.ok());
  EXPECT_EQ(parsed->command->name, "keys rotate");
  parsed = Parse({"help", "keys"});
  ASSERT_TRUE(parsed.ok());
  EXPECT_EQ(parsed->group, "keys");
  parsed = Parse({"help", "tenant", "create"});
  ASSERT_TRUE(parsed.ok());
  EXPECT_EQ(parsed->command->name, "tenant create");
  EXPECT_FALSE(Parse({"help", "nope"}).ok());
}

TEST(UsageTest, MentionsEveryCommandAndThePsCaveat) {
  const std::string usage = Usage();
  for (const CommandSpec& command : Commands()) {
    EXPECT_THAT(usage, HasSubstr(absl::StrCat("lumokeys ", command.name)));
  }
  EXPECT_THAT(usage, HasSubstr("`ps`"));
  EXPECT_THAT(usage, HasSubstr("LUMOKEYS_API_KEY"));
  std::istringstream lines(usage);
  for (std::string line; std::getline(lines, line);) {
    EXPECT_LE(line.size(), 80u) << line;
  }
}

// ----- configuration ---------------------------------------------------

TEST(ConfigTest, FlagsBeatEnvironmentAndDefaultsApply) {
  GlobalFlags flags;
  auto settings = ResolveSettings(flags, FakeEnv({}));
  ASSERT_TRUE(settings.ok());
  EXPECT_EQ(settings->address, "127.0.0.1:50051");
  EXPECT_EQ(settings->timeout, absl::Seconds(5));
  EXPECT_EQ(settings->tenant, "");

  const auto env = FakeEnv({{"LUMOKEYS_ADDRESS", "env:1"},
                            {"LUMOKEYS_TENANT", "envt"},
                            {"LUMOKEYS_TIMEOUT", "1.5"}});
  settings = ResolveSettings(flags, env);
  ASSERT_TRUE(settings.ok());
  EXPECT_EQ(settings->address, "env:1");
  EXPECT_EQ(settings->tenant, "envt");
  EXPECT_EQ(settings->timeout, absl::Milliseconds(1500));

  flags.address = "flag:2";
  flags.tenant = "flagt";
  flags.timeout = "7";
  settings = ResolveSettings(flags, env);
  ASSERT_TRUE(settings.ok());
  EXPECT_EQ(settings->address, "flag:2");
  EXPECT_EQ(settings->tenant, "flagt");
  EXPECT_EQ(settings->timeout, absl::Seconds(7));

  for (const char* bad : {"0", "-1", "x", "nan", "inf", "1e9"}) {
    flags.timeout = bad;
    EXPECT_FALSE(ResolveSettings(flags, env).ok()) << bad;
  }
}

TEST(ConfigTest, SecretFiles) {
  EXPECT_EQ(*ReadSecretFile(TempFile("ok", "tok\n"), "token"), "tok");
  EXPECT_EQ(*ReadSecretFile(TempFile("crlf", "tok\r\n\n"), "token"), "tok");
  EXPECT_FALSE(ReadSecretFile(TempFile("empty", "\n"), "token").ok());
  const auto two = ReadSecretFile(TempFile("two", "secret1\nsecret2\n"), "t");
  ASSERT_FALSE(two.ok());
  EXPECT_THAT(two.status().message(), Not(HasSubstr("secret")));
  EXPECT_FALSE(ReadSecretFile("/nonexistent/file", "token").ok());
}

TEST(ConfigTest, WarnsAboutSecretFilesOthersCanRead) {
  const std::string path = TempFile("open", "tok\n");
  EXPECT_EQ(SecretFileWarning(path), std::nullopt);
  ::chmod(path.c_str(), 0644);
  EXPECT_THAT(SecretFileWarning(path).value_or(""), HasSubstr("chmod 600"));
  std::vector<std::string> warnings;
  GlobalFlags flags;
  flags.api_key_file = path;
  EXPECT_TRUE(LoadApiKey(flags, FakeEnv({}), warnings).ok());
  EXPECT_EQ(warnings.size(), 1u);
}

TEST(ConfigTest, ApiKeySources) {
  std::vector<std::string> warnings;
  GlobalFlags flags;
  const std::string file = TempFile("key", kKey + "\n");
  EXPECT_EQ(*LoadApiKey(flags, FakeEnv({{"LUMOKEYS_API_KEY", kKey}}), warnings),
            kKey);
  EXPECT_EQ(
      *LoadApiKey(flags, FakeEnv({{"LUMOKEYS_API_KEY_FILE", file}}), warnings),
      kKey);
  EXPECT_FALSE(LoadApiKey(flags,
                          FakeEnv({{"LUMOKEYS_API_KEY_FILE", file},
                                   {"LUMOKEYS_API_KEY", kKey}}),
                          warnings)
                   .ok());
  EXPECT_FALSE(LoadApiKey(flags, FakeEnv({}), warnings).ok());
  flags.api_key_file = file;
  EXPECT_EQ(
      *LoadApiKey(flags, FakeEnv({{"LUMOKEYS_API_KEY", "other"}}), warnings),
      kKey);
}

// ----- rendering -------------------------------------------------------

lumo::keys::v1::ApiKey SampleKey() {
  lumo::keys::v1::ApiKey key;
  key.set_id("AbCdEfGhIjKl");
  key.set_prefix("lmk_AbCdEfGhIjKl");
  key.set_name("deploy\x1b[31m");
  key.set_status("active");
  key.add_scopes("admin:read");
  key.add_scopes("admin:users");
  key.mutable_created_at()->set_seconds(1893456000);  // 2030-01-01
  key.set_key(kKey);
  return key;
}

TEST(OutputTest, KeyFieldsAreAlignedAndTheKeyOnlyOnRequest) {
  const std::string shown = FormatApiKey(SampleKey(), /*show_key=*/true);
  EXPECT_THAT(shown, HasSubstr("key:"));
  EXPECT_THAT(shown, HasSubstr(kKey));
  EXPECT_THAT(shown, HasSubstr("created:       2030-01-01T00:00:00Z\n"));
  EXPECT_THAT(shown, HasSubstr("scopes:        admin:read, admin:users\n"));
  EXPECT_THAT(shown, HasSubstr("expires:       never\n"));
  EXPECT_THAT(shown, HasSubstr("deploy?[31m"));  // no raw escape
  EXPECT_THAT(FormatApiKey(SampleKey(), /*show_key=*/false),
              Not(HasSubstr(kSecret)));
}

TEST(OutputTest, ListIsATableWithoutKeys) {
  lumo::keys::v1::ListApiKeysResponse list;
  *list.add_data() = SampleKey();
  list.mutable_meta()->set_total(1);
  list.mutable_meta()->set_page(1);
  list.mutable_meta()->set_total_pages(1);
  const std::string table = FormatApiKeyList(list);
  EXPECT_THAT(table, StartsWith("PREFIX"));
  EXPECT_THAT(table, HasSubstr("lmk_AbCdEfGhIjKl  deploy"));
  EXPECT_THAT(table, HasSubstr("admin:read,admin:users"));
  EXPECT_THAT(table, Not(HasSubstr(kSecret)));
  EXPECT_THAT(table, HasSubstr("page 1 of 1 (1 key in total)"));
  EXPECT_EQ(FormatApiKeyList({}), "no keys\n");
}

TEST(OutputTest, JsonIsOneLineOfProto3Json) {
  const auto json = ToJsonLine(SampleKey());
  ASSERT_TRUE(json.ok());
  EXPECT_THAT(*json, HasSubstr("\"createdAt\":\"2030-01-01T00:00:00Z\""));
  EXPECT_THAT(*json, Not(HasSubstr("\n")));
}

TEST(OutputTest, Table) {
  EXPECT_EQ(FormatTable({{"A", "BB"}, {"ccc", "d"}}), "A    BB\nccc  d\n");
}

// ----- whole invocations against the fake services ---------------------

struct CliRun {
  int code;
  std::string out;
  std::string err;
};

class CliRunTest : public ::testing::Test {
 protected:
  CliRun RunWith(std::vector<std::string> args,
                 std::map<std::string, std::string> env = {},
                 const std::string& input = "") {
    std::istringstream in(input);
    std::ostringstream out, err;
    auto factory = [this](lumo::client::ClientOptions options) {
      return std::make_unique<lumo::client::Client>(std::move(options),
                                                    fake_.Channel());
    };
    const int code =
        RunCli(args, FakeEnv(std::move(env)), factory, {in, out, err});
    return {code, out.str(), err.str()};
  }

  std::string Header(const std::string& name) {
    const auto call = fake_.state.last();
    const auto it = call.metadata.find(name);
    return it == call.metadata.end() ? "" : it->second;
  }

  FakeServer fake_;
};

TEST_F(CliRunTest, KeysCreatePrintsTheKeyOnceWithANote) {
  fake_.state.key_reply = SampleKey();
  const CliRun run = RunWith(
      {"--tenant", "acme", "keys", "create", "--name", "n", "--scopes",
       "admin:read, admin:users", "--expires-at", "2031-02-03T04:05:06Z",
       "--allowed-cidrs", "10.0.0.0/8", "--rate-limit", "60"},
      {{"LUMOKEYS_API_KEY", kKey}});
  EXPECT_EQ(run.code, kExitOk) << run.err;
  EXPECT_THAT(run.out, HasSubstr(kKey));
  EXPECT_THAT(run.err, HasSubstr("shown only once"));
  EXPECT_THAT(run.err, Not(HasSubstr(kSecret)));
  EXPECT_EQ(Header("authorization"), "Bearer " + kKey);
  const std::string request = fake_.state.last().request_text;
  EXPECT_THAT(request, HasSubstr("tenant_slug: \"acme\""));
  EXPECT_THAT(request, HasSubstr("scopes: \"admin:users\""));
  EXPECT_THAT(request, HasSubstr("seconds: 1927857906"));
  EXPECT_THAT(request, HasSubstr("allowed_cidrs: \"10.0.0.0/8\""));
  EXPECT_THAT(request, HasSubstr("rate_limit_per_minute: 60"));
}

TEST_F(CliRunTest, ListAndGetNeverPrintAKeyEvenIfSent) {
  *fake_.state.list_reply.add_data() = SampleKey();
  fake_.state.key_reply = SampleKey();
  const std::map<std::string, std::string> env = {{"LUMOKEYS_API_KEY", kKey},
                                                  {"LUMOKEYS_TENANT", "acme"}};
  for (const auto& args : std::vector<std::vector<std::string>>{
           {"keys", "list"},
           {"keys", "list", "--json"},
           {"keys", "get", "AbCdEfGhIjKl"},
           {"keys", "get", "AbCdEfGhIjKl", "--json"},
           {"keys", "revoke", "AbCdEfGhIjKl"}}) {
    const CliRun run = RunWith(args, env);
    EXPECT_EQ(run.code, kExitOk) << run.err;
    EXPECT_THAT(run.out + run.err, Not(HasSubstr(kSecret)))
        << ::testing::PrintToString(args);
  }
}

TEST_F(CliRunTest, RpcErrorsExitThreeWithTheCode) {
  fake_.state.FailWith(
      grpc::Status(grpc::StatusCode::NOT_FOUND, absl::StrCat("no key ", kKey)));
  const CliRun run = RunWith({"--tenant", "acme", "keys", "get", "x"},
                             {{"LUMOKEYS_API_KEY", kKey}});
  EXPECT_EQ(run.code, kExitRpcError);
  EXPECT_THAT(run.err, StartsWith("error: NOT_FOUND: no key "));
  EXPECT_THAT(run.err, Not(HasSubstr(kSecret)));
  EXPECT_EQ(run.out, "");
}

TEST_F(CliRunTest, VerifyReadsStdinAndExitsOneWhenInvalid) {
  fake_.state.verify_reply.set_valid(false);
  fake_.state.verify_reply.set_reason(lumo::auth::v1::ROTATED);
  const std::string token = TempFile("svc", "svc-token\n");
  const CliRun run =
      RunWith({"--tenant", "acme", "verify", "--scopes", "admin:read",
               "--client-ip", "10.1.2.3"},
              {{"LUMOKEYS_SERVICE_TOKEN_FILE", token}}, kKey + "\n");
  EXPECT_EQ(run.code, kExitInvalid) << run.err;
  EXPECT_THAT(run.out, HasSubstr("reason: ROTATED"));
  EXPECT_EQ(Header("x-lumo-service-token"), "svc-token");
  const std::string request = fake_.state.last().request_text;
  EXPECT_THAT(request, HasSubstr("required_scopes: \"admin:read\""));
  EXPECT_THAT(request, HasSubstr("client_ip: \"10.1.2.3\""));
  EXPECT_THAT(request, HasSubstr(kKey));

  fake_.state.verify_reply.set_valid(true);
  fake_.state.verify_reply.set_reason(lumo::auth::v1::VALID);
  EXPECT_EQ(
      RunWith({"verify", kKey}, {{"LUMOKEYS_SERVICE_TOKEN_FILE", token}}).code,
      kExitOk);
  EXPECT_EQ(
      RunWith({"verify", "-"}, {{"LUMOKEYS_SERVICE_TOKEN_FILE", token}}, "")
          .code,
      kExitUsage);
}

TEST_F(CliRunTest, TenantCreateUsesTheOperatorToken) {
  fake_.state.tenant_reply.mutable_tenant()->set_slug("acme");
  *fake_.state.tenant_reply.mutable_initial_key() = SampleKey();
  const std::string token = TempFile("op", "op-token\n");
  const CliRun run =
      RunWith({"tenant", "create", "acme", "--scopes", "admin:write"},
              {{"LUMOKEYS_OPERATOR_TOKEN_FILE", token}});
  EXPECT_EQ(run.code, kExitOk) << run.err;
  EXPECT_EQ(Header("x-lumo-operator-token"), "op-token");
  EXPECT_EQ(Header("authorization"), "");
  EXPECT_THAT(fake_.state.last().request_text,
              HasSubstr("name: \"Admin key\""));
  EXPECT_THAT(run.out, HasSubstr(kKey));
  EXPECT_THAT(run.err, HasSubstr("shown only once"));

  const CliRun json = RunWith({"--json", "tenant", "create", "acme"},
                              {{"LUMOKEYS_OPERATOR_TOKEN_FILE", token}});
  EXPECT_EQ(json.code, kExitOk);
  EXPECT_THAT(json.out, StartsWith("{\"tenant\":"));
  EXPECT_EQ(json.err, "");
}

TEST_F(CliRunTest, MissingCredentialsAreUsageErrorsAndNoCallIsMade) {
  EXPECT_EQ(RunWith({"--tenant", "t", "keys", "list"}).code, kExitUsage);
  EXPECT_EQ(RunWith({"tenant", "get", "t"}).code, kExitUsage);
  EXPECT_EQ(RunWith({"verify", kKey}).code, kExitUsage);
  EXPECT_EQ(RunWith({"keys", "list"}, {{"LUMOKEYS_API_KEY", kKey}}).code,
            kExitUsage);  // no tenant
  EXPECT_TRUE(fake_.state.calls().empty());
}

const std::string kWebhookSecret = "whsec_" + std::string(43, 'Q');

lumo::webhooks::v1::Webhook SampleWebhook() {
  lumo::webhooks::v1::Webhook w;
  w.set_id("whk_AbCdEfGhIjKlMnOp");
  w.set_url("https://hooks.example.com/in");
  w.add_event_types("api_key.revoked");
  w.set_enabled(true);
  w.set_secret_prefix("whsec_QQQQ");
  w.set_secret(kWebhookSecret);
  return w;
}

TEST_F(CliRunTest, WebhooksCreatePrintsTheSecretOnceAndOtherCommandsNever) {
  fake_.state.webhook_reply = SampleWebhook();
  *fake_.state.webhook_list_reply.add_data() = SampleWebhook();
  const std::map<std::string, std::string> env = {{"LUMOKEYS_API_KEY", kKey},
                                                  {"LUMOKEYS_TENANT", "acme"}};
  const CliRun created =
      RunWith({"webhooks", "create", "--url", "https://hooks.example.com/in",
               "--events", "api_key.revoked, api_key.leaked", "--enabled",
               "false", "--description", "SIEM"},
              env);
  EXPECT_EQ(created.code, kExitOk) << created.err;
  EXPECT_THAT(created.out, HasSubstr("secret:"));
  EXPECT_THAT(created.out, HasSubstr(kWebhookSecret));
  EXPECT_THAT(created.err, HasSubstr("signing secret is shown only once"));
  EXPECT_EQ(Header("authorization"), "Bearer " + kKey);
  std::string request = fake_.state.last().request_text;
  EXPECT_THAT(request, HasSubstr("tenant_slug: \"acme\""));
  EXPECT_THAT(request, HasSubstr("event_types: \"api_key.leaked\""));
  EXPECT_THAT(request, HasSubstr("enabled: false"));
  EXPECT_THAT(request, HasSubstr("description: \"SIEM\""));

  for (const auto& args : std::vector<std::vector<std::string>>{
           {"webhooks", "list"},
           {"webhooks", "list", "--json"},
           {"webhooks", "get", "whk_AbCdEfGhIjKlMnOp"},
           {"webhooks", "get", "whk_AbCdEfGhIjKlMnOp", "--json"},
           {"webhooks", "update", "whk_AbCdEfGhIjKlMnOp", "--enabled",
            "true"}}) {
    const CliRun run = RunWith(args, env);
    EXPECT_EQ(run.code, kExitOk) << run.err;
    EXPECT_THAT(run.out + run.err, Not(HasSubstr(kWebhookSecret)))
        << ::testing::PrintToString(args);
  }

  const CliRun rotated =
      RunWith({"webhooks", "rotate-secret", "whk_AbCdEfGhIjKlMnOp",
               "--grace-period", "60"},
              env);
  EXPECT_EQ(rotated.code, kExitOk) << rotated.err;
  EXPECT_THAT(rotated.out, HasSubstr(kWebhookSecret));
  EXPECT_THAT(fake_.state.last().request_text,
              HasSubstr("grace_period_seconds: 60"));
}

TEST_F(CliRunTest, WebhooksUpdateSendsOnlyTheMembersGiven) {
  fake_.state.webhook_reply = SampleWebhook();
  const std::map<std::string, std::string> env = {{"LUMOKEYS_API_KEY", kKey},
                                                  {"LUMOKEYS_TENANT", "acme"}};
  CliRun run = RunWith({"webhooks", "update", "whk_x", "--events", ""}, env);
  EXPECT_EQ(run.code, kExitOk) << run.err;
  std::string request = fake_.state.last().request_text;
  EXPECT_THAT(request, HasSubstr("event_types {"));  // [] = every type
  EXPECT_THAT(request, Not(HasSubstr("url:")));
  EXPECT_THAT(request, Not(HasSubstr("enabled:")));

  run = RunWith({"webhooks", "update", "whk_x", "--url", "https://b.example",
                 "--enabled", "false"},
                env);
  EXPECT_EQ(run.code, kExitOk) << run.err;
  request = fake_.state.last().request_text;
  EXPECT_THAT(request, HasSubstr("url: \"https://b.example\""));
  EXPECT_THAT(request, HasSubstr("enabled: false"));
  EXPECT_THAT(request, Not(HasSubstr("event_types")));

  const size_t calls = fake_.state.calls().size();
  EXPECT_EQ(RunWith({"webhooks", "update", "whk_x"}, env).code, kExitUsage);
  EXPECT_EQ(
      RunWith({"webhooks", "update", "whk_x", "--enabled", "yes"}, env).code,
      kExitUsage);
  EXPECT_EQ(RunWith({"webhooks", "create"}, env).code, kExitUsage);  // --url
  EXPECT_EQ(fake_.state.calls().size(), calls);
}

TEST_F(CliRunTest, WebhooksTestAndDeliveryLog) {
  lumo::webhooks::v1::WebhookDelivery d;
  d.set_id("42");
  d.set_event_id("evt_x");
  d.set_event_type("ping");
  d.set_status("failed");
  d.set_attempts(3);
  d.set_last_http_status(503);
  d.set_last_latency_ms(17);
  d.set_last_error("HTTP 503\x1b[2J");
  fake_.state.delivery_reply = d;
  *fake_.state.delivery_list_reply.add_data() = d;
  fake_.state.delivery_list_reply.mutable_meta()->set_page(1);
  fake_.state.delivery_list_reply.mutable_meta()->set_total(1);
  const std::map<std::string, std::string> env = {{"LUMOKEYS_API_KEY", kKey},
                                                  {"LUMOKEYS_TENANT", "acme"}};
  const CliRun ping = RunWith({"webhooks", "test", "whk_x"}, env);
  EXPECT_EQ(ping.code, kExitOk) << ping.err;
  EXPECT_THAT(ping.out, HasSubstr("type:"));
  EXPECT_EQ(fake_.state.last().method, "TestWebhook");

  const CliRun log = RunWith(
      {"webhooks", "deliveries", "whk_x", "--status", "failed", "--limit", "5"},
      env);
  EXPECT_EQ(log.code, kExitOk) << log.err;
  EXPECT_THAT(log.out, StartsWith("ID"));
  EXPECT_THAT(log.out, HasSubstr("503"));
  EXPECT_THAT(log.out, HasSubstr("17 ms"));
  EXPECT_THAT(log.out, HasSubstr("HTTP 503?[2J"));  // no raw escape
  EXPECT_THAT(log.out, HasSubstr("page 1 of 1 (1 delivery in total)"));
  const std::string request = fake_.state.last().request_text;
  EXPECT_THAT(request, HasSubstr("status: \"failed\""));
  EXPECT_THAT(request, HasSubstr("limit: 5"));
  EXPECT_THAT(request, HasSubstr("id: \"whk_x\""));
}

TEST_F(CliRunTest, KeysCreateAndListDecoys) {
  fake_.state.key_reply = SampleKey();
  const std::map<std::string, std::string> env = {{"LUMOKEYS_API_KEY", kKey},
                                                  {"LUMOKEYS_TENANT", "acme"}};
  EXPECT_EQ(RunWith({"keys", "create", "--name", "bait", "--scopes",
                     "admin:read", "--decoy"},
                    env)
                .code,
            kExitOk);
  EXPECT_THAT(fake_.state.last().request_text, HasSubstr("decoy: true"));
  EXPECT_EQ(RunWith({"keys", "list", "--decoy"}, env).code, kExitOk);
  EXPECT_THAT(fake_.state.last().request_text, HasSubstr("decoy: true"));
  EXPECT_EQ(RunWith({"keys", "list"}, env).code, kExitOk);
  EXPECT_THAT(fake_.state.last().request_text, Not(HasSubstr("decoy")));
}

TEST_F(CliRunTest, HealthAndHelp) {
  const CliRun health = RunWith({"health"});
  EXPECT_EQ(health.code, kExitOk) << health.err;
  EXPECT_EQ(health.out, "SERVING\n");
  const CliRun help = RunWith({"keys", "--help"});
  EXPECT_EQ(help.code, kExitOk);
  EXPECT_THAT(help.out, HasSubstr("lumokeys keys rotate"));
  EXPECT_THAT(help.out, Not(HasSubstr("lumokeys tenant create")));
  const CliRun none = RunWith({});
  EXPECT_EQ(none.code, kExitUsage);
  EXPECT_THAT(none.err, HasSubstr("Usage"));
}

}  // namespace
}  // namespace lumo::cli
