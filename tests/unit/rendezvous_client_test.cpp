// The rendezvous client (proto/rendezvous_client.hpp) against the real responder
// (proto/rendezvous_server.hpp) in-process: the bytes each side makes are handed to
// the other, time comes from the test. Register, refresh, Connect, Answer, 404, lost
// datagrams retransmitted, an unreachable or refusing server. Then the same over real
// UDP sockets on loopback, with the responder on a StunServer's socket as in serve.
#include <catch2/catch.hpp>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <thread>
#include <map>
#include <optional>
#include <vector>

#include "net/bound_udp_socket.hpp"
#include "net/udp_socket.hpp"
#include "proto/rendezvous_client.hpp"
#include "proto/rendezvous_server.hpp"
#include "proto/stun_server.hpp"
#include "rendezvous_fixture.hpp"
#include "stop_fd.hpp"

namespace {

using namespace rvtest;
using porthole::Errc;
using porthole::detail::Clock;
using porthole::detail::RendezvousClient;
using porthole::detail::RendezvousConfig;
using porthole::detail::RendezvousEvent;
using porthole::detail::RendezvousResponder;
using std::chrono::milliseconds;
using std::chrono::seconds;
using Type = RendezvousEvent::Type;

const Endpoint kServer = *Endpoint::parse("198.51.100.12:3478");
const Endpoint kA = *Endpoint::parse("198.51.100.7:40000");
const Endpoint kB = *Endpoint::parse("203.0.113.9:50000");

porthole::detail::RandomFn counter_random() {
  auto n = std::make_shared<std::uint8_t>(0);
  return [n](std::span<std::uint8_t> out) {
    ++*n;
    for (auto& b : out) b = *n;
  };
}

// The server and its clients, each at its own address; `drop` decides which datagrams
// (by their running number, client to server and back) are lost.
struct Net {
  RendezvousResponder server;
  std::map<Endpoint, RendezvousClient*> clients;
  Clock::time_point now = t0();
  int sent = 0;
  std::function<bool(int)> drop = [](int) { return false; };
  std::vector<Bytes> to_server_log;

  explicit Net(RendezvousConfig c = {}) : server((c.secret = Bytes(32, 1), c)) {}

  void deliver_all() {
    for (bool busy = true; busy;) {
      busy = false;
      for (auto& [at, client] : clients) {
        for (auto& bytes : client->take_outgoing()) {
          busy = true;
          to_server_log.push_back(bytes);
          if (drop(sent++)) continue;
          for (auto& out : server.handle(bytes, at, now)) {
            if (drop(sent++)) continue;
            auto it = clients.find(out.to);
            if (it != clients.end()) it->second->on_datagram(out.bytes, kServer, now);
          }
        }
      }
    }
  }
  // Runs timers up to `until`, delivering as it goes.
  void run_until(Clock::time_point until) {
    deliver_all();
    for (;;) {
      std::optional<Clock::time_point> next;
      for (auto& [at, client] : clients) {
        auto w = client->next_wakeup();
        if (w && (!next || *w < *next)) next = w;
      }
      if (!next || *next > until) break;
      now = std::max(now, *next);
      for (auto& [at, client] : clients) client->on_timer(now);
      deliver_all();
    }
    now = until;
  }
};

std::vector<RendezvousEvent> events(RendezvousClient& c) {
  std::vector<RendezvousEvent> out;
  while (auto e = c.next_event()) out.push_back(std::move(*e));
  return out;
}

RendezvousClient make_client(const Identity& who,
                             Clock::time_point deadline = Clock::time_point::max()) {
  return RendezvousClient(who, kServer, deadline, counter_random());
}

// Alice's client at kA, started (nothing delivered yet). `drop` as in Net.
struct OneClient {
  Net net;
  Identity a = alice();
  RendezvousClient ca;
  explicit OneClient(
      std::function<bool(int)> drop = [](int) { return false; },
      Clock::time_point deadline = Clock::time_point::max())
      : ca(make_client(a, deadline)) {
    net.drop = std::move(drop);
    net.clients[kA] = &ca;
    ca.start(net.now);
  }
};

// Alice at kA and Bob at kB, both registered, their events taken.
struct TwoOnline {
  Net net;
  Identity a = alice();
  Identity b = bob();
  RendezvousClient ca = make_client(a);
  RendezvousClient cb = make_client(b);
  TwoOnline() {
    net.clients[kA] = &ca;
    net.clients[kB] = &cb;
    ca.start(net.now);
    cb.start(net.now);
    net.deliver_all();
    events(ca);
    events(cb);
  }
};

}  // namespace

TEST_CASE("rendezvous client: registers through the challenge and learns its address",
          "[rendezvous_client]") {
  OneClient one;
  auto& [net, a, client] = one;
  net.deliver_all();
  auto ev = events(client);
  REQUIRE(ev.size() == 1);
  CHECK(ev[0].type == Type::registered);
  CHECK(ev[0].observed == kA);
  CHECK(client.registered());
  CHECK(client.observed() == kA);
  CHECK(net.server.address_of(a.id(), net.now) == kA);
  CHECK(net.to_server_log.size() == 2);  // hello, signed Register
}

