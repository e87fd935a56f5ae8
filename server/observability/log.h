// One-line JSON logs to stderr, shared by lumokeys-server and
// lumokeys-gateway:
//   {"time":"2026-11-27T14:15:56.123456Z","level":"info","msg":"...",...}
// `time` is RFC 3339 in UTC with microseconds; further fields follow in the
// order they were added. Every string is JSON-escaped (control characters as
// \uXXXX), so a value can never break the line or forge a field.
//
// Never pass a secret (API keys, tokens, passwords, cookies, Authorization
// headers) as a field: nothing here can tell one from other text.
//
// Thread-safety: everything here is thread-safe. A line is written with a
// single write(2), so concurrent lines do not interleave.
#ifndef LUMOKEYS_SERVER_OBSERVABILITY_LOG_H_
#define LUMOKEYS_SERVER_OBSERVABILITY_LOG_H_

#include <cstdint>
#include <string>

#include "absl/strings/string_view.h"

namespace lumo::log {

enum class Level {
  kDebug = 0,
  kInfo = 1,
  kWarning = 2,
  kError = 3,
  kFatal = 4
};

// "debug" | "info" | "warning" | "error" -> true and sets *level; else false.
// ("fatal" is not selectable: fatal lines are always written.)
bool ParseLevel(absl::string_view text, Level* level);
const char* LevelName(Level level);

// Lines below `level` are discarded. Default kInfo.
void SetMinLevel(Level level);
Level MinLevel();
bool Enabled(Level level);

// Where lines go: stderr's file descriptor by default (tests may redirect).
void SetOutputFd(int fd);

// Appends `s` to `out` as a JSON string literal (quotes included): `"` and
// `\` escaped, \n \r \t as such, other control bytes and DEL as \u00XX,
// valid UTF-8 sequences copied, and every byte that does not start a valid
// UTF-8 sequence (overlong, surrogate, above U+10FFFF, truncated) replaced
// by U+FFFD, so the result is always valid JSON text. The one JSON string
// writer of the log lines, the audit metadata and export, and the
// gateway's error bodies.
void AppendJsonString(std::string& out, absl::string_view s);

// Builds one line and writes it when destroyed, if its level is enabled:
//   lumo::log::Line(Level::kInfo, "serving").Str("listen", addr).Int("port",
//   p);
// When the level is disabled the field calls do nothing.
class Line {
 public:
  Line(Level level, absl::string_view message);
  ~Line();
  Line(const Line&) = delete;
  Line& operator=(const Line&) = delete;

  Line& Str(absl::string_view key, absl::string_view value);
  Line& Int(absl::string_view key, int64_t value);
  Line& Num(absl::string_view key, double value);
  Line& Bool(absl::string_view key, bool value);
  // Appends `json_fields` ("\"a\":1,\"b\":\"x\"") verbatim. Only for
  // fields the program built itself with proper escaping.
  Line& Raw(absl::string_view json_fields);

 private:
  bool enabled_;
  std::string text_;
};

// Shorthands for a message without fields.
inline void Debug(absl::string_view m) { Line(Level::kDebug, m); }
inline void Info(absl::string_view m) { Line(Level::kInfo, m); }
inline void Warning(absl::string_view m) { Line(Level::kWarning, m); }
inline void Error(absl::string_view m) { Line(Level::kError, m); }

}  // namespace lumo::log

#endif  // LUMOKEYS_SERVER_OBSERVABILITY_LOG_H_
