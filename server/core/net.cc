#include "server/core/net.h"

#include <arpa/inet.h>
#include <netinet/in.h>

#include <algorithm>
#include <array>
#include <cstdint>
#include <cstring>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "absl/strings/strip.h"

namespace lumo::core {
namespace {

// Longer than any textual IPv6 address, including the dotted-quad tail.
constexpr size_t kMaxAddressText = INET6_ADDRSTRLEN;
constexpr absl::string_view kDigits = "0123456789";

bool AllDigits(absl::string_view s) {
  return !s.empty() && s.find_first_not_of(kDigits) == absl::string_view::npos;
}

bool IsValidPort(absl::string_view port) {
  int value = 0;
  return AllDigits(port) && port.size() <= 5 &&
         absl::SimpleAtoi(port, &value) && value <= 65535;
}

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// RFC 3986 percent-decoding; false on a malformed escape. gRPC 1.51 reports
// IPv6 peers as "ipv6:%5B::1%5D:5678".
bool PercentDecode(absl::string_view in, std::string* out) {
  out->clear();
  for (size_t i = 0; i < in.size(); ++i) {
    if (in[i] != '%') {
      out->push_back(in[i]);
      continue;
    }
    if (i + 2 >= in.size()) return false;
    const int hi = HexValue(in[i + 1]);
    const int lo = HexValue(in[i + 2]);
    if (hi < 0 || lo < 0) return false;
    out->push_back(static_cast<char>((hi << 4) | lo));
    i += 2;
  }
  return true;
}

absl::Status BadAddress() {
  return absl::InvalidArgumentError("not an IPv4 or IPv6 address");
}

}  // namespace

absl::StatusOr<IpAddress> IpAddress::Parse(absl::string_view text) {
  if (text.empty() || text.size() >= kMaxAddressText) return BadAddress();
  char buf[kMaxAddressText];
  std::memcpy(buf, text.data(), text.size());
  buf[text.size()] = '\0';
  if (std::strlen(buf) != text.size()) return BadAddress();  // embedded NUL

  IpAddress ip;
  if (text.find(':') == absl::string_view::npos) {
    // glibc accepts only the four-part dotted decimal form, without leading
    // zeros (no "10.1", no octal).
    if (inet_pton(AF_INET, buf, ip.bytes_.data()) != 1) return BadAddress();
    ip.v4_ = true;
    return ip;
  }
  std::array<uint8_t, 16> v6{};
  if (inet_pton(AF_INET6, buf, v6.data()) != 1) return BadAddress();
  static constexpr uint8_t kMappedPrefix[12] = {0, 0, 0, 0, 0,    0,
                                                0, 0, 0, 0, 0xff, 0xff};
  if (std::memcmp(v6.data(), kMappedPrefix, sizeof(kMappedPrefix)) == 0) {
    ip.v4_ = true;
    std::memcpy(ip.bytes_.data(), v6.data() + 12, 4);
    return ip;
  }
  ip.v4_ = false;
  ip.bytes_ = v6;
  return ip;
}

absl::StatusOr<IpAddress> IpAddress::FromGrpcPeer(absl::string_view peer) {
  const auto bad_peer = [] {
    return absl::InvalidArgumentError("not an ipv4 or ipv6 gRPC peer");
  };
  if (absl::ConsumePrefix(&peer, "ipv4:")) {
    const size_t colon = peer.rfind(':');
    if (colon == absl::string_view::npos ||
        !IsValidPort(peer.substr(colon + 1))) {
      return bad_peer();
    }
    absl::StatusOr<IpAddress> ip = Parse(peer.substr(0, colon));
    if (!ip.ok() || !ip->is_v4() ||
        peer.substr(0, colon).find(':') != absl::string_view::npos) {
      return bad_peer();
    }
    return ip;
  }
  if (absl::ConsumePrefix(&peer, "ipv6:")) {
    std::string decoded;
    if (!PercentDecode(peer, &decoded)) return bad_peer();
    absl::string_view rest = decoded;
    if (!absl::ConsumePrefix(&rest, "[")) return bad_peer();
    const size_t close = rest.find(']');
    if (close == absl::string_view::npos || rest.substr(close, 2) != "]:" ||
        !IsValidPort(rest.substr(close + 2))) {
      return bad_peer();
    }
    absl::string_view host = rest.substr(0, close);
    // A link-local peer carries its zone ("fe80::1%eth0"); CIDRs have none.
    host = host.substr(0, host.find('%'));
    // Brackets hold IPv6 text only (a mapped address is fine).
    absl::StatusOr<IpAddress> ip = Parse(host);
    if (!ip.ok() || host.find(':') == absl::string_view::npos) {
      return bad_peer();
    }
    return ip;
  }
  return bad_peer();
}

std::string IpAddress::ToString() const {
  char buf[INET6_ADDRSTRLEN];
  if (inet_ntop(v4_ ? AF_INET : AF_INET6, bytes_.data(), buf, sizeof(buf)) ==
      nullptr) {
    return std::string();  // unreachable: the buffer is large enough
  }
  return std::string(buf);
}

absl::StatusOr<Cidr> Cidr::Parse(absl::string_view text) {
  const size_t slash = text.find('/');
  const absl::string_view address_text = text.substr(0, slash);
  absl::StatusOr<IpAddress> base = IpAddress::Parse(address_text);
  if (!base.ok()) {
    return absl::InvalidArgumentError(
        "CIDR must be an IPv4 or IPv6 address with an optional /prefix");
  }
  // An IPv4-mapped IPv6 block is stored as the IPv4 block it denotes.
  const bool written_as_v6 = address_text.find(':') != absl::string_view::npos;
  const int max_prefix = written_as_v6 ? 128 : 32;
  int prefix = max_prefix;
  if (slash != absl::string_view::npos) {
    const absl::string_view prefix_text = text.substr(slash + 1);
    if (!AllDigits(prefix_text) || prefix_text.size() > 3 ||
        !absl::SimpleAtoi(prefix_text, &prefix) || prefix > max_prefix) {
      return absl::InvalidArgumentError(
          absl::StrCat("CIDR prefix length must be 0..", max_prefix));
    }
  }
  if (written_as_v6 && base->is_v4()) {
    if (prefix < 96) {
      return absl::InvalidArgumentError(
          "an IPv4-mapped CIDR needs a prefix length of at least 96");
    }
    prefix -= 96;
  }

  // Reject host bits: "10.0.0.1/8" is almost always a mistake.
  const std::array<uint8_t, 16>& bytes = base->bytes();
  const int total_bits = base->is_v4() ? 32 : 128;
  for (int bit = prefix; bit < total_bits; ++bit) {
    if (bytes[bit / 8] & (0x80 >> (bit % 8))) {
      return absl::InvalidArgumentError(
          "CIDR has host bits set after the prefix length");
    }
  }
  Cidr cidr;
  cidr.base_ = *base;
  cidr.prefix_len_ = prefix;
  return cidr;
}

bool Cidr::Contains(const IpAddress& ip) const {
  if (ip.is_v4() != base_.is_v4()) return false;
  const std::array<uint8_t, 16>& a = ip.bytes();
  const std::array<uint8_t, 16>& b = base_.bytes();
  const int full_bytes = prefix_len_ / 8;
  if (std::memcmp(a.data(), b.data(), static_cast<size_t>(full_bytes)) != 0) {
    return false;
  }
  const int rest = prefix_len_ % 8;
  if (rest == 0) return true;
  const auto mask = static_cast<uint8_t>(0xFF << (8 - rest));
  return (a[full_bytes] & mask) == (b[full_bytes] & mask);
}

bool Cidr::Covers(const Cidr& other) const {
  return other.base_.is_v4() == base_.is_v4() &&
         other.prefix_len_ >= prefix_len_ && Contains(other.base_);
}

std::string Cidr::ToString() const {
  return absl::StrCat(base_.ToString(), "/", prefix_len_);
}

std::string ClientNetwork(const IpAddress& ip, int ipv6_prefix_len) {
  if (ip.is_v4()) return ip.ToString();
  const int prefix = std::clamp(ipv6_prefix_len, 0, 128);
  std::array<uint8_t, 16> bytes = ip.bytes();
  for (int bit = prefix; bit < 128; ++bit) {
    bytes[bit / 8] &= static_cast<uint8_t>(~(0x80 >> (bit % 8)));
  }
  // Rebuilt through the parser: the only constructor of IpAddress.
  std::string text;
  for (int i = 0; i < 16; i += 2) {
    absl::StrAppend(&text, i == 0 ? "" : ":",
                    absl::Hex((bytes[i] << 8) | bytes[i + 1]));
  }
  absl::StatusOr<IpAddress> masked = IpAddress::Parse(text);
  return absl::StrCat(masked.ok() ? masked->ToString() : text, "/", prefix);
}

std::string ClientNetworkOf(absl::string_view text, int ipv6_prefix_len) {
  absl::StatusOr<IpAddress> ip = IpAddress::Parse(text);
  return ip.ok() ? ClientNetwork(*ip, ipv6_prefix_len) : std::string(text);
}

}  // namespace lumo::core
