#include "gateway/http/wire.h"

#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"

namespace lumo::gateway::wire {
namespace {

constexpr HeadError Bad(absl::string_view message) {
  return HeadError{400, message};
}

bool IsDigit(char c) { return c >= '0' && c <= '9'; }

absl::string_view TrimSpTab(absl::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) {
    s.remove_prefix(1);
  }
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) {
    s.remove_suffix(1);
  }
  return s;
}

// Every CR must start a CRLF and every LF end one; no NUL anywhere.
HeadError CheckLineEndings(absl::string_view head) {
  for (size_t i = 0; i < head.size(); ++i) {
    const char c = head[i];
    if (c == '\0') return Bad("NUL byte in request head");
    if (c == '\r' && (i + 1 == head.size() || head[i + 1] != '\n')) {
      return Bad("bare CR in request head");
    }
    if (c == '\n' && (i == 0 || head[i - 1] != '\r')) {
      return Bad("bare LF in request head");
    }
  }
  return {};
}

HeadError ParseRequestLine(absl::string_view line, RequestHead* out) {
  const size_t sp1 = line.find(' ');
  if (sp1 == absl::string_view::npos) return Bad("malformed request line");
  const absl::string_view method = line.substr(0, sp1);
  if (!IsToken(method) || method.size() > kMaxMethodBytes) {
    return Bad("malformed request method");
  }
  const size_t sp2 = line.find(' ', sp1 + 1);
  if (sp2 == absl::string_view::npos) return Bad("malformed request line");
  const absl::string_view target = line.substr(sp1 + 1, sp2 - sp1 - 1);
  const absl::string_view version = line.substr(sp2 + 1);

  if (version == "HTTP/1.1") {
    out->version_minor = 1;
  } else if (version == "HTTP/1.0") {
    out->version_minor = 0;
  } else if (version.size() == 8 && absl::StartsWith(version, "HTTP/") &&
             IsDigit(version[5]) && version[6] == '.' && IsDigit(version[7])) {
    return HeadError{505, "only HTTP/1.0 and HTTP/1.1 are supported"};
  } else {
    return Bad("malformed HTTP version");
  }

  if (target.size() > kMaxTargetBytes) {
    return HeadError{414, "request-target too long"};
  }
  if (target.empty() || target.front() != '/') {
    return Bad("request-target must be origin-form (start with '/')");
  }
  for (char c : target) {
    const auto u = static_cast<unsigned char>(c);
    if (u <= 0x20 || u >= 0x7F || c == '#') {
      return Bad("invalid character in request-target");
    }
  }
  out->method = std::string(method);
  out->target = std::string(target);
  return {};
}

// Applies the fields that decide framing and connection handling.
HeadError ApplyField(absl::string_view name, absl::string_view value,
                     RequestHead* out, bool* close, int* hosts) {
  if (name == "content-length") {
    if (out->content_length.has_value()) {
      return Bad("more than one Content-Length");
    }
    // At most 18 digits: always fits in uint64_t.
    if (value.empty() || value.size() > 18)
      return Bad("invalid Content-Length");
    uint64_t n = 0;
    for (char c : value) {
      if (!IsDigit(c)) return Bad("invalid Content-Length");
      n = n * 10 + static_cast<uint64_t>(c - '0');
    }
    out->content_length = n;
  } else if (name == "transfer-encoding") {
    if (out->chunked || !absl::EqualsIgnoreCase(value, "chunked")) {
      return Bad("unsupported Transfer-Encoding (only one 'chunked')");
    }
    out->chunked = true;
  } else if (name == "host") {
    ++*hosts;
  } else if (name == "connection") {
    for (absl::string_view option : absl::StrSplit(value, ',')) {
      if (absl::EqualsIgnoreCase(TrimSpTab(option), "close")) *close = true;
    }
  } else if (name == "expect") {
    if (absl::EqualsIgnoreCase(value, "100-continue")) {
      out->expect_continue = true;
    }
  }
  return {};
}

