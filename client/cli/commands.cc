#include "cli/commands.h"

#include <chrono>
#include <cstdint>
#include <fstream>
#include <istream>
#include <limits>
#include <map>
#include <ostream>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "absl/time/time.h"
#include "cli/args.h"
#include "cli/output.h"
#include "server/core/password.h"

namespace lumo::cli {
namespace {

using lumo::client::Client;
using lumo::client::ClientOptions;

// Everything a command needs.
struct Context {
  const ParsedArgs& args;
  const Settings& settings;
  const EnvLookup& env;
  const ClientFactory& make_client;
  Io io;
};

int PrintUsageError(Io io, absl::string_view message) {
  io.err << "error: " << lumo::client::RedactKeyMaterial(message) << "\n"
         << "Run `lumokeys --help` for usage.\n";
  return kExitUsage;
}

int PrintRpcError(Io io, const absl::Status& status) {
  // The client already scrubbed the message; scrub again in case the error
  // was produced locally.
  io.err << "error: " << absl::StatusCodeToString(status.code()) << ": "
         << lumo::client::RedactKeyMaterial(status.message()) << "\n";
  const std::string request_id = lumo::client::RequestIdOf(status);
  if (!request_id.empty()) io.err << "request id: " << request_id << "\n";
  return kExitRpcError;
}

// "a, b,,c" -> {"a", "b", "c"}.
std::vector<std::string> SplitList(absl::string_view text) {
  std::vector<std::string> items;
  for (absl::string_view item : absl::StrSplit(text, ',')) {
    item = absl::StripAsciiWhitespace(item);
    if (!item.empty()) items.emplace_back(item);
  }
  return items;
}

absl::StatusOr<int64_t> ParseInteger(const ParsedArgs& args,
                                     absl::string_view option, int64_t min,
                                     int64_t max) {
  const std::string text = args.Get(option);
  int64_t value = 0;
  if (!absl::SimpleAtoi(text, &value) || value < min || value > max) {
    return absl::InvalidArgumentError(
        absl::StrCat("--", option, " must be an integer from ", min, " to ",
                     max, ", not \"", text, "\""));
  }
  return value;
}

// --metadata "k=v,k2=v2" -> {k: v, k2: v2} ("" is the empty map). Values
// cannot contain ','; the key is everything before the first '='.
absl::StatusOr<std::map<std::string, std::string>> ParseMetadata(
    const ParsedArgs& args) {
  std::map<std::string, std::string> metadata;
  for (const std::string& item : SplitList(args.Get("metadata"))) {
    const size_t eq = item.find('=');
    if (eq == std::string::npos || eq == 0) {
      return absl::InvalidArgumentError(
          "--metadata must be key=value pairs separated by commas");
    }
    if (!metadata.emplace(item.substr(0, eq), item.substr(eq + 1)).second) {
      return absl::InvalidArgumentError("--metadata repeats a key");
    }
  }
  return metadata;
}

// --rate-limits "burst:5:1,hourly:500:3600" -> named limits ("" is none).
// The server checks the values; only the form is checked here.
absl::StatusOr<std::vector<lumo::keys::v1::RateLimit>> ParseRateLimits(
    const ParsedArgs& args) {
  std::vector<lumo::keys::v1::RateLimit> limits;
  for (const std::string& item : SplitList(args.Get("rate-limits"))) {
    std::vector<std::string> parts = absl::StrSplit(item, ':');
    lumo::keys::v1::RateLimit limit;
    int64_t count = 0;
    int64_t seconds = 0;
    if (parts.size() != 3 || parts[0].empty() ||
        !absl::SimpleAtoi(parts[1], &count) ||
        !absl::SimpleAtoi(parts[2], &seconds)) {
      return absl::InvalidArgumentError(
          "--rate-limits must be name:limit:seconds items separated by "
          "commas, e.g. burst:5:1,hourly:500:3600");
    }
    limit.set_name(parts[0]);
    limit.set_limit(count);
    limit.set_duration_seconds(seconds);
    limits.push_back(std::move(limit));
  }
  return limits;
}

absl::StatusOr<google::protobuf::Timestamp> ParseRfc3339(
    const ParsedArgs& args, absl::string_view option) {
  const std::string text = args.Get(option);
  absl::Time time;
  std::string error;
  if (!absl::ParseTime(absl::RFC3339_full, text, &time, &error)) {
    return absl::InvalidArgumentError(
        absl::StrCat("--", option,
                     " must be an RFC 3339 time such as "
                     "2030-01-01T00:00:00Z, not \"",
                     text, "\""));
  }
  google::protobuf::Timestamp timestamp;
  const absl::Duration since_epoch = time - absl::UnixEpoch();
  timestamp.set_seconds(absl::ToInt64Seconds(since_epoch));
  timestamp.set_nanos(static_cast<int32_t>(absl::ToInt64Nanoseconds(
      since_epoch - absl::Seconds(timestamp.seconds()))));
  return timestamp;
}

// The required, non-empty --scopes list.
absl::StatusOr<std::vector<std::string>> RequiredScopes(
    const ParsedArgs& args) {
  std::vector<std::string> scopes = SplitList(args.Get("scopes"));
  if (scopes.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "`", args.command->name, "` needs --scopes (e.g. admin:read)"));
  }
  return scopes;
}

absl::Status RequireOption(const ParsedArgs& args, absl::string_view option) {
  if (args.Get(option).empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat("`", args.command->name, "` needs --", option));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::string> RequireTenant(const Context& ctx) {
  if (ctx.settings.tenant.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "`", ctx.args.command->name, "` needs --tenant (or LUMOKEYS_TENANT)"));
  }
  return ctx.settings.tenant;
}

// --page and --limit (1-100) into `request`'s optional page and limit.
template <typename Request>
absl::Status SetPaging(const ParsedArgs& args, Request& request) {
  if (args.Has("page")) {
    absl::StatusOr<int64_t> page =
        ParseInteger(args, "page", 1, std::numeric_limits<int32_t>::max());
    if (!page.ok()) return page.status();
    request.set_page(static_cast<int32_t>(*page));
  }
  if (args.Has("limit")) {
    absl::StatusOr<int64_t> limit = ParseInteger(args, "limit", 1, 100);
    if (!limit.ok()) return limit.status();
    request.set_limit(static_cast<int32_t>(*limit));
  }
  return absl::OkStatus();
}

