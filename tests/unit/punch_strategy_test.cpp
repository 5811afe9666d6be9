// Strategy selection of a punch (core/punch_strategy): which strategy each pairing of
// NAT behaviours gets, the allocation pattern STUN answers show, the predicted ports.
#include <catch2/catch.hpp>

#include <array>
#include <string>
#include <vector>

#include "core/punch_strategy.hpp"

using namespace porthole;
using namespace porthole::detail;
using rendezvous::NatMapping;
using rendezvous::PortAllocation;

namespace {

NatProfile easy() { return {NatMapping::endpoint_independent, PortAllocation::unknown, 0}; }
NatProfile random_nat() {
  return {NatMapping::address_and_port_dependent, PortAllocation::random, 0};
}
NatProfile sequential(int step) {
  return {NatMapping::address_and_port_dependent, PortAllocation::sequential, step};
}

}  // namespace

TEST_CASE("punch strategy: each pairing of NAT behaviours, from both sides") {
  auto both = [](const NatProfile& a, const NatProfile& b) {
    return std::array{choose_strategy(a, b), choose_strategy(b, a)};
  };
  for (const auto& plan : both(easy(), easy())) {
    CHECK(plan.strategy == Strategy::direct);
    CHECK_FALSE(plan.probe_peer);
    CHECK_FALSE(plan.open_sockets);
    CHECK_FALSE(plan.keep_checking);
  }
  NatProfile unknown;
  CHECK(choose_strategy(unknown, easy()).strategy == Strategy::direct);

  // Random symmetric against endpoint-independent: the easy side probes, the hard side
  // opens the sockets; both keep checking.
  auto [easy_side, hard_side] = both(easy(), random_nat());
  CHECK(easy_side.strategy == Strategy::birthday);
  CHECK(hard_side.strategy == Strategy::birthday);
  CHECK(easy_side.probe_peer);
  CHECK_FALSE(easy_side.open_sockets);
  CHECK(hard_side.open_sockets);
  CHECK_FALSE(hard_side.probe_peer);
  CHECK(easy_side.keep_checking);
  CHECK(hard_side.keep_checking);

  // Sequential or port-preserving: prediction, the easy side probes.
  auto [e2, h2] = both(easy(), sequential(1));
  CHECK(e2.strategy == Strategy::prediction);
  CHECK(h2.strategy == Strategy::prediction);
  CHECK(e2.probe_peer);
  CHECK_FALSE(h2.probe_peer);
  CHECK_FALSE(e2.open_sockets);
  CHECK_FALSE(h2.open_sockets);
  NatProfile preserving{NatMapping::address_dependent, PortAllocation::preserving, 0};
  CHECK(choose_strategy(easy(), preserving).strategy == Strategy::prediction);
  // A dependent mapping whose allocation was not measured: treated as random.
  NatProfile unmeasured{NatMapping::address_dependent, PortAllocation::unknown, 0};
  CHECK(choose_strategy(easy(), unmeasured).strategy == Strategy::birthday);

  // Both hard, predictable or not: a relay.
  for (const auto& plan : both(random_nat(), random_nat())) {
    CHECK(plan.strategy == Strategy::relay);
    CHECK_FALSE(plan.probe_peer);
    CHECK_FALSE(plan.open_sockets);
  }
  CHECK(choose_strategy(sequential(1), sequential(2)).strategy == Strategy::relay);
  CHECK(std::string(strategy_name(Strategy::birthday)) == "birthday");
  CHECK(std::string(strategy_name(Strategy::prediction)) == "prediction");
}

TEST_CASE("punch strategy: the allocation pattern the reflexive ports show") {
  const auto dep = NatMapping::address_and_port_dependent;
  std::vector<std::uint16_t> seq{40001, 40002};
  auto s = port_allocation_from(dep, seq, 5000);
  CHECK(s.allocation == PortAllocation::sequential);
  CHECK(s.port_step == 1);
  std::vector<std::uint16_t> down{40010, 40008, 40006};
  s = port_allocation_from(dep, down, 5000);
  CHECK(s.allocation == PortAllocation::sequential);
  CHECK(s.port_step == -2);
  std::vector<std::uint16_t> uneven{40010, 40011, 40013};
  CHECK(port_allocation_from(dep, uneven, 5000).allocation == PortAllocation::random);
  std::vector<std::uint16_t> far{40010, 51234};
  CHECK(port_allocation_from(dep, far, 5000).allocation == PortAllocation::random);
  std::vector<std::uint16_t> kept{5000, 5000};
  CHECK(port_allocation_from(dep, kept, 5000).allocation == PortAllocation::preserving);
  // Only dependent mappings have a pattern, and only from two ports on.
  CHECK(port_allocation_from(NatMapping::endpoint_independent, seq, 5000).allocation ==
        PortAllocation::unknown);
  std::vector<std::uint16_t> one{40001};
  CHECK(port_allocation_from(dep, one, 5000).allocation == PortAllocation::unknown);
}