TEST_CASE("rendezvous client: refreshes before the lifetime runs out, across challenge windows",
          "[rendezvous_client]") {
  OneClient one;
  auto& [net, a, client] = one;
  net.run_until(t0() + seconds{200});
  // Still online long after the first 60 s, through several stale challenges.
  CHECK(net.server.address_of(a.id(), net.now) == kA);
  auto ev = events(client);
  REQUIRE(ev.size() == 1);  // `registered` once: the address did not change
  CHECK(ev[0].type == Type::registered);
  CHECK(net.server.counters().registered >= 6);
  CHECK(net.server.counters().challenges >= 3);
}

TEST_CASE("rendezvous client: Connect, offer relayed, Answer back", "[rendezvous_client]") {
  TwoOnline two;
  auto& [net, a, b, ca, cb] = two;

  const auto offer = description(a, b.id(), rv::Kind::offer);
  ca.connect(b.id(), offer, net.now);
  net.deliver_all();
  auto ea = events(ca);
  REQUIRE(ea.size() == 1);
  CHECK(ea[0].type == Type::connect_accepted);
  CHECK(ea[0].peer == b.id());
  auto eb = events(cb);
  REQUIRE(eb.size() == 1);
  CHECK(eb[0].type == Type::offer_received);
  CHECK(eb[0].description == offer);
  CHECK(eb[0].offerer == kA);

  const auto answer = description(b, a.id(), rv::Kind::answer);
  cb.answer(a.id(), answer, net.now);
  net.deliver_all();
  CHECK(events(cb).empty());
  ea = events(ca);
  REQUIRE(ea.size() == 1);
  CHECK(ea[0].type == Type::answer_received);
  CHECK(ea[0].description == answer);
  CHECK(ea[0].peer == b.id());
  // The answer arrived: no more resending of the offer.
  const auto before = net.to_server_log.size();
  net.run_until(net.now + seconds{10});
  CHECK(net.to_server_log.size() == before);
}

TEST_CASE("rendezvous client: Connect to a peer that is not online", "[rendezvous_client]") {
  OneClient one;
  auto& [net, a, ca] = one;
  net.deliver_all();
  events(ca);
  ca.connect(bob().id(), description(a, bob().id(), rv::Kind::offer), net.now);
  net.deliver_all();
  auto ev = events(ca);
  REQUIRE(ev.size() == 1);
  CHECK(ev[0].type == Type::not_online);
  CHECK(ev[0].peer == bob().id());
  CHECK_FALSE(ca.next_wakeup() < net.now + seconds{25});  // only the refresh is left
}

TEST_CASE("rendezvous client: lost datagrams are retransmitted", "[rendezvous_client]") {
  // Lose the first hello, the first 401 and the first success response.
  OneClient one([](int n) { return n == 0 || n == 2 || n == 6; });
  auto& [net, a, ca] = one;
  net.run_until(t0() + seconds{5});
  auto ev = events(ca);
  REQUIRE(ev.size() == 1);
  CHECK(ev[0].type == Type::registered);
  CHECK(net.server.address_of(a.id(), net.now) == kA);
  // Retransmissions are the same bytes (the same transaction).
  REQUIRE(net.to_server_log.size() >= 4);
  CHECK(net.to_server_log[0] == net.to_server_log[1]);
}

TEST_CASE("rendezvous client: a lost relayed offer is covered by sending the Connect again",
          "[rendezvous_client]") {
  TwoOnline two;
  auto& [net, a, b, ca, cb] = two;
  const int first_relay = net.sent + 2;  // Connect in, success out, indication out
  net.drop = [first_relay](int n) { return n == first_relay; };
  ca.connect(b.id(), description(a, b.id(), rv::Kind::offer), net.now);
  net.deliver_all();
  CHECK(events(cb).empty());
  net.run_until(net.now + milliseconds{2100});
  auto eb = events(cb);
  REQUIRE(eb.size() == 1);
  CHECK(eb[0].type == Type::offer_received);
  // connect_accepted once, not again for the resend.
  auto ea = events(ca);
  REQUIRE(ea.size() == 1);
  CHECK(ea[0].type == Type::connect_accepted);
}

TEST_CASE("rendezvous client: no answer from the server: no_service naming it",
          "[rendezvous_client]") {
  OneClient one([](int) { return true; }, t0() + seconds{10});
  auto& [net, a, ca] = one;
  net.run_until(t0() + seconds{11});
  auto ev = events(ca);
  REQUIRE(ev.size() == 1);
  CHECK(ev[0].type == Type::failed);
  CHECK(ev[0].error.code == Errc::no_service);
  CHECK(ev[0].error.message.find("198.51.100.12:3478") != std::string::npos);
  CHECK_FALSE(ca.next_wakeup());
}

