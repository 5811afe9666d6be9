// The rendezvous responder (proto/rendezvous_server.hpp) with the time passed in: the
// golden flows of docs/rendezvous.md (challenge, signed registration, Connect relayed,
// Answer routed back), every refusal (bad signature, a signature replayed from another
// address, anonymous senders, offline targets), expiry, and the bounds (full tables,
// rate limits).
#include <catch2/catch.hpp>

#include <chrono>
#include <cstdint>
#include <vector>

#include "proto/rendezvous_server.hpp"
#include "rendezvous_fixture.hpp"

namespace {

using namespace rvtest;
using porthole::detail::kRendezvousForbidden;
using porthole::detail::kRendezvousFull;
using porthole::detail::RendezvousConfig;
using porthole::detail::RendezvousResponder;
using std::chrono::seconds;
using Out = std::vector<RendezvousResponder::Datagram>;

const Endpoint kA = *Endpoint::parse("198.51.100.7:40000");
const Endpoint kB = *Endpoint::parse("203.0.113.9:50000");
const Endpoint kMallory = *Endpoint::parse("192.0.2.66:6666");

RendezvousConfig config() {
  RendezvousConfig c;
  c.secret = Bytes(32, 0x5a);
  return c;
}

// The single answer to the source, decoded.
rv::Message only_answer(const Out& out, const Endpoint& source) {
  REQUIRE(out.size() == 1);
  CHECK(out[0].to == source);
  return decoded(out[0].bytes);
}

int error_code(const rv::Message& m) {
  REQUIRE(m.message_class == stun::MessageClass::error_response);
  REQUIRE(m.error_code);
  return m.error_code->code;
}

// Steps 1-4 for `who` at `at`; the granted lifetime.
std::uint32_t go_online(RendezvousResponder& r, const Identity& who, const Endpoint& at,
                        porthole::detail::Clock::time_point now,
                        std::optional<std::uint32_t> lifetime = {}) {
  auto challenge = only_answer(r.handle(register_hello(who.id()), at, now), at);
  REQUIRE(error_code(challenge) == 401);
  REQUIRE(challenge.challenge);
  REQUIRE(challenge.xor_mapped_address == at);
  auto ok = only_answer(r.handle(register_signed(who, who.id(), *challenge.challenge, at, lifetime),
                                 at, now),
                        at);
  REQUIRE(ok.message_class == stun::MessageClass::success_response);
  REQUIRE(ok.xor_mapped_address == at);
  REQUIRE(ok.lifetime);
  return *ok.lifetime;
}

// A responder with Alice online at kA and (unless `bob_too` is false) Bob at kB.
struct Online {
  RendezvousResponder r;
  Identity a = alice();
  Identity b = bob();
  explicit Online(RendezvousConfig c = config(), bool bob_too = true) : r(c) {
    go_online(r, a, kA, t0());
    if (bob_too) go_online(r, b, kB, t0());
  }
};

}  // namespace

TEST_CASE("rendezvous server: Register with a challenge, then online at that address",
          "[rendezvous_server]") {
  RendezvousResponder r(config());
  const auto a = alice();
  auto first = only_answer(r.handle(register_hello(a.id(), 9), kA, t0()), kA);
  CHECK(first.method == rv::method::register_peer);
  CHECK(first.transaction_id == txid(9));
  CHECK(error_code(first) == 401);
  CHECK(*first.challenge == r.challenge_for(kA, t0()));
  CHECK(first.challenge->size() == 32);
  CHECK_FALSE(r.address_of(a.id(), t0()));

  CHECK(go_online(r, a, kA, t0()) == 60);
  CHECK(r.address_of(a.id(), t0()) == kA);
  CHECK(r.online() == 1);
  CHECK(r.counters().registered == 1);
  CHECK(r.counters().challenges == 2);
  // The challenge depends on the address.
  CHECK(r.challenge_for(kA, t0()) != r.challenge_for(kB, t0()));
}

