#include "server/core/scopes.h"

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"
#include "server/core/field_error.h"

namespace lumo::core {
namespace {

constexpr absl::string_view kWriteAll = "admin:write";
// Bounds an echoed unknown scope in an error message.
constexpr size_t kMaxEchoedScope = 64;

// Canonical position of `scope`, or -1 when it is unknown.
int ScopeIndex(absl::string_view scope) {
  const std::vector<std::string>& all = AllScopes();
  for (size_t i = 0; i < all.size(); ++i) {
    if (all[i] == scope) return static_cast<int>(i);
  }
  return -1;
}

bool Contains(absl::Span<const std::string> held, absl::string_view scope) {
  for (const std::string& s : held) {
    if (s == scope) return true;
  }
  return false;
}

}  // namespace

const std::vector<std::string>& AllScopes() {
  static const auto* const kAll = new std::vector<std::string>{
      "admin:read",   "admin:write",   "admin:users",    "admin:roles",
      "admin:groups", "admin:clients", "admin:webhooks", "admin:audit",
  };
  return *kAll;
}

bool IsKnownScope(absl::string_view scope) { return ScopeIndex(scope) >= 0; }

absl::StatusOr<std::vector<std::string>> CanonicalizeScopes(
    absl::Span<const std::string> scopes) {
  if (scopes.empty()) {
    return InvalidFieldError("scopes", "scopes must not be empty");
  }
  const std::vector<std::string>& all = AllScopes();
  std::vector<bool> present(all.size(), false);
  for (const std::string& scope : scopes) {
    const int index = ScopeIndex(scope);
    if (index < 0) {
      // Escaped and bounded: the value is caller-supplied.
      const absl::string_view shown =
          absl::string_view(scope).substr(0, kMaxEchoedScope);
      return absl::InvalidArgumentError(
          absl::StrCat("unknown scope \"", absl::CHexEscape(shown),
                       shown.size() < scope.size() ? "...\"" : "\""));
    }
    present[static_cast<size_t>(index)] = true;
  }
  std::vector<std::string> out;
  for (size_t i = 0; i < all.size(); ++i) {
    if (present[i]) out.push_back(all[i]);
  }
  return out;
}

// An unknown `needed` scope is granted by nothing, not even admin:write
// (fail closed on a typo in a route's requirement).
bool Grants(absl::Span<const std::string> held, absl::string_view needed) {
  if (!IsKnownScope(needed)) return false;
  return Contains(held, needed) || Contains(held, kWriteAll);
}

bool GrantsAny(absl::Span<const std::string> held,
               absl::Span<const std::string> any_of) {
  if (any_of.empty()) return true;
  for (const std::string& needed : any_of) {
    if (Grants(held, needed)) return true;
  }
  return false;
}

bool IsSubset(absl::Span<const std::string> held,
              absl::Span<const std::string> requested) {
  for (const std::string& scope : requested) {
    if (!Grants(held, scope)) return false;
  }
  return true;
}

}  // namespace lumo::core
