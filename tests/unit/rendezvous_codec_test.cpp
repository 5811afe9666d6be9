// Rendezvous codec (codec/rendezvous_codec.hpp, docs/rendezvous.md): golden bytes of the
// messages and the description, every rejection path, and signed offers whose
// tampering is caught.
#include <catch2/catch.hpp>

#include <cstdint>
#include <string>
#include <vector>

#include "codec/rendezvous_codec.hpp"
#include "porthole/identity.hpp"
#include "hex_bytes.hpp"

namespace rv = porthole::detail::rendezvous;
namespace stun = porthole::detail::stun;
namespace ice = porthole::detail::ice;
using porthole::Endpoint;
using porthole::Errc;
using porthole::Identity;
using porthole::PeerId;
using Bytes = std::vector<std::uint8_t>;

namespace {

// RFC 8032 s7.1 tests 1 and 2: A and B.
const Bytes kSeedA = hex_bytes("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60");
const Bytes kSeedB = hex_bytes("4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb");
const stun::TransactionId kTxid = {0xb7, 0xe7, 0xa7, 0x01, 0xbc, 0x34,
                                   0xd6, 0x86, 0xfa, 0x87, 0xdf, 0xae};

Identity identity(const Bytes& seed) {
  auto id = Identity::from_seed(seed);
  REQUIRE(id.ok());
  return *id;
}

Endpoint endpoint(const std::string& text) {
  auto e = Endpoint::parse(text);
  REQUIRE(e.ok());
  return *e;
}

// Register request: A's public key, nothing else.
const Bytes kRegisterRequest = {
    0x02, 0xe0, 0x00, 0x2c,  // Register (0x0F0) request, Message Length 44
    0x21, 0x12, 0xa4, 0x42,  // magic cookie
    0xb7, 0xe7, 0xa7, 0x01,  // transaction ID
    0xbc, 0x34, 0xd6, 0x86,  //
    0xfa, 0x87, 0xdf, 0xae,  //
    0x7f, 0x01, 0x00, 0x20,  // PEER-ID, length 32
    0xd7, 0x5a, 0x98, 0x01,  //   RFC 8032 test 1 public key
    0x82, 0xb1, 0x0a, 0xb7,  //
    0xd5, 0x4b, 0xfe, 0xd3,  //
    0xc9, 0x64, 0x07, 0x3a,  //
    0x0e, 0xe1, 0x72, 0xf3,  //
    0xda, 0xa6, 0x23, 0x25,  //
    0xaf, 0x02, 0x1a, 0x68,  //
    0xf7, 0x07, 0x51, 0x1a,  //
    0x80, 0x28, 0x00, 0x04,  // FINGERPRINT, length 4
    0xe9, 0xcf, 0x8a, 0xf7,  //   CRC-32 xor 0x5354554e
};

// The server's 401: prove it, with this challenge, from the address it sees.
const Bytes kRegisterChallenge = {
    0x03, 0xf0, 0x00, 0x40,  // Register error response, Message Length 64
    0x21, 0x12, 0xa4, 0x42,  // magic cookie
    0xb7, 0xe7, 0xa7, 0x01,  // transaction ID
    0xbc, 0x34, 0xd6, 0x86,  //
    0xfa, 0x87, 0xdf, 0xae,  //
    0x00, 0x09, 0x00, 0x13,  // ERROR-CODE, length 19
    0x00, 0x00, 0x04, 0x01,  //   class 4, number 1: 401
    0x55, 0x6e, 0x61, 0x75,  //   "Unau"
    0x74, 0x68, 0x65, 0x6e,  //   "then"
    0x74, 0x69, 0x63, 0x61,  //   "tica"
    0x74, 0x65, 0x64, 0x00,  //   "ted" + 1 byte of padding
    0x7f, 0x02, 0x00, 0x10,  // CHALLENGE, length 16
    0x10, 0x11, 0x12, 0x13,  //   the server's random bytes
    0x14, 0x15, 0x16, 0x17,  //
    0x18, 0x19, 0x1a, 0x1b,  //
    0x1c, 0x1d, 0x1e, 0x1f,  //
    0x00, 0x20, 0x00, 0x08,  // XOR-MAPPED-ADDRESS, length 8
    0x00, 0x01, 0xa1, 0x47,  //   IPv4, port 32853 ^ 0x2112
    0xe1, 0x12, 0xa6, 0x43,  //   192.0.2.1 ^ 0x2112a442
    0x80, 0x28, 0x00, 0x04,  // FINGERPRINT, length 4
    0xd3, 0x51, 0x12, 0xeb,  //   CRC-32 xor 0x5354554e
};

// An offer from A to B with one host candidate.
const Bytes kOffer = {
    0x01, 0x01, 0x01, 0x01,  // version 1, offer, endpoint-independent mapping, 1 candidate
    0xd7, 0x5a, 0x98, 0x01, 0x82, 0xb1, 0x0a, 0xb7,  // sender: A's key
    0xd5, 0x4b, 0xfe, 0xd3, 0xc9, 0x64, 0x07, 0x3a,  //
    0x0e, 0xe1, 0x72, 0xf3, 0xda, 0xa6, 0x23, 0x25,  //
    0xaf, 0x02, 0x1a, 0x68, 0xf7, 0x07, 0x51, 0x1a,  //
    0x3d, 0x40, 0x17, 0xc3, 0xe8, 0x43, 0x89, 0x5a,  // receiver: B's key
    0x92, 0xb7, 0x0a, 0xa7, 0x4d, 0x1b, 0x7e, 0xbc,  //
    0x9c, 0x98, 0x2c, 0xcf, 0x2e, 0xc4, 0x96, 0x8c,  //
    0xc0, 0xcd, 0x55, 0xf1, 0x2a, 0xf4, 0x66, 0x0c,  //
    0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07,  // session ID (16 bytes)
    0x08, 0x09, 0x0a, 0x0b, 0x0c, 0x0d, 0x0e, 0x0f,  //
    0x04, 'a', 'b', 'c', 'd',                        // ufrag: length 4, "abcd"
    0x16, '0', '1', '2', '3', '4', '5', '6', '7',    // password: length 22
    '8', '9', 'a', 'b', 'c', 'd', 'e', 'f', 'g', 'h', 'i', 'j', 'k', 'l', 0x00, 0x11, 0x01,
    0x01,                    // candidate: host, UDP (17), IPv4, foundation
                             // length 1
    0x1f, 0x90,              //   port 8080
    0x7e, 0xff, 0xff, 0xff,  //   priority (host, local preference 65535, component 1)
    0xc0, 0xa8, 0x01, 0x0a,  //   192.168.1.10
    '1',                     //   foundation "1"
};

rv::Description offer_a_to_b() {
  rv::Description d;
  d.kind = rv::Kind::offer;
  d.sender = identity(kSeedA).id();
  d.receiver = identity(kSeedB).id();
  for (std::uint8_t i = 0; i < 16; ++i) d.session_id[i] = i;
  d.nat_mapping = rv::NatMapping::endpoint_independent;
  d.ufrag = "abcd";
  d.password = "0123456789abcdefghijkl";
  d.candidates.push_back({ice::CandidateType::host, 17, endpoint("192.168.1.10:8080"),
                          ice::candidate_priority(ice::CandidateType::host, 65535), "1"});
  return d;
}

rv::SignedDescription sign(const Identity& who, const rv::Description& d) {
  auto bytes = rv::encode_description(d);
  REQUIRE(bytes.ok());
  auto sig = who.sign(rv::description_signing_input(*bytes));
  REQUIRE(sig.ok());
  return {*bytes, *sig};
}

rv::Message connect_request(const rv::SignedDescription& s, const PeerId& target) {
  rv::Message m;
  m.method = rv::method::connect;
  m.message_class = stun::MessageClass::request;
  m.transaction_id = kTxid;
  m.target_peer_id = target;
  m.description = s.bytes;
  m.signature = s.signature;
  return m;
}

}  // namespace

