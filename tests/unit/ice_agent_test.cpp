// The ICE agent (RFC 8445, RFC 7675 consent) as two agents wired together in process:
// a test clock and a small simulated network between them with a fixed one-way delay,
// optional loss, NAT-like address rewriting (mapping) and filtering (packets from an
// address the side has not sent to are dropped).
#include <catch2/catch.hpp>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <random>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "codec/ed25519.hpp"
#include "codec/ice_priority.hpp"
#include "codec/rendezvous_codec.hpp"
#include "codec/stun_codec.hpp"
#include "core/ice_agent.hpp"
#include "net/clock.hpp"

namespace stun = porthole::detail::stun;
namespace rv = porthole::detail::rendezvous;
namespace ice = porthole::detail::ice;
using porthole::Endpoint;
using porthole::detail::Clock;
using porthole::detail::IceAgent;
using porthole::detail::IceAgentConfig;
using porthole::detail::PairOutcome;
using porthole::detail::PathKind;
using porthole::detail::RandomFn;
using porthole::detail::TestClock;
using std::chrono::milliseconds;
using State = IceAgent::State;
using Bytes = std::vector<std::uint8_t>;

namespace {

Endpoint ep(const char* text) { return *Endpoint::parse(text); }

rv::Candidate candidate(ice::CandidateType type, const char* address,
                        std::uint32_t local_preference = 65535) {
  return {type, stun::kTransportUdp, ep(address), ice::candidate_priority(type, local_preference),
          "f" + std::to_string(static_cast<int>(type))};
}

RandomFn seeded(unsigned seed) {
  auto engine = std::make_shared<std::mt19937>(seed);
  return [engine](std::span<std::uint8_t> out) {
    for (auto& b : out) b = static_cast<std::uint8_t>((*engine)() & 0xff);
  };
}

IceAgentConfig config(bool controlling, std::uint64_t tie, const char* ufrag,
                      const char* password) {
  IceAgentConfig c;
  c.controlling = controlling;
  c.tie_breaker = tie;
  c.local_ufrag = ufrag;
  c.local_password = password;
  return c;
}

constexpr const char* kUfragA = "aaaa";
constexpr const char* kPassA = "passwordAAAAAAAAAAAAAAAA";
constexpr const char* kUfragB = "bbbb";
constexpr const char* kPassB = "passwordBBBBBBBBBBBBBBBB";

// One side of the simulated network: its agent, the address its packets appear to come
// from toward each peer address (a NAT's mapping; its own socket address without one),
// and the addresses that reach it.
struct Side {
  Side(IceAgent a, Endpoint local, std::map<Endpoint, Endpoint> nat, std::vector<Endpoint> at)
      : agent(std::move(a)), socket(local), mapping(std::move(nat)), reachable_at(std::move(at)) {}
  IceAgent agent;
  Endpoint socket;                       // the local address of its one socket
  std::map<Endpoint, Endpoint> mapping;  // destination -> source seen (NAT)
  std::vector<Endpoint> reachable_at;    // destinations delivered to this side
  bool filtering = false;                // drop from sources not sent to (RFC 4787 s5)
  std::set<Endpoint> sent_to;            // destinations it sent to (filter state)
  bool blocked = false;                  // every packet to or from it is lost
  std::vector<std::pair<Clock::time_point, IceAgent::Outgoing>> sent;  // everything sent
  Clock::time_point last_answer{};  // when a STUN success response last reached it

  Endpoint seen_from(const Endpoint& to) const {
    auto it = mapping.find(to);
    return it == mapping.end() ? socket : it->second;
  }
};

struct InFlight {
  Clock::time_point at;
  int to_side;
  Endpoint from;
  Bytes bytes;
};

struct Network {
  TestClock clock;
  std::vector<Side*> sides;
  std::vector<InFlight> flight;
  milliseconds delay{5};
  // Loss: drops the n-th packet overall when it returns true.
  std::function<bool(std::size_t)> lose = [](std::size_t) { return false; };
  std::size_t count = 0;

  Clock::time_point now() const { return clock.now(); }

  void collect(int index) {
    Side& s = *sides[index];
    for (auto& out : s.agent.take_outgoing()) {
      s.sent.push_back({now(), out});
      const std::size_t n = count++;
      s.sent_to.insert(out.to);
      if (s.blocked || lose(n)) continue;
      for (int j = 0; j < static_cast<int>(sides.size()); ++j) {
        if (j == index) continue;
        const auto& at = sides[j]->reachable_at;
        if (std::find(at.begin(), at.end(), out.to) == at.end()) continue;
        flight.push_back({now() + delay, j, s.seen_from(out.to), out.bytes});
      }
    }
  }

  // Runs until `done` or `limit` of test time passes.
  void run(
      milliseconds limit, const std::function<bool()>& done = [] { return false; }) {
    const auto end = now() + limit;
    for (int i = 0; i < static_cast<int>(sides.size()); ++i) collect(i);
    while (!done()) {
      Clock::time_point next = end;
      for (const auto& f : flight) next = std::min(next, f.at);
      for (Side* s : sides)
        if (auto w = s->agent.next_wakeup()) next = std::min(next, std::max(*w, now()));
      if (next >= end) {
        clock.set(end);
        break;
      }
      clock.set(next);
      std::vector<InFlight> arriving;
      auto split = std::stable_partition(flight.begin(), flight.end(),
                                         [&](const InFlight& f) { return f.at > now(); });
      arriving.assign(split, flight.end());
      flight.erase(split, flight.end());
      for (const auto& f : arriving) {
        Side& to = *sides[f.to_side];
        if (to.blocked) continue;
        if (to.filtering && !to.sent_to.count(f.from)) continue;
        auto m = stun::decode(f.bytes);
        if (m && m->message_class == stun::MessageClass::success_response) to.last_answer = now();
        to.agent.on_datagram(f.bytes, f.from, now());
        collect(f.to_side);
      }
      for (int i = 0; i < static_cast<int>(sides.size()); ++i) {
        Side& s = *sides[i];
        if (auto w = s.agent.next_wakeup(); w && *w <= now()) s.agent.on_timer(now());
        collect(i);
      }
    }
  }
};

bool connected(const Side& s) { return s.agent.state() == State::connected; }

// Gives each agent the other's credentials and candidates at `now`.
void exchange(Side& a, const std::vector<rv::Candidate>& a_candidates, Side& b,
              const std::vector<rv::Candidate>& b_candidates, Clock::time_point now) {
  for (const auto& c : b_candidates) a.agent.add_remote_candidate(c, now);
  for (const auto& c : a_candidates) b.agent.add_remote_candidate(c, now);
  REQUIRE(a.agent.set_remote(kUfragB, kPassB, now).ok());
  REQUIRE(b.agent.set_remote(kUfragA, kPassA, now).ok());
}

// Two hosts on one LAN, each with its one host candidate, A at 10.0.0.1:5000 and B at
// 10.0.0.2:6000; A controlling with the smaller tie-breaker unless told otherwise.
struct Lan {
  std::vector<rv::Candidate> a_cands{candidate(ice::CandidateType::host, "10.0.0.1:5000")};
  std::vector<rv::Candidate> b_cands{candidate(ice::CandidateType::host, "10.0.0.2:6000")};
  Network net;
  Side a;
  Side b;
  explicit Lan(bool a_controlling = true, bool b_controlling = false, std::uint64_t a_tie = 1,
               std::uint64_t b_tie = 2, unsigned seed = 1)
      : a{IceAgent(config(a_controlling, a_tie, kUfragA, kPassA), a_cands, seeded(seed)),
          ep("10.0.0.1:5000"),
          {},
          {ep("10.0.0.1:5000")}},
        b{IceAgent(config(b_controlling, b_tie, kUfragB, kPassB), b_cands, seeded(seed + 1)),
          ep("10.0.0.2:6000"),
          {},
          {ep("10.0.0.2:6000")}} {
    net.sides = {&a, &b};
  }
  // Both learn the other's description now; runs until both are connected (or 5 s).
  void connect() {
    exchange(a, a_cands, b, b_cands, net.now());
    net.run(milliseconds(5000), [&] { return connected(a) && connected(b); });
  }
};

// A check as the peer would send it, for the tests that play a lying or confused peer.
// With `key`: signed as a signing peer signs its checks.
Bytes check(const std::string& username, const std::string& password, bool controlling,
            std::uint64_t tie, bool use_candidate = false, std::uint8_t id_byte = 7,
            const porthole::detail::ed25519::KeyPair* key = nullptr) {
  stun::TransactionId id{};
  id.fill(id_byte);
  stun::MessageWriter w(stun::method::binding, stun::MessageClass::request, id);
  w.add_text(stun::attr::username, username);
  w.add_priority(ice::candidate_priority(ice::CandidateType::peer_reflexive, 65535));
  w.add_u64(controlling ? stun::attr::ice_controlling : stun::attr::ice_controlled, tie);
  if (use_candidate) w.add_use_candidate();
  if (key) {
    const auto input = porthole::detail::ice_signing_input(
        porthole::detail::kIceCheckSignatureLabel, w.covered_by_next(64));
    w.add(rv::attr::signature, *key->sign(input));
  }
  w.add_message_integrity(*stun::IntegrityKey::short_term(password));
  return *w.finish(true);
}

}  // namespace

