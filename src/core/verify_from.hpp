// The UDP proof of porthole::verify (include/porthole/verify.hpp) from a socket the
// caller already holds on the mapping's internal port, for a program that has bound it
// before the mapping was made (`porthole expose --verify`): the same RFC 5780 s7.2
// CHANGE-REQUEST test, blocking on that socket until options.timeout.
#pragma once

#include "net/udp_socket.hpp"
#include "porthole/verify.hpp"

namespace porthole::detail {

// As verify() for a UDP mapping; Errc::usage for a TCP one or a mapping without ports.
Result<Verification> verify_udp_from(UdpSocket& socket, const Options& options,
                                     const Mapping& mapping);

}  // namespace porthole::detail