TEST_CASE("rendezvous golden bytes: Register request") {
  rv::Message m;
  m.transaction_id = kTxid;
  m.peer_id = identity(kSeedA).id();
  auto bytes = rv::encode(m);
  REQUIRE(bytes.ok());
  CHECK(*bytes == kRegisterRequest);
  auto back = rv::decode(kRegisterRequest);
  REQUIRE(back.ok());
  CHECK(back->method == rv::method::register_peer);
  CHECK(back->message_class == stun::MessageClass::request);
  CHECK(back->transaction_id == kTxid);
  CHECK(back->peer_id == identity(kSeedA).id());
  CHECK_FALSE(back->challenge);
  CHECK(back->unknown_required.empty());
}

TEST_CASE("rendezvous golden bytes: the server's 401 with a challenge") {
  rv::Message m;
  m.message_class = stun::MessageClass::error_response;
  m.transaction_id = kTxid;
  m.error_code = stun::ErrorCode{401, "Unauthenticated"};
  m.challenge = Bytes{0x10, 0x11, 0x12, 0x13, 0x14, 0x15, 0x16, 0x17,
                      0x18, 0x19, 0x1a, 0x1b, 0x1c, 0x1d, 0x1e, 0x1f};
  m.xor_mapped_address = endpoint("192.0.2.1:32853");
  auto bytes = rv::encode(m);
  REQUIRE(bytes.ok());
  CHECK(*bytes == kRegisterChallenge);
  auto back = rv::decode(kRegisterChallenge);
  REQUIRE(back.ok());
  CHECK(back->error_code->code == 401);
  CHECK(back->challenge == m.challenge);
  CHECK(back->xor_mapped_address == endpoint("192.0.2.1:32853"));
}

