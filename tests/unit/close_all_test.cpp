// Which recorded mappings `close --via` and `close --all` pick (core/close_all.hpp), and
// the close command line.
#include <catch2/catch.hpp>

#include <string>
#include <vector>

#include "core/close_all.hpp"
#include "ip_literal.hpp"
#include "parse_command_line.hpp"

using porthole::test::ip;

using namespace porthole;
using namespace porthole::detail;

namespace {

StoredMapping stored(Protocol p, Transport t, std::uint16_t port,
                     const char* gateway = "192.168.1.1", const char* me = "192.168.1.100") {
  StoredMapping s;
  s.gateway = ip(gateway);
  s.mapping.protocol = p;
  s.mapping.transport = t;
  s.mapping.internal_ip = ip(me);
  s.mapping.internal_port = port;
  s.mapping.external_port = port;
  return s;
}

std::vector<std::uint16_t> ports(const std::vector<StoredMapping>& v) {
  std::vector<std::uint16_t> out;
  for (const auto& m : v) out.push_back(m.mapping.internal_port);
  return out;
}

}  // namespace

TEST_CASE("via_selects: automatic takes any protocol, a named one only its own", "[close]") {
  for (auto p : {Protocol::pcp, Protocol::natpmp, Protocol::upnp})
    CHECK(via_selects(Via::automatic, p));
  CHECK(via_selects(Via::pcp, Protocol::pcp));
  CHECK_FALSE(via_selects(Via::pcp, Protocol::natpmp));
  CHECK_FALSE(via_selects(Via::pcp, Protocol::upnp));
  CHECK(via_selects(Via::natpmp, Protocol::natpmp));
  CHECK_FALSE(via_selects(Via::natpmp, Protocol::upnp));
  CHECK(via_selects(Via::upnp, Protocol::upnp));
  CHECK_FALSE(via_selects(Via::upnp, Protocol::natpmp));
}

TEST_CASE("close --all plans this host's mappings on this gateway, sorted", "[close]") {
  const std::vector<StoredMapping> state = {
      stored(Protocol::upnp, Transport::udp, 5000), stored(Protocol::pcp, Transport::tcp, 9000),
      stored(Protocol::natpmp, Transport::tcp, 8080),
      // another gateway (the host moved networks), another address of this host
      stored(Protocol::pcp, Transport::tcp, 7000, "10.0.0.1"),
      stored(Protocol::upnp, Transport::tcp, 7001, "192.168.1.1", "192.168.1.101")};
  auto plan = plan_close_all(state, ip("192.168.1.1"), ip("192.168.1.100"), Via::automatic);
  // TCP before UDP, then by port.
  CHECK(ports(plan.close) == std::vector<std::uint16_t>{8080, 9000, 5000});
  CHECK(ports(plan.elsewhere) == std::vector<std::uint16_t>{7000, 7001});
}

TEST_CASE("close --all --via keeps only that protocol's mappings", "[close]") {
  const std::vector<StoredMapping> state = {stored(Protocol::upnp, Transport::udp, 5000),
                                            stored(Protocol::pcp, Transport::tcp, 9000),
                                            stored(Protocol::natpmp, Transport::tcp, 8080),
                                            stored(Protocol::natpmp, Transport::tcp, 7000,
                                                   "10.0.0.1")};
  auto plan = plan_close_all(state, ip("192.168.1.1"), ip("192.168.1.100"), Via::natpmp);
  CHECK(ports(plan.close) == std::vector<std::uint16_t>{8080});
  CHECK(ports(plan.elsewhere) == std::vector<std::uint16_t>{7000});
  plan = plan_close_all(state, ip("192.168.1.1"), ip("192.168.1.100"), Via::upnp);
  CHECK(ports(plan.close) == std::vector<std::uint16_t>{5000});
  CHECK(plan.elsewhere.empty());
}

TEST_CASE("close --all of an empty state plans nothing", "[close]") {
  auto plan = plan_close_all({}, ip("192.168.1.1"), ip("192.168.1.100"), Via::automatic);
  CHECK(plan.close.empty());
  CHECK(plan.elsewhere.empty());
}

TEST_CASE("close: --via and --all on the command line", "[cli][close]") {
  using cli::test::parse;
  auto r = parse({"close", "8080", "--via", "natpmp"});
  REQUIRE(r.invocation);
  CHECK(r.invocation->close.via == Via::natpmp);
  CHECK_FALSE(r.invocation->close_all);
  CHECK(r.invocation->close.port.port == 8080);

  r = parse({"close", "--all"});
  REQUIRE(r.invocation);
  CHECK(r.invocation->close_all);
  CHECK(r.invocation->close.via == Via::automatic);

  r = parse({"close", "--all", "--via", "upnp", "--json"});
  REQUIRE(r.invocation);
  CHECK(r.invocation->close_all);
  CHECK(r.invocation->close.via == Via::upnp);

  // Bad input: a clear usage error, nothing run.
  r = parse({"close", "--all", "8080"});
  CHECK_FALSE(r.invocation);
  CHECK(r.exit_code == 2);
  CHECK(r.err == "close --all takes no PORT");
  r = parse({"close"});
  CHECK_FALSE(r.invocation);
  CHECK(r.err == "close needs a PORT (or --all)");
  r = parse({"close", "8080", "--via", "smoke"});
  CHECK_FALSE(r.invocation);
  CHECK(r.err.find("unknown protocol 'smoke'") != std::string::npos);
  r = parse({"close", "--all", "--external-port", "9"});
  CHECK_FALSE(r.invocation);
  CHECK(r.err == "close --all takes no --external-port");
}
