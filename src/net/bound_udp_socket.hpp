// A UdpSocket bound to a chosen local address and port: what a STUN server listens on,
// and what `open --verify` sends from (the mapped internal port), so STUN shows the
// mapping under test rather than a fresh one.
#pragma once

#include <cstdint>
#include <string>

#include "net/udp_socket.hpp"
#include "porthole/error.hpp"

namespace porthole::detail {

// An unconnected IPv4 UDP socket bound to ip:port ("0.0.0.0" for any address; port 0
// lets the kernel choose: read it back with UdpSocket::local_port()). Errors:
// Errc::usage when `ip` is not a dotted quad, Errc::internal when bind(2) fails
// (address in use, not an address of this host, ...), with the reason.
Result<UdpSocket> open_bound_udp_socket(const std::string& ip, std::uint16_t port);
// The same for a parsed address (Errc::usage when it is IPv6).
Result<UdpSocket> open_bound_udp_socket(const Endpoint& local);

}  // namespace porthole::detail