TEST_CASE("rendezvous golden bytes: a description") {
  auto bytes = rv::encode_description(offer_a_to_b());
  REQUIRE(bytes.ok());
  CHECK(*bytes == kOffer);
  auto back = rv::decode_description(kOffer);
  REQUIRE(back.ok());
  CHECK(*back == offer_a_to_b());
}

TEST_CASE("rendezvous registration: the signature binds key, challenge and address") {
  const Identity a = identity(kSeedA);
  const Bytes challenge(16, 0x42);
  const Endpoint seen = endpoint("203.0.113.7:40000");
  auto sig = a.sign(rv::registration_signing_input(a.id(), challenge, seen));
  REQUIRE(sig.ok());
  CHECK(rv::verify_registration(a.id(), challenge, seen, *sig));
  Bytes other_challenge = challenge;
  other_challenge[15] ^= 1;
  CHECK_FALSE(rv::verify_registration(a.id(), other_challenge, seen, *sig));
  CHECK_FALSE(rv::verify_registration(a.id(), challenge, endpoint("203.0.113.7:40001"), *sig));
  CHECK_FALSE(rv::verify_registration(a.id(), challenge, endpoint("203.0.113.8:40000"), *sig));
  CHECK_FALSE(rv::verify_registration(identity(kSeedB).id(), challenge, seen, *sig));
  CHECK_FALSE(rv::verify_registration(a.id(), Bytes(15, 0x42), seen, *sig));
  // A description signature is no registration signature (domain separation).
  auto desc_sig = a.sign(
      rv::description_signing_input(rv::registration_signing_input(a.id(), challenge, seen)));
  REQUIRE(desc_sig.ok());
  CHECK_FALSE(rv::verify_registration(a.id(), challenge, seen, *desc_sig));
  // Through the wire: a Register request with the proof.
  rv::Message m;
  m.transaction_id = kTxid;
  m.peer_id = a.id();
  m.challenge = challenge;
  m.signature = *sig;
  m.lifetime = 120;
  auto bytes = rv::encode(m);
  REQUIRE(bytes.ok());
  auto back = rv::decode(*bytes);
  REQUIRE(back.ok());
  CHECK(rv::verify_registration(*back->peer_id, *back->challenge, seen, *back->signature));
  CHECK(back->lifetime == 120u);
}

