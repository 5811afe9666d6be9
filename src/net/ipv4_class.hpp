// Classifying IPv4 addresses that routers report as their external address.
#pragma once

#include <string_view>

#include "porthole/ip_address.hpp"

namespace porthole::detail {

// Empty, not a dotted quad, 0.0.0.0, loopback, multicast or broadcast: an "external
// address" like that is garbage and is refused: no one could reach a mapping there
// (routers without a WAN address report 0.0.0.0 or an empty NewExternalIPAddress).
bool is_unusable_external_ip(std::string_view ip);  // text: parsed first, unparsable is unusable
// The same for a parsed address; any IPv6 address counts as unusable here.
bool is_unusable_external_ip(const IpAddress& ip);

// Private (RFC 1918), shared CGNAT space (RFC 6598), link-local, documentation
// (RFC 5737) and other special-purpose ranges: a gateway whose external address is one
// of these sits behind another NAT (miniupnpc's GetValidIGD returns 2 for it).
bool is_reserved_ipv4(std::string_view ip);
bool is_reserved_ipv4(const IpAddress& ip);  // true for any IPv6 address

}  // namespace porthole::detail
