// The upgrade of a relayed path (IceAgent::start_upgrade, core/ice_agent.hpp): two signed
// agents, A with a relayed candidate R (its TURN allocation), B controlling, connected
// through R while nothing direct passes; then the direct path between their NATs'
// mappings opens (or opens one way only) and the test clock runs on.
#include <catch2/catch.hpp>

#include <array>
#include <chrono>
#include <cstdint>
#include <memory>
#include <random>
#include <vector>

#include "codec/ed25519.hpp"
#include "codec/ice_priority.hpp"
#include "codec/rendezvous_codec.hpp"
#include "core/ice_agent.hpp"
#include "net/clock.hpp"

namespace rv = porthole::detail::rendezvous;
namespace ice = porthole::detail::ice;
namespace ed = porthole::detail::ed25519;
using porthole::Endpoint;
using porthole::detail::Clock;
using porthole::detail::IceAgent;
using porthole::detail::IceAgentConfig;
using porthole::detail::PathKind;
using porthole::detail::TestClock;
using std::chrono::milliseconds;
using State = IceAgent::State;

namespace {

Endpoint ep(const char* text) { return *Endpoint::parse(text); }

rv::Candidate candidate(ice::CandidateType type, const char* address) {
  return {type, porthole::detail::stun::kTransportUdp, ep(address),
          ice::candidate_priority(type, 65535), "f" + std::to_string(static_cast<int>(type))};
}

ed::KeyPair key(std::uint8_t fill) {
  std::array<std::uint8_t, ed::kSeedSize> seed{};
  seed.fill(fill);
  return *ed::KeyPair::from_seed(seed);
}

IceAgentConfig signed_config(bool controlling, std::uint64_t tie, const char* ufrag,
                             const char* password, const ed::KeyPair& mine,
                             const ed::PublicKey& peer, int rounds) {
  IceAgentConfig c;
  c.controlling = controlling;
  c.tie_breaker = tie;
  c.local_ufrag = ufrag;
  c.local_password = password;
  c.relay_grace = milliseconds(300);
  c.upgrade_interval = milliseconds(5000);
  c.upgrade_rounds = rounds;
  c.sign =
      [mine](std::span<const std::uint8_t> bytes) -> porthole::Result<std::vector<std::uint8_t>> {
    auto sig = mine.sign(bytes);
    if (!sig) return sig.error();
    return std::vector<std::uint8_t>(sig->begin(), sig->end());
  };
  c.verify_peer = [peer](std::span<const std::uint8_t> bytes, std::span<const std::uint8_t> sig) {
    return ed::verify(peer, bytes, sig);
  };
  return c;
}

porthole::detail::RandomFn seeded(unsigned seed) {
  auto engine = std::make_shared<std::mt19937>(seed);
  return [engine](std::span<std::uint8_t> out) {
    for (auto& b : out) b = static_cast<std::uint8_t>((*engine)() & 0xff);
  };
}

const Endpoint kRelay = ep("198.51.100.14:50000");  // A's relayed candidate
const Endpoint kA = ep("203.0.113.2:40000");        // A's NAT mapping (endpoint-independent)
const Endpoint kB = ep("203.0.113.130:40000");      // B's

// A (controlled) and B (controlling), the relay always passing, the direct path as
// `a_to_b` and `b_to_a` say. Counts the direct packets each side sent.
struct RelayedPair {
  TestClock clock;
  ed::KeyPair ka = key(1);
  ed::KeyPair kb = key(2);
  IceAgent a;
  IceAgent b;
  bool a_to_b = false;
  bool b_to_a = false;
  int a_direct_sent = 0;
  int b_direct_sent = 0;
  int a_relayed_sent = 0;

