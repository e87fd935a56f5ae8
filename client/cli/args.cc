#include "cli/args.h"

#include <algorithm>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"

namespace lumo::cli {
namespace {

constexpr absl::string_view kProgram = "lumokeys";

struct GlobalSpec {
  absl::string_view name;
  absl::string_view value;  // empty: boolean
  absl::string_view help;
};

const std::vector<GlobalSpec>& GlobalSpecs() {
  static const auto* const specs = new std::vector<GlobalSpec>{
      {"address", "HOST:PORT",
       "server address (env LUMOKEYS_ADDRESS; default 127.0.0.1:50051)"},
      {"tenant", "SLUG",
       "tenant slug for `keys` and `verify` (env LUMOKEYS_TENANT)"},
      {"api-key-file", "FILE",
       "file holding the API key for `keys` commands (env "
       "LUMOKEYS_API_KEY_FILE; or env LUMOKEYS_API_KEY holding the key "
       "itself)"},
      {"operator-token-file", "FILE",
       "file holding the operator token for `tenant` and `keys issue` (env "
       "LUMOKEYS_OPERATOR_TOKEN_FILE)"},
      {"service-token-file", "FILE",
       "file holding the internal-service token for `verify` (env "
       "LUMOKEYS_SERVICE_TOKEN_FILE)"},
      {"timeout", "SECONDS",
       "deadline of each call (env LUMOKEYS_TIMEOUT; default 5)"},
      {"json", "", "print the reply as one line of proto3 JSON"},
      {"help", "", "show usage (also -h, or `lumokeys help`)"},
  };
  return *specs;
}

}  // namespace

const std::vector<CommandSpec>& Commands() {
  static const auto* const commands = new std::vector<CommandSpec>{
      {"tenant create",
       "<slug>",
       1,
       1,
       {{"name", "N", "display name (default: the slug)"},
        {"key-name", "N", "name of the first key (default \"Admin key\")"},
        {"scopes", "a,b", "also create a first API key with these scopes"},
        {"admin-email", "E", "also create the tenant's first portal admin"},
        {"admin-password-file", "F",
         "the admin's password (first line of F, `-` for stdin); default: "
         "a generated one, printed once"}},
       "create a tenant, its first API key when --scopes is given, and its "
       "first portal admin when --admin-email is given (operator)",
       "The first key and a generated admin password are printed once; store "
       "them right away."},
      {"tenant get", "<slug>", 1, 1, {}, "show a tenant (operator)", ""},
      {"tenant set-admin",
       "<slug>",
       1,
       1,
       {{"admin-email", "E", "the portal admin's email (required)"},
        {"admin-password-file", "F",
         "the password (first line of F, `-` for stdin); default: a "
         "generated one, printed once"}},
       "create a portal admin of the tenant, or set its password; ends its "
       "sessions (operator)",
       "A generated password is printed once; store it right away."},
      {"keys create",
       "",
       0,
       0,
       {{"name", "N", "key name, 1-100 characters (required)"},
        {"scopes", "a,b", "comma-separated scopes (required)"},
        {"expires-at", "RFC3339", "expiry, e.g. 2030-01-01T00:00:00Z"},
        {"allowed-cidrs", "c1,c2", "CIDRs the key may be used from"},
        {"rate-limit", "N", "requests per minute for this key (0 = none)"},
        {"rate-limits", "name:N:SECONDS,...",
         "named limits: N requests per SECONDS each (at most 10)"},
        {"external-id", "ID", "your own owner/service id for the key"},
        {"metadata", "k=v,k2=v2", "string metadata (at most 20 entries)"},
        {"decoy", "",
         "make a decoy: never valid; presenting it raises a critical alert"}},
       "create an API key in --tenant (API key with admin:write)",
       "The new key is printed once; store it right away."},
      {"keys list",
       "",
       0,
       0,
       {{"page", "N", "page number, from 1"},
        {"limit", "N", "keys per page (default 25, at most 100)"},
        {"search", "S", "substring of the name, or a key id / prefix"},
        {"sort-by", "F", "createdAt (default), name, lastUsedAt or expiresAt"},
        {"sort-dir", "ASC|DESC", "sort direction (default DESC)"},
        {"status", "S",
         "only keys with status active, revoked, expired or disabled"},
        {"state", "S",
         "only keys in state rotation_due, expiring, inactive or disabled"},
        {"decoy", "", "list the decoy keys (never listed otherwise)"}},
       "list the API keys of --tenant (API key with admin:read)",
       ""},
      {"keys get", "<id>", 1, 1, {}, "show one API key (admin:read)", ""},
      {"keys rotate",
       "<id>",
       1,
       1,
       {{"grace-period", "SECONDS",
         "keep the old secret valid this long (default 0: it stops "
         "working immediately)"},
        {"expires-at", "RFC3339", "new expiry; renews an expired key"}},
       "give a key a new secret (admin:write)",
       "The new key is printed once; store it right away."},
      {"keys revoke",
       "<id>",
       1,
       1,
       {},
       "revoke a key for good (admin:write)",
       ""},
      {"keys update",
       "<id>",
       1,
       1,
       {{"name", "N", "new name"},
        {"scopes", "a,b", "new scopes (no more than the caller holds)"},
        {"allowed-cidrs", "c1,c2", "new CIDRs (\"\" = any address)"},
        {"rate-limit", "N", "new requests per minute (0 = none)"},
        {"rate-limits", "name:N:SECONDS,...",
         "new named limits, replacing all (\"\" = none)"},
        {"expires-at", "RFC3339|never", "new expiry, or never"},
        {"external-id", "ID", "new owner/service id (\"\" = none)"},
        {"metadata", "k=v,k2=v2", "new metadata, replacing all (\"\" = none)"}},
       "edit a key: only the options given change (admin:write)",
       "A restricting edit holds on every replica when the command returns."},
      {"keys disable",
       "<id>",
       1,
       1,
       {},
       "pause a key: it fails verification until enabled (admin:write)",
       ""},
      {"keys enable",
       "<id>",
       1,
       1,
       {},
       "resume a disabled key (admin:write)",
       ""},
      {"keys delete", "<id>", 1, 1, {}, "delete a key (admin:write)", ""},
      {"keys credits",
       "<id>",
       1,
       1,
       {{"set", "N", "make the balance N credits (a new period starts)"},
        {"refill", "AMOUNT:SECONDS",
         "with --set: reset the balance to AMOUNT every SECONDS"},
        {"add", "N", "add N credits (negative: take them, stopping at 0)"},
        {"remove", "", "the key has no usage quota any more"}},
       "show a key's credits (admin:read), or change them with one of "
       "--set, --add, --remove (admin:write)",
       "A change holds on every replica when the command returns."},
      {"identity limits",
       "<external-id>",
       1,
       1,
       {},
       "show the rate limits shared by the keys with this external id "
       "(admin:read)",
       ""},
      {"identity set-limits",
       "<external-id>",
       1,
       1,
       {{"rate-limits", "name:N:SECONDS,...",
         "the identity's limits, replacing all (\"\" = none; required)"}},
       "set the rate limits shared by the keys with this external id "
       "(admin:write)",
       "The limits hold on every replica when the command returns."},
      {"keys issue",
       "",
       0,
       0,
       {{"name", "N", "key name (required)"},
        {"scopes", "a,b", "comma-separated scopes (required)"},
        {"expires-at", "RFC3339", "expiry, e.g. 2030-01-01T00:00:00Z"}},
       "issue a key for --tenant with any scopes (operator; e.g. a lost "
       "admin key)",
       "The new key is printed once; store it right away."},
      {"webhooks list",
       "",
       0,
       0,
       {{"page", "N", "page number, from 1"},
        {"limit", "N", "endpoints per page (default 25, at most 100)"}},
       "list the webhook endpoints of --tenant (admin:read or admin:webhooks)",
       ""},
      {"webhooks create",
       "",
       0,
       0,
       {{"url", "URL", "https URL deliveries are POSTed to (required)"},
        {"description", "D", "free text, at most 200 characters"},
        {"events", "a,b", "event types to receive (default: every type)"},
        {"enabled", "true|false", "deliver to it (default true)"}},
       "add a webhook endpoint to --tenant (admin:webhooks)",
       "The signing secret is printed once; store it right away."},
      {"webhooks get",
       "<id>",
       1,
       1,
       {},
       "show one webhook endpoint (admin:read or admin:webhooks)",
       ""},
      {"webhooks update",
       "<id>",
       1,
       1,
       {{"url", "URL", "new URL"},
        {"description", "D", "new description"},
        {"events", "a,b", "new event types (\"\" = every type)"},
        {"enabled", "true|false",
         "enable (resets the failure count) or disable"}},
       "change an endpoint: only the options given change (admin:webhooks)",
       ""},
      {"webhooks delete",
       "<id>",
       1,
       1,
       {},
       "delete an endpoint and its delivery log (admin:webhooks)",
       ""},
      {"webhooks rotate-secret",
       "<id>",
       1,
       1,
       {{"grace-period", "SECONDS",
         "the old secret also signs for this long (default 86400)"}},
       "give an endpoint a new signing secret (admin:webhooks)",
       "The new secret is printed once; store it right away."},
      {"webhooks test",
       "<id>",
       1,
       1,
       {},
       "send a signed ping to an endpoint (admin:webhooks)",
       ""},
      {"webhooks deliveries",
       "<id>",
       1,
       1,
       {{"status", "S",
         "only deliveries pending, delivered, failed or cancelled"},
        {"page", "N", "page number, from 1"},
        {"limit", "N", "deliveries per page (default 25, at most 100)"}},
       "show an endpoint's delivery log, newest first (admin:read or "
       "admin:webhooks)",
       ""},
      {"verify",
       "[KEY | -]",
       0,
       1,
       {{"scopes", "a,b", "scopes the key must grant"},
        {"client-ip", "IP", "client address to check against allowed CIDRs"}},
       "check a key (internal-service token); exit 0 valid, 1 invalid",
       "The key is read from the first line of stdin when KEY is `-` or "
       "omitted.\nPrefer stdin: a KEY argument is visible to other users in "
       "`ps`.\nWithout --tenant the key is accepted for any tenant."},
      {"audit list",
       "",
       0,
       0,
       {{"action", "A", "only events with this action (e.g. api_key.used)"},
        {"suspicious", "", "only suspicious events"},
        {"page", "N", "page number, from 1"},
        {"limit", "N", "events per page (default 25, at most 100)"}},
       "list the audit events of --tenant, newest first (API key with "
       "admin:audit or admin:read)",
       ""},
      {"audit tail",
       "",
       0,
       0,
       {{"lines", "N", "first print the N newest events (default 10, 0-100)"},
        {"interval", "SECONDS", "poll every SECONDS (default 2)"},
        {"count", "N", "stop after printing N events (default: never)"}},
       "print the newest audit events of --tenant, then follow new ones "
       "(API key with admin:audit or admin:read)",
       "The polling calls of `audit tail` are recorded like any call made\n"
       "with a key; tail does not print its own polls."},
      {"audit verify",
       "",
       0,
       0,
       {},
       "check the audit hash chain of --tenant (operator); exit 0 intact, "
       "1 broken (the first broken row is named)",
       ""},
      {"usage key",
       "<id>",
       1,
       1,
       {{"granularity", "hour|day", "bucket size (default hour)"},
        {"from", "RFC3339", "first bucket (default: 24 hours or 30 days ago)"},
        {"to", "RFC3339", "end of the range (default: the current bucket)"}},
       "one key's calls per hour or day by outcome (API key with admin:read "
       "or admin:audit)",
       "Times are UTC; the range is rounded to whole buckets."},
      {"usage tenant",
       "",
       0,
       0,
       {{"granularity", "hour|day", "bucket size (default hour)"},
        {"from", "RFC3339", "first bucket (default: 24 hours or 30 days ago)"},
        {"to", "RFC3339", "end of the range (default: the current bucket)"},
        {"limit", "N", "keys in each top list (default 10, at most 100)"}},
       "--tenant's calls per hour or day by outcome, and its busiest and "
       "most failing keys (API key with admin:read or admin:audit)",
       "Times are UTC; the range is rounded to whole buckets."},
      {"health", "", 0, 0, {}, "check that the server is SERVING", ""},
  };
  return *commands;
}

bool ParsedArgs::Has(absl::string_view option) const {
  return options.find(std::string(option)) != options.end();
}

std::string ParsedArgs::Get(absl::string_view option,
                            absl::string_view fallback) const {
  const auto it = options.find(std::string(option));
  return it == options.end() ? std::string(fallback) : it->second;
}

namespace {

const GlobalSpec* FindGlobal(absl::string_view name) {
  for (const GlobalSpec& spec : GlobalSpecs()) {
    if (spec.name == name) return &spec;
  }
  return nullptr;
}

const OptionSpec* FindOption(const CommandSpec& command,
                             absl::string_view name) {
  for (const OptionSpec& spec : command.options) {
    if (spec.name == name) return &spec;
  }
  return nullptr;
}

bool IsGroup(absl::string_view word) {
  for (const CommandSpec& command : Commands()) {
    if (absl::StartsWith(command.name, absl::StrCat(word, " "))) return true;
  }
  return false;
}

const CommandSpec* FindCommand(absl::string_view name) {
  for (const CommandSpec& command : Commands()) {
    if (command.name == name) return &command;
  }
  return nullptr;
}

std::optional<std::string>* GlobalSlot(GlobalFlags& globals,
                                       absl::string_view name) {
  if (name == "address") return &globals.address;
  if (name == "tenant") return &globals.tenant;
  if (name == "api-key-file") return &globals.api_key_file;
  if (name == "operator-token-file") return &globals.operator_token_file;
  if (name == "service-token-file") return &globals.service_token_file;
  if (name == "timeout") return &globals.timeout;
  return nullptr;
}

std::string SubcommandList(absl::string_view group) {
  std::vector<std::string> subs;
  for (const CommandSpec& command : Commands()) {
    if (absl::StartsWith(command.name, absl::StrCat(group, " "))) {
      subs.emplace_back(command.name.substr(group.size() + 1));
    }
  }
  return absl::StrJoin(subs, ", ");
}

// `text` word-wrapped to kWidth columns; continuation lines (and the first,
// when `first_column` is past the indent) start at column `indent`.
constexpr size_t kWidth = 79;

std::string Wrap(absl::string_view text, size_t first_column, size_t indent) {
  std::string out;
  size_t column = first_column;
  if (column > indent) {
    out = absl::StrCat("\n", std::string(indent, ' '));
    column = indent;
  } else {
    out = std::string(indent - column, ' ');
    column = indent;
  }
  bool line_empty = true;
  for (absl::string_view word : absl::StrSplit(text, ' ', absl::SkipEmpty())) {
    if (!line_empty && column + 1 + word.size() > kWidth) {
      absl::StrAppend(&out, "\n", std::string(indent, ' '));
      column = indent;
      line_empty = true;
    }
    if (!line_empty) {
      absl::StrAppend(&out, " ");
      ++column;
    }
    absl::StrAppend(&out, word);
    column += word.size();
    line_empty = false;
  }
  return out;
}

std::string OptionLine(absl::string_view name, absl::string_view value,
                       absl::string_view help) {
  constexpr size_t kHelpColumn = 28;
  std::string flag = absl::StrCat("    --", name);
  if (!value.empty()) absl::StrAppend(&flag, " ", value);
  // The help starts at kHelpColumn, on the next line if the flag is too long
  // to leave two spaces.
  const size_t column =
      flag.size() + 2 <= kHelpColumn ? flag.size() : kHelpColumn + 1;
  return absl::StrCat(flag, Wrap(help, column, kHelpColumn), "\n");
}

std::string CommandSynopsis(const CommandSpec& command) {
  std::string line = absl::StrCat("  ", kProgram, " ", command.name);
  if (!command.args.empty()) absl::StrAppend(&line, " ", command.args);
  if (!command.options.empty()) absl::StrAppend(&line, " [options]");
  absl::StrAppend(&line, "\n", Wrap(command.summary, 0, 6), "\n");
  for (const OptionSpec& option : command.options) {
    absl::StrAppend(&line, OptionLine(option.name, option.value, option.help));
  }
  return line;
}

std::string GlobalUsage() {
  std::string text = "Global flags (allowed anywhere on the line):\n";
  for (const GlobalSpec& spec : GlobalSpecs()) {
    absl::StrAppend(&text, OptionLine(spec.name, spec.value, spec.help));
  }
  absl::StrAppend(
      &text,
      "\nThere is deliberately no --api-key flag: command-line arguments are\n"
      "visible to every user in `ps`. Put the key in a file readable only by\n"
      "you (--api-key-file) or in the environment (LUMOKEYS_API_KEY).\n"
      "Token files hold one line; a trailing newline is ignored.\n"
      "\nTLS (environment only): LUMOKEYS_TLS_CA_FILE (PEM CA of the server\n"
      "certificate; unset: plaintext), LUMOKEYS_TLS_CERT_FILE and\n"
      "LUMOKEYS_TLS_KEY_FILE (client certificate for the mTLS port),\n"
      "LUMOKEYS_TLS_SERVER_NAME (expected certificate name, default: the\n"
      "address's host).\n"
      "\nExit status: 0 ok (verify: valid), 1 verify: invalid or audit\n"
      "verify: chain broken, 2 usage or configuration error, 3 the call\n"
      "failed (`error: CODE: message`).\n");
  return text;
}

}  // namespace

std::string Usage() {
  std::string text = absl::StrCat("Usage: ", kProgram,
                                  " [global flags] <command> [options]\n\n"
                                  "Commands:\n");
  for (const CommandSpec& command : Commands()) {
    absl::StrAppend(&text, CommandSynopsis(command));
  }
  absl::StrAppend(&text, "\n", GlobalUsage());
  return text;
}

std::string CommandUsage(const CommandSpec& command) {
  std::string text = absl::StrCat("Usage:\n", CommandSynopsis(command));
  if (!command.details.empty()) {
    absl::StrAppend(&text, "\n", command.details, "\n");
  }
  absl::StrAppend(&text, "\n", GlobalUsage());
  return text;
}

std::string GroupUsage(absl::string_view group) {
  std::string text = "Usage:\n";
  for (const CommandSpec& command : Commands()) {
    if (absl::StartsWith(command.name, absl::StrCat(group, " "))) {
      absl::StrAppend(&text, CommandSynopsis(command));
    }
  }
  absl::StrAppend(&text, "\n", GlobalUsage());
  return text;
}

absl::StatusOr<ParsedArgs> ParseArgs(absl::Span<const std::string> args) {
  ParsedArgs parsed;
  // Words naming the command, before it is complete.
  std::string group;
  bool only_args = false;
  bool help_word = false;

  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& arg = args[i];
    const bool is_flag = !only_args && absl::StartsWith(arg, "-") && arg != "-";
    if (!only_args && arg == "--") {
      only_args = true;
      continue;
    }
    if (is_flag) {
      if (arg == "-h") {
        parsed.globals.help = true;
        continue;
      }
      if (!absl::StartsWith(arg, "--")) {
        return absl::InvalidArgumentError(absl::StrCat("unknown flag ", arg));
      }
      absl::string_view body = absl::string_view(arg).substr(2);
      std::optional<std::string> value;
      if (const size_t eq = body.find('='); eq != absl::string_view::npos) {
        value = std::string(body.substr(eq + 1));
        body = body.substr(0, eq);
      }
      const std::string name(body);
      absl::string_view value_name;
      bool global = false;
      if (const GlobalSpec* spec = FindGlobal(name)) {
        global = true;
        value_name = spec->value;
      } else if (parsed.command != nullptr) {
        const OptionSpec* spec = FindOption(*parsed.command, name);
        if (spec == nullptr) {
          return absl::InvalidArgumentError(absl::StrCat(
              "unknown flag --", name, " for `", parsed.command->name, "`"));
        }
        value_name = spec->value;
      } else {
        return absl::InvalidArgumentError(absl::StrCat(
            "unknown flag --", name, " (command flags go after the command)"));
      }
      if (value_name.empty()) {
        if (value.has_value()) {
          return absl::InvalidArgumentError(
              absl::StrCat("flag --", name, " takes no value"));
        }
        value = "";
      } else if (!value.has_value()) {
        if (i + 1 >= args.size()) {
          return absl::InvalidArgumentError(absl::StrCat(
              "flag --", name, " needs a value (", value_name, ")"));
        }
        value = args[++i];
      }
      if (global) {
        if (name == "json") {
          parsed.globals.json = true;
        } else if (name == "help") {
          parsed.globals.help = true;
        } else {
          std::optional<std::string>* slot = GlobalSlot(parsed.globals, name);
          if (slot->has_value()) {
            return absl::InvalidArgumentError(
                absl::StrCat("flag --", name, " given twice"));
          }
          *slot = std::move(*value);
        }
      } else {
        if (!parsed.options.emplace(name, std::move(*value)).second) {
          return absl::InvalidArgumentError(
              absl::StrCat("flag --", name, " given twice"));
        }
      }
      continue;
    }

    // A word: part of the command name, or an argument of the command.
    if (parsed.command != nullptr) {
      parsed.args.push_back(arg);
      continue;
    }
    if (help_word) {
      // `lumokeys help keys create`: collect the words to look up.
      group = group.empty() ? arg : absl::StrCat(group, " ", arg);
      continue;
    }
    if (group.empty()) {
      if (arg == "help") {
        help_word = true;
        parsed.globals.help = true;
        continue;
      }
      if (IsGroup(arg)) {
        group = arg;
        continue;
      }
      if (const CommandSpec* command = FindCommand(arg)) {
        parsed.command = command;
        continue;
      }
      return absl::InvalidArgumentError(
          absl::StrCat("unknown command `", arg, "`"));
    }
    const CommandSpec* command = FindCommand(absl::StrCat(group, " ", arg));
    if (command == nullptr) {
      return absl::InvalidArgumentError(
          absl::StrCat("unknown command `", group, " ", arg,
                       "` (expected one of: ", SubcommandList(group), ")"));
    }
    parsed.command = command;
    group.clear();
  }

  if (help_word && parsed.command == nullptr && !group.empty()) {
    // Resolve `help <group> [<sub>]`.
    if (const CommandSpec* command = FindCommand(group)) {
      parsed.command = command;
      group.clear();
    } else if (!IsGroup(group)) {
      return absl::InvalidArgumentError(
          absl::StrCat("unknown command `", group, "`"));
    }
  }
  parsed.group = group;
  if (parsed.globals.help) return parsed;

  if (parsed.command == nullptr) {
    if (!group.empty()) {
      return absl::InvalidArgumentError(absl::StrCat(
          "`", group, "` needs a subcommand (one of: ", SubcommandList(group),
          ")"));
    }
    return absl::InvalidArgumentError("no command given");
  }
  const int n = static_cast<int>(parsed.args.size());
  if (n < parsed.command->min_args) {
    return absl::InvalidArgumentError(absl::StrCat(
        "`", parsed.command->name, "` needs ", parsed.command->args));
  }
  if (n > parsed.command->max_args) {
    return absl::InvalidArgumentError(
        absl::StrCat("too many arguments for `", parsed.command->name, "`"));
  }
  return parsed;
}

}  // namespace lumo::cli