TEST_CASE("rendezvous signed offer: round trip through a Connect request and its relay") {
  const Identity a = identity(kSeedA), b = identity(kSeedB);
  const rv::Description offer = offer_a_to_b();
  const auto signed_offer = sign(a, offer);
  auto request = rv::encode(connect_request(signed_offer, b.id()));
  REQUIRE(request.ok());
  auto at_server = rv::decode(*request);
  REQUIRE(at_server.ok());
  CHECK(at_server->target_peer_id == b.id());
  // The server relays it to B as an indication, with A's address as it saw it.
  rv::Message relay;
  relay.method = rv::method::connect;
  relay.message_class = stun::MessageClass::indication;
  relay.transaction_id = kTxid;
  relay.description = at_server->description;
  relay.signature = at_server->signature;
  relay.xor_peer_address = endpoint("[2001:db8::5]:5000");
  auto relayed = rv::encode(relay);
  REQUIRE(relayed.ok());
  auto at_b = rv::decode(*relayed);
  REQUIRE(at_b.ok());
  CHECK(at_b->xor_peer_address == endpoint("[2001:db8::5]:5000"));
  auto opened = rv::open_description(*at_b->signed_description(), a.id(), b.id(), rv::Kind::offer);
  REQUIRE(opened.ok());
  CHECK(*opened == offer);
}

TEST_CASE("rendezvous signed offer: any changed byte or wrong party is refused") {
  const Identity a = identity(kSeedA), b = identity(kSeedB);
  const auto s = sign(a, offer_a_to_b());
  REQUIRE(rv::open_description(s, a.id(), b.id(), rv::Kind::offer).ok());
  for (std::size_t i = 0; i < s.bytes.size(); ++i) {
    auto tampered = s;
    tampered.bytes[i] ^= 0x01;
    auto r = rv::open_description(tampered, a.id(), b.id(), rv::Kind::offer);
    REQUIRE_FALSE(r.ok());
    CHECK(r.error().code == Errc::refused);
  }
  for (std::size_t i = 0; i < s.signature.size(); ++i) {
    auto tampered = s;
    tampered.signature[i] ^= 0x80;
    CHECK(rv::open_description(tampered, a.id(), b.id(), rv::Kind::offer).error().code ==
          Errc::refused);
  }
  // A lying rendezvous swaps in its own candidate and keeps A's signature.
  auto lie = offer_a_to_b();
  lie.candidates[0].address = endpoint("198.51.100.66:8080");
  auto forged = s;
  forged.bytes = *rv::encode_description(lie);
  CHECK(rv::open_description(forged, a.id(), b.id(), rv::Kind::offer).error().code ==
        Errc::refused);
  // ... or signs the offer with its own key while claiming to be A.
  const Identity mallory = identity(Bytes(32, 0x77));
  CHECK_FALSE(
      rv::open_description(sign(mallory, offer_a_to_b()), a.id(), b.id(), rv::Kind::offer).ok());
  // Signed by A, but for someone else, or an answer taken for an offer.
  auto r = rv::open_description(s, a.id(), mallory.id(), rv::Kind::offer);
  CHECK_THAT(r.error().message, Catch::Contains("not for us"));
  CHECK(rv::open_description(s, a.id(), b.id(), rv::Kind::answer).error().code == Errc::refused);
  // A signed description whose sender field is not its signer.
  auto wrong_sender = offer_a_to_b();
  wrong_sender.sender = mallory.id();
  CHECK_THAT(
      rv::open_description(sign(a, wrong_sender), a.id(), b.id(), rv::Kind::offer).error().message,
      Catch::Contains("another sender"));
  // Truncated signature.
  auto short_sig = s;
  short_sig.signature.pop_back();
  CHECK_FALSE(rv::open_description(short_sig, a.id(), b.id(), rv::Kind::offer).ok());
}