TEST_CASE("ice agent: two hosts on one LAN connect on the host pair within two round trips") {
  Lan lan;
  Side& a = lan.a;
  Side& b = lan.b;
  Network& net = lan.net;
  CHECK(a.agent.state() == State::waiting);
  const auto t0 = net.now();
  exchange(a, lan.a_cands, b, lan.b_cands, t0);
  CHECK(a.agent.state() == State::checking);
  net.run(milliseconds(2000), [&] { return connected(a) && connected(b); });
  REQUIRE(connected(a));
  REQUIRE(connected(b));
  auto sa = a.agent.selected();
  auto sb = b.agent.selected();
  REQUIRE(sa);
  REQUIRE(sb);
  CHECK(sa->remote == ep("10.0.0.2:6000"));
  CHECK(sb->remote == ep("10.0.0.1:5000"));
  CHECK(sa->kind == PathKind::host);
  CHECK(sb->kind == PathKind::host);
  CHECK(sa->local_seen == ep("10.0.0.1:5000"));
  CHECK(sa->local_type == ice::CandidateType::host);
  // Check, answer (10 ms), nomination, answer (20 ms): no waiting on timers.
  CHECK(sa->elapsed <= milliseconds(20));
  CHECK(sb->elapsed <= milliseconds(20));
  CHECK(a.agent.controlling());
  CHECK_FALSE(b.agent.controlling());
  const auto rep = a.agent.report();
  REQUIRE(rep.size() == 1);
  CHECK(rep[0].outcome == PairOutcome::nominated);
  CHECK(rep[0].answers >= 1);
  CHECK(porthole::detail::describe_outcome(rep[0]) == "nominated");
  // The controlled side gets its own answer too, soon after.
  net.run(milliseconds(50));
  CHECK(b.agent.selected()->local_seen == ep("10.0.0.2:6000"));
  REQUIRE(b.agent.linger_until());
  CHECK(*b.agent.linger_until() == t0 + sb->elapsed + milliseconds(500));
}

TEST_CASE("ice agent: behind two filtering NATs the server-reflexive pair connects") {
  Network net;
  const auto a_cands = std::vector{candidate(ice::CandidateType::host, "10.0.1.2:5000"),
                                   candidate(ice::CandidateType::server_reflexive,
                                             "203.0.113.1:40000")};
  const auto b_cands = std::vector{candidate(ice::CandidateType::host, "10.0.2.2:6000"),
                                   candidate(ice::CandidateType::server_reflexive,
                                             "203.0.113.2:50000")};
  Side a{IceAgent(config(true, 1, kUfragA, kPassA), a_cands, seeded(1)),
         ep("10.0.1.2:5000"),
         {},
         {ep("203.0.113.1:40000")}};
  Side b{IceAgent(config(false, 2, kUfragB, kPassB), b_cands, seeded(2)),
         ep("10.0.2.2:6000"),
         {},
         {ep("203.0.113.2:50000")}};
  // Endpoint-independent mapping: the same public address toward every destination.
  a.mapping[ep("203.0.113.2:50000")] = ep("203.0.113.1:40000");
  a.mapping[ep("10.0.2.2:6000")] = ep("203.0.113.1:40000");
  b.mapping[ep("203.0.113.1:40000")] = ep("203.0.113.2:50000");
  b.mapping[ep("10.0.1.2:5000")] = ep("203.0.113.2:50000");
  a.filtering = b.filtering = true;
  net.sides = {&a, &b};
  exchange(a, a_cands, b, b_cands, net.now());
  net.run(milliseconds(5000), [&] { return connected(a) && connected(b); });
  REQUIRE(connected(a));
  REQUIRE(connected(b));
  CHECK(a.agent.selected()->remote == ep("203.0.113.2:50000"));
  CHECK(b.agent.selected()->remote == ep("203.0.113.1:40000"));
  CHECK(a.agent.selected()->kind == PathKind::server_reflexive);
  CHECK(a.agent.selected()->local_type == ice::CandidateType::server_reflexive);
  CHECK(b.agent.selected()->kind == PathKind::server_reflexive);
  // The first check into a filtering NAT is lost; the peer's check opening its own
  // NAT makes the retry immediate instead of a retransmission timeout later.
  CHECK(a.agent.selected()->elapsed < milliseconds(100));
  // The host pairs (unreachable private addresses) did not win.
  for (const auto& r : a.agent.report())
    if (r.remote == ep("10.0.2.2:6000")) CHECK(r.outcome != PairOutcome::nominated);
}

TEST_CASE("ice agent: an address-dependent NAT gives peer-reflexive candidates on both sides") {
  Network net;
  // A's NAT maps toward B to a port nobody signalled (what a symmetric NAT does); B is
  // on a public address.
  const auto a_cands = std::vector{candidate(ice::CandidateType::host, "10.0.1.2:5000"),
                                   candidate(ice::CandidateType::server_reflexive,
                                             "203.0.113.1:40000")};
  const auto b_cands = std::vector{candidate(ice::CandidateType::host, "198.51.100.7:6000")};
  Side a{IceAgent(config(false, 1, kUfragA, kPassA), a_cands, seeded(1)),
         ep("10.0.1.2:5000"),
         {},
         {ep("203.0.113.1:40001")}};
  Side b{IceAgent(config(true, 2, kUfragB, kPassB), b_cands, seeded(2)),
         ep("198.51.100.7:6000"),
         {},
         {ep("198.51.100.7:6000")}};
  a.mapping[ep("198.51.100.7:6000")] = ep("203.0.113.1:40001");
  a.filtering = true;
  net.sides = {&a, &b};
  exchange(a, a_cands, b, b_cands, net.now());
  net.run(milliseconds(5000), [&] { return connected(a) && connected(b); });
  REQUIRE(connected(a));
  REQUIRE(connected(b));
  auto sb = *b.agent.selected();
  CHECK(sb.remote == ep("203.0.113.1:40001"));
  CHECK(sb.remote_type == ice::CandidateType::peer_reflexive);
  CHECK(sb.kind == PathKind::peer_reflexive);
  net.run(milliseconds(100));
  auto sa = *a.agent.selected();
  CHECK(sa.remote == ep("198.51.100.7:6000"));
  CHECK(sa.local_seen == ep("203.0.113.1:40001"));
  CHECK(sa.local_type == ice::CandidateType::peer_reflexive);
  CHECK(sa.kind == PathKind::peer_reflexive);
  bool learned = false;
  for (const auto& r : b.agent.report())
    if (r.remote == ep("203.0.113.1:40001")) learned = r.remote_learned;
  CHECK(learned);
  // The signalled server-reflexive address never answered (the NAT mapped elsewhere).
  for (const auto& r : b.agent.report())
    if (r.remote == ep("203.0.113.1:40000")) CHECK(r.answers == 0);
}

TEST_CASE("ice agent: a mapped candidate makes the path mapped") {
  Network net;
  const auto a_cands = std::vector{candidate(ice::CandidateType::host, "10.0.1.2:5000"),
                                   candidate(ice::CandidateType::mapped, "203.0.113.1:5000")};
  const auto b_cands = std::vector{candidate(ice::CandidateType::host, "198.51.100.7:6000")};
  Side a{IceAgent(config(true, 1, kUfragA, kPassA), a_cands, seeded(1)),
         ep("10.0.1.2:5000"),
         {},
         {ep("203.0.113.1:5000")}};
  Side b{IceAgent(config(false, 2, kUfragB, kPassB), b_cands, seeded(2)),
         ep("198.51.100.7:6000"),
         {},
         {ep("198.51.100.7:6000")}};
  a.mapping[ep("198.51.100.7:6000")] = ep("203.0.113.1:5000");  // the port mapping
  net.sides = {&a, &b};
  exchange(a, a_cands, b, b_cands, net.now());
  net.run(milliseconds(5000), [&] { return connected(a) && connected(b); });
  REQUIRE(connected(a));
  REQUIRE(connected(b));
  CHECK(a.agent.selected()->kind == PathKind::mapped);
  CHECK(a.agent.selected()->local_type == ice::CandidateType::mapped);
  CHECK(b.agent.selected()->remote == ep("203.0.113.1:5000"));
  CHECK(b.agent.selected()->remote_type == ice::CandidateType::mapped);
  CHECK(b.agent.selected()->kind == PathKind::mapped);
}