constexpr absl::string_view kServerOwnedFields[] = {
    "content-length", "transfer-encoding", "connection", "keep-alive",
    "x-request-id"};

bool IsServerOwned(absl::string_view name) {
  for (absl::string_view owned : kServerOwnedFields) {
    if (absl::EqualsIgnoreCase(name, owned)) return true;
  }
  return false;
}

bool SendableField(absl::string_view name, absl::string_view value) {
  return IsToken(name) && IsSafeFieldValue(value) && !IsServerOwned(name);
}

}  // namespace

bool IsTchar(char c) {
  if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
      (c >= '0' && c <= '9')) {
    return true;
  }
  switch (c) {
    case '!':
    case '#':
    case '$':
    case '%':
    case '&':
    case '\'':
    case '*':
    case '+':
    case '-':
    case '.':
    case '^':
    case '_':
    case '`':
    case '|':
    case '~':
      return true;
    default:
      return false;
  }
}

bool IsToken(absl::string_view name) {
  if (name.empty()) return false;
  for (char c : name) {
    if (!IsTchar(c)) return false;
  }
  return true;
}

bool IsSafeFieldValue(absl::string_view value) {
  for (char c : value) {
    const auto u = static_cast<unsigned char>(c);
    if ((u < 0x20 && c != '\t') || u == 0x7F) return false;
  }
  return true;
}

HeadError ParseRequestHead(absl::string_view head, RequestHead* out) {
  *out = RequestHead();
  if (!absl::EndsWith(head, "\r\n\r\n")) return Bad("incomplete request head");
  if (HeadError e = CheckLineEndings(head); !e.ok()) return e;

  // Lines without their CRLF; the head's final empty line is dropped.
  head.remove_suffix(4);
  std::vector<absl::string_view> lines = absl::StrSplit(head, "\r\n");
  if (HeadError e = ParseRequestLine(lines[0], out); !e.ok()) return e;
  if (lines.size() - 1 > kMaxHeaderFields) {
    return HeadError{431, "too many header fields"};
  }

  bool close = false;
  int hosts = 0;
  out->headers.reserve(lines.size() - 1);
  for (size_t i = 1; i < lines.size(); ++i) {
    const absl::string_view line = lines[i];
    if (line.empty()) return Bad("empty line inside request head");
    if (line.front() == ' ' || line.front() == '\t') {
      return Bad("obsolete line folding is not accepted");
    }
    const size_t colon = line.find(':');
    if (colon == absl::string_view::npos) {
      return Bad("header field without ':'");
    }
    const absl::string_view name = line.substr(0, colon);
    if (!IsToken(name)) return Bad("invalid header field name");
    const absl::string_view raw_value = line.substr(colon + 1);
    if (!IsSafeFieldValue(raw_value)) {
      return Bad("control character in header field value");
    }
    const absl::string_view value = TrimSpTab(raw_value);
    std::string lower_name = absl::AsciiStrToLower(name);
    if (HeadError e = ApplyField(lower_name, value, out, &close, &hosts);
        !e.ok()) {
      return e;
    }
    out->headers.emplace_back(std::move(lower_name), std::string(value));
  }

  if (out->chunked && out->content_length.has_value()) {
    return Bad("both Content-Length and Transfer-Encoding");
  }
  if (out->chunked && out->version_minor == 0) {
    return Bad("Transfer-Encoding in an HTTP/1.0 request");
  }
  if (hosts > 1) return Bad("more than one Host");
  if (out->version_minor == 1 && hosts == 0) return Bad("missing Host");
  out->keep_alive = out->version_minor == 1 && !close;
  if (out->version_minor == 0) out->expect_continue = false;
  return {};
}

