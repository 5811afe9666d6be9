// Host name to IPv4 address, for servers the user names (--stun HOST[:PORT]).
#pragma once

#include <string>

#include "porthole/error.hpp"
#include "porthole/ip_address.hpp"

namespace porthole::detail {

// An IPv4 literal is returned as is, without a lookup. Otherwise getaddrinfo(3) with
// AF_INET, taking the first address. Errc::no_service when the name does not resolve.
// (getaddrinfo has no deadline of its own; a name is resolved before any protocol
// traffic, and the resolver's own timeouts bound it.)
Result<IpAddress> resolve_ipv4(const std::string& host);

}  // namespace porthole::detail