TEST_CASE("ice agent: the nomination window waits for a better pair") {
  // B's two candidates are two agents with B's credentials (the better one a host
  // address, the other server-reflexive), so each answers from where it was asked. A's
  // first check, to the better one, is lost: the worse pair is valid first (30 ms), the
  // better one after its retransmission (110 ms). The Bs know no candidate of A, so they
  // send no checks of their own.
  for (int window : {0, 150}) {
    Network net;
    net.lose = [](std::size_t n) { return n == 0; };
    auto c = config(true, 1, kUfragA, kPassA);
    c.nomination_window = milliseconds(window);
    Side a{IceAgent(c, {candidate(ice::CandidateType::host, "10.0.0.1:5000")}, seeded(1)),
           ep("10.0.0.1:5000"),
           {},
           {ep("10.0.0.1:5000")}};
    Side b_host{IceAgent(config(false, 2, kUfragB, kPassB), {}, seeded(2)),
                ep("10.0.0.2:6000"),
                {},
                {ep("10.0.0.2:6000")}};
    Side b_srflx{IceAgent(config(false, 2, kUfragB, kPassB), {}, seeded(3)),
                 ep("203.0.113.2:50000"),
                 {},
                 {ep("203.0.113.2:50000")}};
    net.sides = {&a, &b_host, &b_srflx};
    a.agent.add_remote_candidate(candidate(ice::CandidateType::host, "10.0.0.2:6000"), net.now());
    a.agent.add_remote_candidate(candidate(ice::CandidateType::server_reflexive,
                                           "203.0.113.2:50000"),
                                 net.now());
    REQUIRE(a.agent.set_remote(kUfragB, kPassB, net.now()).ok());
    REQUIRE(b_host.agent.set_remote(kUfragA, kPassA, net.now()).ok());
    REQUIRE(b_srflx.agent.set_remote(kUfragA, kPassA, net.now()).ok());
    net.run(milliseconds(2000), [&] { return connected(a); });
    INFO("window " << window << " ms");
    REQUIRE(connected(a));
    if (window == 0) {
      CHECK(a.agent.selected()->remote == ep("203.0.113.2:50000"));
      CHECK(a.agent.selected()->elapsed == milliseconds(40));
      CHECK(connected(b_srflx));
      CHECK_FALSE(connected(b_host));
    } else {
      CHECK(a.agent.selected()->remote == ep("10.0.0.2:6000"));
      CHECK(a.agent.selected()->elapsed == milliseconds(190));  // 30 + 150, then 10
      CHECK(connected(b_host));
      CHECK_FALSE(connected(b_srflx));
    }
  }
}

TEST_CASE("ice agent: connects over a lossy network by retransmitting") {
  // Every third packet (the first one too), every fourth, and a third of them at
  // random (fixed seed). Not every second: with strict alternation a retransmitted
  // check always gets through and its answer is always the one lost.
  for (std::size_t period : {3U, 4U, 0U}) {
    Lan lan(true, false, 1, 2, 3);
    Side& a = lan.a;
    Side& b = lan.b;
    auto coin = std::make_shared<std::mt19937>(7);
    lan.net.lose = [period, coin](std::size_t n) {
      return period ? n % period == 0 : (*coin)() % 3 == 0;
    };
    lan.connect();
    INFO("losing every " << period << "th packet (0: a third at random)");
    REQUIRE(connected(a));
    REQUIRE(connected(b));
    CHECK(a.agent.selected()->remote == ep("10.0.0.2:6000"));
    CHECK(b.agent.selected()->remote == ep("10.0.0.1:5000"));
    CHECK(a.agent.report()[0].checks_sent > 2);
  }
}

TEST_CASE("ice agent: one direction blocked until the other side sends") {
  // B is behind a filtering NAT and learns A's candidate 300 ms late (as with a slow
  // rendezvous): A's checks are dropped until B's first check opens B's NAT.
  Network net;
  const auto a_cands = std::vector{candidate(ice::CandidateType::host, "198.51.100.7:5000")};
  const auto b_cands = std::vector{
      candidate(ice::CandidateType::server_reflexive, "203.0.113.2:50000")};
  Side a{IceAgent(config(true, 1, kUfragA, kPassA), a_cands, seeded(1)),
         ep("198.51.100.7:5000"),
         {},
         {ep("198.51.100.7:5000")}};
  Side b{IceAgent(config(false, 2, kUfragB, kPassB), b_cands, seeded(2)),
         ep("10.0.2.2:6000"),
         {},
         {ep("203.0.113.2:50000")}};
  b.mapping[ep("198.51.100.7:5000")] = ep("203.0.113.2:50000");
  b.filtering = true;
  net.sides = {&a, &b};
  a.agent.add_remote_candidate(b_cands[0], net.now());
  REQUIRE(a.agent.set_remote(kUfragB, kPassB, net.now()).ok());
  net.run(milliseconds(300));
  CHECK(a.agent.state() == State::checking);
  CHECK(a.agent.report()[0].answers == 0);
  CHECK(a.agent.report()[0].checks_sent >= 2);
  b.agent.add_remote_candidate(a_cands[0], net.now());
  REQUIRE(b.agent.set_remote(kUfragA, kPassA, net.now()).ok());
  const auto t = net.now();
  net.run(milliseconds(5000), [&] { return connected(a) && connected(b); });
  REQUIRE(connected(a));
  REQUIRE(connected(b));
  // B's check arrives 5 ms later; A answers and resends its own check at once.
  CHECK(net.now() - t <= milliseconds(30));
}

TEST_CASE("ice agent: checks with the wrong password or ufrag are dropped unanswered") {
  TestClock clock;
  const auto b_cands = std::vector{candidate(ice::CandidateType::host, "10.0.0.2:6000")};
  std::vector<std::string> log;
  auto c = config(false, 2, kUfragB, kPassB);
  c.log = [&log](porthole::LogLevel, std::string_view line) { log.emplace_back(line); };
  IceAgent b(c, b_cands, seeded(2));
  const Endpoint from = ep("10.0.0.1:5000");
  b.on_datagram(check("bbbb:aaaa", "wrongpasswordAAAAAAAAAAAA", true, 1), from, clock.now());
  CHECK(b.take_outgoing().empty());
  CHECK(log == std::vector<std::string>{
                   "ice: dropped a check from 10.0.0.1:5000: wrong MESSAGE-INTEGRITY"});
  b.on_datagram(check("cccc:aaaa", kPassB, true, 1), from, clock.now());
  CHECK(b.take_outgoing().empty());
  b.on_datagram(check("bbbbb:aaaa", kPassB, true, 1), from, clock.now());
  CHECK(b.take_outgoing().empty());
  b.on_datagram(check("bbbb", kPassB, true, 1), from, clock.now());
  CHECK(b.take_outgoing().empty());
  // Not a check at all: a plain Binding request, and junk.
  b.on_datagram(stun::encode_binding_request({}), from, clock.now());
  const Bytes junk(40, 0x01);
  b.on_datagram(junk, from, clock.now());
  CHECK(b.take_outgoing().empty());
  // The right credentials are answered (before set_remote), with our password.
  b.on_datagram(check("bbbb:aaaa", kPassB, true, 1), from, clock.now());
  auto out = b.take_outgoing();
  REQUIRE(out.size() == 1);
  CHECK(out[0].to == from);
  auto m = stun::decode(out[0].bytes);
  REQUIRE(m.ok());
  CHECK(m->message_class == stun::MessageClass::success_response);
  CHECK(stun::check_integrity(out[0].bytes, *m, *stun::IntegrityKey::short_term(kPassB)).ok());
  REQUIRE(m->xor_mapped_address);
  CHECK(m->xor_mapped_address->ip.to_string() == "10.0.0.1");
  CHECK(m->xor_mapped_address->port == 5000);
  // Once the peer is known, a check from another session's ufrag is dropped.
  REQUIRE(b.set_remote(kUfragA, kPassA, clock.now()).ok());
  (void)b.take_outgoing();
  b.on_datagram(check("bbbb:zzzz", kPassB, true, 1, false, 9), from, clock.now());
  CHECK(b.take_outgoing().empty());
}

