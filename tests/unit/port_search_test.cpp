// Port prediction's probes and the birthday sockets (core/port_search): the probe cap
// and pace, the probed ports, the extra sockets' cap and that every one is closed. The
// sockets are real (loopback only); the probes go to a recording function, not out.
#include <catch2/catch.hpp>

#include <dirent.h>

#include <chrono>
#include <memory>
#include <random>
#include <set>
#include <vector>

#include "core/ice_agent.hpp"
#include "core/port_search.hpp"
#include "net/bound_udp_socket.hpp"
#include "net/reactor.hpp"

using namespace porthole;
using namespace porthole::detail;
using std::chrono::milliseconds;

namespace {

Endpoint ep(const char* text) { return *Endpoint::parse(text); }

rendezvous::Candidate candidate(ice::CandidateType type, const Endpoint& address) {
  return {type, stun::kTransportUdp, address, ice::candidate_priority(type, 65535), "f1"};
}

RandomFn seeded(unsigned seed) {
  auto engine = std::make_shared<std::mt19937>(seed);
  return [engine](std::span<std::uint8_t> out) {
    for (auto& b : out) b = static_cast<std::uint8_t>((*engine)() & 0xff);
  };
}

std::unique_ptr<IceAgent> checking_agent(const Endpoint& peer, Clock::time_point now) {
  IceAgentConfig c;
  c.controlling = true;
  c.tie_breaker = 7;
  c.local_ufrag = "aaaa";
  c.local_password = "passwordAAAAAAAAAAAAAAAA";
  c.keep_checking = true;
  auto agent = std::make_unique<IceAgent>(
      c, std::vector{candidate(ice::CandidateType::host, ep("127.0.0.1:5000"))}, seeded(1));
  const std::vector peer_candidates{candidate(ice::CandidateType::server_reflexive, peer)};
  REQUIRE(agent->set_remote("bbbb", "passwordBBBBBBBBBBBBBBBB", peer_candidates, now).ok());
  REQUIRE(agent->state() == IceAgent::State::checking);
  return agent;
}

// The checks' epoch, and a plan with the given roles.
const Clock::time_point kStart = Clock::time_point{} + std::chrono::hours(1);

StrategyPlan plan_of(Strategy strategy, bool probe_peer, bool open_sockets) {
  StrategyPlan plan;
  plan.strategy = strategy;
  plan.probe_peer = probe_peer;
  plan.open_sockets = open_sockets;
  plan.keep_checking = true;
  return plan;
}

std::vector<rendezvous::Candidate> reflexive(const Endpoint& peer) {
  return {candidate(ice::CandidateType::server_reflexive, peer)};
}

std::size_t open_descriptors() {
  std::size_t n = 0;
  if (DIR* d = ::opendir("/proc/self/fd")) {
    while (::readdir(d) != nullptr) ++n;
    ::closedir(d);
  }
  return n;
}

}  // namespace

TEST_CASE("port search: birthday probes are capped, paced and random in the high range") {
  Reactor reactor;
  const auto t0 = kStart;
  const Endpoint peer = ep("127.0.0.2:40000");
  auto agent = checking_agent(peer, t0);
  PortSearch search(reactor, {}, {});
  const NatProfile random_nat{rendezvous::NatMapping::address_and_port_dependent,
                              rendezvous::PortAllocation::random, 0};
  search.start(plan_of(Strategy::birthday, true, false), random_nat, reflexive(peer), *agent, t0,
               seeded(2));
  std::vector<Endpoint> sent;
  auto record = [&](std::span<const std::uint8_t>, const Endpoint& to) { sent.push_back(to); };
  // Ten seconds in 1 ms steps: never ahead of one probe per kBirthdayProbeInterval.
  for (int ms = 0; ms <= 10000; ++ms) {
    const auto now = t0 + milliseconds(ms);
    search.on_timer(now, record);
    CHECK(sent.size() <= 1 + static_cast<std::size_t>(ms / kBirthdayProbeInterval.count()));
  }
  CHECK(sent.size() == kMaxProbes);
  CHECK(search.probes_sent() == kMaxProbes);
  CHECK_FALSE(search.next_wakeup());  // the cap reached: nothing more to do
  std::set<std::uint16_t> ports;
  for (const auto& to : sent) {
    CHECK(to.ip == peer.ip);  // only the address the peer's description names
    CHECK(to.port >= kLowestProbePort);
    ports.insert(to.port);
  }
  CHECK(ports.size() > kMaxProbes / 2);  // random, not one port over and over
  CHECK(search.sockets_opened() == 0);   // the easy side opens none
}

TEST_CASE("port search: prediction probes the predicted ports round robin") {
  Reactor reactor;
  const auto t0 = kStart;
  const Endpoint peer = ep("127.0.0.2:40010");
  auto agent = checking_agent(peer, t0);
  PortSearch search(reactor, {}, {});
  const NatProfile sequential{rendezvous::NatMapping::address_and_port_dependent,
                              rendezvous::PortAllocation::sequential, 2};
  search.start(plan_of(Strategy::prediction, true, false), sequential, reflexive(peer), *agent, t0,
               seeded(3));
  std::vector<std::uint16_t> ports;
  auto record = [&](std::span<const std::uint8_t>, const Endpoint& to) {
    ports.push_back(to.port);
  };
  search.on_timer(t0 + kPredictionProbeInterval * (kPredictedPorts + 1), record);
  REQUIRE(ports.size() == kPredictedPorts + 2);
  CHECK(ports[0] == 40010);
  CHECK(ports[1] == 40012);
  CHECK(ports[kPredictedPorts] == 40010 + 2 * kPredictedPorts);
  CHECK(ports.back() == 40010);  // round robin
}

TEST_CASE("port search: the hard side's extra sockets stay under the cap and all close") {
  // The peer: a loopback socket of ours, so every check stays on this host.
  auto target = open_bound_udp_socket("127.0.0.1", 0);
  REQUIRE(target);
  const Endpoint peer{IpAddress::v4({127, 0, 0, 1}), target->local_port()};
  const std::size_t before = open_descriptors();
  {
    Reactor reactor;
    const auto t0 = kStart;
    auto agent = checking_agent(peer, t0);
    PortSearch search(reactor, {}, {});
    search.start(plan_of(Strategy::birthday, false, true), NatProfile{}, reflexive(peer), *agent,
                 t0, seeded(4));
    auto none = [](std::span<const std::uint8_t>, const Endpoint&) { FAIL("a probe"); };
    search.on_timer(t0 + kBirthdayDelay - milliseconds(1), none);
    CHECK(search.sockets_opened() == 0);  // the plain checks first
    REQUIRE(search.next_wakeup() == t0 + kBirthdayDelay);
    search.on_timer(t0 + kBirthdayDelay, none);
    CHECK(search.sockets_opened() == kBirthdaySockets);
    CHECK(search.extra_packets() == kBirthdaySockets);  // one check each, to the one target
    CHECK(open_descriptors() >= before + kBirthdaySockets);
    CHECK_FALSE(search.promoted());
    search.close_extra_sockets();
    CHECK(open_descriptors() < before + kBirthdaySockets);
    search.on_timer(t0 + kBirthdayDelay * 10, none);  // nothing opens again
    CHECK(search.sockets_opened() == kBirthdaySockets);
  }
  CHECK(open_descriptors() == before);
}
