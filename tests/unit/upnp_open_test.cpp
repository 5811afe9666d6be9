// porthole::open via UPnP against the fake IGD, for what the exchanges look like from the
// router's side: the questions that change nothing are sent ahead (UpnpClient::ask_ahead)
// and each asked once; the granted lease is read back after the record was written
// (MapParams::caller_reads_lease) and the record follows what the router says.
#include <catch2/catch.hpp>

#include <fmt/format.h>

#include <chrono>
#include <string>
#include <thread>
#include <vector>

#include "fake_igd.hpp"
#include "ip_literal.hpp"
#include "porthole/porthole.hpp"
#include "proto/upnp_client.hpp"

using porthole::test::fake_igd_options;
using porthole::test::FakeIgd;
using porthole::test::fresh_test_dir;
using porthole::test::read_text;
using porthole::test::tcp_via_upnp;

using namespace porthole;
using namespace porthole::detail;
using namespace std::chrono_literals;

namespace {

using Strings = std::vector<std::string>;

Deadline soon() { return Clock::now() + 10s; }

// Each SOAP action the fake received from index `from` on, with its external port.
Strings exchanges_since(const FakeIgd& igd, std::size_t from) {
  Strings out;
  const auto all = igd.requests();
  for (std::size_t i = from; i < all.size(); ++i)
    out.push_back(all[i].action + " " + all[i].arg("NewExternalPort"));
  return out;
}

// Whether the fake has received `n` requests within a few seconds (it serves on its own
// thread: a request sent is recorded a moment later).
bool received(const FakeIgd& igd, std::size_t n) {
  const auto until = Clock::now() + 5s;
  while (igd.requests().size() < n && Clock::now() < until) std::this_thread::sleep_for(1ms);
  return igd.requests().size() == n;
}

FakeIgd::Options granting_at_most(std::uint32_t seconds) {
  FakeIgd::Options o;
  o.max_lease = seconds;
  return o;
}

}  // namespace

TEST_CASE("UPnP client: questions sent ahead are answered from their connections",
          "[upnp][fake_igd][ahead]") {
  FakeIgd igd;
  UpnpClient client(igd.gateway());
  MapParams params = porthole::test::loopback_map_request(5100);
  // No device known yet: nothing is asked ahead (the search waits for map()).
  client.ask_ahead(params, soon());
  REQUIRE(client.probe(soon()).ok());  // finds it: the description, the external address
  CHECK(received(igd, 2));
  client.refresh_external_ip();
  client.ask_ahead(params, soon());
  // Both questions, before map() is called.
  CHECK(received(igd, 4));
  auto out = client.map(params, soon());
  REQUIRE(out.ok());
  CHECK(out->mapping.external_port == 5100);
  CHECK_FALSE(out->lease_unconfirmed);
  // Each question once: map() read the answers to those sent ahead.
  CHECK(exchanges_since(igd, 0) == Strings{"GET ", "GetExternalIPAddress ", "GetExternalIPAddress ",
                                           "GetSpecificPortMappingEntry 5100",
                                           "AddPortMapping 5100",
                                           "GetSpecificPortMappingEntry 5100"});
}

TEST_CASE("UPnP client: a read-back left to the caller is sent by map and read by find",
          "[upnp][fake_igd][ahead]") {
  FakeIgd igd(granting_at_most(600));
  UpnpClient client(igd.gateway());
  MapParams params = porthole::test::loopback_map_request(5110);
  params.caller_reads_lease = true;
  auto out = client.map(params, soon());
  REQUIRE(out.ok());
  CHECK(out->lease_unconfirmed);
  CHECK(out->mapping.lifetime == 3600);  // the lease asked, not yet read back
  // The read-back went out with map(), unanswered so far.
  REQUIRE(received(igd, 5));
  CHECK(exchanges_since(igd, 3) ==
        Strings{"AddPortMapping 5110", "GetSpecificPortMappingEntry 5110"});
  auto entry = client.find(Transport::tcp, 5110, soon());
  REQUIRE(entry.ok());
  REQUIRE(entry->has_value());
  CHECK((*entry)->lease == 600);
  CHECK(igd.requests().size() == 5);  // its answer came on the connection map() opened
}

TEST_CASE("open via UPnP: the lease the router granted is the one recorded",
          "[upnp][fake_igd][ahead]") {
  // 600: a router that shortens the lease; 0: one that grants what is asked.
  const std::uint32_t max_lease = GENERATE(600u, 0u);
  INFO("max_lease " << max_lease);
  FakeIgd igd(granting_at_most(max_lease));
  const std::string dir = fresh_test_dir();
  OpenRequest request = tcp_via_upnp(6400);
  request.lifetime = 3600;
  const std::uint32_t granted = max_lease ? max_lease : 3600;

  REQUIRE(porthole::open(fake_igd_options(igd, dir), request).ok());  // cold: fills the cache
  REQUIRE(porthole::close(fake_igd_options(igd, dir), CloseRequest{request.port}).ok());
  const std::size_t before = igd.requests().size();
  auto warm = porthole::open(fake_igd_options(igd, dir), request);
  REQUIRE(warm.ok());
  CHECK(warm->mapping.lifetime == granted);
  // Each question once, and one read-back after the mapping.
  CHECK(exchanges_since(igd, before) ==
        Strings{"GetExternalIPAddress ", "GetSpecificPortMappingEntry 6400", "AddPortMapping 6400",
                "GetSpecificPortMappingEntry 6400"});
  const std::string state = read_text(dir + "/mappings.json");
  CHECK_THAT(state, Catch::Contains(fmt::format("\"lifetime\": {}", granted)) &&
                        !Catch::Contains("\"pending\""));
}

TEST_CASE("open via UPnP: a router that will not read the entry back keeps the lease asked",
          "[upnp][fake_igd][ahead]") {
  FakeIgd igd(granting_at_most(600));
  igd.fail_action("GetSpecificPortMappingEntry", 501);
  const std::string dir = fresh_test_dir();
  OpenRequest request = tcp_via_upnp(6410);
  request.lifetime = 3600;
  auto opened = porthole::open(fake_igd_options(igd, dir), request);
  REQUIRE(opened.ok());
  CHECK(opened->mapping.lifetime == 3600);
  CHECK_THAT(read_text(dir + "/mappings.json"), Catch::Contains("\"lifetime\": 3600"));
}

TEST_CASE("open via UPnP: questions asked ahead for another port than the one still wanted",
          "[upnp][fake_igd][ahead]") {
  // Another host holds 6420: the first open gets 6421 (AddAnyPortMapping). The refresh
  // asks ahead about 6420 (the port asked) before the state says 6421 is ours; it then
  // asks about 6421 and maps that, the external address asked only once.
  FakeIgd igd;
  igd.add_entry({"TCP", 6420, "10.0.0.9", 6420, "someone else", 0});
  const std::string dir = fresh_test_dir();
  OpenRequest request = tcp_via_upnp(6420);
  auto first = porthole::open(fake_igd_options(igd, dir), request);
  REQUIRE(first.ok());
  REQUIRE(first->mapping.external_port == 6421);
  const std::size_t before = igd.requests().size();
  auto again = porthole::open(fake_igd_options(igd, dir), request);
  REQUIRE(again.ok());
  CHECK(again->mapping.external_port == 6421);
  CHECK(again->refreshed);
  CHECK(exchanges_since(igd, before) ==
        Strings{"GetExternalIPAddress ", "GetSpecificPortMappingEntry 6420",
                "GetSpecificPortMappingEntry 6421", "AddPortMapping 6421",
                "GetSpecificPortMappingEntry 6421"});
}
