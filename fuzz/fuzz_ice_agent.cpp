// libFuzzer target: the ICE agent (src/core/ice_agent.*) fed a sequence of datagrams and
// clock steps. Raw datagrams alone would never get past MESSAGE-INTEGRITY, so most
// records are attributes the target signs with the right (or a wrong) key as a peer's
// check or as an answer to the agent's latest check.
//
// Input: records of [flags][clock step, 10 ms units][length][length bytes].
//   flags & 3: 0 the bytes as a datagram, 1 a check (USERNAME "aaaa:bbbb", the bytes as
//              attributes [type:2][length:1][value]), 2 an answer to the agent's latest
//              check (success; error with flags & 0x40), 3 the clock step only;
//   0x04: from the peer's signalled address (else another one); 0x08: set_remote first;
//   0x10: sign with a wrong key; 0x20: quiesce afterwards; 0x80: add the other address
//   as a remote candidate first; with a check (flags & 3 == 1), 0x40: in signed mode,
//   the SIGNATURE by another Ed25519 key (MESSAGE-INTEGRITY still right).
// Signed mode (the end-to-end check signatures, IceAgentConfig::sign / verify_peer) when
// the input's size has bit 1 set: fixed test keys; the target's checks and answers then
// carry the peer's SIGNATURE, and everything the agent sends must carry its own valid
// one; a check signed by another key is never answered.
// Properties beyond "no crash, no undefined behaviour": everything the agent sends is a
// Binding message with FINGERPRINT; its checks carry USERNAME "bbbb:aaaa", PRIORITY and
// integrity under the peer's password; its answers integrity under its own and go to
// the datagram's source; a wrongly signed check is never answered; nothing is sent
// after quiesce().
#include <algorithm>
#include <array>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "codec/ed25519.hpp"
#include "codec/ice_priority.hpp"
#include "codec/rendezvous_codec.hpp"
#include "codec/stun_codec.hpp"
#include "core/ice_agent.hpp"
#include "fuzz_check.hpp"

namespace stun = porthole::detail::stun;
namespace ice = porthole::detail::ice;
namespace rv = porthole::detail::rendezvous;
using porthole::Endpoint;
using porthole::IpAddress;
using porthole::detail::Clock;
using porthole::detail::IceAgent;
using porthole::detail::IceAgentConfig;

