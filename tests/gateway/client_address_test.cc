#include "gateway/client_address.h"

#include <string>
#include <vector>

#include "gtest/gtest.h"

namespace lumo::gateway {
namespace {

TrustedProxies Proxies(absl::string_view cidrs,
                       absl::string_view header = "x-forwarded-for") {
  absl::StatusOr<TrustedProxies> proxies = TrustedProxies::Parse(cidrs, header);
  EXPECT_TRUE(proxies.ok()) << proxies.status();
  return proxies.ok() ? *proxies : TrustedProxies();
}

// The address chosen, or "error: <message>".
std::string Client(const TrustedProxies& proxies, absl::string_view peer,
                   std::vector<absl::string_view> values) {
  absl::StatusOr<std::string> got = proxies.ClientAddress(peer, values);
  return got.ok() ? *got : "error: " + std::string(got.status().message());
}

TEST(TrustedProxiesTest, ParsesCidrsAndAddresses) {
  TrustedProxies p = Proxies(" 10.0.0.0/8, 192.0.2.7 ,2001:db8::/48,");
  EXPECT_FALSE(p.empty());
  for (const char* in :
       {"10.1.2.3", "192.0.2.7", "2001:db8:0:1::5", "::ffff:10.9.9.9"}) {
    EXPECT_TRUE(p.Contains(*core::IpAddress::Parse(in))) << in;
  }
  for (const char* out : {"11.0.0.1", "192.0.2.8", "2001:db9::1"}) {
    EXPECT_FALSE(p.Contains(*core::IpAddress::Parse(out))) << out;
  }
  EXPECT_TRUE(Proxies("").empty());
  EXPECT_TRUE(Proxies(" , ").empty());
}

TEST(TrustedProxiesTest, RefusesBadSettingsNamingThem) {
  absl::StatusOr<TrustedProxies> bad =
      TrustedProxies::Parse("10.0.0.0/8, 10.0.0.1/8", "x-forwarded-for");
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("\"10.0.0.1/8\""), std::string::npos)
      << bad.status();
  EXPECT_FALSE(TrustedProxies::Parse("proxy.example.com", "forwarded").ok());
  bad = TrustedProxies::Parse("10.0.0.0/8", "x-real-ip");
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("x-real-ip"), std::string::npos);
  EXPECT_EQ(Proxies("", "FORWARDED").header(), ForwardedHeader::kForwarded);
  EXPECT_EQ(Proxies("", "X-Forwarded-For").header(),
            ForwardedHeader::kXForwardedFor);
}

TEST(ClientAddressTest, AnUntrustedPeersHeaderIsIgnored) {
  TrustedProxies p = Proxies("10.0.0.0/8");
  EXPECT_EQ(Client(p, "198.51.100.9", {"203.0.113.7"}), "198.51.100.9");
  // Even a malformed one.
  EXPECT_EQ(Client(p, "198.51.100.9", {"<script>"}), "198.51.100.9");
  // Nobody is trusted by default.
  EXPECT_EQ(Client(TrustedProxies(), "10.0.0.1", {"203.0.113.7"}), "10.0.0.1");
}

TEST(ClientAddressTest, TheRightMostUntrustedHopIsTheClient) {
  TrustedProxies p = Proxies("10.0.0.0/8");
  EXPECT_EQ(Client(p, "10.0.0.1", {"203.0.113.7"}), "203.0.113.7");
  // A client that writes its own X-Forwarded-For only adds elements to the
  // left of what the proxy appended: the spoofed one is never chosen.
  EXPECT_EQ(Client(p, "10.0.0.1", {"1.1.1.1, 203.0.113.7"}), "203.0.113.7");
  // Trusted hops are skipped, however many.
  EXPECT_EQ(Client(p, "10.0.0.1", {"203.0.113.7, 10.0.0.3 ,10.0.0.2"}),
            "203.0.113.7");
  // Several field lines are one list, in order.
  EXPECT_EQ(Client(p, "10.0.0.1", {"1.1.1.1", "203.0.113.7, 10.0.0.2"}),
            "203.0.113.7");
  EXPECT_EQ(Client(p, "10.0.0.1", {"203.0.113.7, 10.0.0.2", "10.0.0.3"}),
            "203.0.113.7");
  // Elements left of the client are never interpreted.
  EXPECT_EQ(Client(p, "10.0.0.1", {"garbage!, 203.0.113.7"}), "203.0.113.7");
}

TEST(ClientAddressTest, AllTrustedOrNoHeaderFallsBackToTheLeftMost) {
  TrustedProxies p = Proxies("10.0.0.0/8");
  EXPECT_EQ(Client(p, "10.0.0.1", {}), "10.0.0.1");
  EXPECT_EQ(Client(p, "10.0.0.1", {"10.0.0.7, 10.0.0.2"}), "10.0.0.7");
  EXPECT_EQ(Client(p, "10.0.0.1", {" , ,"}), "10.0.0.1");
}

