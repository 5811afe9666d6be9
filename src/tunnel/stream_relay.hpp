// One TCP connection carried on one QUIC stream (docs/tunnel.md), as a sans-IO state
// machine: the caller reads and writes the TCP socket and the stream, and asks the
// relay what to do next. Backpressure both ways:
//  - TCP -> stream: the caller reads the socket only while tcp_read_room() > 0, which is
//    while the bytes read before have not all been taken by the stream (QUIC flow and
//    congestion control decide how much it takes).
//  - stream -> TCP: received stream bytes wait in the relay until the socket takes them;
//    only then does the caller tell QUIC they are consumed (wrote_tcp() returns how
//    many), so the peer's send window grows only as fast as the TCP side drains.
// Half-close both ways: TCP EOF becomes the stream's FIN once every byte went out; the
// stream's FIN becomes shutdown(SHUT_WR) once every byte is written.
//
// The exposing side starts with the stream header still to come (expect_header): the
// first 4 stream bytes name the target port and are not relayed.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <vector>

#include "porthole/error.hpp"

namespace porthole::detail {

class StreamRelay {
 public:
  // Bytes read from TCP that may wait for the stream (the TCP read stops beyond).
  static constexpr std::size_t kTcpBuffer = 256 * 1024;

  // `prefix`: bytes the stream starts with (the client's header). `expect_header`: the
  // stream's first bytes are a header to take off (the server).
  StreamRelay(std::span<const std::uint8_t> prefix, bool expect_header);

  // --- TCP -> stream
  std::size_t tcp_read_room() const;
  void on_tcp_data(std::span<const std::uint8_t> bytes);
  void on_tcp_eof() { tcp_eof_ = true; }
  // The bytes for the stream, and whether the FIN goes with them (TCP EOF seen).
  std::span<const std::uint8_t> to_stream() const;
  bool fin_pending() const { return tcp_eof_ && !fin_sent_; }
  // The stream took `n` bytes of to_stream() (and the FIN with them, when `fin`).
  void took_by_stream(std::size_t n, bool fin);

  // --- stream -> TCP
  // Errc::refused when the header is not one (the caller resets the stream).
  Status on_stream_data(std::span<const std::uint8_t> bytes, bool fin);
  // The same, taking the buffer itself when nothing is waiting for TCP (no copy).
  Status on_stream_data(std::vector<std::uint8_t>&& bytes, bool fin);
  // The target port once the whole header is in (expect_header only).
  std::optional<std::uint16_t> target_port() const { return port_; }
  std::span<const std::uint8_t> to_tcp() const;
  // The socket took `n` bytes of to_tcp(); returns how many stream bytes that makes
  // consumed for QUIC's flow control (the header's 4 bytes count with the first).
  std::size_t wrote_to_tcp(std::size_t n);
  bool shutdown_pending() const { return stream_fin_ && to_tcp().empty() && !tcp_shut_; }
  void did_shutdown() { tcp_shut_ = true; }
  // Header bytes received but not yet reported consumed (to release with the first write,
  // or at once when no data follows).
  std::size_t take_unreported_header();

  // Both directions have ended (FIN sent and TCP write side shut down).
  bool done() const { return fin_sent_ && tcp_shut_; }
  bool stream_finished() const { return stream_fin_; }

 private:
  std::vector<std::uint8_t> to_stream_;
  std::size_t to_stream_off_ = 0;
  bool tcp_eof_ = false;
  bool fin_sent_ = false;

  bool expect_header_;
  std::vector<std::uint8_t> header_;
  std::optional<std::uint16_t> port_;
  std::size_t header_unreported_ = 0;
  std::vector<std::uint8_t> to_tcp_;
  std::size_t to_tcp_off_ = 0;
  bool stream_fin_ = false;
  bool tcp_shut_ = false;
};

}  // namespace porthole::detail