TEST_CASE("rendezvous description: every bound is refused on encode, naming the field") {
  auto check = [](rv::Description d, const char* words) {
    auto r = rv::encode_description(d);
    REQUIRE_FALSE(r.ok());
    CHECK(r.error().code == Errc::usage);
    CHECK_THAT(r.error().message, Catch::Contains(words));
  };
  auto d = offer_a_to_b();
  d.ufrag = "abc";
  check(d, "ufrag");
  d = offer_a_to_b();
  d.ufrag = std::string(33, 'a');
  check(d, "ufrag");
  d = offer_a_to_b();
  d.ufrag = "ab:d";
  check(d, "ufrag has a character");
  d = offer_a_to_b();
  d.password = std::string(21, 'a');
  check(d, "password");
  d = offer_a_to_b();
  d.password = std::string(65, 'a');
  check(d, "password");
  d = offer_a_to_b();
  d.candidates.assign(13, d.candidates[0]);
  check(d, "13 candidates");
  d = offer_a_to_b();
  d.candidates[0].transport = 6;
  check(d, "transport 6");
  d = offer_a_to_b();
  d.candidates[0].address = endpoint("192.168.1.10:0");
  check(d, "port 0");
  d = offer_a_to_b();
  d.candidates[0].address = endpoint("0.0.0.0:1");
  check(d, "cannot be a candidate");
  d = offer_a_to_b();
  d.candidates[0].address = endpoint("[ff02::1]:1");
  check(d, "cannot be a candidate");
  d = offer_a_to_b();
  d.candidates[0].priority = 0;
  check(d, "priority 0");
  d = offer_a_to_b();
  d.candidates[0].priority = 0x80000000u;
  check(d, "priority");
  d = offer_a_to_b();
  d.candidates[0].foundation = "";
  check(d, "foundation");
  d = offer_a_to_b();
  d.candidates[0].foundation = std::string(33, 'f');
  check(d, "foundation");
  d = offer_a_to_b();
  d.candidates[0].type = static_cast<ice::CandidateType>(9);
  check(d, "type");
  d = offer_a_to_b();
  d.nat_mapping = static_cast<rv::NatMapping>(4);
  check(d, "NAT mapping");
  d = offer_a_to_b();
  d.kind = static_cast<rv::Kind>(3);
  check(d, "kind");
}

TEST_CASE("rendezvous description: every malformed byte string is refused on decode") {
  const Bytes& good = kOffer;
  REQUIRE(rv::decode_description(good).ok());
  // Every truncation.
  for (std::size_t n = 0; n < good.size(); ++n) {
    auto r = rv::decode_description(std::span(good.data(), n));
    REQUIRE_FALSE(r.ok());
    CHECK(r.error().code == Errc::internal);
  }
  auto with = [&](std::size_t offset, std::uint8_t value) {
    Bytes b = good;
    b[offset] = value;
    return rv::decode_description(b);
  };
  CHECK_THAT(with(0, 2).error().message, Catch::Contains("version 2"));
  CHECK_THAT(with(1, 3).error().message, Catch::Contains("kind 3"));
  CHECK_THAT(with(2, 4).error().message, Catch::Contains("NAT mapping"));
  CHECK_THAT(with(3, 13).error().message, Catch::Contains("13 candidates"));
  CHECK_THAT(with(3, 2).error().message, Catch::Contains("truncated in candidate 2"));
  CHECK_THAT(with(3, 0).error().message, Catch::Contains("after its last candidate"));
  const std::size_t ufrag = 84, password = 89, candidate = 112;
  Bytes short_ufrag = good;  // "abc": length 3
  short_ufrag[ufrag] = 3;
  short_ufrag.erase(short_ufrag.begin() + ufrag + 4);
  CHECK_THAT(rv::decode_description(short_ufrag).error().message,
             Catch::Contains("ufrag has 3 characters"));
  CHECK_THAT(with(ufrag, 200).error().message, Catch::Contains("truncated in the ufrag"));
  CHECK_THAT(with(ufrag + 1, ':').error().message, Catch::Contains("ufrag has a character"));
  CHECK_THAT(with(password + 1, ' ').error().message, Catch::Contains("password"));
  CHECK_THAT(with(candidate, 5).error().message, Catch::Contains("unknown type 5"));
  CHECK_THAT(with(candidate + 1, 6).error().message, Catch::Contains("transport 6"));
  CHECK_THAT(with(candidate + 2, 3).error().message, Catch::Contains("address family 3"));
  CHECK_THAT(with(candidate + 2, 2).error().message, Catch::Contains("truncated"));
  Bytes no_foundation = good;
  no_foundation[candidate + 3] = 0;
  no_foundation.pop_back();
  CHECK_THAT(rv::decode_description(no_foundation).error().message,
             Catch::Contains("foundation has 0 characters"));
  Bytes port0 = good;
  port0[candidate + 4] = 0;
  port0[candidate + 5] = 0;
  CHECK_THAT(rv::decode_description(port0).error().message, Catch::Contains("port 0"));
  CHECK_THAT(with(candidate + 6, 0x80).error().message, Catch::Contains("priority"));
  CHECK_THAT(with(candidate + 10, 224).error().message, Catch::Contains("cannot be a candidate"));
  CHECK_THAT(with(candidate + 14, '-').error().message, Catch::Contains("foundation"));
  Bytes longer = good;
  longer.push_back(0);
  CHECK_THAT(rv::decode_description(longer).error().message,
             Catch::Contains("after its last candidate"));
  CHECK_FALSE(rv::decode_description(Bytes(2000, 1)).ok());
}

