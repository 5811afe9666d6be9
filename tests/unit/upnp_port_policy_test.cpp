// choose_upnp_port against scripted UpnpPortActions: the port-choice policy alone, no
// sockets (UpnpClient against FakeIgd covers the same paths end to end).
#include <catch2/catch.hpp>

#include <chrono>
#include <map>
#include <string>
#include <vector>

#include "proto/upnp_port_policy.hpp"
#include "ip_literal.hpp"

using porthole::test::ip;

using namespace porthole;
using namespace porthole::detail;
using namespace std::chrono_literals;

namespace {

// A router whose AddPortMapping answers `fault_for(port)`; nothing is in its table.
struct ScriptedRouter final : UpnpPortActions {
  std::map<std::uint16_t, int> faults;  // external port -> fault (absent: success)
  std::vector<std::string> calls;       // "find 5000", "AddPortMapping 5000", ...

  Result<std::optional<UpnpEntry>> find(Transport, std::uint16_t port, Deadline) override {
    calls.push_back("find " + std::to_string(port));
    return std::optional<UpnpEntry>{};
  }
  Result<UpnpTable> list(Deadline) override {
    calls.push_back("list");
    return UpnpTable{};
  }
  Result<SoapReply> add_mapping(std::string_view action, const std::vector<SoapArgument>& args,
                                Deadline) override {
    std::string port;
    for (const auto& [name, value] : args)
      if (name == "NewExternalPort") port = std::string(value);
    calls.push_back(std::string(action) + " " + port);
    SoapReply reply;
    auto it = faults.find(static_cast<std::uint16_t>(std::stoi(port)));
    if (it != faults.end()) reply.fault = it->second;
    return reply;
  }
};

MapParams wanted(std::uint16_t port) {
  MapParams p;
  p.internal_ip = ip("192.168.1.100");
  p.internal_port = port;
  p.lifetime = 3600;
  p.description = "porthole";
  return p;
}

}  // namespace

TEST_CASE("UPnP port policy: a free wanted port is taken as it is", "[upnp][policy]") {
  ScriptedRouter router;
  auto grant = choose_upnp_port(router, wanted(5000), true, false, Clock::now() + 10s, {});
  REQUIRE(grant.ok());
  CHECK(grant->external_port == 5000);
  CHECK(router.calls == std::vector<std::string>{"find 5000", "AddPortMapping 5000", "find 5000"});
}

TEST_CASE("UPnP port policy: IGDv1 walks up from a port in conflict (718)", "[upnp][policy]") {
  ScriptedRouter router;
  router.faults = {{5000, 718}, {5001, 718}};
  auto grant = choose_upnp_port(router, wanted(5000), false, false, Clock::now() + 10s, {});
  REQUIRE(grant.ok());
  CHECK(grant->external_port == 5002);
  CHECK(std::count(router.calls.begin(), router.calls.end(), "AddAnyPortMapping 5000") == 0);
}

TEST_CASE("UPnP port policy: 501 without an external address is an upstream NAT",
          "[upnp][policy]") {
  ScriptedRouter router;
  router.faults = {{5000, 501}};
  auto grant = choose_upnp_port(router, wanted(5000), false, true, Clock::now() + 10s, {});
  REQUIRE_FALSE(grant.ok());
  CHECK(grant.error().code == Errc::refused);
  CHECK(grant.error().protocol_code == 501);
  CHECK(grant.error().message.find("another NAT") != std::string::npos);
  // No other port is tried: none would do better.
  CHECK(std::count(router.calls.begin(), router.calls.end(), "AddPortMapping 5001") == 0);
}

TEST_CASE("UPnP port policy: a refused lease becomes a permanent one, with a warning",
          "[upnp][policy]") {
  struct LeaseRefusing final : UpnpPortActions {
    std::vector<std::string> leases;
    Result<std::optional<UpnpEntry>> find(Transport, std::uint16_t, Deadline) override {
      return std::optional<UpnpEntry>{};
    }
    Result<UpnpTable> list(Deadline) override { return UpnpTable{}; }
    Result<SoapReply> add_mapping(std::string_view, const std::vector<SoapArgument>& args,
                                  Deadline) override {
      SoapReply reply;
      for (const auto& [name, value] : args)
        if (name == "NewLeaseDuration") {
          leases.emplace_back(value);
          if (value != "0") reply.fault = 725;
        }
      return reply;
    }
  } router;
  auto grant = choose_upnp_port(router, wanted(5000), true, false, Clock::now() + 10s, {});
  REQUIRE(grant.ok());
  CHECK(grant->lease == 0);
  CHECK(router.leases == std::vector<std::string>{"3600", "0"});
  REQUIRE(grant->warnings.size() == 1);
  CHECK(grant->warnings[0].find("permanent") != std::string::npos);
}