TEST_CASE("rendezvous client: a refused registration is Errc::refused", "[rendezvous_client]") {
  auto a = alice();
  auto ca = make_client(a);
  ca.start(t0());
  auto out = ca.take_outgoing();
  REQUIRE(out.size() == 1);
  auto hello = decoded(out[0]);
  rv::Message e;
  e.method = rv::method::register_peer;
  e.message_class = stun::MessageClass::error_response;
  e.transaction_id = hello.transaction_id;
  e.error_code = stun::ErrorCode{403, "Forbidden"};
  // From elsewhere: ignored.
  CHECK_FALSE(ca.on_datagram(encoded(e), kB, t0()));
  // Another transaction ID: ignored.
  auto other = e;
  other.transaction_id = txid(0xee);
  CHECK_FALSE(ca.on_datagram(encoded(other), kServer, t0()));
  CHECK(events(ca).empty());
  CHECK(ca.on_datagram(encoded(e), kServer, t0()));
  auto ev = events(ca);
  REQUIRE(ev.size() == 1);
  CHECK(ev[0].type == Type::failed);
  CHECK(ev[0].error.code == Errc::refused);
  CHECK(ev[0].error.message.find("403") != std::string::npos);
}

TEST_CASE("rendezvous client: stop() goes offline at the server", "[rendezvous_client]") {
  OneClient one;
  auto& [net, a, ca] = one;
  net.deliver_all();
  REQUIRE(net.server.address_of(a.id(), net.now));
  ca.stop(net.now);
  net.deliver_all();
  CHECK_FALSE(net.server.address_of(a.id(), net.now));
  CHECK_FALSE(ca.registered());
  net.run_until(net.now + seconds{100});
  CHECK_FALSE(net.server.address_of(a.id(), net.now));
}

namespace {

using porthole::detail::UdpSocket;

// A client on a real UDP socket on loopback, driven by the real clock.
struct LoopbackPeer {
  UdpSocket socket;
  RendezvousClient client;
  std::vector<RendezvousEvent> got;

  LoopbackPeer(const Identity& who, const Endpoint& server)
      : socket(open_socket()), client(who, server, Clock::now() + seconds{10}, counter_random()) {}
  static UdpSocket open_socket() {
    auto s = porthole::detail::open_bound_udp_socket("127.0.0.1", 0);
    REQUIRE(s.ok());
    return std::move(*s);
  }
  Endpoint local() const {
    return Endpoint{*porthole::IpAddress::parse("127.0.0.1"), socket.local_port()};
  }
  void step() {
    client.on_timer(Clock::now());
    for (auto& bytes : client.take_outgoing()) CHECK(socket.send_to(bytes, client.server()).ok());
    if (auto d = socket.receive(Clock::now() + milliseconds{20}))
      client.on_datagram(d->bytes, d->from, Clock::now());
    while (auto e = client.next_event()) got.push_back(std::move(*e));
  }
  bool has(Type t) const {
    return std::any_of(got.begin(), got.end(),
                       [t](const RendezvousEvent& e) { return e.type == t; });
  }
};

// Steps both peers until `done` or a bound of real time (a bound, not a measurement).
template <typename Done>
bool step_until(LoopbackPeer& a, LoopbackPeer& b, Done done) {
  const auto give_up = Clock::now() + seconds{5};
  while (!done() && Clock::now() < give_up) {
    a.step();
    b.step();
  }
  return done();
}

}  // namespace

TEST_CASE("rendezvous over loopback: porthole serve's STUN socket carries the rendezvous",
          "[rendezvous_client]") {
  porthole::detail::StunServerConfig sc;
  sc.listen = Endpoint{*porthole::IpAddress::parse("127.0.0.1"), 0};
  auto server = porthole::detail::StunServer::open(sc);
  REQUIRE(server.ok());
  RendezvousConfig rc;
  RendezvousResponder responder(rc);
  porthole::detail::attach_rendezvous(*server, responder, {});
  StopFd stop;
  std::thread thread([&] { CHECK(server->serve(stop.fd).ok()); });
  const Endpoint at{*porthole::IpAddress::parse("127.0.0.1"), server->addresses().front().port};

  const auto a = alice();
  const auto b = bob();
  LoopbackPeer pa(a, at), pb(b, at);
  pa.client.start(Clock::now());
  pb.client.start(Clock::now());
  CHECK(step_until(pa, pb, [&] { return pa.client.registered() && pb.client.registered(); }));
  CHECK(pa.client.observed() == pa.local());

  const auto offer = description(a, b.id(), rv::Kind::offer);
  pa.client.connect(b.id(), offer, Clock::now());
  CHECK(step_until(pa, pb, [&] { return pb.has(Type::offer_received); }));
  const auto answer = description(b, a.id(), rv::Kind::answer);
  pb.client.answer(a.id(), answer, Clock::now());
  CHECK(step_until(pa, pb, [&] { return pa.has(Type::answer_received); }));
  for (const auto& e : pb.got)
    if (e.type == Type::offer_received) {
      CHECK(e.description == offer);
      CHECK(e.offerer == pa.local());
    }
  for (const auto& e : pa.got)
    if (e.type == Type::answer_received) CHECK(e.description == answer);
  // The STUN responder on the same socket still answers Binding.
  CHECK(server->counters().received == 0);
  stop.notify();
  thread.join();
  CHECK(responder.counters().forwarded == 2);
  CHECK(responder.online() == 2);
}