  explicit RelayedPair(int rounds = 24)
      : a(signed_config(false, 1, "aaaa", "passwordAAAAAAAAAAAAAAAA", ka, kb.public_key(), rounds),
          {candidate(ice::CandidateType::server_reflexive, "203.0.113.2:40000"),
           candidate(ice::CandidateType::relayed, "198.51.100.14:50000")},
          seeded(1)),
        b(signed_config(true, 2, "bbbb", "passwordBBBBBBBBBBBBBBBB", kb, ka.public_key(), rounds),
          {candidate(ice::CandidateType::server_reflexive, "203.0.113.130:40000")}, seeded(2)) {
    const std::vector<rv::Candidate> a_cands{candidate(ice::CandidateType::server_reflexive,
                                                       "203.0.113.2:40000"),
                                             candidate(ice::CandidateType::relayed,
                                                       "198.51.100.14:50000")};
    const std::vector<rv::Candidate> b_cands{
        candidate(ice::CandidateType::server_reflexive, "203.0.113.130:40000")};
    REQUIRE(a.set_remote("bbbb", "passwordBBBBBBBBBBBBBBBB", b_cands, clock.now()).ok());
    REQUIRE(b.set_remote("aaaa", "passwordAAAAAAAAAAAAAAAA", a_cands, clock.now()).ok());
  }

  // 5 ms steps until `done` or `limit` passes; true when `done`.
  template <typename Done>
  bool run(milliseconds limit, Done done) {
    const auto end = clock.now() + limit;
    while (clock.now() < end) {
      if (done()) return true;
      clock.advance(milliseconds(5));
      a.on_timer(clock.now());
      b.on_timer(clock.now());
      for (auto& out : a.take_outgoing()) {
        if (out.relayed) {
          ++a_relayed_sent;
          b.on_datagram(out.bytes, kRelay, clock.now());
        } else if (out.to == kB) {
          ++a_direct_sent;
          if (a_to_b) b.on_datagram(out.bytes, kA, clock.now());
        }
      }
      for (auto& out : b.take_outgoing()) {
        if (out.to == kRelay) {
          a.on_datagram(out.bytes, kB, clock.now(), true);
        } else if (out.to == kA) {
          ++b_direct_sent;
          if (b_to_a) a.on_datagram(out.bytes, kB, clock.now());
        }
      }
    }
    return done();
  }
  void connect_relayed() {
    REQUIRE(run(milliseconds(5000),
                [&] { return a.state() == State::connected && b.state() == State::connected; }));
    REQUIRE(a.selected()->kind == PathKind::relayed);
    REQUIRE(b.selected()->kind == PathKind::relayed);
    REQUIRE(a.selected()->via_relay);
    a.start_upgrade(clock.now());
    b.start_upgrade(clock.now());
    REQUIRE(a.upgrading());
    REQUIRE(b.upgrading());
    a_direct_sent = b_direct_sent = a_relayed_sent = 0;  // the checks before selection
  }
};

}  // namespace

TEST_CASE("relay upgrade: a direct path that appears is taken by both sides at the next round") {
  RelayedPair p;
  p.connect_relayed();
  const auto started = p.clock.now();
  // Ten seconds without a direct path: two rounds, still relayed on both sides.
  p.run(milliseconds(10000), [] { return false; });
  CHECK(p.a.upgrade_rounds_done() == 2);
  CHECK(p.b.upgrade_rounds_done() == 2);
  CHECK_FALSE(p.a.take_upgraded());
  CHECK_FALSE(p.b.take_upgraded());
  CHECK(p.a.selected()->via_relay);
  CHECK(p.b.selected()->kind == PathKind::relayed);
  CHECK(p.a_direct_sent > 0);
  p.a_to_b = p.b_to_a = true;
  const auto opened = p.clock.now();
  bool a_up = false;
  bool b_up = false;
  REQUIRE(p.run(milliseconds(10000), [&] {
    a_up = a_up || p.a.take_upgraded();
    b_up = b_up || p.b.take_upgraded();
    return a_up && b_up;
  }));
  // Found by the second round's retransmissions or the third round (15 s after
  // start_upgrade), not later.
  CHECK(p.clock.now() > opened);
  CHECK(p.clock.now() <= started + milliseconds(15000) + milliseconds(1000));
  for (IceAgent* agent : {&p.a, &p.b}) {
    CHECK(agent->state() == State::connected);
    CHECK_FALSE(agent->upgrading());
    CHECK_FALSE(agent->selected()->via_relay);
    CHECK(agent->selected()->kind == PathKind::server_reflexive);
  }
  CHECK(p.a.selected()->remote == kB);
  CHECK(p.b.selected()->remote == kA);
  CHECK(p.a.proven_direct(kB));
  CHECK_FALSE(p.a.proven_direct(kRelay));
  CHECK_FALSE(p.a.take_upgraded());  // reported once
  // Consent freshness now runs on the direct pair: it stays up with the relay gone.
  const int relayed_before = p.a_relayed_sent;
  p.run(milliseconds(40000), [] { return false; });
  CHECK(p.a.state() == State::connected);
  CHECK(p.b.state() == State::connected);
  CHECK(p.a_relayed_sent == relayed_before);
}

