// UpnpClient against FakeIgd (fake_igd.hpp), for the router behaviours the lab's real
// miniupnpd cannot be made to show: SOAP faults on demand, odd external addresses, a
// device without a WAN connection service, other hosts' entries. Each test checks what
// porthole concluded and what it sent. The gateway is 127.0.0.1, so discovery sends no
// multicast and nothing leaves the loopback interface (first test).
#include <catch2/catch.hpp>

#include <algorithm>
#include <chrono>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "fake_igd.hpp"
#include "proto/upnp_client.hpp"
#include "ip_literal.hpp"

using porthole::test::ip;

using namespace porthole;
using namespace porthole::detail;
using porthole::test::FakeIgd;
using namespace std::chrono_literals;

namespace {

// The fake answers at once: this only bounds a broken run, it is never reached.
Deadline soon() { return Clock::now() + 10s; }

// A fresh fake IGD and a client of it that keeps its log lines.
struct Rig {
  explicit Rig(FakeIgd::Options options = {})
      : igd(std::move(options)),
        client(igd.gateway([this](LogLevel, std::string_view line) { log.emplace_back(line); })) {}

  std::size_t log_lines_containing(std::string_view needle) const {
    return static_cast<std::size_t>(std::count_if(log.begin(), log.end(), [&](const auto& l) {
      return l.find(needle) != std::string::npos;
    }));
  }

  FakeIgd igd;
  std::vector<std::string> log;  // the client logs from the test's thread only
  UpnpClient client;
};

FakeIgd::Options igd_v1() {
  FakeIgd::Options o;
  o.igd_version = 1;
  return o;
}

// What porthole asks for: this host's port `port`, the same external port if possible.
MapParams wanted(Transport transport, std::uint16_t port, std::uint32_t lifetime = 3600) {
  MapParams p;
  p.transport = transport;
  p.internal_ip = ip("127.0.0.1");
  p.internal_port = port;
  p.lifetime = lifetime;
  p.description = "porthole test";
  return p;
}

// Another host's entry in the router's table.
FakeIgd::Entry foreign(std::uint16_t port, std::string protocol = "TCP") {
  return {std::move(protocol), port, "10.0.0.9", port, "someone else", 0};
}

// One argument of each request, in order: what porthole sent, in one line per assertion.
std::vector<std::string> args_of(const std::vector<FakeIgd::Request>& requests,
                                 const std::string& name) {
  std::vector<std::string> out;
  for (const auto& r : requests) out.push_back(r.arg(name));
  return out;
}

std::vector<std::string> actions_of(const std::vector<FakeIgd::Request>& requests) {
  std::vector<std::string> out;
  for (const auto& r : requests) out.push_back(r.action);
  return out;
}

using Strings = std::vector<std::string>;

}  // namespace

TEST_CASE("UPnP fake IGD: discovery stays on loopback", "[upnp][fake_igd]") {
  Rig rig;
  auto info = rig.client.probe(soon());
  REQUIRE(info.ok());
  CHECK(info->external_ip == ip("203.0.113.7"));
  CHECK(rig.igd.msearch_count() >= 1);
  // Unicast to the fake only: a loopback gateway turns multicast off.
  CHECK(rig.log_lines_containing(fmt::format("M-SEARCH for IGD:1, WANIPConnection:1 "
                                             "to 127.0.0.1:{} (round",
                                             rig.igd.ssdp_port())) >= 1);
  CHECK(rig.log_lines_containing("239.255.255.250") == 0);
  CHECK(actions_of(rig.igd.requests()) == Strings{"GET", "GetExternalIPAddress"});
  CHECK(rig.igd.requests().front().arg("path") == "/rootDesc.xml");
}

