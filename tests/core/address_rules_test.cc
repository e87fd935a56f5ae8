#include "server/core/address_rules.h"

#include <string>

#include "gtest/gtest.h"

namespace lumo::core {
namespace {

std::string ClassOf(const char* text) {
  absl::StatusOr<IpAddress> ip = IpAddress::Parse(text);
  EXPECT_TRUE(ip.ok()) << text;
  return std::string(AddressClassName(ClassifyAddress(*ip)));
}

TEST(AddressRulesTest, ClassifiesEveryRefusedIpv4Block) {
  EXPECT_EQ(ClassOf("93.184.216.34"), "public");
  EXPECT_EQ(ClassOf("8.8.8.8"), "public");
  EXPECT_EQ(ClassOf("127.0.0.1"), "loopback");
  EXPECT_EQ(ClassOf("127.255.255.254"), "loopback");
  EXPECT_EQ(ClassOf("10.1.2.3"), "private");
  EXPECT_EQ(ClassOf("172.16.0.1"), "private");
  EXPECT_EQ(ClassOf("172.31.255.255"), "private");
  EXPECT_EQ(ClassOf("172.32.0.1"), "public");
  EXPECT_EQ(ClassOf("192.168.1.1"), "private");
  EXPECT_EQ(ClassOf("169.254.169.254"), "link-local");  // cloud metadata
  EXPECT_EQ(ClassOf("100.64.0.1"), "shared");
  EXPECT_EQ(ClassOf("100.127.255.255"), "shared");
  EXPECT_EQ(ClassOf("100.128.0.1"), "public");
  EXPECT_EQ(ClassOf("0.0.0.0"), "unspecified");
  EXPECT_EQ(ClassOf("224.0.0.1"), "reserved");
  EXPECT_EQ(ClassOf("255.255.255.255"), "reserved");
  EXPECT_EQ(ClassOf("240.0.0.1"), "reserved");
  EXPECT_EQ(ClassOf("198.18.0.1"), "reserved");
  EXPECT_EQ(ClassOf("203.0.113.7"), "reserved");
}

TEST(AddressRulesTest, ClassifiesIpv6AndTheIpv4ItCarries) {
  EXPECT_EQ(ClassOf("2606:4700::1111"), "public");
  EXPECT_EQ(ClassOf("::1"), "loopback");
  EXPECT_EQ(ClassOf("::"), "unspecified");
  EXPECT_EQ(ClassOf("fd00:ec2::254"), "private");  // a metadata address
  EXPECT_EQ(ClassOf("fc00::1"), "private");
  EXPECT_EQ(ClassOf("fe80::1"), "link-local");
  EXPECT_EQ(ClassOf("ff02::1"), "reserved");
  EXPECT_EQ(ClassOf("2001:db8::1"), "reserved");
  EXPECT_EQ(ClassOf("::ffff:127.0.0.1"), "loopback");
  EXPECT_EQ(ClassOf("::ffff:169.254.169.254"), "link-local");
  EXPECT_EQ(ClassOf("64:ff9b::a00:1"), "private");   // NAT64 of 10.0.0.1
  EXPECT_EQ(ClassOf("64:ff9b::808:808"), "public");  // NAT64 of 8.8.8.8
  EXPECT_EQ(ClassOf("2002:a9fe:a9fe::1"),
            "link-local");  // 6to4 169.254.169.254
  EXPECT_EQ(ClassOf("2002:808:808::1"), "public");
}

}  // namespace
}  // namespace lumo::core
