#include "gateway/client_address.h"

#include <algorithm>
#include <optional>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "gateway/http/wire.h"

namespace lumo::gateway {
namespace {

// What one list element says about the hop to its left.
struct Node {
  bool known = false;  // false: "unknown", obfuscated, or no `for`
  core::IpAddress address;
};

bool IsBlank(char c) { return c == ' ' || c == '\t'; }

// RFC 7239 §6.3 obfnode / obfport: "_" 1*( ALPHA / DIGIT / "." / "_" / "-" ).
bool IsObfuscated(absl::string_view s) {
  if (s.size() < 2 || s[0] != '_') return false;
  for (char c : s.substr(1)) {
    if (!absl::ascii_isalnum(static_cast<unsigned char>(c)) && c != '.' &&
        c != '_' && c != '-') {
      return false;
    }
  }
  return true;
}

bool IsPort(absl::string_view s) {
  if (IsObfuscated(s)) return true;
  int value = 0;
  return !s.empty() && s.size() <= 5 &&
         s.find_first_not_of("0123456789") == absl::string_view::npos &&
         absl::SimpleAtoi(s, &value) && value <= 65535;
}

// One node (RFC 7239 §6: nodename [ ":" node-port ]). IPv6 must be in
// brackets, except in X-Forwarded-For without a port (`bare_ipv6`), where
// proxies write it bare. nullopt: malformed.
std::optional<Node> ParseNode(absl::string_view text, bool bare_ipv6) {
  absl::string_view host = text;
  if (absl::ConsumePrefix(&host, "[")) {
    const size_t close = host.find(']');
    if (close == absl::string_view::npos) return std::nullopt;
    absl::string_view rest = host.substr(close + 1);
    host = host.substr(0, close);
    if (!rest.empty() && (!absl::ConsumePrefix(&rest, ":") || !IsPort(rest))) {
      return std::nullopt;
    }
    // Brackets hold IPv6 text only.
    if (host.find(':') == absl::string_view::npos) return std::nullopt;
  } else {
    const size_t colons = std::count(host.begin(), host.end(), ':');
    if (colons == 1) {
      const size_t colon = host.find(':');
      if (!IsPort(host.substr(colon + 1))) return std::nullopt;
      host = host.substr(0, colon);
    } else if (colons > 1 && !bare_ipv6) {
      return std::nullopt;
    }
    if (absl::EqualsIgnoreCase(host, "unknown") || IsObfuscated(host)) {
      return Node{};
    }
  }
  absl::StatusOr<core::IpAddress> ip = core::IpAddress::Parse(host);
  if (!ip.ok()) return std::nullopt;
  return Node{true, *ip};
}

// The node text of each non-empty element of an X-Forwarded-For list.
std::vector<std::optional<std::string>> SplitXForwardedFor(
    absl::string_view field) {
  std::vector<std::optional<std::string>> out;
  for (absl::string_view element : absl::StrSplit(field, ',')) {
    element = absl::StripAsciiWhitespace(element);
    if (!element.empty()) out.emplace_back(std::string(element));
  }
  return out;
}

// The `for` value (unquoted) of each non-empty element of a Forwarded field
// (RFC 7239 §4: elements separated by ",", pairs by ";", a pair is token
// "=" ( token / quoted-string )), nullopt for an element without one.
// Blanks are allowed around "," and ";". nullopt overall when the field
// does not follow that grammar or an element has two `for` pairs.
std::optional<std::vector<std::optional<std::string>>> SplitForwarded(
    absl::string_view field) {
  std::vector<std::optional<std::string>> out;
  std::optional<std::string> for_value;
  bool element_has_pairs = false;
  size_t i = 0;
  const size_t n = field.size();
  auto skip_blanks = [&] {
    while (i < n && IsBlank(field[i])) ++i;
  };
  auto is_text = [](char c) {  // HTAB, SP, VCHAR, obs-text
    const auto u = static_cast<unsigned char>(c);
    return c == '\t' || (u >= 0x20 && u != 0x7f);
  };
  while (true) {
    skip_blanks();
    if (i == n || field[i] == ',') {
      if (element_has_pairs) out.push_back(std::move(for_value));
      for_value.reset();
      element_has_pairs = false;
      if (i == n) break;
      ++i;
      continue;
    }
    if (field[i] == ';') {
      ++i;
      continue;
    }
    const size_t name_start = i;
    while (i < n && wire::IsTchar(field[i])) ++i;
    if (i == name_start || i == n || field[i] != '=') return std::nullopt;
    const absl::string_view name = field.substr(name_start, i - name_start);
    ++i;
    std::string value;
    if (i < n && field[i] == '"') {
      ++i;
      bool closed = false;
      while (i < n) {
        char c = field[i++];
        if (c == '"') {
          closed = true;
          break;
        }
        if (c == '\\') {
          if (i == n) return std::nullopt;
          c = field[i++];
        }
        if (!is_text(c)) return std::nullopt;
        value.push_back(c);
      }
      if (!closed) return std::nullopt;
    } else {
      const size_t start = i;
      while (i < n && wire::IsTchar(field[i])) ++i;
      if (i == start) return std::nullopt;
      value = std::string(field.substr(start, i - start));
    }
    element_has_pairs = true;
    if (absl::EqualsIgnoreCase(name, "for")) {
      if (for_value.has_value()) return std::nullopt;
      for_value = std::move(value);
    }
    skip_blanks();
    if (i < n && field[i] != ';' && field[i] != ',') return std::nullopt;
  }
  return out;
}

}  // namespace

absl::StatusOr<TrustedProxies> TrustedProxies::Parse(absl::string_view cidrs,
                                                     absl::string_view header) {
  TrustedProxies proxies;
  for (absl::string_view entry : absl::StrSplit(cidrs, ',')) {
    entry = absl::StripAsciiWhitespace(entry);
    if (entry.empty()) continue;
    absl::StatusOr<core::Cidr> cidr = core::Cidr::Parse(entry);
    if (!cidr.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat("trusted proxy \"", entry,
                       "\" is not a CIDR block or an IP address: ",
                       cidr.status().message()));
    }
    proxies.cidrs_.push_back(*cidr);
  }
  const std::string name = absl::AsciiStrToLower(header);
  if (name == "x-forwarded-for") {
    proxies.header_ = ForwardedHeader::kXForwardedFor;
  } else if (name == "forwarded") {
    proxies.header_ = ForwardedHeader::kForwarded;
  } else {
    return absl::InvalidArgumentError(absl::StrCat(
        "the forwarding header must be x-forwarded-for or forwarded, not \"",
        header, "\""));
  }
  return proxies;
}