TEST_CASE("UPnP: a lease refused with 725 or 402 is retried as permanent, with a warning",
          "[upnp][fake_igd]") {
  // 725 OnlyPermanentLeasesSupported; 402 Invalid Args from routers that take no lease.
  const int code = GENERATE(725, 402);
  INFO("SOAP fault " << code);
  Rig rig;
  rig.igd.fail_add_with_lease(code);
  auto out = rig.client.map(wanted(Transport::tcp, 5000, 3600), soon());
  REQUIRE(out.ok());
  CHECK(out->mapping.external_port == 5000);
  CHECK(out->mapping.lifetime == 0);
  CHECK(out->mapping.expires_at == 0);
  REQUIRE(out->warnings.size() == 1);
  CHECK_THAT(out->warnings[0], Catch::Contains("3600 s lease") && Catch::Contains("permanent") &&
                                   Catch::Contains(std::to_string(code)));

  auto adds = rig.igd.requests("AddPortMapping");
  CHECK(args_of(adds, "NewLeaseDuration") == Strings{"3600", "0"});
  CHECK(args_of(adds, "NewExternalPort") == Strings{"5000", "5000"});
  CHECK(args_of(adds, "NewInternalClient") == Strings{"127.0.0.1", "127.0.0.1"});
  CHECK(args_of(adds, "NewInternalPort") == Strings{"5000", "5000"});
  auto table = rig.igd.table();
  REQUIRE(table.size() == 1);
  CHECK(table[0].lease == 0);
}

TEST_CASE("UPnP: a conflict on IGDv2 is solved with AddAnyPortMapping", "[upnp][fake_igd]") {
  Rig rig;  // IGDv2
  Strings expected_adds;
  SECTION("718 from AddPortMapping: a port the router keeps for itself") {
    rig.igd.reserve_port("TCP", 5000);
    expected_adds = {"5000"};
  }
  SECTION("the port is another host's entry, seen before adding") {
    rig.igd.add_entry(foreign(5000));
  }
  auto out = rig.client.map(wanted(Transport::tcp, 5000), soon());
  REQUIRE(out.ok());
  CHECK(out->mapping.external_port == 5001);  // the fake's next free port
  CHECK(out->mapping.internal_port == 5000);

  CHECK(args_of(rig.igd.requests("AddPortMapping"), "NewExternalPort") == expected_adds);
  auto any = rig.igd.requests("AddAnyPortMapping");
  REQUIRE(any.size() == 1);
  CHECK(any[0].arg("NewExternalPort") == "5000");
  CHECK(any[0].arg("NewProtocol") == "TCP");
  CHECK(any[0].arg("NewInternalClient") == "127.0.0.1");
  CHECK(any[0].arg("NewInternalPort") == "5000");
  auto table = rig.igd.table();
  CHECK(std::count_if(table.begin(), table.end(), [](const FakeIgd::Entry& e) {
          return e.external_port == 5001 && e.internal_client == "127.0.0.1";
        }) == 1);
}

TEST_CASE("UPnP: a conflict on IGDv1 walks to the next free port", "[upnp][fake_igd]") {
  Rig rig(igd_v1());
  rig.igd.reserve_port("TCP", 5000);  // AddPortMapping answers 718
  rig.igd.add_entry(foreign(5001));   // visible: must be skipped without an add
  auto out = rig.client.map(wanted(Transport::tcp, 5000), soon());
  REQUIRE(out.ok());
  CHECK(out->mapping.external_port == 5002);

  CHECK(args_of(rig.igd.requests("AddPortMapping"), "NewExternalPort") == Strings{"5000", "5002"});
  CHECK(rig.igd.requests("AddAnyPortMapping").empty());
  auto looked = args_of(rig.igd.requests("GetSpecificPortMappingEntry"), "NewExternalPort");
  CHECK(std::count(looked.begin(), looked.end(), "5001") >= 1);
  auto table = rig.igd.table();
  REQUIRE(table.size() == 2);
  CHECK(table[0].internal_client == "10.0.0.9");  // untouched
  CHECK(table[1].external_port == 5002);
  CHECK(table[1].internal_client == "127.0.0.1");
}

TEST_CASE("UPnP: 501 from a router with an external address is a conflict", "[upnp][fake_igd]") {
  FakeIgd::Options o = igd_v1();
  o.conflict_code = 501;  // some routers say Action Failed for a taken port
  Rig rig(o);
  rig.igd.reserve_port("TCP", 5000);
  rig.igd.reserve_port("TCP", 5001);
  auto out = rig.client.map(wanted(Transport::tcp, 5000), soon());
  REQUIRE(out.ok());
  CHECK(out->mapping.external_port == 5002);
  CHECK(out->mapping.external_ip == ip("203.0.113.7"));
  CHECK(args_of(rig.igd.requests("AddPortMapping"), "NewExternalPort") ==
        Strings{"5000", "5001", "5002"});
}

