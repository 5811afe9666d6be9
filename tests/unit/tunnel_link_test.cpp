// TunnelLink (src/tunnel/tunnel_link.hpp) over a QuicConnection with no peer: what it
// hands to its send function when the connection ends from our side.
#include <catch2/catch.hpp>

#include <array>
#include <cstdint>
#include <memory>
#include <optional>
#include <vector>

#include "net/reactor.hpp"
#include "porthole/identity.hpp"
#include "tunnel/quic_connection.hpp"
#include "tunnel/tunnel_link.hpp"

using namespace porthole;
using namespace porthole::detail;

TEST_CASE("TunnelLink: closing sends the CONNECTION_CLOSE before reporting the close", "[tunnel]") {
  std::array<std::uint8_t, 32> seed{};
  seed.fill(7);
  auto me = Identity::from_seed(seed);
  REQUIRE(me);
  seed.fill(8);
  auto them = Identity::from_seed(seed);
  REQUIRE(them);
  Reactor reactor;
  QuicConfig config;
  config.identity = &*me;
  config.expect_peer = them->id();
  config.local = *Endpoint::parse("127.0.0.1:40001");
  config.remote = *Endpoint::parse("127.0.0.2:40002");
  auto conn = QuicConnection::client(config, reactor.now());
  REQUIRE(conn);
  std::vector<std::vector<std::uint8_t>> sent;
  std::optional<std::size_t> sent_when_closed;
  TunnelLink::Callbacks cb;
  cb.closed = [&](const Error&, bool by_peer, std::uint64_t) {
    CHECK_FALSE(by_peer);
    sent_when_closed = sent.size();
  };
  TunnelLink link(
      reactor, std::move(*conn),
      [&](const DatagramBuffer& packets) {
        for (std::size_t i = 0; i < packets.size(); ++i)
          sent.emplace_back(packets[i].begin(), packets[i].end());
      },
      TunnelLinkConfig{}, cb);
  link.pump();
  const std::size_t first_flight = sent.size();
  REQUIRE(first_flight > 0);  // the client's Initial
  link.close(kQuicCloseNormal, "bye");
  CHECK(link.closed());
  REQUIRE(sent_when_closed);
  // One more datagram (the CONNECTION_CLOSE, RFC 9000 s10.2), already out when the
  // owner heard of the close and might have closed its socket.
  CHECK(*sent_when_closed == first_flight + 1);
  CHECK(sent.size() == first_flight + 1);
}
