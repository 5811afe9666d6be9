#include <catch2/catch.hpp>

#include <cstdlib>

#include <porthole/porthole.hpp>
#include <porthole/types.hpp>

#include "core/stun_servers.hpp"
#include "net/ipv4_class.hpp"

using namespace porthole;

TEST_CASE("PORT accepts N, N/tcp and N/udp", "[args]") {
  auto a = parse_port_spec("8080");
  REQUIRE(a.ok());
  CHECK(a->port == 8080);
  CHECK(a->transport == Transport::tcp);
  auto b = parse_port_spec("51820/udp");
  REQUIRE(b.ok());
  CHECK(b->port == 51820);
  CHECK(b->transport == Transport::udp);
  auto c = parse_port_spec("1/tcp");
  REQUIRE(c.ok());
  CHECK(c->port == 1);
  auto d = parse_port_spec("65535");
  REQUIRE(d.ok());
  CHECK(d->port == 65535);
}

TEST_CASE("PORT rejects what is not a port, with a usage error saying why", "[args]") {
  struct Case {
    const char* text;
    const char* says;
  };
  const Case cases[] = {
      {"0", "out of range"},
      {"70000", "out of range"},
      {"65536", "out of range"},
      {"abc", "is not a port"},
      {"", "is not a port"},
      {"80a", "is not a port"},
      {"-1", "is not a port"},
      {"8080/sctp", "transport must be tcp or udp"},
      {"8080/", "transport must be tcp or udp"},
      {"/tcp", "is not a port"},
      {"99999999999999999999", "out of range"},
      {" 80", "is not a port"},
  };
  for (const auto& c : cases) {
    INFO(c.text);
    auto r = parse_port_spec(c.text);
    REQUIRE_FALSE(r.ok());
    CHECK(r.error().code == Errc::usage);
    CHECK_THAT(r.error().message, Catch::Contains(c.says));
  }
}

TEST_CASE("protocol names for --via", "[args]") {
  CHECK(*parse_via("auto") == Via::automatic);
  CHECK(*parse_via("pcp") == Via::pcp);
  CHECK(*parse_via("natpmp") == Via::natpmp);
  CHECK(*parse_via("upnp") == Via::upnp);
  auto bad = parse_via("igd");
  REQUIRE_FALSE(bad.ok());
  CHECK(bad.error().code == Errc::usage);
}

TEST_CASE("IPv4 literals are dotted quads only", "[args]") {
  CHECK(is_ipv4_literal("192.168.1.1"));
  CHECK(is_ipv4_literal("0.0.0.0"));
  CHECK_FALSE(is_ipv4_literal("192.168.1"));
  CHECK_FALSE(is_ipv4_literal("192.168.1.256"));
  CHECK_FALSE(is_ipv4_literal("router.local"));
  CHECK_FALSE(is_ipv4_literal("::1"));
  CHECK_FALSE(is_ipv4_literal("0x7f.0.0.1"));
  CHECK_FALSE(is_ipv4_literal(""));
}

TEST_CASE("HOST[:PORT] for --stun", "[args]") {
  auto plain = parse_host_port("stun.example.net", 3478);
  REQUIRE(plain);
  CHECK(plain->host == "stun.example.net");
  CHECK(plain->port == 3478);
  auto with_port = parse_host_port("198.51.100.10:3479", 3478);
  REQUIRE(with_port);
  CHECK(with_port->host == "198.51.100.10");
  CHECK(with_port->port == 3479);
  for (const char* bad : {"", ":3478", "host:", "host:0", "host:65536", "host:12x", "bad host",
                          "host/path:1", "a\x01b"}) {
    INFO(bad);
    auto r = parse_host_port(bad, 3478);
    REQUIRE_FALSE(r);
    CHECK(r.error().code == Errc::usage);
  }
}

TEST_CASE("default STUN servers come from $PORTHOLE_STUN, else a built-in list", "[args]") {
  ::unsetenv("PORTHOLE_STUN");
  auto builtin = default_stun_servers();
  CHECK_FALSE(builtin.empty());
  ::setenv("PORTHOLE_STUN", "198.51.100.10:3478, 198.51.100.11,,", 1);
  CHECK(default_stun_servers() == std::vector<std::string>{"198.51.100.10:3478", "198.51.100.11"});
  ::setenv("PORTHOLE_STUN", " , ", 1);
  CHECK(default_stun_servers() == builtin);
  ::unsetenv("PORTHOLE_STUN");
}

TEST_CASE("external addresses routers report are classified", "[ipv4]") {
  using namespace porthole::detail;
  CHECK(is_unusable_external_ip(""));
  CHECK(is_unusable_external_ip("0.0.0.0"));
  CHECK(is_unusable_external_ip("127.0.0.1"));
  CHECK(is_unusable_external_ip("garbage"));
  CHECK(is_unusable_external_ip("239.255.255.250"));
  CHECK_FALSE(is_unusable_external_ip("8.8.8.8"));
  CHECK(is_reserved_ipv4("10.1.2.3"));
  CHECK(is_reserved_ipv4("100.64.0.1"));  // CGNAT shared space
  CHECK(is_reserved_ipv4("172.31.255.255"));
  CHECK(is_reserved_ipv4("192.168.0.1"));
  CHECK(is_reserved_ipv4("203.0.113.2"));  // RFC 5737: the lab's WAN
  CHECK_FALSE(is_reserved_ipv4("172.32.0.1"));
  CHECK_FALSE(is_reserved_ipv4("1.1.1.1"));
}

TEST_CASE("error codes are the documented exit statuses", "[errors]") {
  // man porthole(1), EXIT STATUS: append-only, never renumbered.
  CHECK(static_cast<int>(Errc::internal) == 1);
  CHECK(static_cast<int>(Errc::usage) == 2);
  CHECK(static_cast<int>(Errc::no_service) == 3);
  CHECK(static_cast<int>(Errc::refused) == 4);
  CHECK(static_cast<int>(Errc::timeout) == 5);
  CHECK(static_cast<int>(Errc::not_verified) == 6);
  CHECK(static_cast<int>(Errc::punch_failed) == 7);
  CHECK(static_cast<int>(Errc::state) == 8);
  CHECK(static_cast<int>(Errc::peer_refused) == 9);
  CHECK(std::string(errc_name(Errc::refused)) == "refused");
  CHECK(std::string(errc_name(Errc::peer_refused)) == "peer-refused");
}

TEST_CASE(
    "$PORTHOLE_STUN: surrounding white space (a trailing newline) is trimmed, a huge "
    "bad value is not echoed whole",
    "[args]") {
  ::setenv("PORTHOLE_STUN", "198.51.100.10:3478\n", 1);
  CHECK(default_stun_servers() == std::vector<std::string>{"198.51.100.10:3478"});
  ::setenv("PORTHOLE_STUN", "\t 198.51.100.10\r\n198.51.100.11 \n", 1);
  CHECK(default_stun_servers() == std::vector<std::string>{"198.51.100.10", "198.51.100.11"});
  const std::string huge = std::string(100000, 'a') + ":0";
  ::setenv("PORTHOLE_STUN", huge.c_str(), 1);
  auto r = porthole::detail::configured_stun_servers(Options{});
  REQUIRE_FALSE(r);
  CHECK(r.error().code == Errc::usage);
  CHECK(r.error().message.size() < 200);
  CHECK_THAT(r.error().message, Catch::Contains("aaaa..."));
  ::unsetenv("PORTHOLE_STUN");
}