bool TrustedProxies::Contains(const core::IpAddress& ip) const {
  for (const core::Cidr& cidr : cidrs_) {
    if (cidr.Contains(ip)) return true;
  }
  return false;
}

absl::string_view TrustedProxies::header_name() const {
  return header_ == ForwardedHeader::kForwarded ? "Forwarded"
                                                : "X-Forwarded-For";
}

absl::string_view TrustedProxies::header_key() const {
  return header_ == ForwardedHeader::kForwarded ? "forwarded"
                                                : "x-forwarded-for";
}

absl::StatusOr<std::string> TrustedProxies::ClientAddress(
    absl::string_view peer,
    const std::vector<absl::string_view>& field_values) const {
  absl::StatusOr<core::IpAddress> current = core::IpAddress::Parse(peer);
  if (!current.ok() || !Contains(*current) || field_values.empty()) {
    return std::string(peer);
  }
  const std::string field = absl::StrJoin(field_values, ",");
  std::vector<std::optional<std::string>> elements;
  if (header_ == ForwardedHeader::kForwarded) {
    std::optional<std::vector<std::optional<std::string>>> split =
        SplitForwarded(field);
    if (!split.has_value()) {
      return absl::InvalidArgumentError("malformed Forwarded header");
    }
    elements = *std::move(split);
  } else {
    elements = SplitXForwardedFor(field);
  }
  const bool bare_ipv6 = header_ == ForwardedHeader::kXForwardedFor;
  for (auto it = elements.rbegin(); it != elements.rend(); ++it) {
    if (!it->has_value()) return current->ToString();  // no `for`
    std::optional<Node> node = ParseNode(**it, bare_ipv6);
    if (!node.has_value()) {
      return absl::InvalidArgumentError(
          absl::StrCat("malformed ", header_name(), " header"));
    }
    if (!node->known) return current->ToString();
    if (!Contains(node->address)) return node->address.ToString();
    current = node->address;
  }
  return current->ToString();
}

}  // namespace lumo::gateway