absl::string_view ReasonPhrase(int status) {
  switch (status) {
    case 100:
      return "Continue";
    case 200:
      return "OK";
    case 201:
      return "Created";
    case 202:
      return "Accepted";
    case 204:
      return "No Content";
    case 206:
      return "Partial Content";
    case 301:
      return "Moved Permanently";
    case 302:
      return "Found";
    case 303:
      return "See Other";
    case 304:
      return "Not Modified";
    case 307:
      return "Temporary Redirect";
    case 308:
      return "Permanent Redirect";
    case 400:
      return "Bad Request";
    case 401:
      return "Unauthorized";
    case 403:
      return "Forbidden";
    case 404:
      return "Not Found";
    case 405:
      return "Method Not Allowed";
    case 406:
      return "Not Acceptable";
    case 408:
      return "Request Timeout";
    case 409:
      return "Conflict";
    case 410:
      return "Gone";
    case 411:
      return "Length Required";
    case 412:
      return "Precondition Failed";
    case 413:
      return "Content Too Large";
    case 414:
      return "URI Too Long";
    case 415:
      return "Unsupported Media Type";
    case 422:
      return "Unprocessable Content";
    case 428:
      return "Precondition Required";
    case 429:
      return "Too Many Requests";
    case 431:
      return "Request Header Fields Too Large";
    case 500:
      return "Internal Server Error";
    case 501:
      return "Not Implemented";
    case 502:
      return "Bad Gateway";
    case 503:
      return "Service Unavailable";
    case 504:
      return "Gateway Timeout";
    case 505:
      return "HTTP Version Not Supported";
    default:
      return "Unknown";
  }
}

namespace {

enum class Framing { kLength, kChunked, kClose };

// The status line and fields of `response`; `status` already in 200..599.
void AppendHead(const HttpResponse& response, int status,
                absl::string_view request_id, const HttpHeaders& common_headers,
                bool close, Framing framing, size_t length, std::string* out) {
  absl::StrAppend(out, "HTTP/1.1 ", status, " ", ReasonPhrase(status), "\r\n");
  for (const auto& [name, value] : response.headers) {
    if (SendableField(name, value)) {
      absl::StrAppend(out, name, ": ", value, "\r\n");
    }
  }
  for (const auto& [name, value] : common_headers) {
    if (!SendableField(name, value)) continue;
    bool overridden = false;
    for (const auto& field : response.headers) {
      if (absl::EqualsIgnoreCase(field.first, name)) {
        overridden = true;
        break;
      }
    }
    if (!overridden) absl::StrAppend(out, name, ": ", value, "\r\n");
  }
  const bool bodiless = status == 204 || status == 304;
  if (!bodiless) {
    if (framing == Framing::kLength) {
      absl::StrAppend(out, "Content-Length: ", length, "\r\n");
    } else if (framing == Framing::kChunked) {
      out->append("Transfer-Encoding: chunked\r\n");
    }
  }
  if (IsSafeFieldValue(request_id)) {
    absl::StrAppend(out, "X-Request-Id: ", request_id, "\r\n");
  }
  if (close) out->append("Connection: close\r\n");
  out->append("\r\n");
}

int SentStatus(const HttpResponse& response) {
  return response.status >= 200 && response.status <= 599 ? response.status
                                                          : 500;
}

}  // namespace

void SerializeResponse(const HttpResponse& response,
                       absl::string_view request_id,
                       const HttpHeaders& common_headers, bool close,
                       bool head_request, std::string* out) {
  const int status = SentStatus(response);
  const bool bodiless = status == 204 || status == 304;
  out->clear();
  out->reserve(256 + response.body.size());
  AppendHead(response, status, request_id, common_headers, close,
             Framing::kLength, response.body.size(), out);
  if (!bodiless && !head_request) out->append(response.body);
}

void SerializeStreamHead(const HttpResponse& response,
                         absl::string_view request_id,
                         const HttpHeaders& common_headers, bool close,
                         bool chunked, std::string* out) {
  out->clear();
  AppendHead(response, SentStatus(response), request_id, common_headers, close,
             chunked ? Framing::kChunked : Framing::kClose, 0, out);
}

void AppendChunk(absl::string_view data, std::string* out) {
  if (data.empty()) return;
  absl::StrAppend(out, absl::Hex(data.size()), "\r\n");
  out->append(data.data(), data.size());
  out->append("\r\n");
}

}  // namespace lumo::gateway::wire
