// Which external port a UPnP mapping gets, and with which lease: the wanted port; else
// an entry of ours on another port; else AddAnyPortMapping (IGDv2); else a short walk up
// from the wanted port (IGDv1). 718 ConflictInMappingEntry (or 501 from a router that
// has an external address) means "taken, try another"; 725 / 402 to a lease mean "ask
// for a permanent one". Policy only: the router is reached through UpnpPortActions
// (UpnpClient in use, a scripted fake in tests). --strict-port is the caller's check
// (src/core/open_close.cpp).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "codec/igd_xml.hpp"
#include "codec/soap_envelope.hpp"
#include "net/deadline.hpp"
#include "proto/port_mapper.hpp"

namespace porthole::detail {

// The UPnP actions the policy takes.
class UpnpPortActions {
 public:
  virtual ~UpnpPortActions() = default;
  // GetSpecificPortMappingEntry: the entry on that port, nullopt when there is none.
  virtual Result<std::optional<UpnpEntry>> find(Transport transport, std::uint16_t external_port,
                                                Deadline deadline) = 0;
  // The router's table.
  virtual Result<UpnpTable> list(Deadline deadline) = 0;
  // "AddPortMapping" or "AddAnyPortMapping" with these arguments: the router's answer
  // (a fault is a SoapReply), or the error of the exchange.
  virtual Result<SoapReply> add_mapping(std::string_view action,
                                        const std::vector<SoapArgument>& args,
                                        Deadline deadline) = 0;
  // Sends GetSpecificPortMappingEntry for that port now, so that a later find() of the
  // same port reads its answer. The default sends nothing (find() then asks).
  virtual void find_ahead(Transport /*transport*/, std::uint16_t /*external_port*/,
                          Deadline /*deadline*/) {}
};

// The external port choose_upnp_port asks for first.
inline std::uint16_t upnp_wanted_port(const MapParams& params) {
  return params.suggested_external_port ? params.suggested_external_port : params.internal_port;
}

struct UpnpGrant {
  std::uint16_t external_port = 0;
  std::uint32_t lease = 0;            // as the router reports it (IGDv2: 0 -> 604800)
  bool lease_unconfirmed = false;     // caller_reads_lease: the lease asked, not read back
  std::vector<std::string> warnings;  // e.g. a permanent lease instead of the one asked
};

// Maps params.internal_ip:internal_port on the port chosen as above. v2: the service
// has AddAnyPortMapping; no_external: the router has no usable external address (then
// 501 is an upstream NAT, not a conflict). Errc::refused with the UPnP code otherwise.
Result<UpnpGrant> choose_upnp_port(UpnpPortActions& router, const MapParams& params, bool v2,
                                   bool no_external, Deadline deadline, const LogFn& log);

}  // namespace porthole::detail
