// The TURN client state machine (proto/turn_client.hpp) against a scripted server in
// the test: the 401 realm/nonce exchange, wrong credentials, 438 Stale Nonce, the
// Refresh, CreatePermission and ChannelBind renewals on a TestClock, Send indications
// before the channel is bound and ChannelData after, the peers' data both ways, forged
// answers, a silent server, and the deallocation.
#include <catch2/catch.hpp>

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "codec/stun_codec.hpp"
#include "codec/turn_codec.hpp"
#include "net/clock.hpp"
#include "proto/turn_client.hpp"

namespace stun = porthole::detail::stun;
namespace turn = porthole::detail::turn;
using porthole::detail::TestClock;
using porthole::detail::TurnClient;
using porthole::detail::TurnClientConfig;
using porthole::detail::TurnEvent;
using Bytes = std::vector<std::uint8_t>;
using namespace std::chrono_literals;

namespace {

porthole::Endpoint endpoint(const std::string& text) {
  auto e = porthole::Endpoint::parse(text);
  REQUIRE(e.ok());
  return *e;
}

stun::IntegrityKey lab_key(const std::string& password = "secret") {
  auto k = stun::IntegrityKey::long_term("alice", "lab", password);
  REQUIRE(k.ok());
  return *k;
}

// Deterministic "random" bytes: a counter.
struct Counter {
  std::uint8_t next = 1;
  void operator()(std::span<std::uint8_t> out) {
    for (auto& b : out) b = next++;
  }
};

TurnClientConfig config() {
  TurnClientConfig c;
  c.server = endpoint("198.51.100.14:3478");
  c.username = "alice";
  c.password = "secret";
  return c;
}

// The scripted server's side: decodes what the client sent, answers it.
struct Script {
  TestClock clock;
  TurnClient client{config(), Counter{}};

  std::vector<stun::Message> sent() {
    std::vector<stun::Message> out;
    for (const auto& b : client.take_outgoing()) {
      auto m = stun::decode(b);
      REQUIRE(m.ok());
      out.push_back(*m);
    }
    return out;
  }
  stun::Message one_sent() {
    auto all = sent();
    REQUIRE(all.size() == 1);
    return all[0];
  }
  void deliver(const Bytes& bytes) { CHECK(client.on_datagram(bytes, clock.now())); }

  static Bytes error(const stun::Message& req, int code, std::optional<std::string> nonce) {
    stun::MessageWriter w(req.method, stun::MessageClass::error_response, req.transaction_id);
    w.add_error_code(code, stun::error_reason(code));
    w.add_text(stun::attr::realm, "lab");
    if (nonce) w.add_text(stun::attr::nonce, *nonce);
    auto b = w.finish(false);
    REQUIRE(b.ok());
    return *b;
  }
  template <class Add>
  static Bytes success(const stun::Message& req, Add add, const stun::IntegrityKey& key) {
    stun::MessageWriter w(req.method, stun::MessageClass::success_response, req.transaction_id);
    add(w);
    w.add_message_integrity(key);
    auto b = w.finish(false);
    REQUIRE(b.ok());
    return *b;
  }
  static Bytes allocated(const stun::Message& req, std::uint32_t lifetime = 600) {
    return success(
        req,
        [&](stun::MessageWriter& w) {
          w.add_xor_address(stun::attr::xor_relayed_address, endpoint("198.51.100.14:50000"));
          w.add_xor_address(stun::attr::xor_mapped_address, endpoint("203.0.113.1:40000"));
          w.add_u32(stun::attr::lifetime, lifetime);
        },
        lab_key());
  }
  static Bytes ok(const stun::Message& req) {
    return success(
        req, [](stun::MessageWriter&) {}, lab_key());
  }

  // Allocate -> 401 -> signed Allocate -> success.
  void allocate() {
    REQUIRE(client.start(clock.now()).ok());
    auto first = one_sent();
    REQUIRE(first.method == stun::method::allocate);
    CHECK_FALSE(first.has_message_integrity);
    deliver(error(first, 401, "nonce-1"));
    auto second = one_sent();
    REQUIRE(second.method == stun::method::allocate);
    CHECK(second.username == "alice");
    CHECK(second.realm == "lab");
    CHECK(second.nonce == "nonce-1");
    deliver(allocated(second));
    REQUIRE(client.state() == TurnClient::State::allocated);
  }
  std::optional<TurnEvent> event_of(TurnEvent::Type type) {
    while (auto e = client.next_event())
      if (e->type == type) return e;
    return std::nullopt;
  }
};

}  // namespace

TEST_CASE("TURN client: Allocate, 401 with realm and nonce, signed Allocate, allocated", "[turn]") {
  Script s;
  s.allocate();
  auto e = s.event_of(TurnEvent::Type::allocated);
  REQUIRE(e);
  CHECK(e->relayed == endpoint("198.51.100.14:50000"));
  CHECK(e->mapped == endpoint("203.0.113.1:40000"));
  CHECK(e->lifetime == 600);
  CHECK(s.client.relayed() == endpoint("198.51.100.14:50000"));
}