TEST_CASE("rendezvous description: the largest offer fits one IPv6 minimum-MTU datagram") {
  auto d = offer_a_to_b();
  d.ufrag = std::string(rv::kUfragMax, 'u');
  d.password = std::string(rv::kPasswordMax, 'p');
  d.candidates.clear();
  for (std::size_t i = 0; i < rv::kMaxCandidates; ++i)
    d.candidates.push_back({ice::CandidateType::server_reflexive, 17,
                            endpoint("[2001:db8::" + std::to_string(i + 1) + "]:4000"), 1,
                            std::string(rv::kFoundationMax, 'f')});
  const auto s = sign(identity(kSeedA), d);
  auto bytes = rv::encode(connect_request(s, identity(kSeedB).id()));
  REQUIRE(bytes.ok());
  CHECK(bytes->size() == 1016);
  CHECK(bytes->size() <= 1280 - 40 - 8);
  auto back = rv::decode(*bytes);
  REQUIRE(back.ok());
  CHECK(rv::open_description(*back->signed_description(), identity(kSeedA).id(),
                             identity(kSeedB).id(), rv::Kind::offer)
            .ok());
}

TEST_CASE("rendezvous messages: what each method and class needs") {
  const Identity a = identity(kSeedA), b = identity(kSeedB);
  const auto s = sign(a, offer_a_to_b());
  auto refuse = [](rv::Message m, const char* words) {
    auto r = rv::encode(m);
    REQUIRE_FALSE(r.ok());
    CHECK(r.error().code == Errc::usage);
    CHECK_THAT(r.error().message, Catch::Contains(words));
  };
  rv::Message m;
  refuse(m, "without PEER-ID");
  m.peer_id = a.id();
  m.challenge = Bytes(16, 1);
  refuse(m, "only one of CHALLENGE and SIGNATURE");
  m.signature = Bytes(63, 1);
  refuse(m, "SIGNATURE of 63 bytes");
  m.signature = Bytes(64, 1);
  m.challenge = Bytes(15, 1);
  refuse(m, "CHALLENGE of 15 bytes");
  m.challenge = Bytes(65, 1);
  refuse(m, "CHALLENGE of 65 bytes");
  m.challenge = Bytes(64, 1);
  CHECK(rv::encode(m).ok());
  m.message_class = stun::MessageClass::indication;
  refuse(m, "Register indication");
  m = rv::Message{};
  m.message_class = stun::MessageClass::success_response;
  refuse(m, "without XOR-MAPPED-ADDRESS");
  m.xor_mapped_address = endpoint("192.0.2.1:1");
  refuse(m, "without LIFETIME");
  m.lifetime = 60;
  CHECK(rv::encode(m).ok());
  m.method = rv::method::connect;
  m.lifetime.reset();
  CHECK(rv::encode(m).ok());
  m.method = stun::method::binding;
  refuse(m, "not a rendezvous method");
  m = rv::Message{};
  m.message_class = stun::MessageClass::error_response;
  refuse(m, "without ERROR-CODE");
  m.error_code = stun::ErrorCode{401, "Unauthenticated"};
  refuse(m, "without CHALLENGE");
  m.challenge = Bytes(16, 2);
  refuse(m, "without XOR-MAPPED-ADDRESS");
  m.method = rv::method::connect;
  m.error_code = stun::ErrorCode{rv::kPeerNotOnline, "Peer Not Online"};
  CHECK(rv::encode(m).ok());
  auto c = connect_request(s, b.id());
  c.target_peer_id.reset();
  refuse(c, "without TARGET-PEER-ID");
  c = connect_request(s, b.id());
  c.description.reset();
  refuse(c, "without DESCRIPTION");
  c = connect_request(s, b.id());
  c.signature.reset();
  refuse(c, "without SIGNATURE");
  c = connect_request(s, b.id());
  c.description = Bytes{};
  refuse(c, "DESCRIPTION of 0 bytes");
  c = connect_request(s, b.id());
  c.message_class = stun::MessageClass::indication;
  refuse(c, "without XOR-PEER-ADDRESS");
  c.method = rv::method::answer;  // B's answer as relayed to A: no address needed
  CHECK(rv::encode(c).ok());
}