TEST_CASE("rendezvous server: a signature by another key is refused", "[rendezvous_server]") {
  RendezvousResponder r(config());
  const auto a = alice();
  const auto m = bob();  // signs for Alice's ID
  auto challenge = r.challenge_for(kMallory, t0());
  auto refused = only_answer(r.handle(register_signed(m, a.id(), challenge, kMallory), kMallory,
                                      t0()),
                             kMallory);
  CHECK(error_code(refused) == kRendezvousForbidden);
  CHECK_FALSE(r.address_of(a.id(), t0()));
  CHECK(r.counters().refused == 1);
  CHECK(r.online() == 0);
}

TEST_CASE("rendezvous server: a registration replayed from another address is refused",
          "[rendezvous_server]") {
  RendezvousResponder r(config());
  const auto a = alice();
  const Bytes genuine = register_signed(a, a.id(), r.challenge_for(kA, t0()), kA);
  // As overheard: the challenge is not the one for Mallory's address, so "prove it".
  auto again = only_answer(r.handle(genuine, kMallory, t0()), kMallory);
  CHECK(error_code(again) == 401);
  CHECK(*again.challenge == r.challenge_for(kMallory, t0()));
  // With Mallory's own challenge and Alice's signature (over Alice's address): refused.
  auto sig = a.sign(rv::registration_signing_input(a.id(), r.challenge_for(kA, t0()), kA));
  REQUIRE(sig.ok());
  rv::Message forged;
  forged.method = rv::method::register_peer;
  forged.transaction_id = txid(4);
  forged.peer_id = a.id();
  forged.challenge = r.challenge_for(kMallory, t0());
  forged.signature = *sig;
  CHECK(error_code(only_answer(r.handle(encoded(forged), kMallory, t0()), kMallory)) ==
        kRendezvousForbidden);
  CHECK_FALSE(r.address_of(a.id(), t0()));
  // Alice herself still gets in.
  CHECK(only_answer(r.handle(genuine, kA, t0()), kA).message_class ==
        stun::MessageClass::success_response);
}

TEST_CASE("rendezvous server: challenges of the current and the previous window only",
          "[rendezvous_server]") {
  RendezvousResponder r(config());
  const auto a = alice();
  const Bytes old = r.challenge_for(kA, t0());
  const auto later = t0() + seconds{30};  // the next window: still accepted
  CHECK(only_answer(r.handle(register_signed(a, a.id(), old, kA), kA, later), kA).message_class ==
        stun::MessageClass::success_response);
  const auto much_later = t0() + seconds{60};  // two windows on: a new challenge
  auto stale = only_answer(r.handle(register_signed(a, a.id(), old, kA), kA, much_later), kA);
  CHECK(error_code(stale) == 401);
  CHECK(*stale.challenge != old);
}

TEST_CASE("rendezvous server: LIFETIME clamped, expiry, going offline, moving",
          "[rendezvous_server]") {
  RendezvousResponder r(config());
  const auto a = alice();
  CHECK(go_online(r, a, kA, t0(), 5) == 30);
  CHECK(go_online(r, a, kA, t0(), 100000) == 300);
  CHECK(go_online(r, a, kA, t0(), 45) == 45);
  CHECK(r.address_of(a.id(), t0() + seconds{44}) == kA);
  CHECK_FALSE(r.address_of(a.id(), t0() + seconds{45}));
  // Expired entries leave the table at the next sweep.
  CHECK(r.online() == 1);
  r.handle(register_hello(bob().id()), kB, t0() + seconds{46});
  CHECK(r.online() == 0);

  // From a new address, with a valid signature: the entry moves.
  go_online(r, a, kA, t0() + seconds{100});
  go_online(r, a, kB, t0() + seconds{101});
  CHECK(r.address_of(a.id(), t0() + seconds{101}) == kB);
  CHECK(r.online() == 1);

  // LIFETIME 0: offline at once.
  auto challenge = r.challenge_for(kB, t0() + seconds{101});
  auto bye = only_answer(r.handle(register_signed(a, a.id(), challenge, kB, 0), kB,
                                  t0() + seconds{101}),
                         kB);
  CHECK(bye.lifetime == 0u);
  CHECK_FALSE(r.address_of(a.id(), t0() + seconds{101}));
  CHECK(r.counters().unregistered == 1);
}

