// The forwarding state machine of one TCP connection on one QUIC stream
// (tunnel/stream_relay.hpp): backpressure both ways, half-close both ways, the stream
// header taken off on the exposing side and counted as consumed.
#include <catch2/catch.hpp>

#include <cstdint>
#include <vector>

#include "codec/tunnel_codec.hpp"
#include "tunnel/stream_relay.hpp"

using porthole::Errc;
using porthole::detail::StreamRelay;
using Bytes = std::vector<std::uint8_t>;

TEST_CASE("relay, connecting side: the header goes first, then the TCP bytes", "[tunnel]") {
  auto header = porthole::detail::tunnel::encode_stream_header(80);
  StreamRelay r(header, false);
  CHECK(Bytes(r.to_stream().begin(), r.to_stream().end()) == Bytes{'P', '1', 0, 80});
  r.on_tcp_data(Bytes{'G', 'E', 'T'});
  CHECK(r.to_stream().size() == 7);
  // The stream takes only part of it (flow control): the rest waits, in order.
  r.took_by_stream(5, false);
  CHECK(Bytes(r.to_stream().begin(), r.to_stream().end()) == Bytes{'E', 'T'});
  CHECK_FALSE(r.fin_pending());
  r.on_tcp_eof();
  CHECK(r.fin_pending());
  CHECK(r.tcp_read_room() == 0);  // nothing more is read after EOF
  // FIN offered with bytes that were not all taken is not sent.
  r.took_by_stream(1, true);
  CHECK(r.fin_pending());
  r.took_by_stream(1, true);
  CHECK_FALSE(r.fin_pending());
  CHECK_FALSE(r.done());  // the other direction is still open
  REQUIRE(r.on_stream_data(Bytes{'O', 'K'}, true).ok());
  CHECK(r.wrote_to_tcp(2) == 2);
  CHECK(r.shutdown_pending());
  r.did_shutdown();
  CHECK(r.done());
}

TEST_CASE("relay: TCP reading stops while the stream does not take the bytes", "[tunnel]") {
  StreamRelay r({}, false);
  CHECK(r.tcp_read_room() == StreamRelay::kTcpBuffer);
  Bytes chunk(StreamRelay::kTcpBuffer - 10, 7);
  r.on_tcp_data(chunk);
  CHECK(r.tcp_read_room() == 10);
  r.on_tcp_data(Bytes(10, 8));
  CHECK(r.tcp_read_room() == 0);
  r.took_by_stream(100, false);
  CHECK(r.tcp_read_room() == 100);
  r.took_by_stream(StreamRelay::kTcpBuffer, false);
  CHECK(r.tcp_read_room() == StreamRelay::kTcpBuffer);
  CHECK(r.to_stream().empty());
}

TEST_CASE("relay: stream bytes are consumed only as TCP takes them", "[tunnel]") {
  StreamRelay r({}, false);
  REQUIRE(r.on_stream_data(Bytes(1000, 1), false).ok());
  CHECK(r.to_tcp().size() == 1000);
  // A partial write: only those bytes count for QUIC's window.
  CHECK(r.wrote_to_tcp(300) == 300);
  CHECK(r.to_tcp().size() == 700);
  REQUIRE(r.on_stream_data(Bytes(5, 2), true).ok());
  CHECK_FALSE(r.shutdown_pending());  // bytes still queued before the FIN
  CHECK(r.wrote_to_tcp(705) == 705);
  CHECK(r.shutdown_pending());
}

TEST_CASE("relay, exposing side: the header names the port and counts as consumed", "[tunnel]") {
  StreamRelay r({}, true);
  REQUIRE(r.on_stream_data(Bytes{'P', '1'}, false).ok());
  CHECK_FALSE(r.target_port());
  REQUIRE(r.on_stream_data(Bytes{0x1f, 0x90, 'h', 'i'}, false).ok());
  REQUIRE(r.target_port());
  CHECK(*r.target_port() == 8080);
  CHECK(Bytes(r.to_tcp().begin(), r.to_tcp().end()) == Bytes{'h', 'i'});
  // The first write reports the 4 header bytes with its own 2.
  CHECK(r.wrote_to_tcp(2) == 6);
  CHECK(r.wrote_to_tcp(0) == 0);
}

TEST_CASE("relay, exposing side: a stream that is not a tunnel stream is refused", "[tunnel]") {
  StreamRelay bad({}, true);
  CHECK(bad.on_stream_data(Bytes{'G', 'E', 'T', ' ', '/'}, false).error().code == Errc::refused);
  StreamRelay cut({}, true);
  CHECK(cut.on_stream_data(Bytes{'P', '1', 0}, true).error().code == Errc::refused);
  StreamRelay zero({}, true);
  CHECK(zero.on_stream_data(Bytes{'P', '1', 0, 0}, false).error().code == Errc::refused);
}

TEST_CASE("relay, exposing side: buffers handed over whole keep the byte order", "[tunnel]") {
  StreamRelay r({}, true);
  Bytes first{'P', '1', 0x1f, 0x90, 'a', 'b'};
  REQUIRE(r.on_stream_data(std::move(first), false).ok());  // the header is taken off
  REQUIRE(r.target_port() == 8080);
  // Bytes still waiting for TCP: the next buffer goes behind them.
  REQUIRE(r.on_stream_data(Bytes{'c', 'd'}, false).ok());
  CHECK(Bytes(r.to_tcp().begin(), r.to_tcp().end()) == Bytes{'a', 'b', 'c', 'd'});
  CHECK(r.wrote_to_tcp(4) == 8);  // the 4 header bytes are reported consumed with them
  // Nothing waiting: the buffer itself becomes what goes to TCP.
  Bytes next{'e', 'f', 'g'};
  const auto* where = next.data();
  REQUIRE(r.on_stream_data(std::move(next), true).ok());
  CHECK(r.to_tcp().data() == where);
  CHECK(r.wrote_to_tcp(3) == 3);
  CHECK(r.shutdown_pending());
}
