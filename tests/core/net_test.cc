#include "server/core/net.h"

#include <string>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "gtest/gtest.h"

namespace lumo::core {
namespace {

IpAddress Ip(absl::string_view text) {
  absl::StatusOr<IpAddress> ip = IpAddress::Parse(text);
  EXPECT_TRUE(ip.ok()) << text << ": " << ip.status();
  return ip.ok() ? *ip : IpAddress();
}

Cidr Block(absl::string_view text) {
  absl::StatusOr<Cidr> cidr = Cidr::Parse(text);
  EXPECT_TRUE(cidr.ok()) << text << ": " << cidr.status();
  return *cidr;
}

TEST(IpAddressTest, ParsesIpv4) {
  const IpAddress ip = Ip("192.168.1.20");
  EXPECT_TRUE(ip.is_v4());
  EXPECT_EQ(ip.ToString(), "192.168.1.20");
  EXPECT_EQ(ip.bytes()[0], 192);
  EXPECT_EQ(ip.bytes()[3], 20);
}

TEST(IpAddressTest, ParsesIpv6InCanonicalForm) {
  const IpAddress ip = Ip("2001:0DB8:0:0:0:0:0:1");
  EXPECT_FALSE(ip.is_v4());
  EXPECT_EQ(ip.ToString(), "2001:db8::1");
  EXPECT_EQ(Ip("::1").ToString(), "::1");
  EXPECT_EQ(Ip("::").ToString(), "::");
}

TEST(IpAddressTest, NormalisesIpv4MappedIpv6ToIpv4) {
  const IpAddress ip = Ip("::ffff:10.1.2.3");
  EXPECT_TRUE(ip.is_v4());
  EXPECT_EQ(ip.ToString(), "10.1.2.3");
  EXPECT_EQ(Ip("::FFFF:0a01:0203").ToString(), "10.1.2.3");
  // IPv4-compatible (deprecated) and NAT64 forms are not mapped addresses.
  EXPECT_FALSE(Ip("::10.1.2.3").is_v4());
  EXPECT_FALSE(Ip("64:ff9b::10.1.2.3").is_v4());
}

TEST(IpAddressTest, RejectsMalformedAddresses) {
  for (absl::string_view bad :
       {"", "1.2.3", "1.2.3.4.5", "1.2.3.256", "01.2.3.4", "1.2.3.4 ",
        " 1.2.3.4", "1.2.3.4:80", "[::1]", "fe80::1%eth0", "::1::2", "::g",
        "localhost", "1.2.3.4/32",
        "1111:2222:3333:4444:5555:6666:7777:8888:9999"}) {
    absl::StatusOr<IpAddress> ip = IpAddress::Parse(bad);
    EXPECT_EQ(ip.status().code(), absl::StatusCode::kInvalidArgument) << bad;
  }
  EXPECT_FALSE(IpAddress::Parse(absl::string_view("1.2.3.4\0", 8)).ok());
  EXPECT_FALSE(IpAddress::Parse(std::string(100, '1')).ok());
}

TEST(IpAddressTest, FromGrpcPeerParsesIpv4) {
  absl::StatusOr<IpAddress> ip = IpAddress::FromGrpcPeer("ipv4:1.2.3.4:5678");
  ASSERT_TRUE(ip.ok()) << ip.status();
  EXPECT_TRUE(ip->is_v4());
  EXPECT_EQ(ip->ToString(), "1.2.3.4");
}

TEST(IpAddressTest, FromGrpcPeerParsesBracketedIpv6) {
  absl::StatusOr<IpAddress> ip = IpAddress::FromGrpcPeer("ipv6:[::1]:5678");
  ASSERT_TRUE(ip.ok()) << ip.status();
  EXPECT_FALSE(ip->is_v4());
  EXPECT_EQ(ip->ToString(), "::1");
}

TEST(IpAddressTest, FromGrpcPeerParsesPercentEncodedBrackets) {
  for (absl::string_view peer :
       {"ipv6:%5B::1%5D:5678", "ipv6:%5b::1%5d:5678"}) {
    absl::StatusOr<IpAddress> ip = IpAddress::FromGrpcPeer(peer);
    ASSERT_TRUE(ip.ok()) << peer << ": " << ip.status();
    EXPECT_EQ(ip->ToString(), "::1");
  }
}

TEST(IpAddressTest, FromGrpcPeerNormalisesMappedIpv6) {
  absl::StatusOr<IpAddress> ip =
      IpAddress::FromGrpcPeer("ipv6:%5B::ffff:10.1.2.3%5D:443");
  ASSERT_TRUE(ip.ok()) << ip.status();
  EXPECT_TRUE(ip->is_v4());
  EXPECT_EQ(ip->ToString(), "10.1.2.3");
}

TEST(IpAddressTest, FromGrpcPeerDropsZoneOfLinkLocalPeer) {
  absl::StatusOr<IpAddress> ip =
      IpAddress::FromGrpcPeer("ipv6:%5Bfe80::1%25eth0%5D:443");
  ASSERT_TRUE(ip.ok()) << ip.status();
  EXPECT_EQ(ip->ToString(), "fe80::1");
}

TEST(IpAddressTest, FromGrpcPeerRejectsOtherForms) {
  for (absl::string_view bad :
       {"", "unix:/tmp/socket", "unix-abstract:x", "ipv4:1.2.3.4",
        "ipv4:1.2.3.4:", "ipv4:1.2.3.4:65536", "ipv4:1.2.3.4:port",
        "ipv4:::1:80", "ipv4:[::1]:80", "ipv6:::1:5678", "ipv6:[::1]",
        "ipv6:[::1]5678", "ipv6:[1.2.3.4]:80", "ipv6:%5G::1%5D:80",
        "ipv6:%5B::1%5D", "ipv6:%5B::1%5", "IPV4:1.2.3.4:80", "1.2.3.4:80"}) {
    absl::StatusOr<IpAddress> ip = IpAddress::FromGrpcPeer(bad);
    EXPECT_EQ(ip.status().code(), absl::StatusCode::kInvalidArgument) << bad;
  }
}

TEST(CidrTest, Ipv4BlockContainsItsAddressesOnly) {
  const Cidr cidr = Block("10.0.0.0/8");
  EXPECT_EQ(cidr.ToString(), "10.0.0.0/8");
  EXPECT_TRUE(cidr.Contains(Ip("10.0.0.0")));
  EXPECT_TRUE(cidr.Contains(Ip("10.255.255.255")));
  EXPECT_FALSE(cidr.Contains(Ip("11.0.0.0")));
  EXPECT_FALSE(cidr.Contains(Ip("9.255.255.255")));
  EXPECT_FALSE(cidr.Contains(Ip("::a00:1")));
}

TEST(CidrTest, NonOctetPrefixComparesPartialByte) {
  const Cidr cidr = Block("10.128.0.0/9");
  EXPECT_TRUE(cidr.Contains(Ip("10.200.1.1")));
  EXPECT_FALSE(cidr.Contains(Ip("10.127.255.255")));
  const Cidr v6 = Block("2001:db8:8000::/33");
  EXPECT_TRUE(v6.Contains(Ip("2001:db8:ffff::1")));
  EXPECT_FALSE(v6.Contains(Ip("2001:db8:7fff::1")));
}

TEST(CidrTest, Ipv4BlockContainsMappedIpv6Address) {
  EXPECT_TRUE(Block("10.0.0.0/8").Contains(Ip("::ffff:10.9.9.9")));
}

TEST(CidrTest, Ipv6BlockContainsItsAddressesOnly) {
  const Cidr cidr = Block("2001:db8::/32");
  EXPECT_EQ(cidr.ToString(), "2001:db8::/32");
  EXPECT_TRUE(cidr.Contains(Ip("2001:db8:ffff::1")));
  EXPECT_FALSE(cidr.Contains(Ip("2001:db9::")));
  EXPECT_FALSE(cidr.Contains(Ip("32.1.13.184")));
}

TEST(CidrTest, BareAddressIsSingleHost) {
  const Cidr v4 = Block("192.0.2.7");
  EXPECT_EQ(v4.ToString(), "192.0.2.7/32");
  EXPECT_TRUE(v4.Contains(Ip("192.0.2.7")));
  EXPECT_FALSE(v4.Contains(Ip("192.0.2.6")));
  const Cidr v6 = Block("::1");
  EXPECT_EQ(v6.ToString(), "::1/128");
  EXPECT_TRUE(v6.Contains(Ip("::1")));
  EXPECT_FALSE(v6.Contains(Ip("::2")));
}

TEST(CidrTest, ZeroPrefixMatchesWholeFamily) {
  EXPECT_TRUE(Block("0.0.0.0/0").Contains(Ip("203.0.113.9")));
  EXPECT_FALSE(Block("0.0.0.0/0").Contains(Ip("2001:db8::1")));
  EXPECT_TRUE(Block("::/0").Contains(Ip("2001:db8::1")));
  // Mapped addresses are IPv4.
  EXPECT_FALSE(Block("::/0").Contains(Ip("::ffff:1.2.3.4")));
}

TEST(CidrTest, MappedIpv6BlockIsStoredAsIpv4) {
  const Cidr cidr = Block("::ffff:10.0.0.0/104");
  EXPECT_EQ(cidr.ToString(), "10.0.0.0/8");
  EXPECT_TRUE(cidr.Contains(Ip("10.1.1.1")));
  EXPECT_EQ(Block("::ffff:10.1.2.3").ToString(), "10.1.2.3/32");
}

TEST(CidrTest, RejectsHostBitsSet) {
  for (absl::string_view bad :
       {"10.0.0.1/8", "10.64.0.0/9", "192.168.1.1/24", "2001:db8::1/32",
        "::1/127", "::ffff:10.0.0.1/104"}) {
    absl::StatusOr<Cidr> cidr = Cidr::Parse(bad);
    EXPECT_EQ(cidr.status().code(), absl::StatusCode::kInvalidArgument) << bad;
    EXPECT_EQ(cidr.status().message(),
              "CIDR has host bits set after the prefix length")
        << bad;
  }
}

TEST(CidrTest, RejectsPrefixOutOfRange) {
  absl::StatusOr<Cidr> v4 = Cidr::Parse("10.0.0.0/33");
  EXPECT_EQ(v4.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(v4.status().message(), "CIDR prefix length must be 0..32");
  absl::StatusOr<Cidr> v6 = Cidr::Parse("2001:db8::/129");
  EXPECT_EQ(v6.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(v6.status().message(), "CIDR prefix length must be 0..128");
  absl::StatusOr<Cidr> mapped = Cidr::Parse("::ffff:0.0.0.0/95");
  EXPECT_EQ(mapped.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(mapped.status().message(),
            "an IPv4-mapped CIDR needs a prefix length of at least 96");
}

TEST(CidrTest, RejectsBadSyntax) {
  for (absl::string_view bad :
       {"", "/8", "10.0.0.0/", "10.0.0.0/8a", "10.0.0.0/-1", "10.0.0.0/+8",
        "10.0.0.0/ 8", "10.0.0.0/8/8", "10.0.0/8", "10.0.0.0/0008", "host/8",
        "[::1]/128"}) {
    absl::StatusOr<Cidr> cidr = Cidr::Parse(bad);
    EXPECT_EQ(cidr.status().code(), absl::StatusCode::kInvalidArgument) << bad;
  }
}

TEST(CidrTest, CoversNarrowerBlocksOfTheSameFamilyOnly) {
  EXPECT_TRUE(Block("10.0.0.0/8").Covers(Block("10.1.0.0/16")));
  EXPECT_TRUE(Block("10.0.0.0/8").Covers(Block("10.0.0.0/8")));
  EXPECT_TRUE(Block("10.0.0.0/8").Covers(Block("10.255.255.255")));
  EXPECT_FALSE(Block("10.0.0.0/8").Covers(Block("10.0.0.0/7")));
  EXPECT_FALSE(Block("10.0.0.0/8").Covers(Block("11.0.0.0/16")));
  EXPECT_FALSE(Block("0.0.0.0/0").Covers(Block("::/0")));
  EXPECT_TRUE(Block("2001:db8::/32").Covers(Block("2001:db8:ab::/48")));
  EXPECT_FALSE(Block("2001:db8::/32").Covers(Block("2001:db9::/48")));
  EXPECT_FALSE(Block("::/0").Covers(Block("10.0.0.0/8")));
}

TEST(ClientNetworkTest, Ipv6PerPrefixIpv4PerAddress) {
  EXPECT_EQ(ClientNetwork(Ip("2001:db8:1:2:3:4:5:6"), 64), "2001:db8:1:2::/64");
  EXPECT_EQ(ClientNetwork(Ip("2001:db8:1:2::9"), 64),
            ClientNetwork(Ip("2001:db8:1:2:ffff::1"), 64));
  EXPECT_EQ(ClientNetwork(Ip("2001:db8:1:2:3:4:5:6"), 48), "2001:db8:1::/48");
  EXPECT_EQ(ClientNetwork(Ip("2001:db8::1"), 128), "2001:db8::1/128");
  EXPECT_EQ(ClientNetwork(Ip("192.0.2.7"), 64), "192.0.2.7");
  EXPECT_EQ(ClientNetwork(Ip("::ffff:192.0.2.7"), 64), "192.0.2.7");
  EXPECT_EQ(ClientNetworkOf("not an address", 64), "not an address");
}

}  // namespace
}  // namespace lumo::core