TEST_CASE("ice agent: a check answered before the description becomes a triggered check") {
  TestClock clock;
  IceAgent b(config(false, 2, kUfragB, kPassB),
             {candidate(ice::CandidateType::host, "10.0.0.2:6000")}, seeded(2));
  const Endpoint from = ep("203.0.113.9:7000");  // in no description: peer-reflexive
  b.on_datagram(check("bbbb:aaaa", kPassB, true, 1), from, clock.now());
  REQUIRE(b.take_outgoing().size() == 1);  // the answer
  CHECK_FALSE(b.next_wakeup());
  REQUIRE(b.set_remote(kUfragA, kPassA, clock.now()).ok());
  auto out = b.take_outgoing();
  REQUIRE(out.size() == 1);
  CHECK(out[0].to == from);
  auto m = stun::decode(out[0].bytes);
  REQUIRE(m.ok());
  CHECK(m->message_class == stun::MessageClass::request);
  CHECK(m->username == std::optional<std::string>("aaaa:bbbb"));
  CHECK(m->ice_controlled == std::optional<std::uint64_t>(2));
  CHECK(m->priority.has_value());
  CHECK(m->has_fingerprint);
  CHECK(stun::check_integrity(out[0].bytes, *m, *stun::IntegrityKey::short_term(kPassA)).ok());
  const auto rep = b.report();
  REQUIRE(rep.size() == 1);
  CHECK(rep[0].remote_learned);
  CHECK(rep[0].remote_type == ice::CandidateType::peer_reflexive);
  // A USE-CANDIDATE check remembered early connects the controlled side once known.
  IceAgent c(config(false, 2, kUfragB, kPassB),
             {candidate(ice::CandidateType::host, "10.0.0.2:6000")}, seeded(2));
  c.on_datagram(check("bbbb:aaaa", kPassB, true, 1, true), from, clock.now());
  REQUIRE(c.set_remote(kUfragA, kPassA, clock.now()).ok());
  CHECK(c.state() == State::connected);
  CHECK(c.selected()->remote == from);
}

TEST_CASE("ice agent: responses from another address or without integrity are dropped") {
  TestClock clock;
  IceAgent a(config(true, 1, kUfragA, kPassA),
             {candidate(ice::CandidateType::host, "10.0.0.1:5000")}, seeded(1));
  a.add_remote_candidate(candidate(ice::CandidateType::host, "10.0.0.2:6000"), clock.now());
  REQUIRE(a.set_remote(kUfragB, kPassB, clock.now()).ok());
  auto out = a.take_outgoing();
  REQUIRE(out.size() == 1);
  auto req = *stun::decode(out[0].bytes);
  auto respond = [&](const char* password) {
    stun::MessageWriter w(stun::method::binding, stun::MessageClass::success_response,
                          req.transaction_id);
    w.add_xor_address(stun::attr::xor_mapped_address, ep("10.0.0.1:5000"));
    w.add_message_integrity(*stun::IntegrityKey::short_term(password));
    return *w.finish(true);
  };
  a.on_datagram(respond(kPassB), ep("10.0.0.3:6000"), clock.now());  // wrong source
  a.on_datagram(respond("passwordXXXXXXXXXXXXXXXX"), ep("10.0.0.2:6000"), clock.now());
  CHECK(a.report()[0].answers == 0);
  CHECK(a.report()[0].outcome == PairOutcome::checking);
  a.on_datagram(respond(kPassB), ep("10.0.0.2:6000"), clock.now());
  CHECK(a.report()[0].answers == 1);
  // Valid: the controlling side nominates at once.
  out = a.take_outgoing();
  REQUIRE(out.size() == 1);
  auto nomination = *stun::decode(out[0].bytes);
  CHECK(nomination.use_candidate);
  CHECK(nomination.ice_controlling == std::optional<std::uint64_t>(1));
}

TEST_CASE("ice agent: a role conflict is settled by the larger tie-breaker") {
  for (bool both_controlling : {true, false}) {
    Lan lan(both_controlling, both_controlling, 100, 200);
    Side& a = lan.a;
    Side& b = lan.b;
    lan.connect();
    INFO("both " << (both_controlling ? "controlling" : "controlled"));
    REQUIRE(connected(a));
    REQUIRE(connected(b));
    CHECK_FALSE(a.agent.controlling());
    CHECK(b.agent.controlling());
    CHECK(a.agent.selected()->remote == ep("10.0.0.2:6000"));
    CHECK(b.agent.selected()->remote == ep("10.0.0.1:5000"));
  }
}

TEST_CASE("ice agent: retransmits on schedule, then fails when no pair answers") {
  TestClock clock;
  const auto t0 = clock.now();
  IceAgent a(config(true, 1, kUfragA, kPassA),
             {candidate(ice::CandidateType::host, "10.0.0.1:5000")}, seeded(1));
  a.add_remote_candidate(candidate(ice::CandidateType::host, "10.0.0.2:6000"), t0);
  REQUIRE(a.set_remote(kUfragB, kPassB, t0).ok());
  std::vector<milliseconds> sent;
  std::set<stun::TransactionId> ids;
  auto drain = [&] {
    for (auto& o : a.take_outgoing()) {
      sent.push_back(std::chrono::duration_cast<milliseconds>(clock.now() - t0));
      ids.insert(stun::decode(o.bytes)->transaction_id);
    }
  };
  drain();
  while (auto w = a.next_wakeup()) {
    clock.set(*w);
    a.on_timer(clock.now());
    drain();
  }
  CHECK(sent == std::vector<milliseconds>{milliseconds(0), milliseconds(100), milliseconds(300),
                                          milliseconds(700), milliseconds(1500),
                                          milliseconds(3100)});
  CHECK(ids.size() == 1);  // one transaction, retransmitted
  CHECK(a.state() == State::failed);
  CHECK(clock.now() - t0 == milliseconds(3900));
  CHECK(a.failure() == "every candidate pair failed");
  const auto rep = a.report();
  REQUIRE(rep.size() == 1);
  CHECK(rep[0].outcome == PairOutcome::failed);
  CHECK(rep[0].checks_sent == 6);
  CHECK(porthole::detail::describe_outcome(rep[0]) == "failed: no answer");
}

TEST_CASE("ice agent: the deadline ends checking") {
  TestClock clock;
  auto c = config(true, 1, kUfragA, kPassA);
  c.deadline = clock.now() + milliseconds(1000);
  IceAgent a(c, {candidate(ice::CandidateType::host, "10.0.0.1:5000")}, seeded(1));
  REQUIRE(a.set_remote(kUfragB, kPassB, clock.now()).ok());  // no candidates at all
  CHECK(a.take_outgoing().empty());
  REQUIRE(a.next_wakeup() == std::optional<Clock::time_point>(c.deadline));
  clock.set(c.deadline);
  a.on_timer(clock.now());
  CHECK(a.state() == State::failed);
  CHECK(a.failure() == "no candidate pair succeeded before the deadline");
  CHECK_FALSE(a.next_wakeup());
}

TEST_CASE("ice agent: an error answer fails the pair with its code") {
  TestClock clock;
  IceAgent a(config(true, 1, kUfragA, kPassA),
             {candidate(ice::CandidateType::host, "10.0.0.1:5000")}, seeded(1));
  a.add_remote_candidate(candidate(ice::CandidateType::host, "10.0.0.2:6000"), clock.now());
  REQUIRE(a.set_remote(kUfragB, kPassB, clock.now()).ok());
  auto req = *stun::decode(a.take_outgoing().at(0).bytes);
  stun::MessageWriter w(stun::method::binding, stun::MessageClass::error_response,
                        req.transaction_id);
  w.add_error_code(400, "Bad Request");
  w.add_message_integrity(*stun::IntegrityKey::short_term(kPassB));
  a.on_datagram(*w.finish(true), ep("10.0.0.2:6000"), clock.now());
  const auto rep = a.report();
  CHECK(rep[0].outcome == PairOutcome::failed);
  CHECK(porthole::detail::describe_outcome(rep[0]) == "failed: error 400");
  CHECK(a.state() == State::failed);
}

TEST_CASE("ice agent: consent is kept while the peer answers and lost 30 s after it stops") {
  Lan lan;
  Side& a = lan.a;
  Side& b = lan.b;
  Network& net = lan.net;
  lan.connect();
  REQUIRE(connected(a));
  a.sent.clear();
  net.run(milliseconds(60000));
  CHECK(connected(a));
  CHECK(connected(b));
  // Consent checks every 4..6 s (RFC 7675 s5.1).
  std::vector<Clock::time_point> at;  // A's requests (it also answers B's)
  for (const auto& [t, out] : a.sent)
    if (stun::decode(out.bytes)->message_class == stun::MessageClass::request) at.push_back(t);
  REQUIRE(at.size() >= 10);
  REQUIRE(at.size() <= 15);
  for (std::size_t i = 1; i < at.size(); ++i) {
    CHECK(at[i] - at[i - 1] >= milliseconds(4000));
    CHECK(at[i] - at[i - 1] <= milliseconds(6000));
  }
  // Silence: B vanishes.
  b.blocked = true;
  const auto silent = net.now();
  net.run(milliseconds(40000), [&] { return a.agent.state() == State::disconnected; });
  CHECK(a.agent.state() == State::disconnected);
  CHECK(net.now() - a.last_answer == milliseconds(30000));  // RFC 7675 s5.1
  CHECK(net.now() - silent >= milliseconds(24000));
  CHECK_FALSE(a.agent.next_wakeup());
}

