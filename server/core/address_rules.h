// The address classes a server-side request (a webhook delivery) must not
// reach unless the operator allows them (docs/webhooks.md "Address
// rules"). Thread-safe (pure functions).
#ifndef LUMOKEYS_SERVER_CORE_ADDRESS_RULES_H_
#define LUMOKEYS_SERVER_CORE_ADDRESS_RULES_H_

#include "absl/strings/string_view.h"
#include "server/core/net.h"

namespace lumo::core {

enum class AddressClass {
  kPublic,
  kLoopback,     // 127.0.0.0/8, ::1
  kPrivate,      // 10/8, 172.16/12, 192.168/16, fc00::/7
  kLinkLocal,    // 169.254/16 (cloud metadata), fe80::/10
  kShared,       // 100.64/10 (carrier-grade NAT)
  kUnspecified,  // 0.0.0.0/8, ::
  // Multicast, broadcast, documentation, benchmarking and the other
  // special-purpose blocks that no public service uses.
  kReserved,
};

// The class of `ip`. IPv6 forms that carry an IPv4 address (IPv4-mapped,
// NAT64 64:ff9b::/96, 6to4 2002::/16) take the class of that address.
AddressClass ClassifyAddress(const IpAddress& ip);

// "public", "loopback", "private", "link-local", "shared", "unspecified",
// "reserved".
absl::string_view AddressClassName(AddressClass c);

}  // namespace lumo::core

#endif  // LUMOKEYS_SERVER_CORE_ADDRESS_RULES_H_
