// The interface every protocol client implements (libplum's strategy table, in C++):
// the mapping core asks PCP, NAT-PMP and UPnP through it, interchangeably.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "codec/igd_xml.hpp"    // UpnpEntry, UpnpTable
#include "codec/pcp_codec.hpp"  // Nonce
#include "net/deadline.hpp"
#include "porthole/ip_address.hpp"
#include "porthole/log.hpp"
#include "porthole/types.hpp"

namespace porthole::detail {

// Where the gateway is and how we reach it; shared by all protocol clients.
struct GatewayInfo {
  IpAddress gateway_ip;           // e.g. 192.168.1.1
  IpAddress local_ip;             // our address towards the gateway
  std::uint16_t pcp_port = 5351;  // PCP and NAT-PMP server port
  std::uint16_t ssdp_port = 1900;
  bool upnp_allow_lan = false;  // device URLs may be on our LAN subnet, not only the gateway
  LogFn log;                    // may be empty
};

struct ProbeInfo {
  std::optional<IpAddress> external_ip;  // nullopt when the protocol cannot tell without mapping
  std::uint32_t epoch = 0;               // PCP / NAT-PMP server epoch; 0 for UPnP
};

struct MapParams {
  Transport transport = Transport::tcp;
  IpAddress internal_ip;  // normally GatewayInfo::local_ip
  std::uint16_t internal_port = 0;
  std::uint16_t suggested_external_port = 0;       // 0: no preference
  std::optional<IpAddress> suggested_external_ip;  // PCP renewals carry the assigned one
  std::uint32_t lifetime = 7200;                   // 0 asks for permanent (UPnP only)
  std::string description;
  bool have_nonce = false;  // PCP: reuse this nonce (renewal of a mapping we made)
  Nonce nonce{};
  // UPnP: the granted lease is read back by the caller, after it recorded the mapping
  // (find(), whose request map() sends ahead), so that round trip and the state write
  // overlap. map() then reports the lease asked for, with lease_unconfirmed.
  bool caller_reads_lease = false;
};

struct MapOutcome {
  Mapping mapping;                    // what the gateway granted
  Nonce nonce{};                      // PCP: the nonce that owns the mapping
  std::uint32_t epoch = 0;            // PCP / NAT-PMP: the server's epoch in the reply
  std::vector<std::string> warnings;  // e.g. permanent lease instead of the one asked
  bool lease_unconfirmed = false;     // caller_reads_lease: mapping.lifetime is the one asked
};

// Errors a client returns (the mapping core turns them into exit statuses):
//  Errc::no_service  nothing answered before the deadline, or ICMP port unreachable,
//                    or the protocol is not spoken (PCP UNSUPP_VERSION, no IGD)
//  Errc::refused     the gateway answered and said no; protocol_code = its code
//  Errc::timeout     the gateway answered earlier in this exchange, then went silent
//  Errc::internal    local failure, or a reply that makes no sense
class PortMapper {
 public:
  virtual ~PortMapper() = default;
  virtual Protocol protocol() const = 0;
  virtual Result<ProbeInfo> probe(Deadline deadline) = 0;
  virtual Result<MapOutcome> map(const MapParams& params, Deadline deadline) = 0;
  // Removes a mapping this host made. For PCP, `nonce` must be the creating nonce.
  virtual Status unmap(const Mapping& mapping, const Nonce& nonce, Deadline deadline) = 0;

  // What only some protocols can do; the defaults say "not this one", so the mapping
  // core (and hold's keeper) asks through this interface alone and a unit test can
  // stand a fake in for any client.
  // PCP (RFC 6887 s8.5): the server's epoch went back, so it lost its mappings.
  virtual bool server_lost_state() const { return false; }
  // UPnP: ask GetExternalIPAddress again on the next call instead of the cached answer.
  virtual void refresh_external_ip() {}
  // Sends now the questions map(params) will ask before it changes anything (UPnP: the
  // external address, what is on the wanted port), so the router answers them while the
  // caller writes its intent; map() then reads the answers. Nothing is changed on the
  // router; a failure here is met again, and reported, by map(). It connects to the
  // router, so the caller holds no state lock over it; asks_ahead() says whether this
  // client sends anything there.
  virtual bool asks_ahead() const { return false; }
  virtual void ask_ahead(const MapParams& /*params*/, Deadline /*deadline*/) {}
  // UPnP: the whole table, and the entry on one external port (nullopt: none).
  virtual Result<UpnpTable> list(Deadline) {
    return make_error(Errc::no_service, "this protocol has no mapping table to list");
  }
  virtual Result<std::optional<UpnpEntry>> find(Transport, std::uint16_t, Deadline) {
    return make_error(Errc::no_service, "this protocol has no mapping table to look in");
  }
};

inline void log_to(const LogFn& log, LogLevel level, std::string_view text) {
  if (log) log(level, text);
}

}  // namespace porthole::detail
