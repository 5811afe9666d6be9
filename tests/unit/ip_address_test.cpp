// IpAddress and Endpoint: parsing (valid, invalid, edge cases), RFC 5952 formatting,
// classification, ordering and the sockaddr round trip.
#include <catch2/catch.hpp>

#include <netinet/in.h>
#include <sys/socket.h>

#include <cstring>
#include <string>

#include "porthole/ip_address.hpp"

using porthole::Endpoint;
using porthole::IpAddress;

namespace {

IpAddress ip(const std::string& text) {
  auto r = IpAddress::parse(text);
  INFO(text << ": " << (r.ok() ? std::string() : r.error().message));
  REQUIRE(r.ok());
  return *r;
}

std::string reformatted(const std::string& text) { return ip(text).to_string(); }

}  // namespace

TEST_CASE("IpAddress parses IPv4 and IPv6 text", "[ip_address]") {
  auto a = ip("192.0.2.1");
  CHECK(a.is_v4());
  CHECK_FALSE(a.is_v6());
  REQUIRE(a.bytes().size() == 4);
  CHECK(a.bytes()[0] == 192);
  CHECK(a.bytes()[3] == 1);
  auto b = ip("2001:DB8::1");
  CHECK(b.is_v6());
  REQUIRE(b.bytes().size() == 16);
  CHECK(b.bytes()[0] == 0x20);
  CHECK(b.bytes()[1] == 0x01);
  CHECK(b.bytes()[15] == 1);
  CHECK(ip("0.0.0.0").is_unspecified());
  CHECK(ip("::").is_unspecified());
  CHECK(ip("255.255.255.255").to_string() == "255.255.255.255");
  CHECK(IpAddress().to_string() == "0.0.0.0");
}

TEST_CASE("IpAddress refuses what is not exactly an address", "[ip_address]") {
  for (const char* bad : {"", " 192.0.2.1", "192.0.2.1 ", "192.0.2", "192.0.2.1.5", "256.0.0.1",
                          "01.2.3.4", "192.0.2.1/24", "1.2.3.4:80", "[::1]", "::1%lo",
                          "fe80::1%eth0", "2001:db8:::1", "2001:db8::1::2", "12345::",
                          "1:2:3:4:5:6:7:8:9", "localhost", "0x7f.0.0.1", "::ffff:1.2.3.400"}) {
    INFO("'" << bad << "'");
    auto r = IpAddress::parse(bad);
    REQUIRE_FALSE(r.ok());
    CHECK(r.error().code == porthole::Errc::usage);
    CHECK(r.error().message.find("is not an IP address") != std::string::npos);
  }
  const std::string nul("1.2.3.4\0", 8);
  CHECK_FALSE(IpAddress::parse(nul).ok());
  CHECK_FALSE(IpAddress::parse(std::string(100, '1')).ok());
}

TEST_CASE("IpAddress formats IPv6 as RFC 5952 says", "[ip_address]") {
  CHECK(reformatted("2001:0DB8:0000:0000:0000:0000:0000:0001") == "2001:db8::1");  // s4.1, s4.3
  CHECK(reformatted("2001:db8:0:0:1:0:0:1") == "2001:db8::1:0:0:1");     // s4.2.3: first run
  CHECK(reformatted("2001:db8:0:1:1:1:1:1") == "2001:db8:0:1:1:1:1:1");  // s4.2.2: one group
  CHECK(reformatted("2001:0:0:1:0:0:0:1") == "2001:0:0:1::1");           // s4.2.3: longest run
  CHECK(reformatted("0:0:0:0:0:0:0:0") == "::");
  CHECK(reformatted("0:0:0:0:0:0:0:1") == "::1");
  CHECK(reformatted("1:0:0:0:0:0:0:0") == "1::");
  CHECK(reformatted("fe80:0:0:0:0:0:0:0") == "fe80::");
  CHECK(reformatted("2001:db8:1234:5678:11:2233:4455:6677") ==
        "2001:db8:1234:5678:11:2233:4455:6677");
  CHECK(reformatted("::ffff:c000:0201") == "::ffff:192.0.2.1");  // s5
  CHECK(reformatted("::ffff:192.0.2.1") == "::ffff:192.0.2.1");
  CHECK(reformatted("::192.0.2.1") == "::c000:201");  // deprecated compatible: plain hex
}

