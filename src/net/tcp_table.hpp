// This host's TCP connections as the kernel lists them (/proc/net/tcp, per network
// namespace): how `open --verify` proves that a connection from the verification
// server reached a port the user's own service listens on.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace porthole::detail {

// True when /proc/net/tcp lists a connection (any state but LISTEN) whose local port is
// local_port and whose remote end is remote_ip:remote_port.
bool tcp_connection_listed(std::uint16_t local_port, const std::string& remote_ip,
                           std::uint16_t remote_port);

// The same test on the text of a /proc/net/tcp file (for the unit tests).
bool tcp_connection_listed_in(std::string_view table, std::uint16_t local_port,
                              const std::string& remote_ip, std::uint16_t remote_port);

}  // namespace porthole::detail
