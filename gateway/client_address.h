// The client address of a request that may have come through reverse
// proxies (docs/gateway.md, "The client address behind proxies").
//
// The TCP peer is the client unless it is a trusted proxy. Then, and only
// then, the gateway reads the one forwarding header the operator named:
// `X-Forwarded-For` or RFC 7239 `Forwarded` (never both: a proxy maintains
// one of them, and the client can write the other). Its elements are read
// from the right, where each proxy appends the address of its own peer: an
// element that is a trusted proxy is skipped, and the first one that is not
// is the client (the right-most untrusted hop). Elements further left were
// written by the client itself or by proxies nobody vouches for, and are
// never interpreted.
//   - No header, or every element a trusted proxy: the left-most address
//     read (the peer when there is no element).
//   - "unknown", an obfuscated node ("_hidden", RFC 7239 §6.3) or a
//     Forwarded element without `for=`: the hop that wrote it does not know
//     its peer, so the client is that hop (the last trusted address read).
//   - An element read that is none of these (not an IP address with an
//     optional port, IPv6 in brackets when a port follows or in Forwarded),
//     or a Forwarded field that cannot be split into elements: the request
//     is refused (INVALID_ARGUMENT; the gateway answers 400).
// Multiple field lines of the header are one list, in arrival order
// (RFC 9110 §5.3); empty list elements are ignored.
#ifndef LUMOKEYS_GATEWAY_CLIENT_ADDRESS_H_
#define LUMOKEYS_GATEWAY_CLIENT_ADDRESS_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "server/core/net.h"

namespace lumo::gateway {

enum class ForwardedHeader {
  kXForwardedFor,  // X-Forwarded-For: 192.0.2.1, 198.51.100.7
  kForwarded,      // Forwarded: for=192.0.2.1;proto=https, for="[2001:db8::1]"
};

// Immutable after Parse: thread-safe.
class TrustedProxies {
 public:
  // Trusts no one: ClientAddress always returns the peer.
  TrustedProxies() = default;

  // `cidrs`: comma-separated CIDR blocks or single addresses
  // ("10.0.0.0/8, 192.0.2.7, 2001:db8::/48"); empty: none. `header`:
  // "x-forwarded-for" or "forwarded" (case-insensitive). INVALID_ARGUMENT
  // naming the entry that does not parse.
  static absl::StatusOr<TrustedProxies> Parse(absl::string_view cidrs,
                                              absl::string_view header);

  bool empty() const { return cidrs_.empty(); }
  bool Contains(const core::IpAddress& ip) const;
  ForwardedHeader header() const { return header_; }
  // The header's name as sent: "X-Forwarded-For" or "Forwarded"; and
  // lower-cased, as HttpRequest stores it.
  absl::string_view header_name() const;
  absl::string_view header_key() const;

  // The client address (canonical text, e.g. "2001:db8::1") of a request
  // that came from `peer` (the TCP peer's address text) carrying
  // `field_values` (every field line of header(), in arrival order).
  // INVALID_ARGUMENT, with a client-safe message, for a malformed header
  // from a trusted peer (see the file comment).
  absl::StatusOr<std::string> ClientAddress(
      absl::string_view peer,
      const std::vector<absl::string_view>& field_values) const;

 private:
  std::vector<core::Cidr> cidrs_;
  ForwardedHeader header_ = ForwardedHeader::kXForwardedFor;
};

}  // namespace lumo::gateway

#endif  // LUMOKEYS_GATEWAY_CLIENT_ADDRESS_H_