TEST_CASE("ice agent: after quiesce nothing is sent or answered") {
  Lan lan;
  Side& a = lan.a;
  Side& b = lan.b;
  Network& net = lan.net;
  lan.connect();
  REQUIRE(connected(b));
  b.agent.quiesce();
  CHECK(b.agent.quiesced());
  CHECK_FALSE(b.agent.next_wakeup());
  b.sent.clear();
  net.run(milliseconds(40000));
  CHECK(b.sent.empty());  // not even answers to A's consent checks
  b.agent.on_datagram(check("bbbb:aaaa", kPassB, true, 1), ep("10.0.0.1:5000"), net.now());
  CHECK(b.agent.take_outgoing().empty());
  CHECK(a.agent.state() == State::disconnected);  // A saw its consent go
}

TEST_CASE("ice agent: several local candidates on one socket check each remote address once") {
  TestClock clock;
  // host, mapped and server-reflexive: one socket, so one pair per remote address.
  IceAgent a(config(true, 1, kUfragA, kPassA),
             {candidate(ice::CandidateType::host, "10.0.1.2:5000"),
              candidate(ice::CandidateType::mapped, "203.0.113.1:5000"),
              candidate(ice::CandidateType::server_reflexive, "203.0.113.1:40000")},
             seeded(1));
  a.add_remote_candidate(candidate(ice::CandidateType::host, "10.0.2.2:6000"), clock.now());
  a.add_remote_candidate(candidate(ice::CandidateType::server_reflexive, "203.0.113.2:50000"),
                         clock.now());
  // A repeat of an address (a mapped candidate the NAT also reports) is one pair, and
  // an IPv6 candidate has no IPv4 socket to be checked from.
  a.add_remote_candidate(candidate(ice::CandidateType::mapped, "203.0.113.2:50000"), clock.now());
  a.add_remote_candidate(candidate(ice::CandidateType::host, "[2001:db8::2]:6000"), clock.now());
  REQUIRE(a.set_remote(kUfragB, kPassB, clock.now()).ok());
  std::vector<Endpoint> first_round;
  for (int i = 0; i < 4; ++i) {  // 80 ms: every pair's first check, paced, no retransmission
    for (auto& o : a.take_outgoing()) first_round.push_back(o.to);
    clock.advance(milliseconds(20));
    a.on_timer(clock.now());
  }
  for (auto& o : a.take_outgoing()) first_round.push_back(o.to);
  // Highest pair priority first: host, then the address the remote's mapped candidate
  // (higher priority than its server-reflexive twin) stands for.
  CHECK(first_round == std::vector<Endpoint>{ep("10.0.2.2:6000"), ep("203.0.113.2:50000")});
  const auto rep = a.report();
  REQUIRE(rep.size() == 2);
  CHECK(rep[1].remote_type == ice::CandidateType::mapped);
  CHECK(rep[0].local == ep("10.0.1.2:5000"));  // the best local candidate stands for all
  CHECK(rep[1].local == ep("10.0.1.2:5000"));
}

TEST_CASE("ice agent: new checks are paced one per Ta, triggered checks first") {
  TestClock clock;
  const auto t0 = clock.now();
  IceAgent a(config(false, 1, kUfragA, kPassA),
             {candidate(ice::CandidateType::host, "10.0.1.2:5000")}, seeded(1));
  for (int i = 0; i < 4; ++i) {
    const std::string addr = "10.0.2." + std::to_string(i + 1) + ":6000";
    a.add_remote_candidate(candidate(ice::CandidateType::host, addr.c_str(), 65535 - i), t0);
  }
  REQUIRE(a.set_remote(kUfragB, kPassB, t0).ok());
  REQUIRE(a.take_outgoing().size() == 1);  // to 10.0.2.1, the highest priority
  REQUIRE(a.next_wakeup() == std::optional<Clock::time_point>(t0 + milliseconds(20)));
  // A check from 10.0.2.4 (not yet checked) arrives at 5 ms: answered at once, and its
  // triggered check goes out at the next Ta ahead of 10.0.2.2 and 10.0.2.3.
  clock.set(t0 + milliseconds(5));
  a.on_datagram(check("aaaa:bbbb", kPassA, true, 9), ep("10.0.2.4:6000"), clock.now());
  auto out = a.take_outgoing();
  REQUIRE(out.size() == 1);
  CHECK(stun::decode(out[0].bytes)->message_class == stun::MessageClass::success_response);
  clock.set(t0 + milliseconds(20));
  a.on_timer(clock.now());
  out = a.take_outgoing();
  REQUIRE(out.size() == 1);
  CHECK(out[0].to == ep("10.0.2.4:6000"));
  clock.set(t0 + milliseconds(40));
  a.on_timer(clock.now());
  out = a.take_outgoing();
  REQUIRE(out.size() == 1);
  CHECK(out[0].to == ep("10.0.2.2:6000"));
}

TEST_CASE("ice agent: checks from ever new addresses learn a bounded number of candidates") {
  TestClock clock;
  IceAgent a(config(false, 1, kUfragA, kPassA),
             {candidate(ice::CandidateType::host, "10.0.1.2:5000")}, seeded(1));
  REQUIRE(a.set_remote(kUfragB, kPassB, clock.now()).ok());
  for (int i = 0; i < 200; ++i) {
    const Endpoint from{porthole::IpAddress::v4({198, 51, 100, 1}),
                        static_cast<std::uint16_t>(10000 + i)};
    a.on_datagram(check("aaaa:bbbb", kPassA, true, 9, false, static_cast<std::uint8_t>(i)), from,
                  clock.now());
  }
  const auto rep = a.report();
  CHECK(rep.size() == 64);
  CHECK(a.state() == State::checking);
}

TEST_CASE("ice agent: with the candidates given to set_remote the best pair is checked first") {
  TestClock clock;
  const std::vector<rv::Candidate> remote{candidate(ice::CandidateType::server_reflexive,
                                                    "203.0.113.2:50000"),
                                          candidate(ice::CandidateType::host, "10.0.2.2:6000")};
  IceAgent a(config(true, 1, kUfragA, kPassA),
             {candidate(ice::CandidateType::host, "10.0.1.2:5000")}, seeded(1));
  REQUIRE(a.set_remote(kUfragB, kPassB, remote, clock.now()).ok());
  auto out = a.take_outgoing();
  REQUIRE(out.size() == 1);
  CHECK(out[0].to == ep("10.0.2.2:6000"));
  CHECK(a.report().size() == 2);
  // Refused credentials add nothing.
  IceAgent b(config(true, 1, kUfragA, kPassA),
             {candidate(ice::CandidateType::host, "10.0.1.2:5000")}, seeded(1));
  CHECK_FALSE(b.set_remote(kUfragB, "short", remote, clock.now()).ok());
  CHECK(b.report().empty());
}

TEST_CASE("ice agent: unusable credentials are refused") {
  TestClock clock;
  IceAgent bad(config(true, 1, "ab", kPassA), {}, seeded(1));
  CHECK(bad.state() == State::failed);
  CHECK(bad.failure().find("ufrag") != std::string::npos);
  IceAgent a(config(true, 1, kUfragA, kPassA), {}, seeded(1));
  auto r = a.set_remote(kUfragB, "short", clock.now());
  REQUIRE_FALSE(r.ok());
  CHECK(r.error().code == porthole::Errc::usage);
  CHECK(a.state() == State::waiting);
  CHECK(porthole::detail::check_ice_credentials("ab:c", kPassA).error().code ==
        porthole::Errc::usage);
}

// --- signed checks: the peer's Ed25519 key, not the password, proves the peer ---

