// Finding the gateway: the default route's next hop, and our address towards it.
#pragma once

#include <string>

#include "porthole/error.hpp"

namespace porthole::detail {

// The IPv4 gateway of the default route, read from /proc/net/route (which is per
// network namespace, so this also works inside `ip netns exec`).
Result<std::string> default_gateway();

// The local address the kernel would use to reach `ip` (UDP connect, no packet sent).
Result<std::string> local_ip_towards(const std::string& ip);

// Prefix length of the interface that holds `local_ip` (for the LAN-subnet URL policy).
int prefix_length_of(const std::string& local_ip);

}  // namespace porthole::detail
