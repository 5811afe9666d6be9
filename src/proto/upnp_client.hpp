// UPnP IGD (v1 and v2): our own SSDP discovery and bounded description fetch, then
// miniupnpc for parsing the description and for the SOAP calls.
#pragma once

#include <memory>
#include <optional>
#include <vector>

#include "proto/port_mapper.hpp"

namespace porthole::detail {

// One row of the router's port-mapping table.
struct UpnpEntry {
  Transport transport = Transport::tcp;
  std::uint16_t external_port = 0;
  std::string internal_ip;
  std::uint16_t internal_port = 0;
  std::string description;
  std::uint32_t lease = 0;  // seconds left; 0 = permanent
  bool enabled = true;
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

 private:
  struct Device;
  Status ensure_device(Deadline deadline);
  Result<std::string> external_ip(Deadline deadline);

  GatewayInfo info_;
  std::unique_ptr<Device> dev_;
};

}  // namespace porthole::detail
