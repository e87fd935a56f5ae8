#include "gateway/portal.h"

#include <dirent.h>
#include <sys/stat.h>

#include <fstream>
#include <sstream>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "google/protobuf/descriptor.h"

namespace lumo::gateway {
namespace {

constexpr absl::string_view kAssetPrefix = "/portal-assets/";
constexpr size_t kMaxFileBytes = 4 << 20;

// The pages, by the path after /t/{slug}.
constexpr std::pair<const char*, const char*> kPages[] = {
    {"/login", "login.html"},
    {"/portal/settings/api-keys", "api-keys.html"},
    {"/portal/audit-logs", "audit-logs.html"},
    {"/portal/settings/key-policy", "key-policy.html"},
    {"/portal/usage", "usage.html"},
    {"/portal/settings/webhooks", "webhooks.html"},
};

bool IsValidSlug(absl::string_view s) {
  if (s.empty() || s.size() > 63 || s.front() == '-' || s.back() == '-') {
    return false;
  }
  for (char c : s) {
    if (!(absl::ascii_islower(static_cast<unsigned char>(c)) ||
          absl::ascii_isdigit(static_cast<unsigned char>(c)) || c == '-')) {
      return false;
    }
  }
  return true;
}

// File names the gateway serves: [a-z0-9._-], one dot-separated extension
// it knows, no leading dot.
const char* ContentTypeOf(absl::string_view name) {
  if (name.empty() || name.front() == '.' || name.size() > 64) return nullptr;
  for (char c : name) {
    if (!(absl::ascii_islower(static_cast<unsigned char>(c)) ||
          absl::ascii_isdigit(static_cast<unsigned char>(c)) || c == '.' ||
          c == '-' || c == '_')) {
      return nullptr;
    }
  }
  if (absl::EndsWith(name, ".html")) return "text/html; charset=utf-8";
  if (absl::EndsWith(name, ".js")) return "text/javascript; charset=utf-8";
  if (absl::EndsWith(name, ".css")) return "text/css; charset=utf-8";
  if (absl::EndsWith(name, ".svg")) return "image/svg+xml";
  if (absl::EndsWith(name, ".png")) return "image/png";
  return nullptr;
}

std::string CookieAttributes(absl::string_view slug, bool secure) {
  if (secure) return "; Path=/; Secure; SameSite=Strict";
  return absl::StrCat("; Path=/t/", slug, "; SameSite=Strict");
}

// Cookie values we set are base62 (plus the "lps_" prefix); anything else
// is not ours and is not forwarded.
bool IsCookieToken(absl::string_view v) {
  if (v.empty() || v.size() > 128) return false;
  for (char c : v) {
    if (!absl::ascii_isalnum(static_cast<unsigned char>(c)) && c != '_') {
      return false;
    }
  }
  return true;
}

}  // namespace

HttpHeaders PortalPageHeaders() {
  return {
      {"Content-Security-Policy",
       "default-src 'none'; script-src 'self'; style-src 'self'; "
       "img-src 'self'; connect-src 'self'; form-action 'self'; "
       "base-uri 'none'; frame-ancestors 'none'"},
      {"X-Frame-Options", "DENY"},
      {"X-Content-Type-Options", "nosniff"},
      {"Referrer-Policy", "no-referrer"},
      {"Cross-Origin-Opener-Policy", "same-origin"},
  };
}

absl::StatusOr<std::unique_ptr<Portal>> Portal::Load(PortalOptions options) {
  std::unique_ptr<Portal> portal(new Portal(options));
  DIR* dir = opendir(options.dir.c_str());
  if (dir == nullptr) {
    return absl::FailedPreconditionError(
        absl::StrCat("portal directory not readable: ", options.dir));
  }
  while (dirent* entry = readdir(dir)) {
    const std::string name = entry->d_name;
    if (ContentTypeOf(name) == nullptr) continue;
    const std::string path = absl::StrCat(options.dir, "/", name);
    struct stat st;
    if (stat(path.c_str(), &st) != 0 || !S_ISREG(st.st_mode) ||
        static_cast<size_t>(st.st_size) > kMaxFileBytes) {
      continue;
    }
    std::ifstream in(path, std::ios::binary);
    std::ostringstream content;
    content << in.rdbuf();
    portal->files_[name] = content.str();
  }
  closedir(dir);
  for (const auto& [route, file] : kPages) {
    if (!portal->files_.contains(file)) {
      return absl::FailedPreconditionError(
          absl::StrCat("portal page missing: ", options.dir, "/", file));
    }
  }
  return portal;
}

std::optional<HttpResponse> Portal::Serve(const HttpRequest& request) const {
  if (request.method != "GET" && request.method != "HEAD") return std::nullopt;
  std::string file;
  bool page = false;
  if (absl::StartsWith(request.path, kAssetPrefix)) {
    file = request.path.substr(kAssetPrefix.size());
    if (!files_.contains(file) || absl::EndsWith(file, ".html")) {
      return std::nullopt;
    }
  } else {
    const std::string slug = TenantSlugOfPath(request.path);
    if (slug.empty()) return std::nullopt;
    absl::string_view rest =
        absl::string_view(request.path).substr(3 + slug.size());
    if (rest == "/portal" || rest == "/portal/") {
      HttpResponse redirect;
      redirect.status = 302;
      redirect.headers = PortalPageHeaders();
      redirect.headers.emplace_back(
          "Location", absl::StrCat("/t/", slug, "/portal/settings/api-keys"));
      return redirect;
    }
    for (const auto& [route, name] : kPages) {
      if (rest == route) {
        file = name;
        page = true;
        break;
      }
    }
    if (file.empty()) return std::nullopt;
  }
  auto it = files_.find(file);
  if (it == files_.end()) return std::nullopt;
  HttpResponse response;
  response.headers = PortalPageHeaders();
  response.headers.emplace_back("Content-Type", ContentTypeOf(file));
  // Pages may show a new key once: never stored. Assets may be cached but
  // must be revalidated (they change with deployments).
  response.headers.emplace_back("Cache-Control",
                                page ? "no-store" : "no-cache");
  response.body = it->second;
  return response;
}

std::string TenantSlugOfPath(absl::string_view path) {
  if (!absl::ConsumePrefix(&path, "/t/")) return "";
  const size_t slash = path.find('/');
  absl::string_view slug = path.substr(0, slash);
  return IsValidSlug(slug) ? std::string(slug) : "";
}

std::string SessionCookieName(absl::string_view slug, bool secure) {
  return secure ? absl::StrCat("__Host-lumo_session-", slug) : "lumo_session";
}

std::string CsrfCookieName(absl::string_view slug, bool secure) {
  return secure ? absl::StrCat("__Host-lumo_csrf-", slug) : "lumo_csrf";
}

std::optional<std::string> CookieValue(const HttpRequest& request,
                                       absl::string_view name) {
  std::optional<std::string> found;
  for (absl::string_view header : request.Headers("cookie")) {
    for (absl::string_view pair : absl::StrSplit(header, ';')) {
      pair = absl::StripAsciiWhitespace(pair);
      const size_t eq = pair.find('=');
      if (eq == absl::string_view::npos) continue;
      if (pair.substr(0, eq) != name) continue;
      absl::string_view value = pair.substr(eq + 1);
      if (!IsCookieToken(value)) continue;
      // The most specific path comes first (RFC 6265 §5.4); keep it.
      if (!found.has_value()) found = std::string(value);
    }
  }
  return found;
}

std::string CheckBrowserWrite(const HttpRequest& request, bool secure) {
  const std::string* xrw = request.Header("x-requested-with");
  if (xrw == nullptr || *xrw != "XMLHttpRequest") {
    return "X-Requested-With: XMLHttpRequest is required";
  }
  const std::string* origin = request.Header("origin");
  const std::string* host = request.Header("host");
  if (origin == nullptr || host == nullptr ||
      !absl::EqualsIgnoreCase(
          *origin, absl::StrCat(secure ? "https://" : "http://", *host))) {
    return "cross-origin request refused";
  }
  return "";
}

void SetSessionCookies(absl::string_view slug, bool secure,
                       google::protobuf::Message& reply,
                       HttpResponse& response) {
  const google::protobuf::Descriptor* d = reply.GetDescriptor();
  const google::protobuf::Reflection* r = reply.GetReflection();
  const google::protobuf::FieldDescriptor* token =
      d->FindFieldByName("session_token");
  const google::protobuf::FieldDescriptor* csrf =
      d->FindFieldByName("csrf_token");
  if (token == nullptr || csrf == nullptr ||
      token->type() != google::protobuf::FieldDescriptor::TYPE_STRING ||
      csrf->type() != google::protobuf::FieldDescriptor::TYPE_STRING ||
      token->is_repeated() || csrf->is_repeated()) {
    return;
  }
  const std::string token_value = r->GetString(reply, token);
  const std::string csrf_value = r->GetString(reply, csrf);
  r->ClearField(&reply, token);
  r->ClearField(&reply, csrf);
  if (!IsCookieToken(token_value) || !IsCookieToken(csrf_value)) return;
  const std::string attributes = CookieAttributes(slug, secure);
  response.headers.emplace_back(
      "Set-Cookie", absl::StrCat(SessionCookieName(slug, secure), "=",
                                 token_value, attributes, "; HttpOnly"));
  response.headers.emplace_back(
      "Set-Cookie",
      absl::StrCat(CsrfCookieName(slug, secure), "=", csrf_value, attributes));
}

void ClearSessionCookies(absl::string_view slug, bool secure,
                         HttpResponse& response) {
  const std::string attributes =
      absl::StrCat(CookieAttributes(slug, secure), "; Max-Age=0");
  response.headers.emplace_back(
      "Set-Cookie", absl::StrCat(SessionCookieName(slug, secure), "=",
                                 attributes, "; HttpOnly"));
  response.headers.emplace_back(
      "Set-Cookie",
      absl::StrCat(CsrfCookieName(slug, secure), "=", attributes));
}

}  // namespace lumo::gateway