// Prints `message` as JSON or `human`, whichever the settings ask for.
int PrintReply(const Context& ctx, const google::protobuf::Message& message,
               const std::string& human) {
  if (ctx.settings.json) {
    absl::StatusOr<std::string> json = ToJsonLine(message);
    if (!json.ok()) return PrintRpcError(ctx.io, json.status());
    ctx.io.out << *json << "\n";
  } else {
    ctx.io.out << human;
  }
  ctx.io.out.flush();
  return kExitOk;
}

// Prints a reply that carries a secret shown once (a full key, a signing
// secret), plus `note` in human mode.
int PrintReplyWithSecret(const Context& ctx,
                         const google::protobuf::Message& message,
                         const std::string& human, bool has_secret,
                         absl::string_view note) {
  const int code = PrintReply(ctx, message, human);
  if (code == kExitOk && has_secret && !ctx.settings.json) {
    ctx.io.err << note << "\n";
  }
  return code;
}

int PrintReplyWithKey(const Context& ctx,
                      const google::protobuf::Message& message,
                      const std::string& human, bool has_key) {
  return PrintReplyWithSecret(ctx, message, human, has_key, kShownOnceNote);
}

// Builds a client with the options common to every command.
ClientOptions BaseOptions(const Context& ctx) {
  ClientOptions options;
  options.address = ctx.settings.address;
  options.timeout = ctx.settings.timeout;
  // TLS: environment only, see `lumokeys --help`.
  options.tls_ca_file = ctx.env("LUMOKEYS_TLS_CA_FILE").value_or("");
  options.tls_cert_file = ctx.env("LUMOKEYS_TLS_CERT_FILE").value_or("");
  options.tls_key_file = ctx.env("LUMOKEYS_TLS_KEY_FILE").value_or("");
  options.tls_server_name = ctx.env("LUMOKEYS_TLS_SERVER_NAME").value_or("");
  return options;
}

// Credential loaders report through `warnings`; print them.
void PrintWarnings(const Context& ctx,
                   const std::vector<std::string>& warnings) {
  for (const std::string& warning : warnings) ctx.io.err << warning << "\n";
}

absl::StatusOr<std::unique_ptr<Client>> ClientWithApiKey(const Context& ctx) {
  std::vector<std::string> warnings;
  absl::StatusOr<std::string> key =
      LoadApiKey(ctx.args.globals, ctx.env, warnings);
  PrintWarnings(ctx, warnings);
  if (!key.ok()) return key.status();
  for (char c : *key) {
    if (!absl::ascii_isgraph(static_cast<unsigned char>(c))) {
      return absl::InvalidArgumentError(
          "the API key contains spaces or control characters");
    }
  }
  ClientOptions options = BaseOptions(ctx);
  options.api_key = *std::move(key);
  return ctx.make_client(std::move(options));
}

absl::StatusOr<std::unique_ptr<Client>> ClientWithOperatorToken(
    const Context& ctx) {
  std::vector<std::string> warnings;
  absl::StatusOr<std::string> token =
      LoadOperatorToken(ctx.args.globals, ctx.env, warnings);
  PrintWarnings(ctx, warnings);
  if (!token.ok()) return token.status();
  ClientOptions options = BaseOptions(ctx);
  options.operator_token = *std::move(token);
  return ctx.make_client(std::move(options));
}

absl::StatusOr<std::unique_ptr<Client>> ClientWithServiceToken(
    const Context& ctx) {
  std::vector<std::string> warnings;
  absl::StatusOr<std::string> token =
      LoadServiceToken(ctx.args.globals, ctx.env, warnings);
  PrintWarnings(ctx, warnings);
  if (!token.ok()) return token.status();
  ClientOptions options = BaseOptions(ctx);
  options.service_token = *std::move(token);
  return ctx.make_client(std::move(options));
}

// Local (pre-call) failures are usage errors; call failures RPC errors.
#define LUMO_CLI_USAGE_OR(expr)                   \
  if (absl::Status _s = (expr); !_s.ok()) {       \
    return PrintUsageError(ctx.io, _s.message()); \
  }

