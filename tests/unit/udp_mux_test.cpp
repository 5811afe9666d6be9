// The UDP mux: classify_datagram() on STUN, TURN ChannelData and QUIC (fixed bit
// cleared included), and the socket wrapper over loopback with several users.
#include <catch2/catch.hpp>

#include <poll.h>

#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

#include "codec/stun_codec.hpp"
#include "net/bound_udp_socket.hpp"
#include "net/udp_mux.hpp"
#include "ip_literal.hpp"

using porthole::test::ip;

namespace stun = porthole::detail::stun;
using porthole::Endpoint;
using porthole::detail::classify_datagram;
using porthole::detail::DatagramKind;
using Bytes = std::vector<std::uint8_t>;

namespace {

const stun::TransactionId kId = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12};

Endpoint ep(const std::string& text) { return *Endpoint::parse(text); }

const Endpoint kTurn = ep("203.0.113.50:3478");
const Endpoint kPeer = ep("198.51.100.7:40000");

DatagramKind kind(const Bytes& b, const Endpoint& from = kPeer) {
  const Endpoint servers[] = {kTurn};
  return classify_datagram(b, from, servers);
}

Bytes binding(bool fingerprint) { return stun::encode_binding_request({kId, {}, "", fingerprint}); }

// A QUIC short-header packet (RFC 9000 s17.3.1) as ngtcp2 sends it with the fixed bit
// greased to 0 (RFC 9287): 0b00100001 (spin bit, 2-byte packet number), an 8-byte
// destination connection ID, then protected bytes.
Bytes quic_short_fixed_bit_cleared(std::uint8_t first = 0x21) {
  Bytes b = {first, 0xde, 0xad, 0xbe, 0xef, 0x01, 0x02, 0x03, 0x04, 0x5a, 0x5b};
  for (int i = 0; i < 40; ++i) b.push_back(static_cast<std::uint8_t>(i * 37 + 11));
  return b;
}

// ChannelData (RFC 8656 s12.4): channel 0x4001, 5 bytes of data, padded to 8.
const Bytes kChannelData = {0x40, 0x01, 0x00, 0x05, 'h', 'e', 'l', 'l', 'o', 0, 0, 0};

}  // namespace

TEST_CASE("UDP mux: STUN with and without FINGERPRINT", "[udp_mux]") {
  CHECK(kind(binding(false)) == DatagramKind::stun);
  CHECK(kind(binding(true)) == DatagramKind::stun);
  Bytes broken = binding(true);
  broken.back() ^= 1;  // FINGERPRINT wrong: not STUN, whatever it looks like
  CHECK(kind(broken) == DatagramKind::quic);
  Bytes bad_length = binding(false);
  bad_length.push_back(0);
  bad_length.push_back(0);
  bad_length.push_back(0);
  bad_length.push_back(0);  // 4 bytes the Message Length does not count
  CHECK(kind(bad_length) == DatagramKind::quic);
  Bytes no_cookie = binding(false);
  no_cookie[4] = 0;
  CHECK(kind(no_cookie) == DatagramKind::quic);
  Bytes truncated_attribute = binding(true);
  truncated_attribute[22] = 0x00;
  truncated_attribute[23] = 0x40;  // FINGERPRINT claims 64 bytes
  CHECK(kind(truncated_attribute) == DatagramKind::quic);
}

TEST_CASE("UDP mux: QUIC with the fixed bit cleared is not taken for STUN or TURN", "[udp_mux]") {
  for (std::uint8_t first : {std::uint8_t{0x21}, std::uint8_t{0x00}, std::uint8_t{0x01},
                             std::uint8_t{0x03}, std::uint8_t{0x3f}, std::uint8_t{0x41},
                             std::uint8_t{0x4f}, std::uint8_t{0x80}, std::uint8_t{0xc3}}) {
    INFO("first byte " << int{first});
    CHECK(kind(quic_short_fixed_bit_cleared(first)) == DatagramKind::quic);
  }
  // Exactly 20 bytes starting 0x00 with a Message Length of 0, but no magic cookie.
  Bytes twenty(20, 0);
  CHECK(kind(twenty) == DatagramKind::quic);
}

TEST_CASE("UDP mux: ChannelData and STUN from the TURN server, the same bytes elsewhere",
          "[udp_mux]") {
  CHECK(kind(kChannelData, kTurn) == DatagramKind::turn);
  const Bytes unpadded(kChannelData.begin(), kChannelData.begin() + 9);  // s12.5: optional
  CHECK(kind(unpadded, kTurn) == DatagramKind::turn);
  CHECK(kind(binding(true), kTurn) == DatagramKind::turn);
  CHECK(kind(kChannelData, kPeer) == DatagramKind::quic);
  // Same address, another port: not the TURN server.
  CHECK(kind(kChannelData, ep("203.0.113.50:3479")) == DatagramKind::quic);
  // From the TURN server but neither: a channel outside 0x4000..0x4fff, a length lie.
  CHECK(kind(Bytes{0x50, 0x00, 0x00, 0x01, 'x', 0, 0, 0}, kTurn) == DatagramKind::drop);
  CHECK(kind(Bytes{0x40, 0x01, 0x00, 0x09, 'x', 0, 0, 0}, kTurn) == DatagramKind::drop);
  CHECK(kind(Bytes{0x40, 0x01, 0x00, 0x00, 0, 0, 0, 0, 0}, kTurn) == DatagramKind::drop);
  CHECK(kind(quic_short_fixed_bit_cleared(), kTurn) == DatagramKind::drop);
}