TEST(ClientAddressTest, UnknownHopsStopAtTheLastTrustedAddress) {
  TrustedProxies p = Proxies("10.0.0.0/8");
  EXPECT_EQ(Client(p, "10.0.0.1", {"203.0.113.7, unknown"}), "10.0.0.1");
  EXPECT_EQ(Client(p, "10.0.0.1", {"203.0.113.7, _hidden, 10.0.0.2"}),
            "10.0.0.2");
  EXPECT_EQ(Client(p, "10.0.0.1", {"UNKNOWN"}), "10.0.0.1");
}

TEST(ClientAddressTest, AddressFormsOfXForwardedFor) {
  TrustedProxies p = Proxies("10.0.0.0/8, fd00::/8");
  EXPECT_EQ(Client(p, "10.0.0.1", {"203.0.113.7:4711"}), "203.0.113.7");
  EXPECT_EQ(Client(p, "10.0.0.1", {"2001:db8::1"}), "2001:db8::1");
  EXPECT_EQ(Client(p, "10.0.0.1", {"[2001:db8::1]"}), "2001:db8::1");
  EXPECT_EQ(Client(p, "10.0.0.1", {"[2001:DB8:0::1]:443"}), "2001:db8::1");
  EXPECT_EQ(Client(p, "fd00::5", {"::ffff:203.0.113.7"}), "203.0.113.7");
  EXPECT_EQ(Client(p, "10.0.0.1", {"203.0.113.7, fd00::9"}), "203.0.113.7");
}

TEST(ClientAddressTest, MalformedElementsFromTrustedHopsAreRefused) {
  TrustedProxies p = Proxies("10.0.0.0/8");
  for (absl::string_view bad :
       {"203.0.113", "203.0.113.7:99999", "203.0.113.7:", "[203.0.113.7]",
        "[2001:db8::1", "2001:db8::1]:80", "fe80::1%eth0", "host.example",
        "203.0.113.7 extra", "\"203.0.113.7\"", "203.0.113.07", "caf\xc3\xa9",
        "_", "1.2.3.4:_p!"}) {
    EXPECT_EQ(Client(p, "10.0.0.1", {bad}),
              "error: malformed X-Forwarded-For header")
        << bad;
    // Also behind a trusted hop.
    EXPECT_EQ(Client(p, "10.0.0.1", {std::string(bad) + ", 10.0.0.2"}),
              "error: malformed X-Forwarded-For header")
        << bad;
  }
}

TEST(ClientAddressTest, ForwardedElementsAndParameters) {
  TrustedProxies p = Proxies("10.0.0.0/8", "forwarded");
  EXPECT_EQ(Client(p, "10.0.0.1", {"for=203.0.113.7"}), "203.0.113.7");
  EXPECT_EQ(Client(p, "10.0.0.1", {"For=203.0.113.7;proto=https;by=10.0.0.1"}),
            "203.0.113.7");
  EXPECT_EQ(Client(p, "10.0.0.1", {"proto=https; for=\"203.0.113.7:4711\""}),
            "203.0.113.7");
  EXPECT_EQ(Client(p, "10.0.0.1", {"for=\"[2001:db8:cafe::17]:4711\""}),
            "2001:db8:cafe::17");
  EXPECT_EQ(
      Client(p, "10.0.0.1", {"for=1.1.1.1, for=203.0.113.7", "for=10.0.0.2"}),
      "203.0.113.7");
  // Commas and semicolons inside quoted strings do not split anything.
  EXPECT_EQ(
      Client(p, "10.0.0.1", {"for=203.0.113.7;by=\"a,b;c\", for=10.0.0.2"}),
      "203.0.113.7");
  EXPECT_EQ(Client(p, "10.0.0.1", {"for=203.0.113.7, for=\"_gw\""}),
            "10.0.0.1");
  // An element without `for` says nothing about the hop before it.
  EXPECT_EQ(Client(p, "10.0.0.1", {"for=203.0.113.7, proto=https"}),
            "10.0.0.1");
  // X-Forwarded-For is ignored when Forwarded is the configured header (and
  // the other way round).
  EXPECT_EQ(p.header_key(), "forwarded");
  EXPECT_EQ(Proxies("10.0.0.0/8").header_key(), "x-forwarded-for");
}

TEST(ClientAddressTest, MalformedForwardedIsRefused) {
  TrustedProxies p = Proxies("10.0.0.0/8", "forwarded");
  for (absl::string_view bad :
       {"for=", "for", "=203.0.113.7", "for=\"203.0.113.7",
        "for=203.0.113.7;for=198.51.100.1", "for=2001:db8::1",
        "for=\"2001:db8::1\"", "for=203.0.113.7 proto=https",
        "for=@203.0.113.7", "for=\"203.0.113.7\\\""}) {
    EXPECT_EQ(Client(p, "10.0.0.1", {bad}), "error: malformed Forwarded header")
        << bad;
  }
}

}  // namespace
}  // namespace lumo::gateway
