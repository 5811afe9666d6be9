#include <catch2/catch.hpp>

#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "cli_args.hpp"
#include "parse_command_line.hpp"
#include "ip_literal.hpp"

using porthole::test::ip;

using namespace porthole;
using namespace porthole::cli;

using cli::test::parse;

TEST_CASE("open with every option", "[cli]") {
  auto r = parse({"open", "51820/udp", "--external-port", "51821", "--lifetime", "3600", "--via",
                  "natpmp", "--description", "wireguard", "--strict-port"});
  REQUIRE(r.invocation);
  const auto& inv = *r.invocation;
  CHECK(inv.command == Command::open);
  CHECK(inv.open.port.port == 51820);
  CHECK(inv.open.port.transport == Transport::udp);
  REQUIRE(inv.open.external_port);
  CHECK(*inv.open.external_port == 51821);
  CHECK(inv.open.lifetime == 3600);
  CHECK(inv.open.via == Via::natpmp);
  CHECK(inv.open.description == "wireguard");
  CHECK(inv.open.strict_port);
}

TEST_CASE("defaults: tcp, lifetime 7200, auto, 5 s", "[cli]") {
  auto r = parse({"open", "8080"});
  REQUIRE(r.invocation);
  CHECK(r.invocation->open.port.transport == Transport::tcp);
  CHECK(r.invocation->open.lifetime == 7200);
  CHECK(r.invocation->open.via == Via::automatic);
  CHECK_FALSE(r.invocation->open.external_port);
  CHECK(r.invocation->options.timeout == std::chrono::milliseconds(5000));
  CHECK_FALSE(r.invocation->json);
}

TEST_CASE("global options work before and after the command", "[cli]") {
  auto before = parse({"--json", "--gateway", "192.168.1.1", "--timeout", "2.5", "-v",
                       "--state-dir", "/tmp/x", "open", "8080"});
  auto after = parse({"open", "8080", "--json", "--gateway", "192.168.1.1", "--timeout", "2.5",
                      "-v", "--state-dir", "/tmp/x"});
  for (auto* r : {&before, &after}) {
    REQUIRE(r->invocation);
    CHECK(r->invocation->json);
    CHECK(r->invocation->options.gateway == ip("192.168.1.1"));
    CHECK(r->invocation->options.timeout == std::chrono::milliseconds(2500));
    CHECK(r->invocation->verbosity == 1);
    CHECK(r->invocation->options.state_dir == "/tmp/x");
  }
  auto q = parse({"list", "-q"});
  REQUIRE(q.invocation);
  CHECK(q.invocation->command == Command::list);
  CHECK(q.invocation->verbosity == -1);
}

TEST_CASE("bad arguments are usage errors (exit 2) that say what was wrong", "[cli]") {
  struct Case {
    std::vector<std::string> args;
    const char* says;
  };
  const std::vector<Case> cases = {
      {{"open", "0"}, "out of range"},
      {{"open", "70000"}, "out of range"},
      {{"open", "abc"}, "is not a port"},
      {{"open", "8080/sctp"}, "tcp or udp"},
      {{"open", "8080", "--lifetime", "-5"}, "negative"},
      {{"open", "8080", "--lifetime", "soon"}, "not a number"},
      {{"open", "8080", "--external-port", "0"}, "out of range"},
      {{"open", "8080", "--external-port", "99999"}, "out of range"},
      {{"open", "8080", "--via", "carrier-pigeon"}, "unknown protocol"},
      {{"--gateway", "my.router", "probe"}, "not an IPv4 address"},
      {{"--gateway", "192.168.1.300", "probe"}, "not an IPv4 address"},
      {{"--timeout", "0", "probe"}, "timeout"},
      {{"--timeout", "-1", "probe"}, "timeout"},
      {{"open"}, "PORT"},
      {{"close"}, "PORT"},
      {{}, "subcommand"},
      {{"frobnicate"}, "frobnicate"},
      {{"probe", "-v", "-q"}, "contradict"},
      {{"probe", "--stun", "stun.example:0"}, "port between 1 and 65535"},
      {{"probe", "--stun", "bad host"}, "not a host name"},
  };
  for (const auto& c : cases) {
    std::string joined;
    for (const auto& a : c.args) joined += a + " ";
    INFO(joined);
    auto r = parse(c.args);
    CHECK_FALSE(r.invocation);
    CHECK(r.exit_code == 2);
    CHECK_THAT(r.err, Catch::Contains(c.says, Catch::CaseSensitive::No));
  }
}

TEST_CASE("help: --help prints usage with the commands and exits 0", "[cli]") {
  auto r = parse({"--help"});
  CHECK_FALSE(r.invocation);
  CHECK(r.exit_code == 0);
  CHECK_THAT(r.out, Catch::Contains("open"));
  CHECK_THAT(r.out, Catch::Contains("Exit status"));
  auto sub = parse({"open", "--help"});
  CHECK(sub.exit_code == 0);
  CHECK_THAT(sub.out, Catch::Contains("--external-port"));
  CHECK_THAT(sub.out, Catch::Contains("--lifetime"));
}

TEST_CASE("close takes PORT and --external-port", "[cli]") {
  auto r = parse({"close", "8080/udp", "--external-port", "9000"});
  REQUIRE(r.invocation);
  CHECK(r.invocation->command == Command::close);
  CHECK(r.invocation->close.port.port == 8080);
  CHECK(r.invocation->close.port.transport == Transport::udp);
  REQUIRE(r.invocation->close.external_port);
  CHECK(*r.invocation->close.external_port == 9000);
}