TEST_CASE("relay upgrade: rounds are paced, capped, and then the path stays relayed") {
  RelayedPair p(3);
  p.connect_relayed();
  const auto started = p.clock.now();
  // No round before one interval.
  p.run(milliseconds(4900), [] { return false; });
  CHECK(p.a_direct_sent == 0);
  CHECK(p.a.upgrade_rounds_done() == 0);
  p.run(milliseconds(60000), [] { return false; });
  CHECK(p.a.upgrade_rounds_done() == 3);
  CHECK_FALSE(p.a.upgrading());
  CHECK_FALSE(p.b.upgrading());
  // One direct pair each, at most 6 transmissions a round.
  CHECK(p.a_direct_sent > 0);
  CHECK(p.a_direct_sent <= 3 * 6);
  CHECK(p.b_direct_sent <= 3 * 6);
  // Nothing direct after the cap, even when the path appears; the relayed path keeps its
  // consent (no flapping, no loss).
  const int a_after = p.a_direct_sent;
  p.a_to_b = p.b_to_a = true;
  p.run(milliseconds(40000), [] { return false; });
  CHECK(p.a_direct_sent == a_after);
  CHECK_FALSE(p.a.take_upgraded());
  CHECK_FALSE(p.b.take_upgraded());
  CHECK(p.a.state() == State::connected);
  CHECK(p.b.state() == State::connected);
  CHECK(p.a.selected()->via_relay);
  CHECK(p.clock.now() > started + milliseconds(100000));
  CHECK_FALSE(p.a.next_wakeup() < std::optional<Clock::time_point>(p.clock.now()));
}

TEST_CASE("relay upgrade: a direct path that passes one way only is not taken") {
  for (bool forward : {true, false}) {
    RelayedPair p;
    p.connect_relayed();
    p.a_to_b = forward;
    p.b_to_a = !forward;
    p.run(milliseconds(30000), [] { return false; });
    CHECK(p.a.upgrade_rounds_done() == 6);
    CHECK_FALSE(p.a.take_upgraded());
    CHECK_FALSE(p.b.take_upgraded());
    CHECK(p.a.selected()->via_relay);
    CHECK(p.b.selected()->kind == PathKind::relayed);
    CHECK(p.a.upgrading());
    CHECK(p.b.upgrading());
  }
}

TEST_CASE("relay upgrade: the controlled side waits for its own signed check to succeed") {
  // Only B's packets pass at first: A hears B's checks but neither side's check is ever
  // answered, so B nominates nothing and A takes nothing.
  RelayedPair p;
  p.connect_relayed();
  p.b_to_a = true;
  p.run(milliseconds(12000), [] { return false; });
  CHECK_FALSE(p.a.take_upgraded());
  CHECK(p.a.selected()->via_relay);
  CHECK_FALSE(p.a.proven_direct(kB));  // nothing of B's from there is taken as B's
  // Both ways: the next round moves both.
  p.a_to_b = true;
  bool a_up = false;
  bool b_up = false;
  CHECK(p.run(milliseconds(10000), [&] {
    a_up = a_up || p.a.take_upgraded();
    b_up = b_up || p.b.take_upgraded();
    return a_up && b_up;
  }));
}

TEST_CASE("relay upgrade: start_upgrade does nothing on a direct path") {
  RelayedPair p;
  p.a_to_b = p.b_to_a = true;
  REQUIRE(p.run(milliseconds(5000), [&] {
    return p.a.state() == State::connected && p.b.state() == State::connected;
  }));
  REQUIRE(p.a.selected()->kind == PathKind::server_reflexive);
  p.a.start_upgrade(p.clock.now());
  CHECK_FALSE(p.a.upgrading());
  const int sent = p.a_direct_sent;
  p.run(milliseconds(20000), [] { return false; });
  CHECK(p.a.upgrade_rounds_done() == 0);
  CHECK_FALSE(p.a.take_upgraded());
  CHECK(p.a_direct_sent - sent <= 8);  // consent checks only (one every 5 s +-20 %)
}