TEST_CASE("UDP mux: short and garbage datagrams", "[udp_mux]") {
  CHECK(kind(Bytes{}) == DatagramKind::drop);
  CHECK(kind(Bytes{}, kTurn) == DatagramKind::drop);
  CHECK(kind(Bytes{0x00}) == DatagramKind::quic);
  CHECK(kind(Bytes{0x40, 0x01, 0x00}, kTurn) == DatagramKind::drop);
  CHECK(kind(Bytes(19, 0)) == DatagramKind::quic);
  CHECK(kind(Bytes(1500, 0xff)) == DatagramKind::quic);
  const Bytes header_only = binding(false);
  REQUIRE(header_only.size() == 20);
  CHECK(kind(header_only) == DatagramKind::stun);  // a bare header is a valid message
}

TEST_CASE("UDP mux over loopback: two users and the TURN server share one socket", "[udp_mux]") {
  auto socket = porthole::detail::open_bound_udp_socket("127.0.0.1", 0);
  REQUIRE(socket.ok());
  porthole::detail::UdpMux mux(std::move(*socket));
  const Endpoint mux_at{*porthole::IpAddress::parse("127.0.0.1"), mux.local_port()};
  REQUIRE(mux_at.port != 0);

  auto open_peer = [] {
    auto s = porthole::detail::open_bound_udp_socket("127.0.0.1", 0);
    REQUIRE(s.ok());
    return std::move(*s);
  };
  auto stun_peer = open_peer();
  auto quic_peer = open_peer();
  auto turn_server = open_peer();
  const Endpoint stun_at = ep("127.0.0.1:" + std::to_string(stun_peer.local_port()));
  const Endpoint quic_at = ep("127.0.0.1:" + std::to_string(quic_peer.local_port()));
  const Endpoint turn_at = ep("127.0.0.1:" + std::to_string(turn_server.local_port()));
  mux.add_turn_server(turn_at);

  std::vector<std::pair<Bytes, Endpoint>> stun_got, quic_got, turn_got;
  mux.on_stun([&](std::span<const std::uint8_t> b, const Endpoint& from) {
    stun_got.emplace_back(Bytes(b.begin(), b.end()), from);
  });
  mux.on_quic([&](std::span<const std::uint8_t> b, const Endpoint& from) {
    quic_got.emplace_back(Bytes(b.begin(), b.end()), from);
  });
  mux.on_turn([&](std::span<const std::uint8_t> b, const Endpoint& from) {
    turn_got.emplace_back(Bytes(b.begin(), b.end()), from);
  });

  const Bytes request = binding(true);
  const Bytes quic = quic_short_fixed_bit_cleared();
  REQUIRE(stun_peer.send_to(request, {ip("127.0.0.1"), mux_at.port}).ok());
  REQUIRE(quic_peer.send_to(quic, {ip("127.0.0.1"), mux_at.port}).ok());
  REQUIRE(turn_server.send_to(kChannelData, {ip("127.0.0.1"), mux_at.port}).ok());
  REQUIRE(quic_peer.send_to(Bytes{}, {ip("127.0.0.1"), mux_at.port}).ok());  // dropped

  // Poll the way a reactor would, until the four datagrams are read (bounded).
  std::size_t read = 0;
  for (int rounds = 0; read < 4 && rounds < 50; ++rounds) {
    pollfd pfd{mux.fd(), POLLIN, 0};
    REQUIRE(::poll(&pfd, 1, 100) >= 0);
    auto n = mux.on_readable();
    REQUIRE(n.ok());
    read += *n;
  }
  REQUIRE(read == 4);
  REQUIRE(stun_got.size() == 1);
  CHECK(stun_got[0].first == request);
  CHECK(stun_got[0].second == stun_at);
  REQUIRE(quic_got.size() == 1);
  CHECK(quic_got[0].first == quic);
  CHECK(quic_got[0].second == quic_at);
  REQUIRE(turn_got.size() == 1);
  CHECK(turn_got[0].first == kChannelData);
  CHECK(turn_got[0].second == turn_at);
  CHECK(mux.dropped() == 1);
  auto idle = mux.on_readable();  // nothing waiting: returns at once
  REQUIRE(idle.ok());
  CHECK(*idle == 0);

  // Both users answer through the mux's one socket: the peers see the same source.
  const auto deadline = porthole::detail::Clock::now() + std::chrono::seconds(5);
  REQUIRE(mux.send_to(Bytes{'s'}, stun_at).ok());
  REQUIRE(mux.send_to(Bytes{'q'}, quic_at).ok());
  auto at_stun = stun_peer.receive(deadline);
  auto at_quic = quic_peer.receive(deadline);
  REQUIRE(at_stun.ok());
  REQUIRE(at_quic.ok());
  CHECK(at_stun->bytes == Bytes{'s'});
  CHECK(at_quic->bytes == Bytes{'q'});
  CHECK(at_stun->from == mux_at);  // UdpSocket's Datagram carries the parsed source
  CHECK(at_quic->from == mux_at);

  // Once the TURN server is forgotten, its ChannelData is just more QUIC-or-junk.
  mux.remove_turn_server(turn_at);
  REQUIRE(turn_server.send_to(kChannelData, {ip("127.0.0.1"), mux_at.port}).ok());
  read = 0;
  for (int rounds = 0; read < 1 && rounds < 50; ++rounds) {
    pollfd pfd{mux.fd(), POLLIN, 0};
    REQUIRE(::poll(&pfd, 1, 100) >= 0);
    read += *mux.on_readable();
  }
  CHECK(quic_got.size() == 2);
  CHECK(turn_got.size() == 1);
}
