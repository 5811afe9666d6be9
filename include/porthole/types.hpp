// porthole: the value types shared by the library API and the CLI.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "porthole/error.hpp"
#include "porthole/ip_address.hpp"

namespace porthole {

enum class Protocol { pcp, natpmp, upnp };
enum class Transport { tcp, udp };
// What the user asked for with --via.
enum class Via { automatic, pcp, natpmp, upnp };

const char* protocol_name(Protocol p) noexcept;    // "pcp", "natpmp", "upnp"
const char* transport_name(Transport t) noexcept;  // "tcp", "udp"
std::optional<Protocol> parse_protocol(std::string_view s);
Result<Via> parse_via(std::string_view s);  // "auto" | "pcp" | "natpmp" | "upnp"
const char* via_name(Via v) noexcept;       // the same words back

// PORT as the user writes it: "N", "N/tcp" or "N/udp" (default tcp), 1..65535.
struct PortSpec {
  std::uint16_t port = 0;
  Transport transport = Transport::tcp;
};
Result<PortSpec> parse_port_spec(std::string_view text);

// Dotted-quad IPv4 check used for --gateway and for addresses routers send us.
bool is_ipv4_literal(std::string_view text);

// A server as the user writes it: "HOST" or "HOST:PORT" (HOST a DNS name or an IPv4
// literal). Used for --stun; the port defaults to default_port.
struct HostPort {
  std::string host;
  std::uint16_t port = 0;
};
Result<HostPort> parse_host_port(std::string_view text, std::uint16_t default_port);

// One port mapping, as installed on (or reported by) the gateway.
struct Mapping {
  Protocol protocol = Protocol::upnp;
  Transport transport = Transport::tcp;
  IpAddress internal_ip;
  std::uint16_t internal_port = 0;
  std::optional<IpAddress> external_ip;  // nullopt when the gateway did not tell
  std::uint16_t external_port = 0;
  std::uint32_t lifetime = 0;   // seconds granted; 0 = permanent
  std::int64_t expires_at = 0;  // unix seconds; 0 = permanent or unknown
  std::string description;
};

}  // namespace porthole