namespace {

namespace ed = porthole::detail::ed25519;

ed::KeyPair test_key(std::uint8_t fill) {
  std::array<std::uint8_t, ed::kSeedSize> seed{};
  seed.fill(fill);
  return *ed::KeyPair::from_seed(seed);
}

// `mine` signs; checks and answers are accepted only when `peer` signed them.
IceAgentConfig signed_config(bool controlling, std::uint64_t tie, const char* ufrag,
                             const char* password, const ed::KeyPair& mine,
                             const ed::PublicKey& peer) {
  auto c = config(controlling, tie, ufrag, password);
  c.sign =
      [mine](std::span<const std::uint8_t> bytes) -> porthole::Result<std::vector<std::uint8_t>> {
    auto sig = mine.sign(bytes);
    if (!sig) return sig.error();
    return std::vector<std::uint8_t>(sig->begin(), sig->end());
  };
  c.verify_peer = [peer](std::span<const std::uint8_t> bytes,
                         std::span<const std::uint8_t> signature) {
    return ed::verify(peer, bytes, signature);
  };
  return c;
}

bool has_signature(const Bytes& bytes) {
  auto m = stun::decode(bytes);
  if (!m) return false;
  return std::any_of(m->attributes.begin(), m->attributes.end(), [](const stun::Attribute& a) {
    return a.type == rv::attr::signature && a.value.size() == 64;
  });
}

// A success response to `id` as the peer `key` would sign it, but with the signature
// `signature_of` (the one it made for that other transaction) when given.
Bytes signed_answer(const stun::TransactionId& id, const Endpoint& mapped, const ed::KeyPair& key,
                    const char* password,
                    std::optional<stun::TransactionId> signature_of = std::nullopt) {
  auto build = [&](const stun::TransactionId& tid, const std::vector<std::uint8_t>* sig) {
    stun::MessageWriter w(stun::method::binding, stun::MessageClass::success_response, tid);
    w.add_xor_address(stun::attr::xor_mapped_address, mapped);
    std::vector<std::uint8_t> own;
    if (!sig) {
      const auto s = *key.sign(
          porthole::detail::ice_signing_input(porthole::detail::kIceAnswerSignatureLabel,
                                              w.covered_by_next(64)));
      own.assign(s.begin(), s.end());
      sig = &own;
    }
    w.add(rv::attr::signature, *sig);
    w.add_message_integrity(*stun::IntegrityKey::short_term(password));
    return *w.finish(true);
  };
  if (!signature_of) return build(id, nullptr);
  const auto other = build(*signature_of, nullptr);
  const auto m = *stun::decode(other);
  for (const auto& a : m.attributes)
    if (a.type == rv::attr::signature) return build(id, &a.value);
  return {};
}

}  // namespace

TEST_CASE("ice agent: signed: two agents with each other's keys connect, every message signed") {
  const auto ka = test_key(0x11);
  const auto kb = test_key(0x22);
  Network net;
  const auto a_cands = std::vector{candidate(ice::CandidateType::host, "10.0.0.1:5000")};
  const auto b_cands = std::vector{candidate(ice::CandidateType::host, "10.0.0.2:6000")};
  Side a{IceAgent(signed_config(true, 1, kUfragA, kPassA, ka, kb.public_key()), a_cands, seeded(1)),
         ep("10.0.0.1:5000"),
         {},
         {ep("10.0.0.1:5000")}};
  Side b{IceAgent(signed_config(false, 2, kUfragB, kPassB, kb, ka.public_key()), b_cands,
                  seeded(2)),
         ep("10.0.0.2:6000"),
         {},
         {ep("10.0.0.2:6000")}};
  net.sides = {&a, &b};
  exchange(a, a_cands, b, b_cands, net.now());
  net.run(milliseconds(2000), [&] { return connected(a) && connected(b); });
  REQUIRE(connected(a));
  REQUIRE(connected(b));
  CHECK(a.agent.selected()->remote == ep("10.0.0.2:6000"));
  CHECK(b.agent.selected()->remote == ep("10.0.0.1:5000"));
  // Check, answer, nomination, answer: as fast as unsigned.
  CHECK(a.agent.selected()->elapsed <= milliseconds(20));
  CHECK(b.agent.selected()->elapsed <= milliseconds(20));
  // Consent checks are signed and answered too: still connected a minute later.
  net.run(milliseconds(60000));
  CHECK(connected(a));
  CHECK(connected(b));
  std::size_t messages = 0;
  for (const Side* s : {&a, &b})
    for (const auto& [at, out] : s->sent) {
      CHECK(has_signature(out.bytes));
      ++messages;
    }
  CHECK(messages > 20);  // consent checks every 5 s both ways, and their answers
  // The cost of one signed check (sign + the peer's verify), for the log only.
  const auto check_bytes = a.sent.front().second.bytes;
  const auto t0 = std::chrono::steady_clock::now();
  constexpr int kRounds = 200;
  int valid = 0;
  for (int i = 0; i < kRounds; ++i) {
    auto sig = ka.sign(check_bytes);
    if (sig && ed::verify(ka.public_key(), check_bytes, *sig)) ++valid;
  }
  const auto us = std::chrono::duration_cast<std::chrono::microseconds>(
                      std::chrono::steady_clock::now() - t0)
                      .count();
  CHECK(valid == kRounds);
  WARN("signed ICE check: sign + verify " << us / kRounds << " us per check (" << kRounds
                                          << " rounds)");
}

TEST_CASE("ice agent: signed: an attacker who knows the ufrag and password is never selected") {
  // The rendezvous lied about B's server-reflexive address: it is the attacker's. The
  // attacker read both descriptions, so it answers and sends checks with B's ufrag and
  // password and correct MESSAGE-INTEGRITY, but signs with its own key. B is offline.
  const auto ka = test_key(0x11);
  const auto kb = test_key(0x22);
  const auto km = test_key(0x33);
  Network net;
  const auto a_cands = std::vector{candidate(ice::CandidateType::host, "10.0.0.1:5000")};
  const auto b_claimed = std::vector{candidate(ice::CandidateType::host, "10.0.0.2:6000"),
                                     candidate(ice::CandidateType::server_reflexive,
                                               "198.51.100.66:7000")};
  std::vector<std::string> log;
  auto ca = signed_config(true, 1, kUfragA, kPassA, ka, kb.public_key());
  ca.log = [&log](porthole::LogLevel, std::string_view line) { log.emplace_back(line); };
  Side a{IceAgent(ca, a_cands, seeded(1)), ep("10.0.0.1:5000"), {}, {ep("10.0.0.1:5000")}};
  Side m{IceAgent(signed_config(false, 2, kUfragB, kPassB, km, ka.public_key()),
                  {candidate(ice::CandidateType::host, "198.51.100.66:7000")}, seeded(3)),
         ep("198.51.100.66:7000"),
         {},
         {ep("198.51.100.66:7000")}};
  net.sides = {&a, &m};
  for (const auto& c : b_claimed) a.agent.add_remote_candidate(c, net.now());
  REQUIRE(a.agent.set_remote(kUfragB, kPassB, net.now()).ok());
  for (const auto& c : a_cands) m.agent.add_remote_candidate(c, net.now());
  REQUIRE(m.agent.set_remote(kUfragA, kPassA, net.now()).ok());
  net.run(milliseconds(10000), [&] { return connected(a); });
  CHECK_FALSE(connected(a));
  CHECK(a.agent.state() == State::failed);
  for (const auto& r : a.agent.report()) {
    CHECK(r.answers == 0);
    CHECK(r.outcome == PairOutcome::failed);
    CHECK_FALSE(r.remote_learned);  // the attacker's checks taught nothing
  }
  // The attacker's checks got no answer; its answers to A's checks were ignored.
  std::size_t checks_to_m = 0;
  for (const auto& [at, out] : a.sent) {
    auto msg = stun::decode(out.bytes);
    REQUIRE(msg.ok());
    CHECK(msg->message_class == stun::MessageClass::request);
    if (out.to == ep("198.51.100.66:7000")) ++checks_to_m;
  }
  CHECK(checks_to_m >= 1);
  std::size_t m_requests = 0;
  for (const auto& [at, out] : m.sent)
    if (stun::decode(out.bytes)->message_class == stun::MessageClass::request) ++m_requests;
  CHECK(m_requests >= 1);
  CHECK(std::count(log.begin(), log.end(),
                   "ice: dropped an answer from 198.51.100.66:7000: no valid peer SIGNATURE") >= 1);
  CHECK(std::count(log.begin(), log.end(),
                   "ice: dropped a check from 198.51.100.66:7000: no valid peer SIGNATURE") >= 1);
  CHECK_FALSE(connected(m));
}

