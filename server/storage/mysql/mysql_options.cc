#include "server/storage/mysql/mysql_options.h"

#include <string>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"

namespace lumo::storage {
namespace {

constexpr absl::string_view kScheme = "mysql://";
constexpr absl::string_view kSyntax =
    " (expected mysql://user[:password]@host[:port][,host[:port]...]/"
    "database[?socket=...])";

absl::Status DsnError(absl::string_view what) {
  return absl::InvalidArgumentError(absl::StrCat("invalid MySQL DSN: ", what));
}

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// Decodes %XX escapes. `field` names the part in errors; the value is never
// echoed (it may be the password).
absl::StatusOr<std::string> PercentDecode(absl::string_view in,
                                          absl::string_view field) {
  std::string out;
  out.reserve(in.size());
  for (size_t i = 0; i < in.size(); ++i) {
    if (in[i] != '%') {
      out.push_back(in[i]);
      continue;
    }
    if (i + 2 >= in.size()) {
      return DsnError(
          absl::StrCat("malformed percent-encoding in the ", field));
    }
    int hi = HexValue(in[i + 1]);
    int lo = HexValue(in[i + 2]);
    if (hi < 0 || lo < 0) {
      return DsnError(
          absl::StrCat("malformed percent-encoding in the ", field));
    }
    out.push_back(static_cast<char>(hi * 16 + lo));
    i += 2;
  }
  return out;
}

absl::Status ParseDurationParam(absl::string_view key, absl::string_view value,
                                bool allow_zero, absl::Duration* out) {
  absl::Duration d;
  if (!absl::ParseDuration(value, &d) || d < absl::ZeroDuration() ||
      (!allow_zero && d == absl::ZeroDuration()) ||
      d == absl::InfiniteDuration()) {
    return DsnError(absl::StrCat("parameter ", key,
                                 " must be a positive duration such as 2s"));
  }
  *out = d;
  return absl::OkStatus();
}

absl::Status ParseIntParam(absl::string_view key, absl::string_view value,
                           int* out) {
  int n = 0;
  if (!absl::SimpleAtoi(value, &n) || n <= 0) {
    return DsnError(
        absl::StrCat("parameter ", key, " must be a positive integer"));
  }
  *out = n;
  return absl::OkStatus();
}

absl::Status ApplyParam(absl::string_view key, absl::string_view raw_value,
                        MysqlOptions* options) {
  absl::StatusOr<std::string> value =
      PercentDecode(raw_value, absl::StrCat("parameter ", key));
  if (!value.ok()) return value.status();
  if (key == "socket") {
    if (value->empty()) return DsnError("parameter socket is empty");
    options->unix_socket = *value;
    return absl::OkStatus();
  }
  if (key == "pool_size")
    return ParseIntParam(key, *value, &options->pool_size);
  if (key == "lock_wait_timeout") {
    return ParseIntParam(key, *value, &options->lock_wait_timeout_seconds);
  }
  if (key == "acquire_timeout") {
    return ParseDurationParam(key, *value, false, &options->acquire_timeout);
  }
  if (key == "connect_timeout") {
    return ParseDurationParam(key, *value, false, &options->connect_timeout);
  }
  if (key == "read_timeout") {
    return ParseDurationParam(key, *value, false, &options->read_timeout);
  }
  if (key == "write_timeout") {
    return ParseDurationParam(key, *value, false, &options->write_timeout);
  }
  if (key == "statement_timeout") {
    return ParseDurationParam(key, *value, true, &options->statement_timeout);
  }
  // Parameter names are not secret; echoing them helps fix typos.
  return DsnError(absl::StrCat("unknown parameter ", key));
}

// One `host[:port]` of the authority (port 3306 when absent).
absl::Status ParseHost(absl::string_view authority, MysqlHost* out) {
  absl::string_view host = authority;
  absl::string_view port;
  bool has_port = false;
  if (absl::StartsWith(authority, "[")) {
    size_t close = authority.find(']');
    if (close == absl::string_view::npos) {
      return DsnError("unterminated IPv6 host literal");
    }
    host = authority.substr(1, close - 1);
    absl::string_view after = authority.substr(close + 1);
    if (!after.empty()) {
      if (after[0] != ':') return DsnError("unexpected text after the host");
      port = after.substr(1);
      has_port = true;
    }
  } else if (size_t colon = authority.find(':');
             colon != absl::string_view::npos) {
    host = authority.substr(0, colon);
    port = authority.substr(colon + 1);
    has_port = true;
  }
  out->host = std::string(host);
  out->port = 3306;
  if (has_port) {
    int n = 0;
    if (!absl::SimpleAtoi(port, &n) || n < 1 || n > 65535) {
      return DsnError("port must be a number in 1..65535");
    }
    out->port = n;
  }
  return absl::OkStatus();
}

}  // namespace

bool IsValidDatabaseName(absl::string_view name) {
  if (name.empty() || name.size() > 64) return false;
  for (char c : name) {
    if (!absl::ascii_isalnum(static_cast<unsigned char>(c)) && c != '_') {
      return false;
    }
  }
  return true;
}

absl::StatusOr<MysqlOptions> ParseMysqlDsn(absl::string_view dsn) {
  if (!absl::StartsWith(dsn, kScheme)) {
    return DsnError(absl::StrCat("must start with mysql://", kSyntax));
  }
  absl::string_view rest = dsn.substr(kScheme.size());
  absl::string_view query;
  if (size_t q = rest.find('?'); q != absl::string_view::npos) {
    query = rest.substr(q + 1);
    rest = rest.substr(0, q);
  }
  // The last '@' ends the user info, so an unencoded '@' in the password
  // still parses.
  size_t at = rest.rfind('@');
  if (at == absl::string_view::npos) {
    return DsnError(absl::StrCat("missing user", kSyntax));
  }
  absl::string_view user_info = rest.substr(0, at);
  absl::string_view location = rest.substr(at + 1);

  MysqlOptions options;
  absl::string_view raw_user = user_info;
  absl::string_view raw_password;
  bool has_password = false;
  if (size_t colon = user_info.find(':'); colon != absl::string_view::npos) {
    raw_user = user_info.substr(0, colon);
    raw_password = user_info.substr(colon + 1);
    has_password = true;
  }
  absl::StatusOr<std::string> user = PercentDecode(raw_user, "user");
  if (!user.ok()) return user.status();
  if (user->empty()) return DsnError(absl::StrCat("missing user", kSyntax));
  options.user = *std::move(user);
  if (has_password) {
    absl::StatusOr<std::string> password =
        PercentDecode(raw_password, "password");
    if (!password.ok()) return password.status();
    options.password = *std::move(password);
  }

  absl::string_view authority = location;
  if (size_t slash = location.find('/'); slash != absl::string_view::npos) {
    authority = location.substr(0, slash);
    options.database = std::string(location.substr(slash + 1));
  }
  const std::vector<absl::string_view> hosts = absl::StrSplit(authority, ',');
  for (size_t i = 0; i < hosts.size(); ++i) {
    MysqlHost parsed;
    if (absl::Status s = ParseHost(hosts[i], &parsed); !s.ok()) return s;
    if (i == 0) {
      options.host = parsed.host;
      options.port = parsed.port;
    } else {
      if (parsed.host.empty()) return DsnError("an empty host in the list");
      options.other_hosts.push_back(std::move(parsed));
    }
  }

  if (!query.empty()) {
    for (absl::string_view param : absl::StrSplit(query, '&')) {
      if (param.empty()) continue;
      std::pair<absl::string_view, absl::string_view> kv =
          absl::StrSplit(param, absl::MaxSplits('=', 1));
      if (absl::Status s = ApplyParam(kv.first, kv.second, &options); !s.ok()) {
        return s;
      }
    }
  }
  if (options.host.empty()) {
    if (options.unix_socket.empty()) {
      return DsnError(absl::StrCat("missing host", kSyntax));
    }
    options.host = "localhost";
  }
  if (absl::Status s = ValidateMysqlOptions(options); !s.ok()) return s;
  return options;
}

absl::Status ValidateMysqlOptions(const MysqlOptions& options) {
  if (options.user.empty()) return DsnError("missing user");
  if (options.host.empty() && options.unix_socket.empty()) {
    return DsnError("missing host");
  }
  if (options.port < 1 || options.port > 65535) {
    return DsnError("port must be a number in 1..65535");
  }
  for (const MysqlHost& other : options.other_hosts) {
    if (other.host.empty()) return DsnError("an empty host in the list");
    if (other.port < 1 || other.port > 65535) {
      return DsnError("port must be a number in 1..65535");
    }
  }
  if (!options.other_hosts.empty() && !options.unix_socket.empty()) {
    return DsnError("a socket connection takes one host");
  }
  if (!options.database.empty() && !IsValidDatabaseName(options.database)) {
    return DsnError(
        "database name must be 1-64 characters of letters, digits and _");
  }
  if (options.pool_size < 1) return DsnError("pool_size must be positive");
  if (options.lock_wait_timeout_seconds < 1) {
    return DsnError("lock_wait_timeout must be positive");
  }
  for (absl::Duration d : {options.acquire_timeout, options.connect_timeout,
                           options.read_timeout, options.write_timeout}) {
    if (d <= absl::ZeroDuration() || d == absl::InfiniteDuration()) {
      return DsnError("timeouts must be positive and finite");
    }
  }
  if (options.statement_timeout < absl::ZeroDuration() ||
      options.statement_timeout == absl::InfiniteDuration()) {
    return DsnError("statement_timeout must be zero or positive and finite");
  }
  return absl::OkStatus();
}

std::string DescribeForLog(const MysqlOptions& options) {
  if (!options.unix_socket.empty()) {
    return absl::StrCat(options.user, "@unix:", options.unix_socket, "/",
                        options.database);
  }
  std::vector<std::string> hosts;
  for (const MysqlHost& host : AllHosts(options)) {
    hosts.push_back(HostForLog(host));
  }
  return absl::StrCat(options.user, "@", absl::StrJoin(hosts, ","), "/",
                      options.database);
}

std::vector<MysqlHost> AllHosts(const MysqlOptions& options) {
  std::vector<MysqlHost> hosts = {{options.host, options.port}};
  hosts.insert(hosts.end(), options.other_hosts.begin(),
               options.other_hosts.end());
  return hosts;
}

MysqlOptions OnHost(const MysqlOptions& options, const MysqlHost& host) {
  MysqlOptions one = options;
  one.host = host.host;
  one.port = host.port;
  one.other_hosts.clear();
  return one;
}

std::string HostForLog(const MysqlHost& host) {
  const bool ipv6 = absl::StrContains(host.host, ':');
  return absl::StrCat(ipv6 ? "[" : "", host.host, ipv6 ? "]" : "", ":",
                      host.port);
}

}  // namespace lumo::storage