TEST_CASE("UPnP: 501 from a router without an external address means an upstream NAT",
          "[upnp][fake_igd]") {
  FakeIgd::Options o;
  o.external_ip = "";
  Rig rig(o);
  rig.igd.fail_next_add(501);
  auto out = rig.client.map(wanted(Transport::tcp, 5000), soon());
  REQUIRE_FALSE(out.ok());
  CHECK(out.error().code == Errc::refused);
  CHECK(out.error().protocol_code == 501);
  CHECK_THAT(out.error().message, Catch::Contains("upstream NAT"));
  // One try; no other port is worth asking for.
  CHECK(args_of(rig.igd.requests("AddPortMapping"), "NewExternalPort") == Strings{"5000"});
  CHECK(rig.igd.requests("AddAnyPortMapping").empty());
  CHECK(rig.igd.table().empty());
}

// Regression: the conflict path (AddAnyPortMapping, then the IGDv1 port walk) took 501
// for a conflict even when the router had no usable external address, sent 16 more
// AddPortMappings and blamed another host instead of the upstream NAT.
TEST_CASE("UPnP: 501 without an external address stops the search for another port",
          "[upnp][fake_igd]") {
  FakeIgd::Options o;
  o.external_ip = "";
  o.igd_version = GENERATE(1, 2);
  INFO("IGDv" << o.igd_version);
  Rig rig(o);
  rig.igd.add_entry(foreign(5000));
  rig.igd.fail_next_add(501, 100);  // the router cannot forward anything
  auto out = rig.client.map(wanted(Transport::tcp, 5000), soon());
  REQUIRE_FALSE(out.ok());
  CHECK(out.error().code == Errc::refused);
  CHECK(out.error().protocol_code == 501);
  CHECK_THAT(out.error().message, Catch::Contains("upstream NAT"));
  CHECK(rig.igd.requests("AddPortMapping").size() + rig.igd.requests("AddAnyPortMapping").size() ==
        1);
}

TEST_CASE("UPnP: 606 Action not authorized is a refusal with its code", "[upnp][fake_igd]") {
  Rig rig;
  rig.igd.fail_next_add(606);
  auto out = rig.client.map(wanted(Transport::tcp, 5000), soon());
  REQUIRE_FALSE(out.ok());
  CHECK(out.error().code == Errc::refused);
  CHECK(out.error().protocol_code == 606);
  CHECK_THAT(out.error().message, Catch::Contains("606"));
  CHECK(args_of(rig.igd.requests("AddPortMapping"), "NewExternalPort") == Strings{"5000"});
  CHECK(rig.igd.requests("AddAnyPortMapping").empty());
  CHECK(rig.igd.table().empty());
}

TEST_CASE("UPnP: our own entry on another port is re-used when the wanted one is taken",
          "[upnp][fake_igd]") {
  // State lost (e.g. the state file was removed): the router still has our entry on
  // 6000 from an earlier run, and 5000 is not available. No second entry for us.
  Rig rig;  // IGDv2: AddAnyPortMapping exists but must not be needed
  rig.igd.add_entry({"TCP", 6000, "127.0.0.1", 5000, "porthole test", 3600});
  Strings expected_adds;
  SECTION("the wanted port is another host's entry") {
    rig.igd.add_entry(foreign(5000));
    expected_adds = {"6000"};
  }
  SECTION("the wanted port answers 718") {
    rig.igd.reserve_port("TCP", 5000);
    expected_adds = {"5000", "6000"};
  }
  auto out = rig.client.map(wanted(Transport::tcp, 5000), soon());
  REQUIRE(out.ok());
  CHECK(out->mapping.external_port == 6000);
  CHECK(args_of(rig.igd.requests("AddPortMapping"), "NewExternalPort") == expected_adds);
  CHECK(rig.igd.requests("AddAnyPortMapping").empty());
  auto table = rig.igd.table();
  CHECK(std::count_if(table.begin(), table.end(), [](const FakeIgd::Entry& e) {
          return e.internal_client == "127.0.0.1" && e.internal_port == 5000;
        }) == 1);
}