TEST_CASE("TURN client: a 401 to the signed Allocate is wrong credentials", "[turn]") {
  Script s;
  REQUIRE(s.client.start(s.clock.now()).ok());
  s.deliver(Script::error(s.one_sent(), 401, "nonce-1"));
  s.deliver(Script::error(s.one_sent(), 401, "nonce-2"));
  CHECK(s.client.state() == TurnClient::State::failed);
  auto e = s.event_of(TurnEvent::Type::failed);
  REQUIRE(e);
  CHECK(e->error.code == porthole::Errc::refused);
  CHECK(e->error.message.find("wrong TURN credentials") != std::string::npos);
  CHECK(e->error.protocol_code == 401);
  CHECK(s.client.take_outgoing().empty());
}

TEST_CASE("TURN client: 438 Stale Nonce retries with the new nonce, a few times only", "[turn]") {
  Script s;
  REQUIRE(s.client.start(s.clock.now()).ok());
  s.deliver(Script::error(s.one_sent(), 401, "nonce-1"));
  auto signed1 = s.one_sent();
  s.deliver(Script::error(signed1, 438, "nonce-2"));
  auto signed2 = s.one_sent();
  CHECK(signed2.nonce == "nonce-2");
  CHECK(signed2.transaction_id != signed1.transaction_id);
  s.deliver(Script::allocated(signed2));
  CHECK(s.client.state() == TurnClient::State::allocated);

  Script stale;  // a server that calls every nonce stale
  REQUIRE(stale.client.start(stale.clock.now()).ok());
  stale.deliver(Script::error(stale.one_sent(), 401, "n0"));
  for (int i = 1; i <= 4; ++i)
    stale.deliver(Script::error(stale.one_sent(), 438, "n" + std::to_string(i)));
  CHECK(stale.client.state() == TurnClient::State::failed);
  CHECK(stale.client.take_outgoing().empty());
}

TEST_CASE("TURN client: a forged success (unsigned, or signed with another key) is ignored",
          "[turn]") {
  Script s;
  REQUIRE(s.client.start(s.clock.now()).ok());
  s.deliver(Script::error(s.one_sent(), 401, "nonce-1"));
  auto req = s.one_sent();
  stun::MessageWriter w(req.method, stun::MessageClass::success_response, req.transaction_id);
  w.add_xor_address(stun::attr::xor_relayed_address, endpoint("192.0.2.66:1"));
  auto unsigned_answer = w.finish(false);
  REQUIRE(unsigned_answer.ok());
  CHECK_FALSE(s.client.on_datagram(*unsigned_answer, s.clock.now()));
  auto wrong = Script::success(
      req,
      [](stun::MessageWriter& mw) {
        mw.add_xor_address(stun::attr::xor_relayed_address, endpoint("192.0.2.66:1"));
      },
      lab_key("other"));
  CHECK_FALSE(s.client.on_datagram(wrong, s.clock.now()));
  CHECK(s.client.state() == TurnClient::State::allocating);
  s.deliver(Script::allocated(req));
  CHECK(s.client.relayed() == endpoint("198.51.100.14:50000"));
}

TEST_CASE("TURN client: a silent server fails the Allocate after the retransmissions", "[turn]") {
  Script s;
  REQUIRE(s.client.start(s.clock.now()).ok());
  std::size_t sent = s.client.take_outgoing().size();
  for (int i = 0; i < 50 && s.client.state() == TurnClient::State::allocating; ++i) {
    auto next = s.client.next_wakeup();
    REQUIRE(next);
    s.clock.set(*next);
    s.client.on_timer(s.clock.now());
    sent += s.client.take_outgoing().size();
  }
  CHECK(sent == 5);  // RFC 8489 s6.2.1 with Rc = 5
  auto e = s.event_of(TurnEvent::Type::failed);
  REQUIRE(e);
  CHECK(e->error.code == porthole::Errc::no_service);
  CHECK(e->error.message.find("did not answer") != std::string::npos);
}

TEST_CASE("TURN client: Refresh before the lifetime lapses, and again after", "[turn]") {
  Script s;
  s.allocate();
  // Granted 600 s: renewed 60 s before the end.
  REQUIRE(s.client.next_wakeup() == s.clock.now() + 540s);
  s.clock.advance(539s);
  s.client.on_timer(s.clock.now());
  CHECK(s.client.take_outgoing().empty());
  s.clock.advance(1s);
  s.client.on_timer(s.clock.now());
  auto refresh = s.one_sent();
  CHECK(refresh.method == stun::method::refresh);
  CHECK(refresh.lifetime == 600u);
  CHECK(refresh.has_message_integrity);
  // A stale nonce on the Refresh: again with the new one.
  s.deliver(Script::error(refresh, 438, "nonce-9"));
  auto again = s.one_sent();
  CHECK(again.nonce == "nonce-9");
  s.deliver(Script::success(
      again, [](stun::MessageWriter& w) { w.add_u32(stun::attr::lifetime, 100); }, lab_key()));
  // A short grant: renewed at half of it.
  CHECK(s.client.next_wakeup() == s.clock.now() + 50s);
}