TEST_CASE("IpAddress from bytes, classification and order", "[ip_address]") {
  const std::uint8_t four[] = {198, 51, 100, 7};
  auto a = IpAddress::from_bytes(four);
  REQUIRE(a.ok());
  CHECK(*a == ip("198.51.100.7"));
  const std::uint8_t five[] = {1, 2, 3, 4, 5};
  auto bad = IpAddress::from_bytes(five);
  REQUIRE_FALSE(bad.ok());
  CHECK(bad.error().message == "an IP address is 4 or 16 bytes, not 5");

  CHECK(ip("127.0.0.1").is_loopback());
  CHECK(ip("127.255.0.9").is_loopback());
  CHECK(ip("::1").is_loopback());
  CHECK_FALSE(ip("::2").is_loopback());
  CHECK_FALSE(ip("::ffff:127.0.0.1").is_loopback());  // unmapped() first
  CHECK(ip("::ffff:127.0.0.1").unmapped().is_loopback());
  CHECK(ip("::ffff:127.0.0.1").unmapped() == ip("127.0.0.1"));
  CHECK(ip("2001:db8::1").unmapped() == ip("2001:db8::1"));
  for (const char* p : {"10.1.2.3", "172.16.0.1", "172.31.255.255", "192.168.1.1", "100.64.0.1",
                        "100.127.255.255", "fd00::1", "fc00::"})
    CHECK(ip(p).is_private());
  for (const char* p :
       {"172.32.0.1", "172.15.0.1", "100.128.0.1", "192.0.2.1", "fe00::1", "8.8.8.8"})
    CHECK_FALSE(ip(p).is_private());
  CHECK(ip("169.254.3.4").is_link_local());
  CHECK(ip("fe80::1").is_link_local());
  CHECK(ip("febf::1").is_link_local());
  CHECK_FALSE(ip("fec0::1").is_link_local());
  CHECK(ip("224.0.0.251").is_multicast());
  CHECK(ip("239.255.255.250").is_multicast());
  CHECK_FALSE(ip("240.0.0.1").is_multicast());
  CHECK(ip("ff02::fb").is_multicast());
  CHECK(ip("::ffff:1.2.3.4").is_v4_mapped());
  CHECK_FALSE(ip("1.2.3.4").is_v4_mapped());

  CHECK(ip("1.2.3.4") < ip("1.2.3.5"));
  CHECK(ip("9.0.0.0") < ip("10.0.0.0"));
  CHECK(ip("255.255.255.255") < ip("::"));       // IPv4 first
  CHECK(ip("::ffff:1.2.3.4") != ip("1.2.3.4"));  // different families
  CHECK(ip("2001:db8::1") == ip("2001:0db8:0:0::1"));
}

TEST_CASE("Endpoint parses and formats IP:PORT and [IPv6]:PORT", "[ip_address]") {
  auto e = Endpoint::parse("192.0.2.1:3478");
  REQUIRE(e.ok());
  CHECK(e->ip == ip("192.0.2.1"));
  CHECK(e->port == 3478);
  CHECK(e->to_string() == "192.0.2.1:3478");
  auto six = Endpoint::parse("[2001:DB8:0::1]:65535");
  REQUIRE(six.ok());
  CHECK(six->port == 65535);
  CHECK(six->to_string() == "[2001:db8::1]:65535");
  auto zero = Endpoint::parse("0.0.0.0:0");
  REQUIRE(zero.ok());
  CHECK(zero->port == 0);
  CHECK(Endpoint::parse("[::ffff:192.0.2.1]:1")->to_string() == "[::ffff:192.0.2.1]:1");

  for (const char* bad : {"",
                          ":",
                          "192.0.2.1",
                          "192.0.2.1:",
                          "192.0.2.1:65536",
                          "192.0.2.1:99999",
                          "192.0.2.1:-1",
                          "192.0.2.1:+80",
                          "192.0.2.1: 80",
                          "192.0.2.1:80 ",
                          "192.0.2.1:0x50",
                          "192.0.2.1:123456",
                          "::1:80",
                          "2001:db8::1",
                          "[2001:db8::1]",
                          "[2001:db8::1]80",
                          "[2001:db8::1:80",
                          "[192.0.2.1]:80",
                          "[]:80",
                          "host:80",
                          "[::1]:80:80",
                          "192.0.2.1:80:80"}) {
    INFO("'" << bad << "'");
    auto r = Endpoint::parse(bad);
    REQUIRE_FALSE(r.ok());
    CHECK(r.error().code == porthole::Errc::usage);
    CHECK(r.error().message.find("is not IP:PORT or [IPv6]:PORT") != std::string::npos);
  }
  CHECK(Endpoint::parse("192.0.2.1:65536").error().message ==
        "'192.0.2.1:65536' is not IP:PORT or [IPv6]:PORT: the port is not a number 0..65535");
  CHECK(*Endpoint::parse("1.2.3.4:80") < *Endpoint::parse("1.2.3.4:81"));
}

TEST_CASE("Endpoint round-trips through sockaddr", "[ip_address]") {
  for (const char* text : {"192.0.2.1:3478", "[2001:db8::7]:443"}) {
    auto e = Endpoint::parse(text);
    REQUIRE(e.ok());
    sockaddr_storage ss{};
    const std::size_t len = e->to_sockaddr(ss);
    CHECK(len == (e->ip.is_v4() ? sizeof(sockaddr_in) : sizeof(sockaddr_in6)));
    auto back = Endpoint::from_sockaddr(reinterpret_cast<const sockaddr*>(&ss), len);
    REQUIRE(back.ok());
    CHECK(*back == *e);
  }
  sockaddr_in in{};
  in.sin_family = AF_INET;
  in.sin_port = htons(80);
  in.sin_addr.s_addr = htonl(0x7f000001);
  auto e = Endpoint::from_sockaddr(reinterpret_cast<const sockaddr*>(&in), sizeof(in));
  REQUIRE(e.ok());
  CHECK(e->to_string() == "127.0.0.1:80");
  CHECK_FALSE(Endpoint::from_sockaddr(reinterpret_cast<const sockaddr*>(&in), 4).ok());
  CHECK_FALSE(Endpoint::from_sockaddr(nullptr, 0).ok());
  sockaddr_storage unix_family{};
  unix_family.ss_family = AF_UNIX;
  CHECK_FALSE(
      Endpoint::from_sockaddr(reinterpret_cast<const sockaddr*>(&unix_family), sizeof(unix_family))
          .ok());
}