TEST_CASE("UPnP: an unusable external address is reported as none", "[upnp][fake_igd]") {
  FakeIgd::Options o;
  o.external_ip = GENERATE(as<std::string>{}, "", "0.0.0.0", "127.0.0.1", "garbage");
  INFO("external address '" << o.external_ip << "'");
  Rig rig(o);
  auto info = rig.client.probe(soon());
  REQUIRE(info.ok());
  CHECK(!info->external_ip.has_value());
  // Mapping still works; the mapping just has no external address to show.
  auto out = rig.client.map(wanted(Transport::tcp, 5000), soon());
  REQUIRE(out.ok());
  CHECK(!out->mapping.external_ip.has_value());
  CHECK(rig.igd.requests("GetExternalIPAddress").size() == 1);  // asked once, remembered
}

TEST_CASE("UPnP: a private external address is usable", "[upnp][fake_igd]") {
  FakeIgd::Options o;
  o.external_ip = "10.0.0.2";  // a router behind another NAT: still a real address
  Rig rig(o);
  auto info = rig.client.probe(soon());
  REQUIRE(info.ok());
  CHECK(info->external_ip == ip("10.0.0.2"));
  auto out = rig.client.map(wanted(Transport::tcp, 5000), soon());
  REQUIRE(out.ok());
  CHECK(out->mapping.external_ip == ip("10.0.0.2"));
  CHECK(out->mapping.external_port == 5000);
  CHECK(out->warnings.empty());
  CHECK(rig.igd.requests("GetExternalIPAddress").size() == 1);
  CHECK(rig.igd.requests("AddPortMapping").size() == 1);
}

TEST_CASE("UPnP: a device without WANIPConnection or WANPPPConnection is no service",
          "[upnp][fake_igd]") {
  FakeIgd::Options o;
  o.wan_service = false;
  Rig rig(o);
  auto info = rig.client.probe(soon());
  REQUIRE_FALSE(info.ok());
  CHECK(info.error().code == Errc::no_service);
  CHECK_THAT(info.error().message,
             Catch::Contains("has no WANIPConnection or WANPPPConnection service"));
  auto out = rig.client.map(wanted(Transport::tcp, 5000), soon());
  REQUIRE_FALSE(out.ok());
  CHECK(out.error().code == Errc::no_service);
  // The descriptions were read; no SOAP request went anywhere.
  for (const auto& r : rig.igd.requests()) CHECK(r.action == "GET");
  CHECK_FALSE(rig.igd.requests().empty());
}

TEST_CASE("UPnP: unmap leaves another host's entry alone", "[upnp][fake_igd]") {
  Rig rig;
  rig.igd.add_entry(foreign(7000));
  Mapping m;
  m.transport = Transport::tcp;
  m.internal_ip = ip("127.0.0.1");
  m.internal_port = 7000;
  m.external_port = 7000;
  auto st = rig.client.unmap(m, Nonce{}, soon());
  REQUIRE_FALSE(st.ok());
  CHECK(st.error().code == Errc::refused);
  CHECK_THAT(st.error().message, Catch::Contains("10.0.0.9"));
  CHECK(rig.igd.requests("DeletePortMapping").empty());
  CHECK(rig.igd.table().size() == 1);
  auto looked = rig.igd.requests("GetSpecificPortMappingEntry");
  REQUIRE(looked.size() == 1);
  CHECK(looked[0].arg("NewExternalPort") == "7000");
  CHECK(looked[0].arg("NewProtocol") == "TCP");
}

// Regression: any failed GetSpecificPortMappingEntry (a SOAP fault other than 714, or no
// answer) read as "no entry", so `porthole close` forgot a mapping still on the router.
// Only 714 NoSuchEntryInArray means gone.
TEST_CASE("UPnP: unmap does not call a mapping gone when the router will not look it up",
          "[upnp][fake_igd]") {
  Rig rig;
  rig.igd.add_entry({"TCP", 7000, "127.0.0.1", 7000, "porthole test", 0});
  rig.igd.fail_action("GetSpecificPortMappingEntry", 501);
  Mapping m;
  m.transport = Transport::tcp;
  m.internal_ip = ip("127.0.0.1");
  m.internal_port = 7000;
  m.external_port = 7000;
  auto st = rig.client.unmap(m, Nonce{}, soon());
  CHECK(rig.igd.requests("GetSpecificPortMappingEntry").size() == 1);
  CHECK(rig.igd.requests("DeletePortMapping").empty());  // ownership unverified: no delete
  CHECK(rig.igd.table().size() == 1);
  REQUIRE_FALSE(st.ok());
  CHECK(st.error().code == Errc::refused);
  CHECK(st.error().protocol_code == 501);
}

