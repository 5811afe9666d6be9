// What `porthole nat` prints (cli/cmd_nat).
#include <catch2/catch.hpp>

#include <nlohmann/json.hpp>

#include "cmd_nat.hpp"
#include "ip_literal.hpp"

using porthole::test::ip;

using namespace porthole;

namespace {

NatReport double_nat_report() {
  NatReport r;
  r.server = "198.51.100.10";
  r.server_address = "198.51.100.10:3478";
  r.server_other_address = "198.51.100.11:3479";
  r.public_ip = ip("203.0.113.2");
  r.public_port = 40000;
  r.local_ip = ip("192.168.3.100");
  r.local_port = 40000;
  r.mapping = NatBehaviour::endpoint_independent;
  r.filtering = NatBehaviour::address_and_port_dependent;
  r.nat_type = NatType::port_restricted_cone;
  r.port_preserved = true;
  r.double_nat = true;
  r.gateway = ip("192.168.3.1");
  r.gateway_external_ip = ip("192.168.1.2");
  r.gateway_external_ip_via = Protocol::natpmp;
  return r;
}

}  // namespace

TEST_CASE("nat --json: the keys scripts rely on", "[cli][nat]") {
  auto j = nlohmann::json::parse(cli::render_nat(double_nat_report(), true));
  CHECK(j["public_ip"] == "203.0.113.2");
  CHECK(j["public_port"] == 40000);
  CHECK(j["mapping"] == "endpoint-independent");
  CHECK(j["filtering"] == "address-and-port-dependent");
  CHECK(j["nat_type"] == "port-restricted-cone");
  CHECK(j["double_nat"] == true);
  CHECK(j["port_preserved"] == true);
  CHECK(j["gateway_external_ip"] == "192.168.1.2");
  CHECK(j["gateway_external_ip_via"] == "natpmp");
  CHECK(j["server_other_address"] == "198.51.100.11:3479");
  CHECK(j["warnings"].is_array());
}

TEST_CASE("nat --json: unknowns are null or \"unknown\", never invented", "[cli][nat]") {
  NatReport r;
  r.server = "198.51.100.21:3490";
  r.public_ip = ip("203.0.113.2");
  auto j = nlohmann::json::parse(cli::render_nat(r, true));
  CHECK(j["mapping"] == "unknown");
  CHECK(j["filtering"] == "unknown");
  CHECK(j["nat_type"] == "unknown");
  CHECK(j["double_nat"].is_null());
  CHECK(j["gateway_external_ip"].is_null());
  CHECK(j["server_other_address"].is_null());
}

TEST_CASE("nat text output names the verdict and the double NAT", "[cli][nat]") {
  auto text = cli::render_nat(double_nat_report(), false);
  CHECK(text.find("203.0.113.2:40000 (port preserved)") != std::string::npos);
  CHECK(text.find("port-restricted cone") != std::string::npos);
  CHECK(text.find("yes: the gateway's external address is 192.168.1.2") != std::string::npos);
  NatReport plain = double_nat_report();
  plain.double_nat = false;
  plain.gateway_external_ip = ip("203.0.113.2");
  CHECK(cli::render_nat(plain, false).find("double NAT       no") != std::string::npos);
}