TEST_CASE("rendezvous server: Connect to a peer that is not online: 404 at once",
          "[rendezvous_server]") {
  Online o(config(), false);
  auto& [r, a, b] = o;
  auto out = r.handle(relay_request(rv::method::connect, b.id(),
                                    description(a, b.id(), rv::Kind::offer)),
                      kA, t0());
  CHECK(error_code(only_answer(out, kA)) == 404);
  CHECK(r.counters().not_online == 1);
  CHECK(r.counters().forwarded == 0);
}

TEST_CASE("rendezvous server: Connect forwarded to the target, Answer routed back",
          "[rendezvous_server]") {
  Online o;
  auto& [r, a, b] = o;
  const auto offer = description(a, b.id(), rv::Kind::offer);
  auto out = r.handle(relay_request(rv::method::connect, b.id(), offer, 5), kA, t0());
  REQUIRE(out.size() == 2);
  CHECK(out[0].to == kA);
  auto accepted = decoded(out[0].bytes);
  CHECK(accepted.message_class == stun::MessageClass::success_response);
  CHECK(accepted.transaction_id == txid(5));
  CHECK(accepted.xor_mapped_address == kA);
  CHECK(out[1].to == kB);
  auto relayed = decoded(out[1].bytes);
  CHECK(relayed.method == rv::method::connect);
  CHECK(relayed.message_class == stun::MessageClass::indication);
  CHECK(relayed.signed_description() == offer);
  CHECK(relayed.xor_peer_address == kA);

  // B answers: it goes where A's Connect came from.
  const auto answer = description(b, a.id(), rv::Kind::answer);
  out = r.handle(relay_request(rv::method::answer, a.id(), answer, 6), kB, t0() + seconds{1});
  REQUIRE(out.size() == 2);
  CHECK(out[0].to == kB);
  CHECK(decoded(out[0].bytes).message_class == stun::MessageClass::success_response);
  CHECK(out[1].to == kA);
  auto back = decoded(out[1].bytes);
  CHECK(back.method == rv::method::answer);
  CHECK(back.message_class == stun::MessageClass::indication);
  CHECK(back.signed_description() == answer);
  CHECK(r.counters().forwarded == 2);

  // An answer for a session nobody offered: 404, nothing relayed.
  out = r.handle(relay_request(rv::method::answer, a.id(),
                               description(b, a.id(), rv::Kind::answer, 99), 7),
                 kB, t0() + seconds{1});
  CHECK(error_code(only_answer(out, kB)) == 404);
  // Pending sessions expire.
  out = r.handle(relay_request(rv::method::answer, a.id(), answer, 8), kB, t0() + seconds{31});
  CHECK(error_code(only_answer(out, kB)) == 404);
}

TEST_CASE("rendezvous server: nothing is forwarded for a sender not registered at the source",
          "[rendezvous_server]") {
  Online o;
  auto& [r, a, b] = o;
  const auto offer = description(a, b.id(), rv::Kind::offer);
  // A's genuine offer, replayed from Mallory's address (reflection toward B).
  auto out = r.handle(relay_request(rv::method::connect, b.id(), offer), kMallory, t0());
  CHECK(error_code(only_answer(out, kMallory)) == kRendezvousForbidden);
  // From A's address but with a signature that does not verify.
  auto forged = offer;
  forged.signature[10] ^= 1;
  out = r.handle(relay_request(rv::method::connect, b.id(), forged), kA, t0());
  CHECK(error_code(only_answer(out, kA)) == kRendezvousForbidden);
  // An answer where an offer belongs, and a description for someone else.
  out = r.handle(relay_request(rv::method::connect, b.id(),
                               description(a, b.id(), rv::Kind::answer)),
                 kA, t0());
  CHECK(error_code(only_answer(out, kA)) == 400);
  out = r.handle(relay_request(rv::method::connect, carol().id(), offer), kA, t0());
  CHECK(error_code(only_answer(out, kA)) == 400);
  CHECK(r.counters().forwarded == 0);
}

