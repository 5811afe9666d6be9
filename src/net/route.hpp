// Finding the gateway: the default route's next hop, and our address towards it.
#pragma once

#include <string>

#include "porthole/error.hpp"
#include "porthole/ip_address.hpp"

namespace porthole::detail {

// The IPv4 gateway of the default route, read from /proc/net/route (which is per
// network namespace, so this also works inside `ip netns exec`).
Result<IpAddress> default_gateway();

// The local address the kernel would use to reach `ip` (UDP connect, no packet sent).
Result<IpAddress> local_ip_towards(const IpAddress& ip);

// Prefix length of the interface that holds `local_ip` (for the LAN-subnet URL policy).
int prefix_length_of(const IpAddress& local_ip);

}  // namespace porthole::detail
