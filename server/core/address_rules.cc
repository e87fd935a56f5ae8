#include "server/core/address_rules.h"

#include <array>
#include <cstdint>

namespace lumo::core {
namespace {

AddressClass ClassifyV4(uint8_t a, uint8_t b, uint8_t c) {
  if (a == 0) return AddressClass::kUnspecified;
  if (a == 127) return AddressClass::kLoopback;
  if (a == 10 || (a == 172 && (b & 0xf0) == 16) || (a == 192 && b == 168)) {
    return AddressClass::kPrivate;
  }
  if (a == 169 && b == 254) return AddressClass::kLinkLocal;
  if (a == 100 && (b & 0xc0) == 64) return AddressClass::kShared;
  if (a >= 224) return AddressClass::kReserved;  // multicast, 240/4, broadcast
  if (a == 192 && b == 0 && (c == 0 || c == 2)) return AddressClass::kReserved;
  if (a == 198 && (b & 0xfe) == 18) return AddressClass::kReserved;
  if ((a == 198 && b == 51 && c == 100) || (a == 203 && b == 0 && c == 113)) {
    return AddressClass::kReserved;
  }
  return AddressClass::kPublic;
}

}  // namespace

AddressClass ClassifyAddress(const IpAddress& ip) {
  const std::array<uint8_t, 16>& x = ip.bytes();
  if (ip.is_v4()) return ClassifyV4(x[0], x[1], x[2]);
  bool zero_to_14 = true;
  for (int i = 0; i < 15; ++i) zero_to_14 = zero_to_14 && x[i] == 0;
  if (zero_to_14 && x[15] == 0) return AddressClass::kUnspecified;
  if (zero_to_14 && x[15] == 1) return AddressClass::kLoopback;
  // 64:ff9b::/96 (NAT64) carries an IPv4 address in its last 4 bytes.
  static constexpr uint8_t kNat64[12] = {0, 0x64, 0xff, 0x9b, 0, 0,
                                         0, 0,    0,    0,    0, 0};
  bool nat64 = true;
  for (int i = 0; i < 12; ++i) nat64 = nat64 && x[i] == kNat64[i];
  if (nat64) return ClassifyV4(x[12], x[13], x[14]);
  // 2002::/16 (6to4) carries one in bytes 2..5.
  if (x[0] == 0x20 && x[1] == 0x02) return ClassifyV4(x[2], x[3], x[4]);
  if ((x[0] & 0xfe) == 0xfc) return AddressClass::kPrivate;
  if (x[0] == 0xfe && (x[1] & 0xc0) == 0x80) return AddressClass::kLinkLocal;
  if (x[0] == 0xff) return AddressClass::kReserved;  // multicast
  // 2001:db8::/32 (documentation), ::/96 (deprecated IPv4-compatible) and
  // everything outside 2000::/3 (global unicast).
  if (x[0] == 0x20 && x[1] == 0x01 && x[2] == 0x0d && x[3] == 0xb8) {
    return AddressClass::kReserved;
  }
  if ((x[0] & 0xe0) != 0x20) return AddressClass::kReserved;
  return AddressClass::kPublic;
}

absl::string_view AddressClassName(AddressClass c) {
  switch (c) {
    case AddressClass::kPublic:
      return "public";
    case AddressClass::kLoopback:
      return "loopback";
    case AddressClass::kPrivate:
      return "private";
    case AddressClass::kLinkLocal:
      return "link-local";
    case AddressClass::kShared:
      return "shared";
    case AddressClass::kUnspecified:
      return "unspecified";
    case AddressClass::kReserved:
      return "reserved";
  }
  return "reserved";
}

}  // namespace lumo::core