TEST_CASE("ice agent: signed: a valid peer signature for another transaction is refused") {
  TestClock clock;
  const auto ka = test_key(0x11);
  const auto kb = test_key(0x22);
  IceAgent a(signed_config(true, 1, kUfragA, kPassA, ka, kb.public_key()),
             {candidate(ice::CandidateType::host, "10.0.0.1:5000")}, seeded(1));
  a.add_remote_candidate(candidate(ice::CandidateType::host, "10.0.0.2:6000"), clock.now());
  REQUIRE(a.set_remote(kUfragB, kPassB, clock.now()).ok());
  auto out = a.take_outgoing();
  REQUIRE(out.size() == 1);
  CHECK(has_signature(out[0].bytes));
  const auto req = *stun::decode(out[0].bytes);
  stun::TransactionId earlier = req.transaction_id;
  earlier[0] ^= 0xff;
  const Endpoint b_addr = ep("10.0.0.2:6000");
  // B's signature made for another check, pasted into an answer to this one.
  a.on_datagram(signed_answer(req.transaction_id, ep("10.0.0.1:5000"), kb, kPassB, earlier), b_addr,
                clock.now());
  CHECK(a.report()[0].answers == 0);
  // B's genuine answer to that other check: no such transaction.
  a.on_datagram(signed_answer(earlier, ep("10.0.0.1:5000"), kb, kPassB), b_addr, clock.now());
  CHECK(a.report()[0].answers == 0);
  // Signed by the wrong key, and unsigned: refused too.
  a.on_datagram(signed_answer(req.transaction_id, ep("10.0.0.1:5000"), ka, kPassB), b_addr,
                clock.now());
  CHECK(a.report()[0].answers == 0);
  CHECK(a.report()[0].outcome == PairOutcome::checking);
  CHECK(a.take_outgoing().empty());
  // B's own answer to this check makes the pair valid: the nomination follows.
  a.on_datagram(signed_answer(req.transaction_id, ep("10.0.0.1:5000"), kb, kPassB), b_addr,
                clock.now());
  CHECK(a.report()[0].answers == 1);
  out = a.take_outgoing();
  REQUIRE(out.size() == 1);
  CHECK(stun::decode(out[0].bytes)->use_candidate);
  CHECK(has_signature(out[0].bytes));
}

TEST_CASE(
    "ice agent: signed: unsigned or replayed USE-CANDIDATE does not connect the controlled side") {
  TestClock clock;
  const auto ka = test_key(0x11);
  const auto kb = test_key(0x22);
  IceAgent b(signed_config(false, 2, kUfragB, kPassB, kb, ka.public_key()),
             {candidate(ice::CandidateType::host, "10.0.0.2:6000")}, seeded(2));
  b.add_remote_candidate(candidate(ice::CandidateType::host, "10.0.0.1:5000"), clock.now());
  REQUIRE(b.set_remote(kUfragA, kPassA, clock.now()).ok());
  auto first = b.take_outgoing();  // its own check to A
  REQUIRE(first.size() == 1);
  // Correct MESSAGE-INTEGRITY, no signature: dropped unanswered.
  const Endpoint a_addr = ep("10.0.0.1:5000");
  b.on_datagram(check("bbbb:aaaa", kPassB, true, 1, true, 7), a_addr, clock.now());
  CHECK(b.take_outgoing().empty());
  CHECK(b.state() == State::checking);
  // Signed by another key: dropped too.
  const auto km = test_key(0x33);
  b.on_datagram(check("bbbb:aaaa", kPassB, true, 1, true, 8, &km), a_addr, clock.now());
  CHECK(b.take_outgoing().empty());
  CHECK(b.state() == State::checking);
  // A's genuine USE-CANDIDATE check, replayed from the attacker's address: answered
  // (it is A's), but B takes the pair only once its own check there is answered, by A.
  const Endpoint m_addr = ep("198.51.100.66:7000");
  const auto a_nomination = check("bbbb:aaaa", kPassB, true, 1, true, 9, &ka);
  b.on_datagram(a_nomination, m_addr, clock.now());
  CHECK(b.state() == State::checking);
  clock.advance(milliseconds(5000));
  b.on_timer(clock.now());
  CHECK(b.state() != State::connected);
  // The same check from A's address, after B's check to A was answered by A: connected.
  IceAgent c(signed_config(false, 2, kUfragB, kPassB, kb, ka.public_key()),
             {candidate(ice::CandidateType::host, "10.0.0.2:6000")}, seeded(2));
  c.add_remote_candidate(candidate(ice::CandidateType::host, "10.0.0.1:5000"), clock.now());
  REQUIRE(c.set_remote(kUfragA, kPassA, clock.now()).ok());
  auto own = c.take_outgoing();
  REQUIRE(own.size() == 1);
  c.on_datagram(a_nomination, a_addr, clock.now());
  CHECK(c.state() == State::checking);  // answered, waiting for its own proof
  const auto own_id = stun::decode(own[0].bytes)->transaction_id;
  c.on_datagram(signed_answer(own_id, ep("10.0.0.2:6000"), ka, kPassA), a_addr, clock.now());
  CHECK(c.state() == State::connected);
  CHECK(c.selected()->remote == a_addr);
}

TEST_CASE("ice agent: signed and unsigned peers do not connect") {
  const auto ka = test_key(0x11);
  const auto kb = test_key(0x22);
  for (bool a_signs : {true, false}) {
    Network net;
    const auto a_cands = std::vector{candidate(ice::CandidateType::host, "10.0.0.1:5000")};
    const auto b_cands = std::vector{candidate(ice::CandidateType::host, "10.0.0.2:6000")};
    auto ca = a_signs ? signed_config(true, 1, kUfragA, kPassA, ka, kb.public_key())
                      : config(true, 1, kUfragA, kPassA);
    auto cb = a_signs ? config(false, 2, kUfragB, kPassB)
                      : signed_config(false, 2, kUfragB, kPassB, kb, ka.public_key());
    Side a{IceAgent(ca, a_cands, seeded(1)), ep("10.0.0.1:5000"), {}, {ep("10.0.0.1:5000")}};
    Side b{IceAgent(cb, b_cands, seeded(2)), ep("10.0.0.2:6000"), {}, {ep("10.0.0.2:6000")}};
    net.sides = {&a, &b};
    exchange(a, a_cands, b, b_cands, net.now());
    net.run(milliseconds(10000), [&] { return connected(a) || connected(b); });
    CHECK_FALSE(connected(a));
    CHECK_FALSE(connected(b));
    Side& signer = a_signs ? a : b;
    CHECK(signer.agent.state() == State::failed);
    for (const auto& r : signer.agent.report()) CHECK(r.answers == 0);
  }
}

// A TURN relay by hand: A's relayed candidate R stands for A's allocation; what B sends
// to R reaches A's agent as relayed, from B's address as the relay saw it (Bv), and what
// A's agent sends relayed to Bv reaches B from R. Nothing else connects them (both NATs
// symmetric): the relayed pair must connect both ways, A's side marked via the relay.
TEST_CASE("ice agent: a relayed candidate connects where nothing direct does") {
  TestClock clock;
  const Endpoint relayed = ep("198.51.100.14:50000");
  const Endpoint b_seen_by_relay = ep("203.0.113.130:61000");
  IceAgent a(config(false, 1, kUfragA, kPassA),
             {candidate(ice::CandidateType::server_reflexive, "203.0.113.2:40000"),
              candidate(ice::CandidateType::relayed, "198.51.100.14:50000")},
             seeded(1));
  auto bc = config(true, 2, kUfragB, kPassB);
  bc.relay_grace = milliseconds(300);
  IceAgent b(bc, {candidate(ice::CandidateType::server_reflexive, "203.0.113.130:40000")},
             seeded(2));
  const auto a_candidates = std::vector<rv::Candidate>{
      candidate(ice::CandidateType::server_reflexive, "203.0.113.2:40000"),
      candidate(ice::CandidateType::relayed, "198.51.100.14:50000")};
  REQUIRE(a.set_remote(kUfragB, kPassB,
                       std::vector<rv::Candidate>{
                           candidate(ice::CandidateType::server_reflexive, "203.0.113.130:40000")},
                       clock.now())
              .ok());
  REQUIRE(b.set_remote(kUfragA, kPassA, a_candidates, clock.now()).ok());
  int relayed_out = 0;
  std::optional<Clock::time_point> b_first_success;
  for (int step = 0;
       step < 400 && !(a.state() == State::connected && b.state() == State::connected); ++step) {
    clock.advance(milliseconds(5));
    a.on_timer(clock.now());
    b.on_timer(clock.now());
    for (auto& out : a.take_outgoing()) {
      if (!out.relayed) continue;  // direct: B's NAT drops it
      ++relayed_out;
      CHECK(out.to == b_seen_by_relay);
      b.on_datagram(out.bytes, relayed, clock.now());
    }
    for (auto& out : b.take_outgoing()) {
      CHECK_FALSE(out.relayed);
      if (out.to == relayed) a.on_datagram(out.bytes, b_seen_by_relay, clock.now(), true);
    }
    if (!b_first_success)
      for (const auto& p : b.report())
        if (p.outcome == PairOutcome::succeeded) b_first_success = clock.now();
  }
  REQUIRE(a.state() == State::connected);
  REQUIRE(b.state() == State::connected);
  CHECK(relayed_out > 0);
  auto sa = a.selected();
  auto sb = b.selected();
  CHECK(sa->via_relay);
  CHECK(sa->remote == b_seen_by_relay);
  CHECK(sa->kind == PathKind::relayed);
  CHECK(sb->remote == relayed);
  CHECK(sb->kind == PathKind::relayed);
  CHECK_FALSE(sb->via_relay);
  // The controlling side waited the relay grace before nominating the relayed pair.
  REQUIRE(b_first_success);
  CHECK(clock.now() - *b_first_success >= milliseconds(300));
}

