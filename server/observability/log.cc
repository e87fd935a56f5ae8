#include "server/observability/log.h"

#include <errno.h>
#include <unistd.h>

#include <atomic>
#include <cmath>
#include <cstdio>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"

namespace lumo::log {
namespace {

std::atomic<int> min_level{static_cast<int>(Level::kInfo)};
std::atomic<int> output_fd{STDERR_FILENO};

void WriteAll(int fd, absl::string_view data) {
  while (!data.empty()) {
    const ssize_t n = ::write(fd, data.data(), data.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      return;  // Nowhere to report a failing log.
    }
    data.remove_prefix(static_cast<size_t>(n));
  }
}

}  // namespace

bool ParseLevel(absl::string_view text, Level* level) {
  if (text == "debug") {
    *level = Level::kDebug;
  } else if (text == "info") {
    *level = Level::kInfo;
  } else if (text == "warning") {
    *level = Level::kWarning;
  } else if (text == "error") {
    *level = Level::kError;
  } else {
    return false;
  }
  return true;
}

const char* LevelName(Level level) {
  switch (level) {
    case Level::kDebug:
      return "debug";
    case Level::kInfo:
      return "info";
    case Level::kWarning:
      return "warning";
    case Level::kError:
      return "error";
    case Level::kFatal:
      return "fatal";
  }
  return "info";
}

void SetMinLevel(Level level) {
  min_level.store(static_cast<int>(level), std::memory_order_relaxed);
}

Level MinLevel() {
  return static_cast<Level>(min_level.load(std::memory_order_relaxed));
}

bool Enabled(Level level) {
  return level == Level::kFatal ||
         static_cast<int>(level) >= min_level.load(std::memory_order_relaxed);
}

void SetOutputFd(int fd) { output_fd.store(fd, std::memory_order_relaxed); }

namespace {

// The length of the valid UTF-8 sequence of two or more bytes starting at
// s[pos], or 0 when none starts there (RFC 3629: no overlongs, no
// surrogates, nothing above U+10FFFF).
size_t MultiByteSequenceAt(absl::string_view s, size_t pos) {
  const auto byte = [&](size_t i) {
    return static_cast<unsigned char>(s[pos + i]);
  };
  const unsigned char lead = byte(0);
  size_t length;
  unsigned char low = 0x80, high = 0xBF;  // bounds of the second byte
  if (lead >= 0xC2 && lead <= 0xDF) {
    length = 2;
  } else if (lead >= 0xE0 && lead <= 0xEF) {
    length = 3;
    if (lead == 0xE0) low = 0xA0;   // overlong
    if (lead == 0xED) high = 0x9F;  // surrogates
  } else if (lead >= 0xF0 && lead <= 0xF4) {
    length = 4;
    if (lead == 0xF0) low = 0x90;   // overlong
    if (lead == 0xF4) high = 0x8F;  // above U+10FFFF
  } else {
    return 0;
  }
  if (pos + length > s.size()) return 0;
  if (byte(1) < low || byte(1) > high) return 0;
  for (size_t i = 2; i < length; ++i) {
    if ((byte(i) & 0xC0) != 0x80) return 0;
  }
  return length;
}

}  // namespace

void AppendJsonString(std::string& out, absl::string_view s) {
  static constexpr char kHex[] = "0123456789abcdef";
  out += '"';
  size_t pos = 0;
  while (pos < s.size()) {
    const auto c = static_cast<unsigned char>(s[pos]);
    if (c >= 0x80) {
      if (const size_t length = MultiByteSequenceAt(s, pos); length > 0) {
        out.append(s.data() + pos, length);
        pos += length;
      } else {
        out += "\xEF\xBF\xBD";  // U+FFFD
        ++pos;
      }
      continue;
    }
    ++pos;
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      case '\t':
        out += "\\t";
        break;
      default:
        if (c < 0x20 || c == 0x7f) {
          out += "\\u00";
          out += kHex[c >> 4];
          out += kHex[c & 0xf];
        } else {
          out += static_cast<char>(c);
        }
    }
  }
  out += '"';
}

Line::Line(Level level, absl::string_view message) : enabled_(Enabled(level)) {
  if (!enabled_) return;
  text_.reserve(160);
  text_ = "{\"time\":\"";
  text_ += absl::FormatTime("%Y-%m-%dT%H:%M:%E6SZ", absl::Now(),
                            absl::UTCTimeZone());
  text_ += "\",\"level\":\"";
  text_ += LevelName(level);
  text_ += "\",\"msg\":";
  AppendJsonString(text_, message);
}

Line::~Line() {
  if (!enabled_) return;
  text_ += "}\n";
  WriteAll(output_fd.load(std::memory_order_relaxed), text_);
}

Line& Line::Str(absl::string_view key, absl::string_view value) {
  if (!enabled_) return *this;
  text_ += ',';
  AppendJsonString(text_, key);
  text_ += ':';
  AppendJsonString(text_, value);
  return *this;
}

Line& Line::Int(absl::string_view key, int64_t value) {
  if (!enabled_) return *this;
  text_ += ',';
  AppendJsonString(text_, key);
  absl::StrAppend(&text_, ":", value);
  return *this;
}

Line& Line::Num(absl::string_view key, double value) {
  if (!enabled_) return *this;
  text_ += ',';
  AppendJsonString(text_, key);
  if (std::isfinite(value)) {
    char buffer[32];
    snprintf(buffer, sizeof(buffer), ":%.6g", value);
    text_ += buffer;
  } else {
    text_ += ":null";  // JSON has no Inf/NaN.
  }
  return *this;
}

Line& Line::Bool(absl::string_view key, bool value) {
  if (!enabled_) return *this;
  text_ += ',';
  AppendJsonString(text_, key);
  text_ += value ? ":true" : ":false";
  return *this;
}

Line& Line::Raw(absl::string_view json_fields) {
  if (!enabled_ || json_fields.empty()) return *this;
  text_ += ',';
  text_.append(json_fields.data(), json_fields.size());
  return *this;
}

}  // namespace lumo::log
