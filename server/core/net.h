// IP addresses and CIDR blocks for a key's allowed source networks.
// Thread-safe (value types, pure functions).
#ifndef LUMOKEYS_SERVER_CORE_NET_H_
#define LUMOKEYS_SERVER_CORE_NET_H_

#include <array>
#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace lumo::core {

// An IPv4 or IPv6 address. IPv4-mapped IPv6 (::ffff:a.b.c.d) is stored as
// IPv4 so that either form matches an IPv4 CIDR.
class IpAddress {
 public:
  // Accepts dotted IPv4 and textual IPv6 (no brackets, no zone, no port).
  static absl::StatusOr<IpAddress> Parse(absl::string_view text);
  // Parses a gRPC peer string: "ipv4:1.2.3.4:5678", "ipv6:[::1]:5678".
  // INVALID_ARGUMENT for anything else (e.g. "unix:...").
  static absl::StatusOr<IpAddress> FromGrpcPeer(absl::string_view peer);

  bool is_v4() const { return v4_; }
  std::string ToString() const;
  const std::array<uint8_t, 16>& bytes() const { return bytes_; }

 private:
  bool v4_ = true;
  std::array<uint8_t, 16> bytes_{};  // IPv4 uses the first 4 bytes
};

class Cidr {
 public:
  // "10.0.0.0/8", "2001:db8::/32"; a bare address means /32 or /128.
  // INVALID_ARGUMENT on bad syntax, a prefix out of range, or host bits set.
  static absl::StatusOr<Cidr> Parse(absl::string_view text);

  bool Contains(const IpAddress& ip) const;
  // True when every address of `other` is in this block (same family and
  // `other` is this block or a narrower one inside it).
  bool Covers(const Cidr& other) const;
  int prefix_len() const { return prefix_len_; }
  // Canonical text, e.g. "10.0.0.0/8".
  std::string ToString() const;

 private:
  IpAddress base_;
  int prefix_len_ = 0;
};

// The network of `ip` that rate limits and throttles count as one client:
// the address itself for IPv4, its first `ipv6_prefix_len` bits (0-128) for
// IPv6, as canonical CIDR text ("2001:db8::/64"; "192.0.2.7" for IPv4).
// A /64 is what one IPv6 subscriber usually holds, so counting full IPv6
// addresses would give one client 2^64 budgets.
std::string ClientNetwork(const IpAddress& ip, int ipv6_prefix_len);
// ClientNetwork of the address `text`; `text` itself when it does not parse
// (e.g. a unix-socket peer, which is then its own network).
std::string ClientNetworkOf(absl::string_view text, int ipv6_prefix_len);

}  // namespace lumo::core

#endif  // LUMOKEYS_SERVER_CORE_NET_H_