TEST_CASE("rendezvous decode: refusals and unknown attributes (RFC 8489 s6.3, s7.3)") {
  // Decode what the encoder would refuse by writing it with the general STUN writer.
  auto write = [](std::uint16_t method, stun::MessageClass cls, auto&& fill, bool fp = true) {
    stun::MessageWriter w(method, cls, kTxid);
    fill(w);
    auto bytes = w.finish(fp);
    REQUIRE(bytes.ok());
    return *bytes;
  };
  const Bytes key(32, 0x11);
  auto with_peer = [&](stun::MessageWriter& w) { w.add(rv::attr::peer_id, key); };
  using C = stun::MessageClass;
  CHECK(rv::decode(write(rv::method::register_peer, C::request, with_peer)).ok());
  CHECK_THAT(
      rv::decode(write(rv::method::register_peer, C::request, with_peer, false)).error().message,
      Catch::Contains("without FINGERPRINT"));
  CHECK_THAT(rv::decode(write(stun::method::binding, C::request, with_peer)).error().message,
             Catch::Contains("not a rendezvous method"));
  CHECK_THAT(rv::decode(
                 write(rv::method::register_peer, C::request,
                       [&](stun::MessageWriter& w) { w.add(rv::attr::peer_id, Bytes(31, 1)); }))
                 .error()
                 .message,
             Catch::Contains("PEER-ID of 31 bytes"));
  CHECK_THAT(rv::decode(write(rv::method::connect, C::request,
                              [&](stun::MessageWriter& w) {
                                w.add(rv::attr::target_peer_id, Bytes(33, 1));
                              }))
                 .error()
                 .message,
             Catch::Contains("TARGET-PEER-ID of 33 bytes"));
  CHECK_THAT(rv::decode(write(rv::method::register_peer, C::request, [](auto&) {})).error().message,
             Catch::Contains("without PEER-ID"));
  // An unknown comprehension-required attribute: a request comes back with it listed
  // (the server answers 420), anything else is refused.
  auto with_unknown = [&](stun::MessageWriter& w) {
    w.add(rv::attr::peer_id, key);
    w.add(0x7F7F, Bytes{1, 2, 3, 4});
    w.add(0x0099, Bytes{});
  };
  auto req = rv::decode(write(rv::method::register_peer, C::request, with_unknown));
  REQUIRE(req.ok());
  CHECK(req->unknown_required == std::vector<std::uint16_t>{0x7F7F, 0x0099});
  CHECK_THAT(rv::decode(write(rv::method::connect, C::indication, with_unknown)).error().message,
             Catch::Contains("unknown comprehension-required attribute 0x7f7f"));
  // MESSAGE-INTEGRITY is not part of this protocol: comprehension-required, unknown.
  auto with_integrity = [&](stun::MessageWriter& w) {
    w.add(rv::attr::peer_id, key);
    w.add_message_integrity(*stun::IntegrityKey::short_term("password"));
  };
  auto mi = rv::decode(write(rv::method::register_peer, C::request, with_integrity));
  REQUIRE(mi.ok());
  CHECK(mi->unknown_required == std::vector<std::uint16_t>{stun::attr::message_integrity});
  // Unknown comprehension-optional attributes are ignored; the first PEER-ID counts.
  auto with_optional = [&](stun::MessageWriter& w) {
    w.add(0xFF01, Bytes{9});
    w.add_text(stun::attr::software, "someone else");
    w.add(rv::attr::peer_id, key);
    w.add(rv::attr::peer_id, Bytes(32, 0x22));
  };
  auto opt = rv::decode(write(rv::method::register_peer, C::request, with_optional));
  REQUIRE(opt.ok());
  CHECK(opt->unknown_required.empty());
  CHECK(opt->peer_id->key == std::array<std::uint8_t, 32>{0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x11,
                                                          0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x11,
                                                          0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x11,
                                                          0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x11,
                                                          0x11, 0x11, 0x11, 0x11});
  // Every truncation and every flipped bit of a golden message is refused (the
  // FINGERPRINT, if nothing else, catches it).
  for (std::size_t n = 0; n < kRegisterChallenge.size(); ++n)
    CHECK_FALSE(rv::decode(std::span(kRegisterChallenge.data(), n)).ok());
  for (std::size_t i = 0; i < kRegisterChallenge.size(); ++i) {
    Bytes b = kRegisterChallenge;
    b[i] ^= 0x04;
    CHECK_FALSE(rv::decode(b).ok());
  }
}

