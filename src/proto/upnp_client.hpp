// UPnP IGD (v1 and v2): our own SSDP discovery and bounded description fetch, then
// miniupnpc for parsing the description and for the SOAP calls.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "proto/port_mapper.hpp"

namespace porthole::detail {

// What porthole takes from an IGD's device description: the WAN connection service
// miniupnpc picks (WANIPConnection, else WANPPPConnection) and its control URL.
struct IgdDescription {
  std::string service_type;  // "urn:schemas-upnp-org:service:WANIPConnection:2"
  std::string control_url;   // absolute, resolved against URLBase or the LOCATION
  bool v2 = false;           // a version-2 service: AddAnyPortMapping exists
};

// Parses a device description fetched from `location` with miniupnpc (parserootdesc,
// GetUPNPUrls) and checks the control URL it yields like every URL a device hands us
// (check_device_url: on gateway_ip; local_ip/prefix_len name the LAN in messages).
// Errc::no_service when there is no WAN connection service or its control URL is
// refused. No sockets: the description is untrusted bytes, and this is what the
// fuzzer (fuzz/fuzz_igd_description.cpp) feeds.
Result<IgdDescription> read_igd_description(std::string_view xml, std::string_view location,
                                            std::string_view gateway_ip,
                                            std::string_view local_ip, int prefix_len);

// One row of the router's port-mapping table.
struct UpnpEntry {
  Transport transport = Transport::tcp;
  std::uint16_t external_port = 0;
  std::string internal_ip;
  std::uint16_t internal_port = 0;
  std::string description;
  std::uint32_t lease = 0;  // seconds left; 0 = permanent
  bool enabled = true;

  // The row as a Mapping: who, which ports, which transport (lifetime left unset).
  Mapping mapping() const {
    Mapping m;
    m.protocol = Protocol::upnp;
    m.transport = transport;
    m.internal_ip = internal_ip;
    m.internal_port = internal_port;
    m.external_port = external_port;
    m.description = description;
    return m;
  }
};

class UpnpClient final : public PortMapper {
 public:
  explicit UpnpClient(GatewayInfo info);
  ~UpnpClient() override;
  Protocol protocol() const override { return Protocol::upnp; }
  // Discovery, description, GetExternalIPAddress.
  Result<ProbeInfo> probe(Deadline deadline) override;
  Result<MapOutcome> map(const MapParams& params, Deadline deadline) override;
  // Deletes only when the router's entry points at this host.
  Status unmap(const Mapping& mapping, const Nonce& nonce, Deadline deadline) override;

  // The whole table (GetGenericPortMappingEntry until the router says no more).
  Result<std::vector<UpnpEntry>> list(Deadline deadline);
  // The entry on one external port, if any.
  Result<std::optional<UpnpEntry>> find(Transport transport, std::uint16_t external_port,
                                        Deadline deadline);
  // Ask GetExternalIPAddress again on the next call instead of using the cached
  // answer (`hold` watches the address over months).
  void refresh_external_ip();

 private:
  struct Device;
  Status ensure_device(Deadline deadline);
  Result<std::string> external_ip(Deadline deadline);

  GatewayInfo info_;
  std::unique_ptr<Device> dev_;
};

}  // namespace porthole::detail
