// The tunnel's framing inside QUIC (docs/tunnel.md), pure: bytes to structs and back.
//  - A stream header, the first 4 bytes of every client-initiated bidirectional stream:
//    "P1" and the exposed TCP port it is for (big-endian).
//  - A tunnel datagram (RFC 9221 DATAGRAM payload): the exposed UDP port, a flow ID
//    (one per local UDP source on the connecting side), then the UDP payload.
//  - The exposed-port list the exposing side sends on its first unidirectional stream:
//    "PL", a count, then per port its number and 0 (tcp) or 1 (udp).
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <vector>

#include "porthole/error.hpp"
#include "porthole/tunnel.hpp"

namespace porthole::detail::tunnel {

inline constexpr std::size_t kStreamHeaderSize = 4;
inline constexpr std::size_t kDatagramHeaderSize = 4;
// An exposed-port list longer than this is refused (a hostile peer's allocation bound).
inline constexpr std::size_t kMaxExposedPorts = 1024;

std::array<std::uint8_t, kStreamHeaderSize> encode_stream_header(std::uint16_t port);
// The port, or nothing while fewer than 4 bytes have arrived; Errc::refused when the
// bytes are not a header ("P1" missing, port 0).
Result<std::optional<std::uint16_t>> decode_stream_header(std::span<const std::uint8_t> bytes);

struct TunnelDatagram {
  std::uint16_t port = 0;
  std::uint16_t flow = 0;
  std::span<const std::uint8_t> payload;  // into the decoded bytes
};
std::vector<std::uint8_t> encode_datagram(std::uint16_t port, std::uint16_t flow,
                                          std::span<const std::uint8_t> payload);
// Errc::refused when shorter than the header or the port is 0.
Result<TunnelDatagram> decode_datagram(std::span<const std::uint8_t> bytes);

std::vector<std::uint8_t> encode_port_list(std::span<const ExposedPort> ports);
// The list once it is complete (its stream may arrive in pieces): nothing while more
// bytes are needed, Errc::refused when malformed (bad magic, port 0, a protocol other
// than 0 or 1, more than kMaxExposedPorts, bytes after the end).
Result<std::optional<std::vector<ExposedPort>>> decode_port_list(
    std::span<const std::uint8_t> bytes);

}  // namespace porthole::detail::tunnel
