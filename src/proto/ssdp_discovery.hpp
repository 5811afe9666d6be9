// Our own SSDP discovery of the gateway's IGD. libminiupnpc's upnpDiscover() never
// returns in under about a second; miniupnpd answers an M-SEARCH after ~50 ms, so
// returning on the first valid answer makes `open --via upnp` take tens of milliseconds.
#pragma once

#include <chrono>
#include <string>

#include "codec/url_check.hpp"
#include "net/deadline.hpp"
#include "porthole/error.hpp"
#include "proto/port_mapper.hpp"

namespace porthole::detail {

struct IgdLocation {
  std::string location;  // LOCATION as the device sent it (passed check_device_url)
  HttpUrl url;           // the same, parsed: host is the gateway
  // The search target it answered (IGD:1/2, WANIPConnection:1/2, ...) and its SERVER
  // header: untrusted, so already escaped with printable_excerpt and cut at 256.
  std::string st;
  std::string server;
  IpAddress from_ip;                     // who answered (may differ from the gateway: HA routers)
  std::chrono::milliseconds elapsed{0};  // from the first M-SEARCH to this answer
};

// Sends M-SEARCH from one UDP socket, unicast to gw.gateway_ip:gw.ssdp_port and
// multicast to 239.255.255.250:1900 (TTL 2, via gw.local_ip): for IGD:1 and
// WANIPConnection:1 at 0 ms, then for IGD:1, IGD:2, WANIPConnection:1 and :2 at 200 and
// 600 ms while time remains. Returns
// on the first answer that parses, denotes an IGD and whose LOCATION is on the gateway
// (check_device_url, no LAN-subnet allowance). Answers from another source port or
// another IP than the gateway are fine as long as LOCATION is on the gateway.
// Garbage, other devices, duplicates and hostile LOCATIONs are logged (debug) and
// ignored. No multicast is sent when the gateway is a loopback address (tests with a
// fake responder on 127.0.0.1 and gw.ssdp_port set to its port).
// Errors: Errc::no_service when nothing valid came before the deadline (naming the
// last refused LOCATION, if any); Errc::usage for a gateway that is not an IPv4
// address; Errc::internal for local socket failures.
Result<IgdLocation> discover_igd(const GatewayInfo& gw, Deadline deadline);

}  // namespace porthole::detail