TEST_CASE("TURN client: permissions and channels, Send indication then ChannelData", "[turn]") {
  Script s;
  s.allocate();
  const auto peer = endpoint("203.0.113.7:4000");
  const Bytes hello = {'h', 'i'};
  s.client.bind_channel(peer, s.clock.now());
  auto requests = s.sent();
  REQUIRE(requests.size() == 2);
  CHECK(requests[0].method == stun::method::create_permission);
  CHECK(requests[0].xor_peer_address->ip == peer.ip);
  CHECK(requests[1].method == stun::method::channel_bind);
  CHECK(requests[1].channel_number == turn::kChannelMin);
  CHECK(requests[1].xor_peer_address == peer);

  // Not bound yet: a Send indication.
  REQUIRE(s.client.send(peer, hello));
  auto ind = s.one_sent();
  CHECK(ind.method == stun::method::send);
  CHECK(ind.message_class == stun::MessageClass::indication);
  CHECK(ind.xor_peer_address == peer);
  CHECK(ind.data == hello);

  s.deliver(Script::ok(requests[0]));
  s.deliver(Script::ok(requests[1]));
  CHECK(s.client.channel_bound(peer));
  REQUIRE(s.client.send(peer, hello));
  auto out = s.client.take_outgoing();
  REQUIRE(out.size() == 1);
  CHECK(out[0] == Bytes{0x40, 0x00, 0x00, 0x02, 'h', 'i', 0, 0});

  // The peer's data, as ChannelData and as a Data indication.
  s.deliver(Bytes{0x40, 0x00, 0x00, 0x03, 'y', 'o', '!', 0});
  auto e = s.event_of(TurnEvent::Type::data);
  REQUIRE(e);
  CHECK(e->peer == peer);
  CHECK(e->data == Bytes{'y', 'o', '!'});
  stun::MessageWriter w(stun::method::data, stun::MessageClass::indication, {});
  w.add_xor_address(stun::attr::xor_peer_address, endpoint("203.0.113.8:5000"));
  w.add(stun::attr::data, hello);
  auto data_ind = w.finish(false);
  REQUIRE(data_ind.ok());
  s.deliver(*data_ind);
  e = s.event_of(TurnEvent::Type::data);
  REQUIRE(e);
  CHECK(e->peer == endpoint("203.0.113.8:5000"));
  // An unbound channel's data is not ours.
  CHECK_FALSE(s.client.on_datagram(Bytes{0x40, 0x05, 0x00, 0x00}, s.clock.now()));

  // Permission renewed at 240 s (it lasts 300), the channel at 540 s (it lasts 600).
  s.clock.advance(240s);
  s.client.on_timer(s.clock.now());
  auto renew = s.one_sent();
  CHECK(renew.method == stun::method::create_permission);
  s.deliver(Script::ok(renew));
  s.clock.advance(300s);
  s.client.on_timer(s.clock.now());
  auto at_540 = s.sent();
  bool channel_renewed = false;
  for (const auto& m : at_540)
    if (m.method == stun::method::channel_bind) {
      channel_renewed = true;
      CHECK(m.channel_number == turn::kChannelMin);
    }
  CHECK(channel_renewed);
}

TEST_CASE("TURN client: deallocate sends Refresh LIFETIME 0 and closes", "[turn]") {
  Script s;
  s.allocate();
  s.client.deallocate(s.clock.now());
  CHECK(s.client.state() == TurnClient::State::deallocating);
  auto req = s.one_sent();
  CHECK(req.method == stun::method::refresh);
  CHECK(req.lifetime == 0u);
  CHECK_FALSE(s.client.send(endpoint("203.0.113.7:4000"), Bytes{1}));
  s.deliver(Script::ok(req));
  CHECK(s.client.state() == TurnClient::State::closed);
  CHECK(s.event_of(TurnEvent::Type::deallocated));
  CHECK_FALSE(s.client.next_wakeup());

  Script never;  // nothing allocated: nothing to delete
  never.client.deallocate(never.clock.now());
  CHECK(never.client.state() == TurnClient::State::closed);
  CHECK(never.client.take_outgoing().empty());
}

TEST_CASE("TURN client: an empty user or an unusable password is refused at start", "[turn]") {
  auto c = config();
  c.password = "bad\x01";
  TurnClient client(c, Counter{});
  TestClock clock;
  auto st = client.start(clock.now());
  REQUIRE_FALSE(st.ok());
  CHECK(st.error().code == porthole::Errc::usage);
  c = config();
  c.username.clear();
  TurnClient nobody(c, Counter{});
  CHECK_FALSE(nobody.start(clock.now()).ok());
  CHECK(nobody.take_outgoing().empty());
}