TEST_CASE("punch strategy: predicted ports follow the step past the last one seen") {
  std::vector<std::uint16_t> seen{40002, 40001};
  auto ports = predicted_ports(sequential(1), seen);
  REQUIRE(ports.size() == 2 + kPredictedPorts);
  CHECK(ports[0] == 40002);
  CHECK(ports[1] == 40001);
  CHECK(ports[2] == 40003);
  CHECK(ports.back() == 40002 + kPredictedPorts);
  ports = predicted_ports(sequential(-3), seen);
  CHECK(ports[2] == 40001 - 3);
  // Never past the port range; preserving: the ports seen only.
  std::vector<std::uint16_t> top{65534};
  ports = predicted_ports(sequential(1), top);
  CHECK(ports == std::vector<std::uint16_t>{65534, 65535});
  NatProfile preserving{NatMapping::address_dependent, PortAllocation::preserving, 0};
  CHECK(predicted_ports(preserving, seen) == seen);
}

TEST_CASE("punch strategy: probe ports, the probe address and the hint") {
  CHECK(probe_port(0, 0) == kLowestProbePort);
  CHECK(probe_port(0xff, 0xff) >= kLowestProbePort);
  for (unsigned v = 0; v < 65536; v += 97)
    CHECK(probe_port(static_cast<std::uint8_t>(v >> 8), static_cast<std::uint8_t>(v)) >=
          kLowestProbePort);
  std::vector<rendezvous::Candidate> cands{{ice::CandidateType::host, 17,
                                            Endpoint::parse("192.168.1.100:5000").value(), 2000,
                                            "1"},
                                           {ice::CandidateType::server_reflexive, 17,
                                            Endpoint::parse("203.0.113.2:40001").value(), 100, "2"},
                                           {ice::CandidateType::server_reflexive, 17,
                                            Endpoint::parse("203.0.113.9:40002").value(), 90, "3"}};
  CHECK(probe_address(cands) == IpAddress::parse("203.0.113.2").value());
  cands.erase(cands.begin() + 1, cands.end());
  CHECK_FALSE(probe_address(cands));
  StrategyPlan plan;
  CHECK(strategy_hint(plan, 0, 0).empty());
  plan.strategy = Strategy::birthday;
  CHECK(strategy_hint(plan, 2048, 256) == "tried birthday: 2048 probes sent, 256 extra sockets");
  plan.strategy = Strategy::relay;
  CHECK_THAT(strategy_hint(plan, 0, 0), Catch::Contains("relay"));
}

TEST_CASE("punch strategy: a side's profile takes the mappings in the servers' order") {
  const Endpoint rendezvous{IpAddress::v4({198, 51, 100, 1}), 3478};
  const Endpoint stun{IpAddress::v4({198, 51, 100, 2}), 3478};
  const IpAddress outside = IpAddress::v4({203, 0, 113, 7});
  const std::vector<IpAddress> host{IpAddress::v4({192, 168, 1, 100})};
  // Observations in the order the answers came (STUN's first); the mappings were made
  // in the servers' order: rendezvous 40010, then STUN 40011, a step of +1.
  const std::vector<ReflexiveObservation> seen{{stun, {outside, 40011}},
                                               {rendezvous, {outside, 40010}}};
  const std::vector<Endpoint> servers{rendezvous, stun};
  auto p = nat_profile_from(seen, host, servers, 5000);
  CHECK(p.mapping == NatMapping::address_and_port_dependent);
  CHECK(p.allocation == PortAllocation::sequential);
  CHECK(p.port_step == 1);
  // The same endpoint from both: endpoint-independent, no allocation pattern.
  const std::vector<ReflexiveObservation> same{{rendezvous, {outside, 5000}},
                                               {stun, {outside, 5000}}};
  p = nat_profile_from(same, host, servers, 5000);
  CHECK(p.mapping == NatMapping::endpoint_independent);
  CHECK(p.allocation == PortAllocation::unknown);
  // Only the rendezvous answered: nothing to tell.
  const std::vector<ReflexiveObservation> one{{rendezvous, {outside, 40010}}};
  CHECK(nat_profile_from(one, host, servers, 5000).mapping == NatMapping::unknown);
}