TEST_CASE("the global option --stun is repeatable and keeps the user's order", "[args]") {
  auto r = parse({"--stun", "198.51.100.10", "probe", "--stun", "stun.example.net:19302"});
  REQUIRE(r.invocation);
  CHECK(r.invocation->options.stun_servers ==
        std::vector<std::string>{"198.51.100.10", "stun.example.net:19302"});
  auto none = parse({"probe"});
  REQUIRE(none.invocation);
  CHECK(none.invocation->options.stun_servers.empty());
}

TEST_CASE("nat: global options before and after, help", "[cli]") {
  auto r = parse({"--stun", "198.51.100.10", "nat", "--json", "--timeout", "2"});
  REQUIRE(r.invocation);
  CHECK(r.invocation->command == Command::nat);
  CHECK(r.invocation->json);
  CHECK(r.invocation->options.stun_servers == std::vector<std::string>{"198.51.100.10"});
  CHECK(r.invocation->options.timeout == std::chrono::milliseconds(2000));
  auto bad = parse({"nat", "--stun", "stun.example:0"});
  CHECK_FALSE(bad.invocation);
  CHECK(bad.exit_code == 2);
  auto help = parse({"nat", "--help"});
  CHECK(help.out.find("porthole nat") != std::string::npos);
  CHECK(help.out.find("RFC 5780") != std::string::npos);
  CHECK(parse({"--help"}).out.find("porthole nat") != std::string::npos);
}

TEST_CASE("the global flag --upnp-allow-lan is off unless given", "[args]") {
  auto off = parse({"open", "8080"});
  REQUIRE(off.invocation);
  CHECK_FALSE(off.invocation->options.upnp_allow_lan);
  auto on = parse({"open", "8080", "--upnp-allow-lan"});
  REQUIRE(on.invocation);
  CHECK(on.invocation->options.upnp_allow_lan);
}

TEST_CASE(
    "the gateway must be a unicast address: this-network, multicast and broadcast are "
    "usage errors",
    "[cli]") {
  for (const char* bad :
       {"0.0.0.0", "0.1.2.3", "224.0.0.1", "239.255.255.250", "240.0.0.1", "255.255.255.255"}) {
    INFO(bad);
    auto r = parse({"--gateway", bad, "probe"});
    CHECK_FALSE(r.invocation);
    CHECK(r.exit_code == 2);
    CHECK_THAT(r.err, Catch::Contains(bad));
    CHECK_THAT(r.err, Catch::Contains("router's own address"));
  }
  for (const char* good : {"192.168.1.1", "10.0.0.1", "203.0.113.1", "127.0.0.1"}) {
    INFO(good);
    auto r = parse({"--gateway", good, "probe"});
    REQUIRE(r.invocation);
    CHECK(r.invocation->options.gateway == good);
  }
}

TEST_CASE("a timeout of 0 is refused with the values that are accepted", "[cli]") {
  for (const char* bad : {"0", "3601", "0.0"}) {
    INFO(bad);
    auto r = parse({"--timeout", bad, "probe"});
    CHECK(r.exit_code == 2);
    CHECK_THAT(r.err, Catch::Contains("above 0 and at most 3600"));
    CHECK(r.err.find("between 0") == std::string::npos);
  }
  auto small = parse({"--timeout", "0.5", "probe"});
  REQUIRE(small.invocation);
  CHECK(small.invocation->options.timeout == std::chrono::milliseconds(500));
}

TEST_CASE("usage errors under --json print the error object on stdout", "[cli]") {
  for (const std::vector<std::string>& args :
       {std::vector<std::string>{"open", "abc", "--json"},
        std::vector<std::string>{"--json", "open"},
        std::vector<std::string>{"--json", "frobnicate"},
        std::vector<std::string>{"--json", "--gateway", "255.255.255.255", "probe"}}) {
    INFO(args.back());
    auto r = parse(args);
    CHECK_FALSE(r.invocation);
    CHECK(r.exit_code == 2);
    CHECK_FALSE(r.err.empty());
    auto j = nlohmann::json::parse(r.out);
    CHECK(j["error"]["code"] == 2);
    CHECK(j["error"]["name"] == "usage");
    CHECK(j["error"]["protocol_code"] == 0);
    CHECK(j["error"]["message"] == r.err);
  }
  // Without --json: nothing on stdout.
  CHECK(parse({"open", "abc"}).out.empty());
}

TEST_CASE("the version printed is the project version", "[cli]") {
  auto r = parse({"--version"});
  CHECK(r.exit_code == 0);
  // The first line is the version alone; the libraries follow (tests/cli/version_test.sh).
  CHECK(r.out.substr(0, r.out.find('\n') + 1) ==
        std::string("porthole ") + PORTHOLE_TEST_VERSION + "\n");
  CHECK_THAT(r.out, Catch::Contains("\n  miniupnpc "));
  CHECK_THAT(r.out, Catch::Contains("\n  libnatpmp "));
  CHECK_THAT(r.out, Catch::Contains("\n  GnuTLS "));
  auto j = nlohmann::json::parse(parse({"--version", "--json"}).out);
  CHECK(j["version"] == PORTHOLE_TEST_VERSION);
  CHECK(j["libraries"].size() >= 3);
}