namespace {

constexpr const char* kLocalPassword = "localpasswordAAAAAAAAAAA";
constexpr const char* kPeerPassword = "peerpasswordBBBBBBBBBBBB";

enum class Key { local, peer, wrong };

const stun::IntegrityKey& key(Key which) {
  static const stun::IntegrityKey local = *stun::IntegrityKey::short_term(kLocalPassword);
  static const stun::IntegrityKey peer = *stun::IntegrityKey::short_term(kPeerPassword);
  static const stun::IntegrityKey wrong = *stun::IntegrityKey::short_term(
      "wrongpasswordCCCCCCCCCCC");
  switch (which) {
    case Key::local: return local;
    case Key::peer: return peer;
    case Key::wrong: break;
  }
  return wrong;
}

namespace ed = porthole::detail::ed25519;
enum class Signer { local, peer, other };

// Fixed test keys (never secret): a seed of one repeated byte each.
const ed::KeyPair& signer(Signer which) {
  auto make = [](std::uint8_t fill) {
    std::array<std::uint8_t, ed::kSeedSize> seed{};
    seed.fill(fill);
    return *ed::KeyPair::from_seed(seed);
  };
  static const ed::KeyPair local = make(0x41);
  static const ed::KeyPair peer = make(0x42);
  static const ed::KeyPair other = make(0x43);
  switch (which) {
    case Signer::local: return local;
    case Signer::peer: return peer;
    case Signer::other: break;
  }
  return other;
}

// True when `bytes` carries a SIGNATURE by `key` under `label` before its integrity.
bool signed_by(std::span<const std::uint8_t> bytes, const stun::Message& m,
               const ed::PublicKey& key, std::string_view label) {
  for (const stun::Attribute& a : m.attributes) {
    if (a.type == stun::attr::message_integrity) return false;
    if (a.type != rv::attr::signature) continue;
    auto covered = stun::covered_by(bytes, a);
    return covered &&
           ed::verify(key, porthole::detail::ice_signing_input(label, *covered), a.value);
  }
  return false;
}

rv::Candidate candidate(ice::CandidateType type, Endpoint address) {
  return {type, stun::kTransportUdp, address, ice::candidate_priority(type, 65535), "1"};
}

std::vector<std::uint8_t> signed_message(stun::MessageClass cls, const stun::TransactionId& id,
                                         std::span<const std::uint8_t> body, bool is_check,
                                         const stun::IntegrityKey& k,
                                         const ed::KeyPair* sign_with = nullptr) {
  stun::MessageWriter w(stun::method::binding, cls, id);
  if (is_check) w.add_text(stun::attr::username, "aaaa:bbbb");
  for (std::size_t i = 0; i + 3 <= body.size();) {
    const std::uint16_t type = static_cast<std::uint16_t>(body[i] << 8 | body[i + 1]);
    const std::size_t len = std::min<std::size_t>(body[i + 2], body.size() - i - 3);
    w.add(type, body.subspan(i + 3, len));
    i += 3 + len;
  }
  if (sign_with) {
    auto sig = sign_with->sign(
        porthole::detail::ice_signing_input(is_check ? porthole::detail::kIceCheckSignatureLabel
                                                     : porthole::detail::kIceAnswerSignatureLabel,
                                            w.covered_by_next(ed::kSignatureSize)));
    if (sig) w.add(rv::attr::signature, *sig);
  }
  w.add_message_integrity(k);
  auto out = w.finish(true);
  return out ? *out : std::vector<std::uint8_t>{};
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const Endpoint peer{IpAddress::v4({10, 0, 0, 2}), 6000};
  const Endpoint other{IpAddress::v4({203, 0, 113, 9}), 7000};
  IceAgentConfig config;
  config.controlling = (size & 1) != 0;
  config.tie_breaker = 0x1234;
  config.local_ufrag = "aaaa";
  config.local_password = kLocalPassword;
  Clock::time_point now = Clock::time_point{} + std::chrono::hours(1);
  config.deadline = now + std::chrono::seconds(10);
  const bool signing = (size & 2) != 0;
  if (signing) {
    config.sign =
        [](std::span<const std::uint8_t> bytes) -> porthole::Result<std::vector<std::uint8_t>> {
      auto sig = signer(Signer::local).sign(bytes);
      if (!sig) return sig.error();
      return std::vector<std::uint8_t>(sig->begin(), sig->end());
    };
    config.verify_peer = [](std::span<const std::uint8_t> bytes,
                            std::span<const std::uint8_t> signature) {
      return ed::verify(signer(Signer::peer).public_key(), bytes, signature);
    };
  }
  std::uint8_t counter = 0;
  IceAgent agent(config,
                 {candidate(ice::CandidateType::host, {IpAddress::v4({10, 0, 0, 1}), 5000}),
                  candidate(ice::CandidateType::server_reflexive,
                            {IpAddress::v4({198, 51, 100, 1}), 40000})},
                 [&counter](std::span<std::uint8_t> out) {
                   for (auto& b : out) b = ++counter;
                 });
  agent.add_remote_candidate(candidate(ice::CandidateType::host, peer), now);
  std::optional<stun::TransactionId> latest_check;
  std::uint8_t check_id = 0;

  std::span<const std::uint8_t> in(data, size);
  while (in.size() >= 3) {
    const std::uint8_t flags = in[0];
    now += std::chrono::milliseconds(10 * in[1]);
    const std::size_t len = std::min<std::size_t>(in[2], in.size() - 3);
    const auto body = in.subspan(3, len);
    in = in.subspan(3 + len);

    if (flags & 0x80) agent.add_remote_candidate(candidate(ice::CandidateType::mapped, other), now);
    if (flags & 0x08) (void)agent.set_remote("bbbb", kPeerPassword, now);
    const Endpoint& from = (flags & 0x04) ? peer : other;
    const bool wrong_key = (flags & 0x10) != 0;
    const int kind = flags & 3;
    const bool other_signer = signing && kind == 1 && (flags & 0x40) != 0;
    const ed::KeyPair* sign_with = signing ? &signer(other_signer ? Signer::other : Signer::peer)
                                           : nullptr;
    std::vector<std::uint8_t> datagram;
    if (kind == 0) {
      datagram.assign(body.begin(), body.end());
    } else if (kind == 1) {
      stun::TransactionId id{};
      id.fill(++check_id);
      datagram = signed_message(stun::MessageClass::request, id, body, true,
                                key(wrong_key ? Key::wrong : Key::local), sign_with);
    } else if (kind == 2 && latest_check) {
      datagram = signed_message((flags & 0x40) ? stun::MessageClass::error_response
                                               : stun::MessageClass::success_response,
                                *latest_check, body, false, key(wrong_key ? Key::wrong : Key::peer),
                                sign_with);
    }
    if (!datagram.empty()) agent.on_datagram(datagram, from, now);
    for (int i = 0; i < 64; ++i) {
      auto w = agent.next_wakeup();
      if (!w || *w > now) break;
      agent.on_timer(now);
    }
    const bool quiesced = agent.quiesced();
    if (flags & 0x20) agent.quiesce();

    for (const auto& out : agent.take_outgoing()) {
      PORTHOLE_FUZZ_CHECK(!quiesced);
      auto m = stun::decode(out.bytes);
      PORTHOLE_FUZZ_CHECK(m.ok());
      PORTHOLE_FUZZ_CHECK(m->method == stun::method::binding);
      PORTHOLE_FUZZ_CHECK(m->has_fingerprint);
      if (m->message_class == stun::MessageClass::request) {
        PORTHOLE_FUZZ_CHECK(m->username == std::optional<std::string>("bbbb:aaaa"));
        PORTHOLE_FUZZ_CHECK(m->priority.has_value());
        PORTHOLE_FUZZ_CHECK(stun::check_integrity(out.bytes, *m, key(Key::peer)).ok());
        if (signing)
          PORTHOLE_FUZZ_CHECK(signed_by(out.bytes, *m, signer(Signer::local).public_key(),
                                        porthole::detail::kIceCheckSignatureLabel));
        latest_check = m->transaction_id;
      } else {
        PORTHOLE_FUZZ_CHECK(kind == 0 || kind == 1);
        PORTHOLE_FUZZ_CHECK(!(kind == 1 && wrong_key));
        PORTHOLE_FUZZ_CHECK(!other_signer);
        // Signed mode answers only signed checks: a raw datagram (kind 0) cannot carry
        // the peer's signature, so it is never answered either.
        if (signing) {
          PORTHOLE_FUZZ_CHECK(kind == 1);
          PORTHOLE_FUZZ_CHECK(signed_by(out.bytes, *m, signer(Signer::local).public_key(),
                                        porthole::detail::kIceAnswerSignatureLabel));
        }
        PORTHOLE_FUZZ_CHECK(out.to == from);
        PORTHOLE_FUZZ_CHECK(stun::check_integrity(out.bytes, *m, key(Key::local)).ok());
      }
    }
    if (agent.quiesced()) PORTHOLE_FUZZ_CHECK(!agent.next_wakeup());
  }
  (void)agent.report();
  (void)agent.selected();
  return 0;
}