TEST_CASE("rendezvous server: a full table refuses newcomers until entries expire",
          "[rendezvous_server]") {
  auto c = config();
  c.max_peers = 2;
  RendezvousResponder r(c);
  const auto a = alice();
  const auto b = bob();
  const auto carl = carol();
  const Endpoint kC = endpoint("198.51.100.8:1234");
  go_online(r, a, kA, t0(), 30);
  go_online(r, b, kB, t0(), 60);
  auto full = only_answer(r.handle(register_signed(carl, carl.id(), r.challenge_for(kC, t0()), kC),
                                   kC, t0()),
                          kC);
  CHECK(error_code(full) == kRendezvousFull);
  CHECK(r.online() == 2);
  // A refresh of someone already in is fine.
  CHECK(go_online(r, a, kA, t0(), 30) == 30);
  // Once A's entry has expired there is room.
  CHECK(go_online(r, carl, kC, t0() + seconds{31}) == 60);
  CHECK(r.online() == 2);
  CHECK_FALSE(r.address_of(a.id(), t0() + seconds{31}));
}

TEST_CASE("rendezvous server: pending sessions are bounded, the oldest goes",
          "[rendezvous_server]") {
  auto c = config();
  c.max_sessions = 2;
  Online o(c);
  auto& [r, a, b] = o;
  for (std::uint8_t s = 1; s <= 3; ++s)
    REQUIRE(r.handle(relay_request(rv::method::connect, b.id(),
                                   description(a, b.id(), rv::Kind::offer, s)),
                     kA, t0())
                .size() == 2);
  CHECK(r.pending_sessions() == 2);
  auto answer_to = [&o](std::uint8_t s) {  // clang 14 cannot capture structured bindings
    return o.r.handle(relay_request(rv::method::answer, o.a.id(),
                                    description(o.b, o.a.id(), rv::Kind::answer, s)),
                      kB, t0());
  };
  CHECK(error_code(only_answer(answer_to(1), kB)) == 404);
  CHECK(answer_to(2).size() == 2);
  CHECK(answer_to(3).size() == 2);
}

TEST_CASE("rendezvous server: a flooding source is cut off, others still get a challenge",
          "[rendezvous_server]") {
  auto c = config();
  c.per_source_rate = 1;
  c.per_source_burst = 5;
  RendezvousResponder r(c);
  const Bytes junk = {0x00, 0x01, 0x02};
  for (int i = 0; i < 5; ++i) CHECK(r.handle(junk, kMallory, t0()).empty());
  // The bucket is empty: even a valid request from that address gets nothing now.
  CHECK(r.handle(register_hello(alice().id()), kMallory, t0()).empty());
  CHECK(r.counters().rate_limited == 1);
  CHECK(r.counters().dropped == 5);
  CHECK(error_code(only_answer(r.handle(register_hello(bob().id()), kB, t0()), kB)) == 401);
  // A second later, one more token.
  CHECK(r.handle(register_hello(alice().id()), kMallory, t0() + seconds{1}).size() == 1);

  // The whole server's cap.
  auto g = config();
  g.total_rate = 1;
  g.total_burst = 3;
  RendezvousResponder capped(g);
  for (std::uint16_t p = 1; p <= 3; ++p)
    CHECK(capped.handle(register_hello(bob().id()), Endpoint{kB.ip, p}, t0()).size() == 1);
  CHECK(capped.handle(register_hello(bob().id()), kA, t0()).empty());
  CHECK(capped.counters().rate_limited == 1);

  // The signature checks' own cap: challenges still answered, signed requests dropped.
  auto v = config();
  v.verify_rate = 1;
  v.verify_burst = 2;
  RendezvousResponder verifying(v);
  const auto a = alice();
  const Bytes signed_register = register_signed(a, a.id(), verifying.challenge_for(kA, t0()), kA);
  CHECK(verifying.handle(signed_register, kA, t0()).size() == 1);
  CHECK(verifying.handle(signed_register, kA, t0()).size() == 1);
  CHECK(verifying.handle(signed_register, kA, t0()).empty());
  CHECK(verifying.counters().rate_limited == 1);
  CHECK(verifying.handle(register_hello(a.id()), kA, t0()).size() == 1);
  CHECK(verifying.handle(signed_register, kA, t0() + seconds{1}).size() == 1);
}