TEST_CASE("rendezvous description: the NAT byte carries the port allocation and its step") {
  rv::Description d = offer_a_to_b();
  d.nat_mapping = rv::NatMapping::address_and_port_dependent;
  d.allocation = rv::PortAllocation::sequential;
  d.port_step = -3;
  auto bytes = rv::encode_description(d);
  REQUIRE(bytes.ok());
  // Mapping 3 in bits 0-1, sequential (2) in bits 2-3, -3 as the nibble 0xd in bits 4-7.
  CHECK((*bytes)[2] == 0xdb);
  auto back = rv::decode_description(*bytes);
  REQUIRE(back.ok());
  CHECK(*back == d);

  d.allocation = rv::PortAllocation::random;
  d.port_step = 0;
  bytes = rv::encode_description(d);
  REQUIRE(bytes.ok());
  CHECK((*bytes)[2] == 0x0f);
  CHECK(rv::decode_description(*bytes).value() == d);

  // A step without a sequential allocation, a sequential one without a step or beyond
  // the bound, and an allocation with an endpoint-independent mapping are refused.
  d.port_step = 2;
  CHECK_THAT(rv::encode_description(d).error().message, Catch::Contains("port step 2"));
  d.allocation = rv::PortAllocation::sequential;
  d.port_step = 0;
  CHECK_FALSE(rv::encode_description(d).ok());
  d.port_step = 8;
  CHECK_FALSE(rv::encode_description(d).ok());
  d.port_step = 1;
  d.nat_mapping = rv::NatMapping::endpoint_independent;
  CHECK_THAT(rv::encode_description(d).error().message, Catch::Contains("NAT mapping"));
  Bytes wire = kOffer;
  wire[2] = 0x89;  // EIM, sequential, step -8: beyond the bound
  CHECK_FALSE(rv::decode_description(wire).ok());
  wire[2] = 0x1b;  // dependent, sequential, step 1
  CHECK(rv::decode_description(wire).value().port_step == 1);
}
