// Shared by the rendezvous server and client tests: three identities (RFC 8032 s7.1
// tests 1-3), their signed offers and answers, and a few message builders.
#pragma once

#include <catch2/catch.hpp>

#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

#include "codec/rendezvous_codec.hpp"
#include "hex_bytes.hpp"
#include "net/deadline.hpp"
#include "porthole/identity.hpp"
#include "porthole/ip_address.hpp"

namespace rvtest {

namespace rv = porthole::detail::rendezvous;
namespace stun = porthole::detail::stun;
using Bytes = std::vector<std::uint8_t>;
using porthole::Endpoint;
using porthole::Identity;
using porthole::PeerId;

inline Identity identity(const char* seed_hex) {
  auto id = Identity::from_seed(hex_bytes(seed_hex));
  REQUIRE(id.ok());
  return *id;
}
inline Identity alice() {
  return identity("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60");
}
inline Identity bob() {
  return identity("4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb");
}
inline Identity carol() {
  return identity("c5aa8df43f9f837bedb7442f31dcb7b166d38535076f094b85ce3a2e0b4458f7");
}

inline Endpoint endpoint(const std::string& text) {
  auto e = Endpoint::parse(text);
  REQUIRE(e.ok());
  return *e;
}

inline porthole::detail::Clock::time_point t0() {
  return porthole::detail::Clock::time_point{} + std::chrono::hours{1};
}

// A description from `from` to `to` with one host candidate; session ID `session`.
inline rv::SignedDescription description(const Identity& from, const PeerId& to, rv::Kind kind,
                                         std::uint8_t session = 7) {
  rv::Description d;
  d.kind = kind;
  d.sender = from.id();
  d.receiver = to;
  d.session_id.fill(session);
  d.ufrag = "abcd";
  d.password = "0123456789abcdefghijkl";
  auto host = Endpoint::parse("192.168.1.10:8080");
  REQUIRE(host.ok());
  d.candidates.push_back({porthole::detail::ice::CandidateType::host, 17, *host, 2130706431, "1"});
  auto bytes = rv::encode_description(d);
  REQUIRE(bytes.ok());
  auto sig = from.sign(rv::description_signing_input(*bytes));
  REQUIRE(sig.ok());
  return {*bytes, *sig};
}

inline stun::TransactionId txid(std::uint8_t n) {
  stun::TransactionId id{};
  id.fill(n);
  return id;
}

inline Bytes encoded(const rv::Message& m) {
  auto b = rv::encode(m);
  REQUIRE(b.ok());
  return *b;
}

inline rv::Message decoded(const Bytes& b) {
  auto m = rv::decode(b);
  REQUIRE(m.ok());
  return *m;
}

inline Bytes register_hello(const PeerId& id, std::uint8_t n = 1) {
  rv::Message m;
  m.method = rv::method::register_peer;
  m.transaction_id = txid(n);
  m.peer_id = id;
  return encoded(m);
}

// A signed Register: `signer` signs `challenge` and `observed` for the ID `claimed`.
inline Bytes register_signed(const Identity& signer, const PeerId& claimed, const Bytes& challenge,
                             const Endpoint& observed, std::optional<std::uint32_t> lifetime = {},
                             std::uint8_t n = 2) {
  auto sig = signer.sign(rv::registration_signing_input(claimed, challenge, observed));
  REQUIRE(sig.ok());
  rv::Message m;
  m.method = rv::method::register_peer;
  m.transaction_id = txid(n);
  m.peer_id = claimed;
  m.challenge = challenge;
  m.signature = *sig;
  m.lifetime = lifetime;
  return encoded(m);
}

inline Bytes relay_request(std::uint16_t method, const PeerId& target,
                           const rv::SignedDescription& s, std::uint8_t n = 3) {
  rv::Message m;
  m.method = method;
  m.transaction_id = txid(n);
  m.target_peer_id = target;
  m.description = s.bytes;
  m.signature = s.signature;
  return encoded(m);
}

}  // namespace rvtest