TEST_CASE("rendezvous server: malformed, truncated, responses and unknown attributes",
          "[rendezvous_server]") {
  auto c = config();
  c.per_source_burst = 1000;  // many datagrams from one source at one instant
  RendezvousResponder r(c);
  const Bytes hello = register_hello(alice().id());
  for (std::size_t n = 0; n < hello.size(); ++n)
    CHECK(r.handle(Bytes(hello.begin(), hello.begin() + static_cast<long>(n)), kA, t0()).empty());
  Bytes flipped = hello;
  flipped[30] ^= 0xff;  // FINGERPRINT no longer matches
  CHECK(r.handle(flipped, kA, t0()).empty());
  // A response or an indication from a peer: dropped.
  rv::Message resp;
  resp.method = rv::method::connect;
  resp.message_class = stun::MessageClass::success_response;
  resp.xor_mapped_address = kA;
  CHECK(r.handle(encoded(resp), kA, t0()).empty());
  const auto offer = description(alice(), bob().id(), rv::Kind::offer);
  rv::Message ind;
  ind.method = rv::method::connect;
  ind.message_class = stun::MessageClass::indication;
  ind.description = offer.bytes;
  ind.signature = offer.signature;
  ind.xor_peer_address = kA;
  CHECK(r.handle(encoded(ind), kA, t0()).empty());
  CHECK(r.counters().received == hello.size() + 3);
  CHECK(r.counters().dropped == hello.size() + 3);
  // Source port 0 cannot be answered.
  CHECK(r.handle(hello, Endpoint{kA.ip, 0}, t0()).empty());

  // An unknown comprehension-required attribute: 420 listing it, nothing else done.
  stun::MessageWriter w(rv::method::register_peer, stun::MessageClass::request, txid(3));
  w.add(rv::attr::peer_id, alice().id().key);
  w.add(0x7F77, Bytes{1, 2, 3, 4});
  auto bytes = w.finish(true);
  REQUIRE(bytes.ok());
  auto e = only_answer(r.handle(*bytes, kA, t0()), kA);
  CHECK(error_code(e) == 420);
  CHECK(e.unknown_attributes == std::vector<std::uint16_t>{0x7F77});
}

TEST_CASE("rendezvous server: which datagrams serve hands to the rendezvous",
          "[rendezvous_server]") {
  using porthole::detail::is_rendezvous_datagram;
  CHECK(is_rendezvous_datagram(register_hello(alice().id())));
  CHECK(is_rendezvous_datagram(relay_request(rv::method::answer, bob().id(),
                                             description(alice(), bob().id(), rv::Kind::answer))));
  // A Binding request is the STUN responder's.
  Bytes binding(20, 0);
  binding[1] = 0x01;
  binding[4] = 0x21;
  binding[5] = 0x12;
  binding[6] = 0xa4;
  binding[7] = 0x42;
  CHECK_FALSE(is_rendezvous_datagram(binding));
  Bytes no_cookie = register_hello(alice().id());
  no_cookie[4] = 0;
  CHECK_FALSE(is_rendezvous_datagram(no_cookie));
  CHECK_FALSE(is_rendezvous_datagram(Bytes{0x02, 0xe0}));
}
