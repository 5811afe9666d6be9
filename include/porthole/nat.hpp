// porthole::discover_nat: the public address and how the NAT in front of this host
// behaves (RFC 5780 behaviour discovery over STUN), plus double-NAT detection.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "porthole/porthole.hpp"

namespace porthole {

// RFC 4787 / RFC 5780 s4.3-4.4 behaviour, for mapping and for filtering.
enum class NatBehaviour {
  unknown,  // not testable: the server has no RFC 5780 support
  endpoint_independent,
  address_dependent,
  address_and_port_dependent,
};
// "unknown", "endpoint-independent", "address-dependent", "address-and-port-dependent".
const char* nat_behaviour_name(NatBehaviour b) noexcept;

// The classic (RFC 3489) names: full cone = EIM + EIF, restricted cone = EIM + ADF,
// port-restricted cone = EIM + APDF, symmetric = any mapping that is not EIM.
enum class NatType { unknown, none, full_cone, restricted_cone, port_restricted_cone, symmetric };
// "unknown", "none", "full-cone", "restricted-cone", "port-restricted-cone", "symmetric".
const char* nat_type_name(NatType t) noexcept;

struct NatReport {
  std::string server;                // the STUN server used, as configured ("HOST[:PORT]")
  std::string server_address;        // "IP:PORT" it resolved to
  std::string server_other_address;  // its RFC 5780 OTHER-ADDRESS; empty when none
  std::string server_software;       // its SOFTWARE, sanitised; may be empty
  IpAddress public_ip;               // this host as the server saw it
  std::uint16_t public_port = 0;
  std::optional<IpAddress> local_ip;  // the local end of that exchange, if known
  std::uint16_t local_port = 0;
  NatBehaviour mapping = NatBehaviour::unknown;
  NatBehaviour filtering = NatBehaviour::unknown;
  NatType nat_type = NatType::unknown;
  bool port_preserved = false;  // public_port == local_port
  // The gateway's own external address (NAT-PMP or UPnP) differs from public_ip:
  // another NAT sits between the gateway and the internet (double NAT, CGNAT).
  // Empty when the gateway could not tell (no NAT-PMP/UPnP answer with an address).
  std::optional<bool> double_nat;
  std::optional<IpAddress> gateway;              // the default route's gateway, if any
  std::optional<IpAddress> gateway_external_ip;  // nullopt when unknown
  std::optional<Protocol> gateway_external_ip_via;
  std::chrono::milliseconds rtt{0};            // round trip of the first Binding
  std::chrono::milliseconds negative_wait{0};  // how long an answer that may never come was awaited
  std::chrono::milliseconds elapsed{0};        // the whole discovery
  std::vector<std::string> warnings;
};

// Asks the servers of options.stun_servers (else default_stun_servers()) in order
// until one answers, then runs the RFC 5780 mapping and filtering tests against it
// concurrently, while the gateway is asked for its external address (NAT-PMP, UPnP).
// Errors: Errc::usage for a malformed server entry; Errc::no_service when no server
// answers (or no name resolves), with every server's reason in the message.
Result<NatReport> discover_nat(const Options& options);

}  // namespace porthole