// The relay grace ends when a direct pair succeeds: the direct pair is nominated.
TEST_CASE("ice agent: a direct pair that succeeds during the relay grace wins") {
  TestClock clock;
  IceAgent a(config(false, 1, kUfragA, kPassA),
             {candidate(ice::CandidateType::host, "192.168.1.100:40000"),
              candidate(ice::CandidateType::relayed, "198.51.100.14:50000")},
             seeded(3));
  auto bc = config(true, 2, kUfragB, kPassB);
  bc.relay_grace = milliseconds(5000);
  IceAgent b(bc, {candidate(ice::CandidateType::host, "192.168.1.101:40000")}, seeded(4));
  REQUIRE(a.set_remote(kUfragB, kPassB,
                       std::vector<rv::Candidate>{
                           candidate(ice::CandidateType::host, "192.168.1.101:40000")},
                       clock.now())
              .ok());
  REQUIRE(b.set_remote(kUfragA, kPassA,
                       std::vector<rv::Candidate>{
                           candidate(ice::CandidateType::relayed, "198.51.100.14:50000"),
                           candidate(ice::CandidateType::host, "192.168.1.100:40000")},
                       clock.now())
              .ok());
  // The direct path works only after 200 ms (its first checks are lost); the relay at once.
  const auto direct_from = clock.now() + milliseconds(200);
  for (int step = 0; step < 400 && b.state() != State::connected; ++step) {
    clock.advance(milliseconds(5));
    a.on_timer(clock.now());
    b.on_timer(clock.now());
    const bool direct_up = clock.now() >= direct_from;
    for (auto& out : a.take_outgoing()) {
      if (out.relayed)
        b.on_datagram(out.bytes, ep("198.51.100.14:50000"), clock.now());
      else if (direct_up)
        b.on_datagram(out.bytes, ep("192.168.1.100:40000"), clock.now());
    }
    for (auto& out : b.take_outgoing()) {
      if (out.to == ep("198.51.100.14:50000"))
        a.on_datagram(out.bytes, ep("192.168.1.101:40000"), clock.now(), true);
      else if (direct_up)
        a.on_datagram(out.bytes, ep("192.168.1.101:40000"), clock.now());
    }
  }
  REQUIRE(b.state() == State::connected);
  CHECK(b.selected()->kind == PathKind::host);
  CHECK(b.selected()->remote == ep("192.168.1.100:40000"));
  CHECK(clock.now() < direct_from + milliseconds(5000));
}

TEST_CASE("ice agent: keep_checking holds the checks open until the deadline") {
  TestClock clock;
  auto c = config(true, 1, kUfragA, kPassA);
  c.keep_checking = true;
  c.deadline = clock.now() + milliseconds(8000);
  IceAgent a(c, {candidate(ice::CandidateType::host, "10.0.0.1:5000")}, seeded(1));
  a.add_remote_candidate(candidate(ice::CandidateType::host, "10.0.0.2:6000"), clock.now());
  REQUIRE(a.set_remote(kUfragB, kPassB, clock.now()).ok());
  a.take_outgoing();
  while (auto w = a.next_wakeup()) {
    if (*w >= c.deadline) break;
    clock.set(*w);
    a.on_timer(clock.now());
    a.take_outgoing();
  }
  CHECK(a.state() == State::checking);  // every pair failed, but not the deadline
  CHECK(a.next_wakeup() == std::optional<Clock::time_point>(c.deadline));
  REQUIRE(a.report().size() == 1);
  CHECK(a.report()[0].outcome == PairOutcome::failed);
  clock.set(c.deadline);
  a.on_timer(clock.now());
  CHECK(a.state() == State::failed);
  CHECK(a.failure() == "no candidate pair succeeded before the deadline");
}

TEST_CASE("ice agent: signed: a probe to a predicted port lets the hard side in") {
  // B sits behind a destination-dependent NAT: toward A its packets come from
  // 203.0.113.2:40007, a port no description names (it told 40001). A's NAT and B's
  // filter: only from where each has sent. Without a probe nothing connects; A's one
  // probe to 40007 gets B's answer and triggered check through.
  const auto ka = test_key(0x11);
  const auto kb = test_key(0x22);
  for (const bool probe : {false, true}) {
    Network net;
    const auto a_cands = std::vector{candidate(ice::CandidateType::host, "10.0.0.1:5000")};
    const auto b_cands = std::vector{candidate(ice::CandidateType::host, "10.0.0.2:6000"),
                                     candidate(ice::CandidateType::server_reflexive,
                                               "203.0.113.2:40001")};
    auto ca = signed_config(true, 1, kUfragA, kPassA, ka, kb.public_key());
    auto cb = signed_config(false, 2, kUfragB, kPassB, kb, ka.public_key());
    ca.keep_checking = cb.keep_checking = true;
    ca.deadline = cb.deadline = net.now() + milliseconds(6000);
    Side a{IceAgent(ca, a_cands, seeded(1)), ep("10.0.0.1:5000"), {}, {ep("10.0.0.1:5000")}};
    Side b{IceAgent(cb, b_cands, seeded(2)),
           ep("10.0.0.2:6000"),
           {{ep("10.0.0.1:5000"), ep("203.0.113.2:40007")}},
           {ep("203.0.113.2:40007")}};
    a.filtering = b.filtering = true;
    net.sides = {&a, &b};
    exchange(a, a_cands, b, b_cands, net.now());
    net.run(milliseconds(4500));  // every ordinary pair has failed by now
    CHECK_FALSE(connected(a));
    CHECK(a.agent.state() == State::checking);
    if (probe) {
      const auto to = ep("203.0.113.2:40007");
      auto bytes = a.agent.probe_check(to);
      REQUIRE(bytes);
      CHECK(has_signature(*bytes));
      CHECK(a.agent.probes() == 1);
      a.sent_to.insert(to);
      net.flight.push_back({net.now() + net.delay, 1, a.socket, *bytes});
    }
    net.run(milliseconds(1000), [&] { return connected(a) && connected(b); });
    CHECK(connected(a) == probe);
    CHECK(connected(b) == probe);
    if (probe) {
      CHECK(a.agent.selected()->remote == ep("203.0.113.2:40007"));
      CHECK(a.agent.selected()->remote_type == ice::CandidateType::peer_reflexive);
      CHECK(b.agent.selected()->remote == ep("10.0.0.1:5000"));
    }
  }
}

TEST_CASE("ice agent: on_datagram tells the peer's messages from everything else") {
  TestClock clock;
  IceAgent b(config(false, 2, kUfragB, kPassB),
             {candidate(ice::CandidateType::host, "10.0.0.2:6000")}, seeded(2));
  REQUIRE(b.set_remote(kUfragA, kPassA, clock.now()).ok());
  const auto from = ep("10.0.0.1:5000");
  CHECK(b.on_datagram(check("bbbb:aaaa", kPassB, true, 1), from, clock.now()));
  CHECK_FALSE(b.on_datagram(check("bbbb:aaaa", "wrongpasswordBBBBBBBBBBB", true, 1, false, 8), from,
                            clock.now()));
  CHECK_FALSE(b.on_datagram(Bytes{1, 2, 3}, from, clock.now()));
  // An answer to no check of ours.
  IceAgent a(config(true, 1, kUfragA, kPassA),
             {candidate(ice::CandidateType::host, "10.0.0.1:5000")}, seeded(1));
  CHECK_FALSE(a.probe_check(ep("10.0.0.2:6000")));  // no remote description yet
  REQUIRE(a.set_remote(kUfragB, kPassB, clock.now()).ok());
  auto probe = a.probe_check(ep("10.0.0.2:6000"));
  REQUIRE(probe);
  CHECK(a.take_outgoing().empty());  // the caller sends a probe itself
  CHECK(b.on_datagram(*probe, from, clock.now()));
  bool answered = false;
  for (auto& o : b.take_outgoing()) {
    auto m = stun::decode(o.bytes);
    if (m && m->message_class == stun::MessageClass::success_response) {
      answered = true;
      CHECK(o.to == from);
      CHECK_FALSE(a.on_datagram(o.bytes, ep("10.0.0.2:6000"), clock.now()));  // not waited for
    }
  }
  CHECK(answered);
}