TEST_CASE("UPnP: unmap deletes this host's entry", "[upnp][fake_igd]") {
  Rig rig;
  rig.igd.add_entry({"UDP", 7000, "127.0.0.1", 7000, "porthole test", 0});
  Mapping m;
  m.transport = Transport::udp;
  m.internal_ip = ip("127.0.0.1");
  m.internal_port = 7000;
  m.external_port = 7000;
  REQUIRE(rig.client.unmap(m, Nonce{}, soon()).ok());
  auto deletes = rig.igd.requests("DeletePortMapping");
  REQUIRE(deletes.size() == 1);
  CHECK(deletes[0].arg("NewExternalPort") == "7000");
  CHECK(deletes[0].arg("NewProtocol") == "UDP");
  CHECK(rig.igd.table().empty());
}

TEST_CASE("UPnP: list reads the whole table and stops at its end", "[upnp][fake_igd]") {
  FakeIgd::Options o;
  // 713 SpecifiedArrayIndexInvalid is the standard end; some routers answer otherwise.
  o.end_of_table_code = GENERATE(713, 714, 402, 501);
  INFO("end of table: SOAP fault " << o.end_of_table_code);
  // Row by row is how an IGDv1 router is read (upnp_list_test: IGDv2).
  o.igd_version = 1;
  Rig rig(o);
  rig.igd.add_entry({"TCP", 5000, "127.0.0.1", 5000, "porthole test", 3600});
  rig.igd.add_entry({"UDP", 5001, "10.0.0.9", 27015, "game", 0});
  rig.igd.add_entry(foreign(8080));
  auto table = rig.client.list(soon());
  REQUIRE(table.ok());
  CHECK(table->complete);
  const auto* list = &table->entries;
  REQUIRE(list->size() == 3);
  const auto& a = (*list)[0];
  CHECK(a.transport == Transport::tcp);
  CHECK(a.external_port == 5000);
  CHECK(a.internal_ip == "127.0.0.1");
  CHECK(a.internal_port == 5000);
  CHECK(a.description == "porthole test");
  CHECK(a.lease == 3600);
  CHECK(a.enabled);
  const auto& b = (*list)[1];
  CHECK(b.transport == Transport::udp);
  CHECK(b.external_port == 5001);
  CHECK(b.internal_ip == "10.0.0.9");
  CHECK(b.internal_port == 27015);
  CHECK(b.lease == 0);
  CHECK((*list)[2].external_port == 8080);
  CHECK(args_of(rig.igd.requests("GetGenericPortMappingEntry"), "NewPortMappingIndex") ==
        Strings{"0", "1", "2", "3"});
}

TEST_CASE("UPnP: protocol names go out upper-case", "[upnp][fake_igd]") {
  // Some routers refuse "tcp"/"udp" (the IGD specification writes "TCP"/"UDP"); the
  // fake does too.
  Rig rig;
  REQUIRE(rig.client.map(wanted(Transport::udp, 5000), soon()).ok());
  REQUIRE(rig.client.map(wanted(Transport::tcp, 5000), soon()).ok());
  auto found = rig.client.find(Transport::udp, 5000, soon());
  REQUIRE(found.ok());
  REQUIRE(found->has_value());
  CHECK((*found)->transport == Transport::udp);

  CHECK(args_of(rig.igd.requests("AddPortMapping"), "NewProtocol") == Strings{"UDP", "TCP"});
  for (const auto& r : rig.igd.requests()) {
    if (r.action == "GET" || r.action == "GetExternalIPAddress" ||
        r.action == "GetGenericPortMappingEntry")
      continue;
    INFO(r.action);
    CHECK((r.arg("NewProtocol") == "TCP" || r.arg("NewProtocol") == "UDP"));
  }
  auto table = rig.igd.table();
  REQUIRE(table.size() == 2);
  CHECK(table[0].protocol == "UDP");
  CHECK(table[1].protocol == "TCP");
}