#define LUMO_CLI_ASSIGN_OR_USAGE(lhs, expr)                      \
  auto lhs##_or = (expr);                                        \
  if (!lhs##_or.ok()) {                                          \
    return PrintUsageError(ctx.io, lhs##_or.status().message()); \
  }                                                              \
  auto lhs = *std::move(lhs##_or)

// --admin-email / --admin-password-file into a
// SetPortalAdminRequest (nothing to do without --admin-email). The password
// is the first line of the file (`-`: stdin) or a generated one.
int ReadPortalAdmin(const Context& ctx, const std::string& slug,
                    lumo::portal::v1::SetPortalAdminRequest* admin,
                    bool* generated) {
  const ParsedArgs& args = ctx.args;
  if (!args.Has("admin-email")) {
    if (args.Has("admin-password-file")) {
      return PrintUsageError(ctx.io,
                             "--admin-password-file needs --admin-email");
    }
    return kExitOk;
  }
  admin->set_tenant_slug(slug);
  admin->set_email(args.Get("admin-email"));
  if (args.Has("admin-password-file")) {
    const std::string file = args.Get("admin-password-file");
    std::string password;
    if (file == "-") {
      std::getline(ctx.io.in, password);
    } else {
      std::ifstream in(file);
      if (!in) return PrintUsageError(ctx.io, "cannot read the password file");
      std::getline(in, password);
    }
    password = std::string(absl::StripTrailingAsciiWhitespace(password));
    if (absl::Status ok = lumo::core::ValidatePassword(password); !ok.ok()) {
      return PrintUsageError(ctx.io, ok.message());
    }
    admin->set_password(password);
  } else {
    absl::StatusOr<std::string> password = lumo::core::GeneratePassword();
    if (!password.ok()) return PrintRpcError(ctx.io, password.status());
    admin->set_password(*password);
    *generated = true;
  }
  return kExitOk;
}

// Sets the portal admin and prints it (and a generated password, once).
int SetPortalAdmin(const Context& ctx, const lumo::client::Client& client,
                   const lumo::portal::v1::SetPortalAdminRequest& admin,
                   bool generated) {
  const auto user = client.SetPortalAdmin(admin);
  if (!user.ok()) return PrintRpcError(ctx.io, user.status());
  if (ctx.settings.json) {
    lumo::portal::v1::SetPortalAdminRequest shown;
    shown.set_tenant_slug(admin.tenant_slug());
    shown.set_email(user->email());
    if (generated) shown.set_password(admin.password());
    absl::StatusOr<std::string> json = ToJsonLine(shown);
    if (json.ok()) ctx.io.out << *json << "\n";
  } else {
    ctx.io.out << "portal admin: " << user->email() << " (" << user->id()
               << ")\n";
    if (generated) {
      ctx.io.out << "portal password: " << admin.password() << "\n";
      ctx.io.err << "The portal password is shown once; store it now.\n";
    }
    ctx.io.out << "portal login: /t/" << admin.tenant_slug() << "/login\n";
  }
  ctx.io.out.flush();
  return kExitOk;
}

int TenantSetAdmin(const Context& ctx) {
  lumo::portal::v1::SetPortalAdminRequest admin;
  bool generated = false;
  if (!ctx.args.Has("admin-email")) {
    return PrintUsageError(ctx.io, "`tenant set-admin` needs --admin-email");
  }
  if (int code = ReadPortalAdmin(ctx, ctx.args.args[0], &admin, &generated);
      code != kExitOk) {
    return code;
  }
  LUMO_CLI_ASSIGN_OR_USAGE(client, ClientWithOperatorToken(ctx));
  return SetPortalAdmin(ctx, *client, admin, generated);
}

int TenantCreate(const Context& ctx) {
  const ParsedArgs& args = ctx.args;
  lumo::ops::v1::CreateTenantRequest request;
  request.set_slug(args.args[0]);
  request.set_name(args.Get("name"));
  if (args.Has("scopes")) {
    LUMO_CLI_ASSIGN_OR_USAGE(scopes, RequiredScopes(args));
    lumo::ops::v1::InitialKey* key = request.mutable_initial_key();
    key->set_name(args.Get("key-name", "Admin key"));
    for (std::string& scope : scopes) key->add_scopes(std::move(scope));
  } else if (args.Has("key-name")) {
    return PrintUsageError(ctx.io,
                           "--key-name needs --scopes (the first key is only "
                           "created when --scopes is given)");
  }
  // The password is settled before the tenant
  // exists, so a bad one fails the command without side effects.
  lumo::portal::v1::SetPortalAdminRequest admin;
  bool generated_password = false;
  if (int code =
          ReadPortalAdmin(ctx, request.slug(), &admin, &generated_password);
      code != kExitOk) {
    return code;
  }
  LUMO_CLI_ASSIGN_OR_USAGE(client, ClientWithOperatorToken(ctx));
  const auto reply = client->CreateTenant(request);
  if (!reply.ok()) return PrintRpcError(ctx.io, reply.status());
  std::string human = FormatTenant(reply->tenant());
  const bool has_key =
      reply->has_initial_key() && !reply->initial_key().key().empty();
  if (reply->has_initial_key()) {
    absl::StrAppend(&human, "\nfirst key:\n",
                    FormatApiKey(reply->initial_key(), /*show_key=*/true));
  }
  const int code = PrintReplyWithKey(ctx, *reply, human, has_key);
  if (code != kExitOk || admin.email().empty()) return code;
  return SetPortalAdmin(ctx, *client, admin, generated_password);
}

int TenantGet(const Context& ctx) {
  lumo::ops::v1::GetTenantRequest request;
  request.set_slug(ctx.args.args[0]);
  LUMO_CLI_ASSIGN_OR_USAGE(client, ClientWithOperatorToken(ctx));
  const auto reply = client->GetTenant(request);
  if (!reply.ok()) return PrintRpcError(ctx.io, reply.status());
  return PrintReply(ctx, *reply, FormatTenant(*reply));
}

int KeysCreate(const Context& ctx) {
  const ParsedArgs& args = ctx.args;
  LUMO_CLI_ASSIGN_OR_USAGE(tenant, RequireTenant(ctx));
  LUMO_CLI_USAGE_OR(RequireOption(args, "name"));
  LUMO_CLI_ASSIGN_OR_USAGE(scopes, RequiredScopes(args));
  lumo::keys::v1::CreateApiKeyRequest request;
  request.set_tenant_slug(tenant);
  request.set_name(args.Get("name"));
  for (std::string& scope : scopes) request.add_scopes(std::move(scope));
  if (args.Has("expires-at")) {
    LUMO_CLI_ASSIGN_OR_USAGE(expires, ParseRfc3339(args, "expires-at"));
    *request.mutable_expires_at() = expires;
  }
  for (std::string& cidr : SplitList(args.Get("allowed-cidrs"))) {
    request.add_allowed_cidrs(std::move(cidr));
  }
  if (args.Has("rate-limit")) {
    LUMO_CLI_ASSIGN_OR_USAGE(limit,
                             ParseInteger(args, "rate-limit", 0,
                                          std::numeric_limits<int32_t>::max()));
    request.set_rate_limit_per_minute(static_cast<int32_t>(limit));
  }
  LUMO_CLI_ASSIGN_OR_USAGE(rate_limits, ParseRateLimits(args));
  for (lumo::keys::v1::RateLimit& l : rate_limits) {
    *request.add_rate_limits() = std::move(l);
  }
  request.set_external_id(args.Get("external-id"));
  LUMO_CLI_ASSIGN_OR_USAGE(metadata, ParseMetadata(args));
  request.mutable_metadata()->insert(metadata.begin(), metadata.end());
  request.set_decoy(args.Has("decoy"));
  LUMO_CLI_ASSIGN_OR_USAGE(client, ClientWithApiKey(ctx));
  const auto reply = client->CreateApiKey(request);
  if (!reply.ok()) return PrintRpcError(ctx.io, reply.status());
  return PrintReplyWithKey(ctx, *reply, FormatApiKey(*reply, true),
                           !reply->key().empty());
}

int KeysList(const Context& ctx) {
  const ParsedArgs& args = ctx.args;
  LUMO_CLI_ASSIGN_OR_USAGE(tenant, RequireTenant(ctx));
  lumo::keys::v1::ListApiKeysRequest request;
  request.set_tenant_slug(tenant);
  LUMO_CLI_USAGE_OR(SetPaging(args, request));
  request.set_search(args.Get("search"));
  request.set_sort_by(args.Get("sort-by"));
  if (args.Has("sort-dir")) {
    std::string dir = absl::AsciiStrToUpper(args.Get("sort-dir"));
    if (dir != "ASC" && dir != "DESC") {
      return PrintUsageError(ctx.io, "--sort-dir must be ASC or DESC");
    }
    request.set_sort_dir(dir);
  }
  request.set_status(args.Get("status"));
  request.set_state(args.Get("state"));
  request.set_decoy(args.Has("decoy"));
  LUMO_CLI_ASSIGN_OR_USAGE(client, ClientWithApiKey(ctx));
  auto reply = client->ListApiKeys(request);
  if (!reply.ok()) return PrintRpcError(ctx.io, reply.status());
  // Lists never show a full key, even if a server sent one.
  for (lumo::keys::v1::ApiKey& key : *reply->mutable_data()) key.clear_key();
  return PrintReply(ctx, *reply, FormatApiKeyList(*reply));
}

// get, revoke, disable, enable: one key by id, shown without the full key.
template <typename Request, typename Method>
int KeyById(const Context& ctx, Method method) {
  LUMO_CLI_ASSIGN_OR_USAGE(tenant, RequireTenant(ctx));
  Request request;
  request.set_tenant_slug(tenant);
  request.set_id(ctx.args.args[0]);
  LUMO_CLI_ASSIGN_OR_USAGE(client, ClientWithApiKey(ctx));
  auto reply = ((*client).*method)(request);
  if (!reply.ok()) return PrintRpcError(ctx.io, reply.status());
  reply->clear_key();
  return PrintReply(ctx, *reply, FormatApiKey(*reply, /*show_key=*/false));
}

int KeysRotate(const Context& ctx) {
  LUMO_CLI_ASSIGN_OR_USAGE(tenant, RequireTenant(ctx));
  lumo::keys::v1::RotateApiKeyRequest request;
  request.set_tenant_slug(tenant);
  request.set_id(ctx.args.args[0]);
  if (ctx.args.Has("grace-period")) {
    constexpr int64_t kMaxGraceSeconds = 7 * 24 * 3600;
    LUMO_CLI_ASSIGN_OR_USAGE(
        grace, ParseInteger(ctx.args, "grace-period", 0, kMaxGraceSeconds));
    request.set_grace_period_seconds(grace);
  }
  if (ctx.args.Has("expires-at")) {
    LUMO_CLI_ASSIGN_OR_USAGE(expires, ParseRfc3339(ctx.args, "expires-at"));
    *request.mutable_expires_at() = expires;
  }
  LUMO_CLI_ASSIGN_OR_USAGE(client, ClientWithApiKey(ctx));
  const auto reply = client->RotateApiKey(request);
  if (!reply.ok()) return PrintRpcError(ctx.io, reply.status());
  return PrintReplyWithKey(ctx, *reply, FormatApiKey(*reply, true),
                           !reply->key().empty());
}

// keys update: every option given is a field of the update mask.
int KeysUpdate(const Context& ctx) {
  const ParsedArgs& args = ctx.args;
  LUMO_CLI_ASSIGN_OR_USAGE(tenant, RequireTenant(ctx));
  lumo::keys::v1::UpdateApiKeyRequest request;
  request.set_tenant_slug(tenant);
  request.set_id(args.args[0]);
  auto* mask = request.mutable_update_mask();
  if (args.Has("name")) {
    mask->add_paths("name");
    request.set_name(args.Get("name"));
  }
  if (args.Has("scopes")) {
    mask->add_paths("scopes");
    for (std::string& scope : SplitList(args.Get("scopes"))) {
      request.add_scopes(std::move(scope));
    }
  }
  if (args.Has("allowed-cidrs")) {
    mask->add_paths("allowed_cidrs");
    for (std::string& cidr : SplitList(args.Get("allowed-cidrs"))) {
      request.add_allowed_cidrs(std::move(cidr));
    }
  }
  if (args.Has("rate-limit")) {
    mask->add_paths("rate_limit_per_minute");
    LUMO_CLI_ASSIGN_OR_USAGE(limit,
                             ParseInteger(args, "rate-limit", 0,
                                          std::numeric_limits<int32_t>::max()));
    request.set_rate_limit_per_minute(static_cast<int32_t>(limit));
  }
  if (args.Has("rate-limits")) {
    mask->add_paths("rate_limits");
    LUMO_CLI_ASSIGN_OR_USAGE(rate_limits, ParseRateLimits(args));
    for (lumo::keys::v1::RateLimit& l : rate_limits) {
      *request.add_rate_limits() = std::move(l);
    }
  }
  if (args.Has("expires-at")) {
    mask->add_paths("expires_at");
    if (args.Get("expires-at") != "never") {
      LUMO_CLI_ASSIGN_OR_USAGE(expires, ParseRfc3339(args, "expires-at"));
      *request.mutable_expires_at() = expires;
    }
  }
  if (args.Has("external-id")) {
    mask->add_paths("external_id");
    request.set_external_id(args.Get("external-id"));
  }
  if (args.Has("metadata")) {
    mask->add_paths("metadata");
    LUMO_CLI_ASSIGN_OR_USAGE(metadata, ParseMetadata(args));
    request.mutable_metadata()->insert(metadata.begin(), metadata.end());
  }
  if (mask->paths().empty()) {
    return PrintUsageError(ctx.io,
                           "keys update: give at least one field to change");
  }
  LUMO_CLI_ASSIGN_OR_USAGE(client, ClientWithApiKey(ctx));
  auto reply = client->UpdateApiKey(request);
  if (!reply.ok()) return PrintRpcError(ctx.io, reply.status());
  reply->clear_key();
  return PrintReply(ctx, *reply, FormatApiKey(*reply, /*show_key=*/false));
}

int KeysDelete(const Context& ctx) {
  LUMO_CLI_ASSIGN_OR_USAGE(tenant, RequireTenant(ctx));
  lumo::keys::v1::DeleteApiKeyRequest request;
  request.set_tenant_slug(tenant);
  request.set_id(ctx.args.args[0]);
  LUMO_CLI_ASSIGN_OR_USAGE(client, ClientWithApiKey(ctx));
  const auto reply = client->DeleteApiKey(request);
  if (!reply.ok()) return PrintRpcError(ctx.io, reply.status());
  return PrintReply(ctx, *reply,
                    absl::StrCat("deleted key ", Sanitize(request.id()), "\n"));
}

// keys credits <id> [--set N [--refill AMOUNT:SECONDS] | --add N |
// --remove]: reads the balance, or changes it with the one option given.
int KeysCredits(const Context& ctx) {
  const ParsedArgs& args = ctx.args;
  LUMO_CLI_ASSIGN_OR_USAGE(tenant, RequireTenant(ctx));
  const int ops = args.Has("set") + args.Has("add") + args.Has("remove");
  if (ops > 1) {
    return PrintUsageError(
        ctx.io, "keys credits: give at most one of --set, --add, --remove");
  }
  if (args.Has("refill") && !args.Has("set")) {
    return PrintUsageError(ctx.io, "keys credits: --refill needs --set");
  }
  LUMO_CLI_ASSIGN_OR_USAGE(client, ClientWithApiKey(ctx));
  if (ops == 0) {
    lumo::keys::v1::GetApiKeyCreditsRequest request;
    request.set_tenant_slug(tenant);
    request.set_id(args.args[0]);
    auto reply = client->GetApiKeyCredits(request);
    if (!reply.ok()) return PrintRpcError(ctx.io, reply.status());
    return PrintReply(ctx, *reply, FormatCredits(*reply));
  }
  using Request = lumo::keys::v1::UpdateApiKeyCreditsRequest;
  Request request;
  request.set_tenant_slug(tenant);
  request.set_id(args.args[0]);
  // The server checks the ranges; only the form is checked here.
  constexpr int64_t kAny = std::numeric_limits<int64_t>::max();
  if (args.Has("set")) {
    request.set_op(Request::SET);
    LUMO_CLI_ASSIGN_OR_USAGE(value, ParseInteger(args, "set", -kAny, kAny));
    request.set_value(value);
    if (args.Has("refill")) {
      const std::vector<std::string> parts =
          absl::StrSplit(args.Get("refill"), ':');
      int64_t amount = 0;
      int32_t seconds = 0;
      if (parts.size() != 2 || !absl::SimpleAtoi(parts[0], &amount) ||
          !absl::SimpleAtoi(parts[1], &seconds)) {
        return PrintUsageError(
            ctx.io, "--refill must be AMOUNT:SECONDS, e.g. 1000:86400");
      }
      request.mutable_refill()->set_amount(amount);
      request.mutable_refill()->set_interval_seconds(seconds);
    }
  } else if (args.Has("add")) {
    request.set_op(Request::ADD);
    LUMO_CLI_ASSIGN_OR_USAGE(value, ParseInteger(args, "add", -kAny, kAny));
    request.set_value(value);
  } else {
    request.set_op(Request::REMOVE);
  }
  auto reply = client->UpdateApiKeyCredits(request);
  if (!reply.ok()) return PrintRpcError(ctx.io, reply.status());
  return PrintReply(ctx, *reply, FormatCredits(*reply));
}

int IdentityLimits(const Context& ctx) {
  LUMO_CLI_ASSIGN_OR_USAGE(tenant, RequireTenant(ctx));
  lumo::keys::v1::GetIdentityLimitsRequest request;
  request.set_tenant_slug(tenant);
  request.set_external_id(ctx.args.args[0]);
  LUMO_CLI_ASSIGN_OR_USAGE(client, ClientWithApiKey(ctx));
  auto reply = client->GetIdentityLimits(request);
  if (!reply.ok()) return PrintRpcError(ctx.io, reply.status());
  return PrintReply(ctx, *reply, FormatIdentityLimits(*reply));
}

int IdentitySetLimits(const Context& ctx) {
  const ParsedArgs& args = ctx.args;
  LUMO_CLI_ASSIGN_OR_USAGE(tenant, RequireTenant(ctx));
  if (!args.Has("rate-limits")) {
    return PrintUsageError(ctx.io,
                           "identity set-limits needs --rate-limits (\"\" "
                           "removes them)");
  }
  lumo::keys::v1::SetIdentityLimitsRequest request;
  request.set_tenant_slug(tenant);
  request.set_external_id(args.args[0]);
  LUMO_CLI_ASSIGN_OR_USAGE(rate_limits, ParseRateLimits(args));
  for (lumo::keys::v1::RateLimit& l : rate_limits) {
    *request.add_rate_limits() = std::move(l);
  }
  LUMO_CLI_ASSIGN_OR_USAGE(client, ClientWithApiKey(ctx));
  auto reply = client->SetIdentityLimits(request);
  if (!reply.ok()) return PrintRpcError(ctx.io, reply.status());
  return PrintReply(ctx, *reply, FormatIdentityLimits(*reply));
}

int KeysIssue(const Context& ctx) {
  const ParsedArgs& args = ctx.args;
  LUMO_CLI_ASSIGN_OR_USAGE(tenant, RequireTenant(ctx));
  LUMO_CLI_USAGE_OR(RequireOption(args, "name"));
  LUMO_CLI_ASSIGN_OR_USAGE(scopes, RequiredScopes(args));
  lumo::ops::v1::CreateTenantKeyRequest request;
  request.set_tenant_slug(tenant);
  request.set_name(args.Get("name"));
  for (std::string& scope : scopes) request.add_scopes(std::move(scope));
  if (args.Has("expires-at")) {
    LUMO_CLI_ASSIGN_OR_USAGE(expires, ParseRfc3339(args, "expires-at"));
    *request.mutable_expires_at() = expires;
  }
  LUMO_CLI_ASSIGN_OR_USAGE(client, ClientWithOperatorToken(ctx));
  const auto reply = client->CreateTenantKey(request);
  if (!reply.ok()) return PrintRpcError(ctx.io, reply.status());
  return PrintReplyWithKey(ctx, *reply, FormatApiKey(*reply, true),
                           !reply->key().empty());
}

int Verify(const Context& ctx) {
  const ParsedArgs& args = ctx.args;
  std::string key;
  if (!args.args.empty() && args.args[0] != "-") {
    key = args.args[0];
  } else {
    // One key on the first line; a pipe without a newline works too.
    std::getline(ctx.io.in, key);
    if (ctx.io.in.bad()) return PrintUsageError(ctx.io, "cannot read stdin");
  }
  absl::StripAsciiWhitespace(&key);
  if (key.empty()) {
    return PrintUsageError(ctx.io,
                           "no key given (pass KEY, or one line on stdin)");
  }
  lumo::auth::v1::VerifyApiKeyRequest request;
  request.set_key(std::move(key));
  request.set_tenant_slug(ctx.settings.tenant);
  for (std::string& scope : SplitList(args.Get("scopes"))) {
    request.add_required_scopes(std::move(scope));
  }
  request.set_client_ip(args.Get("client-ip"));
  LUMO_CLI_ASSIGN_OR_USAGE(client, ClientWithServiceToken(ctx));
  const auto reply = client->VerifyApiKey(request);
  if (!reply.ok()) return PrintRpcError(ctx.io, reply.status());
  const int code = PrintReply(ctx, *reply, FormatVerify(*reply));
  if (code != kExitOk) return code;
  return reply->valid() ? kExitOk : kExitInvalid;
}

int AuditVerify(const Context& ctx) {
  LUMO_CLI_ASSIGN_OR_USAGE(tenant, RequireTenant(ctx));
  lumo::ops::v1::VerifyAuditChainRequest request;
  request.set_tenant_slug(tenant);
  LUMO_CLI_ASSIGN_OR_USAGE(client, ClientWithOperatorToken(ctx));
  const auto reply = client->VerifyAuditChain(request);
  if (!reply.ok()) return PrintRpcError(ctx.io, reply.status());
  const int code =
      PrintReply(ctx, *reply, FormatChainVerification(tenant, *reply));
  if (code != kExitOk) return code;
  return reply->ok() ? kExitOk : kExitInvalid;
}

int AuditList(const Context& ctx) {
  const ParsedArgs& args = ctx.args;
  LUMO_CLI_ASSIGN_OR_USAGE(tenant, RequireTenant(ctx));
  lumo::audit::v1::ListAuditLogsRequest request;
  request.set_tenant_slug(tenant);
  request.set_action(args.Get("action"));
  if (args.Has("suspicious")) request.set_suspicious(true);
  LUMO_CLI_USAGE_OR(SetPaging(args, request));
  LUMO_CLI_ASSIGN_OR_USAGE(client, ClientWithApiKey(ctx));
  const auto reply = client->ListAuditLogs(request);
  if (!reply.ok()) return PrintRpcError(ctx.io, reply.status());
  return PrintReply(ctx, *reply, FormatAuditList(*reply));
}

// The range options shared by `usage key` and `usage tenant`.
template <typename Request>
absl::Status SetUsageRange(const ParsedArgs& args, Request& request) {
  request.set_granularity(args.Get("granularity"));
  if (args.Has("from")) {
    absl::StatusOr<google::protobuf::Timestamp> from =
        ParseRfc3339(args, "from");
    if (!from.ok()) return from.status();
    *request.mutable_from() = *from;
  }
  if (args.Has("to")) {
    absl::StatusOr<google::protobuf::Timestamp> to = ParseRfc3339(args, "to");
    if (!to.ok()) return to.status();
    *request.mutable_to() = *to;
  }
  return absl::OkStatus();
}

int UsageKey(const Context& ctx) {
  LUMO_CLI_ASSIGN_OR_USAGE(tenant, RequireTenant(ctx));
  lumo::audit::v1::GetApiKeyUsageRequest request;
  request.set_tenant_slug(tenant);
  request.set_id(ctx.args.args[0]);
  if (absl::Status s = SetUsageRange(ctx.args, request); !s.ok()) {
    return PrintUsageError(ctx.io, s.message());
  }
  LUMO_CLI_ASSIGN_OR_USAGE(client, ClientWithApiKey(ctx));
  const auto reply = client->GetApiKeyUsage(request);
  if (!reply.ok()) return PrintRpcError(ctx.io, reply.status());
  return PrintReply(ctx, *reply, FormatKeyUsage(*reply));
}

int UsageTenant(const Context& ctx) {
  LUMO_CLI_ASSIGN_OR_USAGE(tenant, RequireTenant(ctx));
  lumo::audit::v1::GetTenantUsageRequest request;
  request.set_tenant_slug(tenant);
  if (absl::Status s = SetUsageRange(ctx.args, request); !s.ok()) {
    return PrintUsageError(ctx.io, s.message());
  }
  if (ctx.args.Has("limit")) {
    LUMO_CLI_ASSIGN_OR_USAGE(limit, ParseInteger(ctx.args, "limit", 1, 100));
    request.set_limit(static_cast<int32_t>(limit));
  }
  LUMO_CLI_ASSIGN_OR_USAGE(client, ClientWithApiKey(ctx));
  const auto reply = client->GetTenantUsage(request);
  if (!reply.ok()) return PrintRpcError(ctx.io, reply.status());
  return PrintReply(ctx, *reply, FormatTenantUsage(*reply));
}

// The public id of a LumoKeys key (`lmk_<12 chars>_...`), else "".
std::string PublicKeyId(absl::string_view key) {
  constexpr size_t kIdLength = 12;
  if (!absl::StartsWith(key, "lmk_") || key.size() <= 4 + kIdLength ||
      key[4 + kIdLength] != '_') {
    return "";
  }
  return std::string(key.substr(4, kIdLength));
}

// True for the `api_key.used` events of tail's own polling calls.
bool IsOwnPoll(const lumo::audit::v1::AuditEvent& e,
               absl::string_view own_key_id) {
  if (own_key_id.empty() || e.action() != "api_key.used" ||
      e.actor().id() != own_key_id) {
    return false;
  }
  const auto& fields = e.metadata().fields();
  const auto it = fields.find("rpc");
  return it != fields.end() && it->second.string_value() ==
                                   "lumo.audit.v1.AuditService.ListAuditLogs";
}

int AuditTail(const Context& ctx) {
  const ParsedArgs& args = ctx.args;
  LUMO_CLI_ASSIGN_OR_USAGE(tenant, RequireTenant(ctx));
  int64_t lines = 10;
  if (args.Has("lines")) {
    LUMO_CLI_ASSIGN_OR_USAGE(n, ParseInteger(args, "lines", 0, 100));
    lines = n;
  }
  int64_t count = 0;  // 0: follow forever
  if (args.Has("count")) {
    LUMO_CLI_ASSIGN_OR_USAGE(
        n, ParseInteger(args, "count", 1, std::numeric_limits<int32_t>::max()));
    count = n;
  }
  double interval = 2;
  if (args.Has("interval")) {
    if (!absl::SimpleAtod(args.Get("interval"), &interval) ||
        !(interval >= 0.1 && interval <= 3600)) {
      return PrintUsageError(ctx.io,
                             "--interval must be a number of seconds from "
                             "0.1 to 3600");
    }
  }
  std::vector<std::string> warnings;
  const std::string own_key_id =
      PublicKeyId(LoadApiKey(ctx.args.globals, ctx.env, warnings).value_or(""));
  LUMO_CLI_ASSIGN_OR_USAGE(client, ClientWithApiKey(ctx));

  int64_t printed = 0;
  // Prints `e` unless it is one of our own polls; false once --count is
  // reached.
  auto emit = [&](const lumo::audit::v1::AuditEvent& e) {
    if (IsOwnPoll(e, own_key_id)) return true;
    if (ctx.settings.json) {
      absl::StatusOr<std::string> json = ToJsonLine(e);
      if (json.ok()) ctx.io.out << *json << "\n";
    } else {
      ctx.io.out << FormatAuditLine(e);
    }
    ctx.io.out.flush();
    return count == 0 || ++printed < count;
  };

  // The newest `lines` events, printed oldest first, and the position just
  // after everything committed then (always at least one call, to learn
  // it).
  std::string cursor;
  {
    lumo::audit::v1::ListAuditLogsRequest request;
    request.set_tenant_slug(tenant);
    request.set_limit(static_cast<int32_t>(std::max<int64_t>(lines, 1)));
    request.set_return_cursor(true);
    const auto reply = client->ListAuditLogs(request);
    if (!reply.ok()) return PrintRpcError(ctx.io, reply.status());
    cursor = reply->meta().next_cursor();
    for (int i = std::min<int>(reply->data_size(), lines) - 1; i >= 0; --i) {
      if (!emit(reply->data(i))) return kExitOk;
    }
  }
  // Each poll returns what committed after the last position, whatever the
  // order in which transactions committed: every event once.
  constexpr int kPollLimit = 100;
  for (;;) {
    lumo::audit::v1::ListAuditLogsRequest request;
    request.set_tenant_slug(tenant);
    request.set_limit(kPollLimit);
    request.set_after_cursor(cursor);
    const auto reply = client->ListAuditLogs(request);
    if (!reply.ok()) return PrintRpcError(ctx.io, reply.status());
    cursor = reply->meta().next_cursor();
    for (const lumo::audit::v1::AuditEvent& e : reply->data()) {
      if (!emit(e)) return kExitOk;
    }
    // A full page means more are waiting: ask again at once.
    if (reply->data_size() < kPollLimit) {
      std::this_thread::sleep_for(std::chrono::duration<double>(interval));
    }
  }
}

// --events "a,b" as a JSON list of strings ("" is the empty list: every
// type).
google::protobuf::ListValue EventTypeList(const ParsedArgs& args) {
  google::protobuf::ListValue list;
  for (std::string& type : SplitList(args.Get("events"))) {
    list.add_values()->set_string_value(std::move(type));
  }
  return list;
}

// --enabled true|false.
absl::StatusOr<bool> ParseEnabled(const ParsedArgs& args) {
  const std::string text = absl::AsciiStrToLower(args.Get("enabled"));
  if (text == "true") return true;
  if (text == "false") return false;
  return absl::InvalidArgumentError(absl::StrCat(
      "--enabled must be true or false, not \"", args.Get("enabled"), "\""));
}

int WebhooksList(const Context& ctx) {
  LUMO_CLI_ASSIGN_OR_USAGE(tenant, RequireTenant(ctx));
  lumo::webhooks::v1::ListWebhooksRequest request;
  request.set_tenant_slug(tenant);
  LUMO_CLI_USAGE_OR(SetPaging(ctx.args, request));
  LUMO_CLI_ASSIGN_OR_USAGE(client, ClientWithApiKey(ctx));
  auto reply = client->ListWebhooks(request);
  if (!reply.ok()) return PrintRpcError(ctx.io, reply.status());
  // Lists never show a secret, even if a server sent one.
  for (auto& w : *reply->mutable_data()) w.clear_secret();
  return PrintReply(ctx, *reply, FormatWebhookList(*reply));
}

int WebhooksCreate(const Context& ctx) {
  const ParsedArgs& args = ctx.args;
  LUMO_CLI_ASSIGN_OR_USAGE(tenant, RequireTenant(ctx));
  LUMO_CLI_USAGE_OR(RequireOption(args, "url"));
  lumo::webhooks::v1::CreateWebhookRequest request;
  request.set_tenant_slug(tenant);
  request.set_url(args.Get("url"));
  request.set_description(args.Get("description"));
  for (std::string& type : SplitList(args.Get("events"))) {
    request.add_event_types(std::move(type));
  }
  if (args.Has("enabled")) {
    LUMO_CLI_ASSIGN_OR_USAGE(enabled, ParseEnabled(args));
    request.set_enabled(enabled);
  }
  LUMO_CLI_ASSIGN_OR_USAGE(client, ClientWithApiKey(ctx));
  const auto reply = client->CreateWebhook(request);
  if (!reply.ok()) return PrintRpcError(ctx.io, reply.status());
  return PrintReplyWithSecret(ctx, *reply, FormatWebhook(*reply, true),
                              reply->has_secret(), kSecretShownOnceNote);
}

// get, delete, test: one endpoint by id.
template <typename Request>
Request WebhookRequest(absl::string_view tenant, const ParsedArgs& args) {
  Request request;
  request.set_tenant_slug(std::string(tenant));
  request.set_id(args.args[0]);
  return request;
}

int WebhooksGet(const Context& ctx) {
  LUMO_CLI_ASSIGN_OR_USAGE(tenant, RequireTenant(ctx));
  const auto request =
      WebhookRequest<lumo::webhooks::v1::GetWebhookRequest>(tenant, ctx.args);
  LUMO_CLI_ASSIGN_OR_USAGE(client, ClientWithApiKey(ctx));
  auto reply = client->GetWebhook(request);
  if (!reply.ok()) return PrintRpcError(ctx.io, reply.status());
  reply->clear_secret();
  return PrintReply(ctx, *reply, FormatWebhook(*reply, false));
}

// webhooks update: every option given changes that member only.
int WebhooksUpdate(const Context& ctx) {
  const ParsedArgs& args = ctx.args;
  LUMO_CLI_ASSIGN_OR_USAGE(tenant, RequireTenant(ctx));
  auto request =
      WebhookRequest<lumo::webhooks::v1::UpdateWebhookRequest>(tenant, args);
  bool any = false;
  if (args.Has("url")) {
    request.set_url(args.Get("url"));
    any = true;
  }
  if (args.Has("description")) {
    request.set_description(args.Get("description"));
    any = true;
  }
  if (args.Has("events")) {
    *request.mutable_event_types() = EventTypeList(args);
    any = true;
  }
  if (args.Has("enabled")) {
    LUMO_CLI_ASSIGN_OR_USAGE(enabled, ParseEnabled(args));
    request.set_enabled(enabled);
    any = true;
  }
  if (!any) {
    return PrintUsageError(
        ctx.io, "webhooks update: give at least one member to change");
  }
  LUMO_CLI_ASSIGN_OR_USAGE(client, ClientWithApiKey(ctx));
  auto reply = client->UpdateWebhook(request);
  if (!reply.ok()) return PrintRpcError(ctx.io, reply.status());
  reply->clear_secret();
  return PrintReply(ctx, *reply, FormatWebhook(*reply, false));
}

int WebhooksDelete(const Context& ctx) {
  LUMO_CLI_ASSIGN_OR_USAGE(tenant, RequireTenant(ctx));
  const auto request = WebhookRequest<lumo::webhooks::v1::DeleteWebhookRequest>(
      tenant, ctx.args);
  LUMO_CLI_ASSIGN_OR_USAGE(client, ClientWithApiKey(ctx));
  const auto reply = client->DeleteWebhook(request);
  if (!reply.ok()) return PrintRpcError(ctx.io, reply.status());
  return PrintReply(
      ctx, *reply,
      absl::StrCat("deleted webhook ", Sanitize(request.id()), "\n"));
}

int WebhooksRotateSecret(const Context& ctx) {
  LUMO_CLI_ASSIGN_OR_USAGE(tenant, RequireTenant(ctx));
  auto request = WebhookRequest<lumo::webhooks::v1::RotateWebhookSecretRequest>(
      tenant, ctx.args);
  if (ctx.args.Has("grace-period")) {
    constexpr int64_t kMaxGraceSeconds = 7 * 24 * 3600;
    LUMO_CLI_ASSIGN_OR_USAGE(
        grace, ParseInteger(ctx.args, "grace-period", 0, kMaxGraceSeconds));
    request.set_grace_period_seconds(grace);
  }
  LUMO_CLI_ASSIGN_OR_USAGE(client, ClientWithApiKey(ctx));
  const auto reply = client->RotateWebhookSecret(request);
  if (!reply.ok()) return PrintRpcError(ctx.io, reply.status());
  return PrintReplyWithSecret(ctx, *reply, FormatWebhook(*reply, true),
                              reply->has_secret(), kSecretShownOnceNote);
}

int WebhooksTest(const Context& ctx) {
  LUMO_CLI_ASSIGN_OR_USAGE(tenant, RequireTenant(ctx));
  const auto request =
      WebhookRequest<lumo::webhooks::v1::TestWebhookRequest>(tenant, ctx.args);
  LUMO_CLI_ASSIGN_OR_USAGE(client, ClientWithApiKey(ctx));
  const auto reply = client->TestWebhook(request);
  if (!reply.ok()) return PrintRpcError(ctx.io, reply.status());
  return PrintReply(ctx, *reply, FormatWebhookDelivery(*reply));
}

int WebhooksDeliveries(const Context& ctx) {
  LUMO_CLI_ASSIGN_OR_USAGE(tenant, RequireTenant(ctx));
  auto request =
      WebhookRequest<lumo::webhooks::v1::ListWebhookDeliveriesRequest>(
          tenant, ctx.args);
  LUMO_CLI_USAGE_OR(SetPaging(ctx.args, request));
  request.set_status(ctx.args.Get("status"));
  LUMO_CLI_ASSIGN_OR_USAGE(client, ClientWithApiKey(ctx));
  const auto reply = client->ListWebhookDeliveries(request);
  if (!reply.ok()) return PrintRpcError(ctx.io, reply.status());
  return PrintReply(ctx, *reply, FormatWebhookDeliveryList(*reply));
}

int Health(const Context& ctx) {
  std::unique_ptr<Client> client = ctx.make_client(BaseOptions(ctx));
  const absl::Status status = client->CheckHealth();
  if (!status.ok()) return PrintRpcError(ctx.io, status);
  ctx.io.out << (ctx.settings.json ? "{\"status\":\"SERVING\"}\n"
                                   : "SERVING\n");
  return kExitOk;
}

#undef LUMO_CLI_USAGE_OR
#undef LUMO_CLI_ASSIGN_OR_USAGE

}  // namespace

ClientFactory DefaultClientFactory() {
  return [](ClientOptions options) {
    return std::make_unique<Client>(std::move(options));
  };
}

int RunCli(absl::Span<const std::string> argv, const EnvLookup& env,
           const ClientFactory& make_client, Io io) {
  if (argv.empty()) {
    io.err << Usage();
    return kExitUsage;
  }
  absl::StatusOr<ParsedArgs> parsed = ParseArgs(argv);
  if (!parsed.ok()) return PrintUsageError(io, parsed.status().message());
  if (parsed->globals.help) {
    if (parsed->command != nullptr) {
      io.out << CommandUsage(*parsed->command);
    } else if (!parsed->group.empty()) {
      io.out << GroupUsage(parsed->group);
    } else {
      io.out << Usage();
    }
    return kExitOk;
  }
  absl::StatusOr<Settings> settings = ResolveSettings(parsed->globals, env);
  if (!settings.ok()) return PrintUsageError(io, settings.status().message());

  const Context ctx{*parsed, *settings, env, make_client, io};
  const absl::string_view name = parsed->command->name;
  if (name == "tenant create") return TenantCreate(ctx);
  if (name == "tenant set-admin") return TenantSetAdmin(ctx);
  if (name == "tenant get") return TenantGet(ctx);
  if (name == "keys create") return KeysCreate(ctx);
  if (name == "keys list") return KeysList(ctx);
  if (name == "keys get") {
    return KeyById<lumo::keys::v1::GetApiKeyRequest>(ctx, &Client::GetApiKey);
  }
  if (name == "keys rotate") return KeysRotate(ctx);
  if (name == "keys revoke") {
    return KeyById<lumo::keys::v1::RevokeApiKeyRequest>(ctx,
                                                        &Client::RevokeApiKey);
  }
  if (name == "keys update") return KeysUpdate(ctx);
  if (name == "keys disable") {
    return KeyById<lumo::keys::v1::SetApiKeyDisabledRequest>(
        ctx, &Client::DisableApiKey);
  }
  if (name == "keys enable") {
    return KeyById<lumo::keys::v1::SetApiKeyDisabledRequest>(
        ctx, &Client::EnableApiKey);
  }
  if (name == "keys delete") return KeysDelete(ctx);
  if (name == "keys issue") return KeysIssue(ctx);
  if (name == "keys credits") return KeysCredits(ctx);
  if (name == "identity limits") return IdentityLimits(ctx);
  if (name == "identity set-limits") return IdentitySetLimits(ctx);
  if (name == "webhooks list") return WebhooksList(ctx);
  if (name == "webhooks create") return WebhooksCreate(ctx);
  if (name == "webhooks get") return WebhooksGet(ctx);
  if (name == "webhooks update") return WebhooksUpdate(ctx);
  if (name == "webhooks delete") return WebhooksDelete(ctx);
  if (name == "webhooks rotate-secret") return WebhooksRotateSecret(ctx);
  if (name == "webhooks test") return WebhooksTest(ctx);
  if (name == "webhooks deliveries") return WebhooksDeliveries(ctx);
  if (name == "verify") return Verify(ctx);
  if (name == "audit verify") return AuditVerify(ctx);
  if (name == "audit list") return AuditList(ctx);
  if (name == "audit tail") return AuditTail(ctx);
  if (name == "usage key") return UsageKey(ctx);
  if (name == "usage tenant") return UsageTenant(ctx);
  if (name == "health") return Health(ctx);
  return PrintUsageError(io, absl::StrCat("`", name, "` is not implemented"));
}

}  // namespace lumo::cli
