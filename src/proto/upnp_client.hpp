// UPnP IGD (v1 and v2): the client's actions (AddPortMapping, DeletePortMapping,
// GetSpecificPortMappingEntry, GetExternalIPAddress, the table), over our own SSDP
// discovery and our own bounded HTTP; codec/igd_xml.hpp parses what those bring back.
#pragma once

#include <cstddef>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "codec/igd_xml.hpp"
#include "codec/soap_envelope.hpp"
#include "codec/url_check.hpp"
#include "proto/port_mapper.hpp"
#include "proto/upnp_port_policy.hpp"

namespace porthole::detail {

class UpnpClient final : public PortMapper, public UpnpPortActions {
 public:
  explicit UpnpClient(GatewayInfo info);
  ~UpnpClient() override;
  Protocol protocol() const override { return Protocol::upnp; }
  // Discovery, description, GetExternalIPAddress.
  Result<ProbeInfo> probe(Deadline deadline) override;
  Result<MapOutcome> map(const MapParams& params, Deadline deadline) override;
  // Deletes only when the router's entry points at this host.
  Status unmap(const Mapping& mapping, const Nonce& nonce, Deadline deadline) override;

  // The whole table: IGDv2 GetListOfPortMappings when the table is small enough for
  // it (see list_in_pages), else GetGenericPortMappingEntry until the router says no
  // more. A table cut short (deadline, failed exchange) comes back with complete false.
  Result<UpnpTable> list(Deadline deadline) override;
  // The entry on one external port, if any.
  Result<std::optional<UpnpEntry>> find(Transport transport, std::uint16_t external_port,
                                        Deadline deadline) override;
  // One AddPortMapping / AddAnyPortMapping (the port choice is choose_upnp_port's).
  Result<SoapReply> add_mapping(std::string_view action, const std::vector<SoapArgument>& args,
                                Deadline deadline) override;
  // Ask GetExternalIPAddress again on the next call instead of using the cached
  // answer (`hold` watches the address over months).
  void refresh_external_ip() override;

 private:
  struct Device;
  Status ensure_device(Deadline deadline);
  // One SOAP action on the device's WAN connection service, over http_request: bounded
  // by the deadline and kMaxSoapReplyBytes. Errors are those of the exchange itself
  // (timeout, refused connection, malformed answer); a UPnP fault is a SoapReply.
  Result<SoapReply> soap(std::string_view action, const std::vector<SoapArgument>& args,
                         Deadline deadline);
  Result<std::string> external_ip(Deadline deadline);
  Result<UpnpTable> list_in_pages(Deadline deadline);
  UpnpTable list_by_index(Deadline deadline);

  GatewayInfo info_;
  std::unique_ptr<Device> dev_;
};

}  // namespace porthole::detail
