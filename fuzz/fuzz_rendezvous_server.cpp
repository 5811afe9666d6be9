// libFuzzer target: the rendezvous responder (proto/rendezvous_server.hpp) fed a
// sequence of datagrams from four sources, with the time moving on. Random bytes
// rarely carry a valid signature, so a step may also have the target build a real
// message (a signed Register with the current challenge, a signed offer or answer
// between three known identities) and then flip the bytes the input names: the fuzzer
// reaches the online table, the relay and the pending sessions, not only the decoder.
// Properties: at most two datagrams out, each a well-formed rendezvous message; the
// first goes to the source; an indication goes only to an address where its receiver
// is registered (an offer) or to the offerer's source (an answer); the tables stay
// within their bounds.
//
// Input, repeated: op (1 byte: bits 0-1 source, bits 2-4 kind, bits 5-7 seconds to
// wait first), a (1 byte), b (1 byte), then for a raw datagram a 2-byte length and the
// bytes, else a 1-byte count of (offset, xor) byte pairs applied to the built message.
#include <array>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

#include "codec/rendezvous_codec.hpp"
#include "fuzz_check.hpp"
#include "porthole/identity.hpp"
#include "proto/rendezvous_server.hpp"

namespace rv = porthole::detail::rendezvous;
namespace stun = porthole::detail::stun;
using porthole::Endpoint;
using porthole::Identity;
using porthole::IpAddress;
using porthole::detail::Clock;
using porthole::detail::RendezvousConfig;
using porthole::detail::RendezvousResponder;
using Bytes = std::vector<std::uint8_t>;

namespace {

constexpr std::size_t kMaxPeers = 3;
constexpr std::size_t kMaxSessions = 4;

const std::array<Identity, 3>& identities() {
  static const std::array<Identity, 3> ids = [] {
    auto make = [](std::uint8_t fill) {
      std::array<std::uint8_t, 32> seed{};
      seed.fill(fill);
      return *Identity::from_seed(seed);
    };
    return std::array<Identity, 3>{make(1), make(2), make(3)};
  }();
  return ids;
}

Endpoint source(unsigned index) {
  return Endpoint{IpAddress::v4({198, 51, 100, static_cast<std::uint8_t>(1 + (index & 1))}),
                  static_cast<std::uint16_t>(40000 + index)};
}

class Input {
 public:
  explicit Input(std::span<const std::uint8_t> d) : d_(d) {}
  bool more() const { return pos_ < d_.size(); }
  std::uint8_t byte() { return pos_ < d_.size() ? d_[pos_++] : 0; }
  std::span<const std::uint8_t> take(std::size_t n) {
    n = std::min(n, d_.size() - pos_);
    auto out = d_.subspan(pos_, n);
    pos_ += n;
    return out;
  }

 private:
  std::span<const std::uint8_t> d_;
  std::size_t pos_ = 0;
};

Bytes encoded(const rv::Message& m) {
  auto b = rv::encode(m);
  return b ? *b : Bytes{};
}

rv::SignedDescription description(const Identity& from, const Identity& to, rv::Kind kind,
                                  std::uint8_t session) {
  rv::Description d;
  d.kind = kind;
  d.sender = from.id();
  d.receiver = to.id();
  d.session_id.fill(session);
  d.ufrag = "abcd";
  d.password = "0123456789abcdefghijkl";
  auto bytes = rv::encode_description(d);
  auto sig = from.sign(rv::description_signing_input(*bytes));
  return {*bytes, *sig};
}

// kind 0: raw; 1: Register hello; 2: signed Register; 3: signed Register, LIFETIME 0;
// 4: Connect a -> b; 5: Answer b -> a; 6: Connect with an answer inside; 7: Register
// signed by another identity.
Bytes build(unsigned kind, const Identity& a, const Identity& b, std::uint8_t session,
            const RendezvousResponder& r, const Endpoint& from, Clock::time_point now) {
  rv::Message m;
  m.message_class = stun::MessageClass::request;
  m.transaction_id.fill(session);
  if (kind <= 3 || kind == 7) {
    m.method = rv::method::register_peer;
    m.peer_id = a.id();
    if (kind == 1) return encoded(m);
    const Identity& signer = kind == 7 ? b : a;
    m.challenge = r.challenge_for(from, now);
    m.signature = *signer.sign(rv::registration_signing_input(a.id(), *m.challenge, from));
    m.lifetime = kind == 3 ? 0u : 30u + session;
    return encoded(m);
  }
  const bool offer = kind != 5;
  m.method = offer ? rv::method::connect : rv::method::answer;
  m.target_peer_id = b.id();
  auto s = description(a, b, kind == 4 ? rv::Kind::offer : rv::Kind::answer, session);
  m.description = s.bytes;
  m.signature = s.signature;
  return encoded(m);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  RendezvousConfig config;
  config.max_peers = kMaxPeers;
  config.max_sessions = kMaxSessions;
  config.secret = Bytes(32, 0x42);
  config.per_source_burst = 1000;
  RendezvousResponder r(config);
  Clock::time_point now = Clock::time_point{} + std::chrono::hours{1};
  Input in({data, size});
  for (int step = 0; step < 64 && in.more(); ++step) {
    const std::uint8_t op = in.byte();
    const std::uint8_t x = in.byte(), y = in.byte();
    now += std::chrono::seconds{(op >> 5) * 7};
    const Endpoint from = source(op & 3);
    const unsigned kind = (op >> 2) & 7;
    Bytes datagram;
    if (kind == 0) {
      const std::size_t n = (std::size_t{x} << 8 | y) & 0x7ff;
      auto raw = in.take(n);
      datagram.assign(raw.begin(), raw.end());
    } else {
      const auto& ids = identities();
      datagram = build(kind, ids[x % 3], ids[y % 3], static_cast<std::uint8_t>(x ^ y), r, from,
                       now);
      for (unsigned flips = in.byte() & 7; flips > 0; --flips) {
        const std::uint8_t at = in.byte(), mask = in.byte();
        if (!datagram.empty()) datagram[at % datagram.size()] ^= mask;
      }
    }
    const auto out = r.handle(datagram, from, now);
    PORTHOLE_FUZZ_CHECK(out.size() <= 2);
    for (std::size_t i = 0; i < out.size(); ++i) {
      auto m = rv::decode(out[i].bytes);
      PORTHOLE_FUZZ_CHECK(m.ok());
      PORTHOLE_FUZZ_CHECK(out[i].bytes.size() <= datagram.size() + 100);
      if (i == 0) {
        PORTHOLE_FUZZ_CHECK(out[i].to == from);
        PORTHOLE_FUZZ_CHECK(m->message_class != stun::MessageClass::indication);
        continue;
      }
      PORTHOLE_FUZZ_CHECK(m->message_class == stun::MessageClass::indication);
      auto d = rv::decode_description(*m->description);
      PORTHOLE_FUZZ_CHECK(d.ok());
      // An offer goes to where its receiver is online; an answer to where an offer
      // from its receiver came from, which was then that receiver's registered address.
      if (m->method == rv::method::connect)
        PORTHOLE_FUZZ_CHECK(r.address_of(d->receiver, now) == out[i].to);
      PORTHOLE_FUZZ_CHECK(r.address_of(d->sender, now) == from);
    }
    PORTHOLE_FUZZ_CHECK(r.online() <= kMaxPeers);
    PORTHOLE_FUZZ_CHECK(r.pending_sessions() <= kMaxSessions);
  }
  return 0;
}
