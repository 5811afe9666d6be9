// UPnP IGD (v1 and v2): the client's actions (AddPortMapping, DeletePortMapping,
// GetSpecificPortMappingEntry, GetExternalIPAddress, the table), over our own SSDP
// discovery and our own bounded HTTP; codec/igd_xml.hpp parses what those bring back.
#pragma once

#include <chrono>
#include <cstddef>
#include <functional>
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

// What a discovery found that a later run can use without SSDP (the core keeps it in
// the state directory, state/igd_cache.hpp). Read back, it is untrusted text: it is
// checked again as a fresh LOCATION would be (cached_device) before anything is sent.
struct UpnpCachedIgd {
  IpAddress gateway;         // the gateway it was found through
  IpAddress local_ip;        // this host's address towards it then
  std::string location;      // the description URL (SSDP LOCATION)
  std::string control_url;   // the WAN connection service's control URL
  std::string service_type;  // that service's type
  std::string udn;           // the root device's UDN ("uuid:..."), may be ""
  // How many WAN connection services the device offered (1..kMaxWanServices). With
  // more than one, the cached one is the one that was connected then: when it has no
  // usable external address now, the client asks them all again.
  int wan_services = 1;
};

// How a client reaches the cache; every member may be empty (no cache).
struct UpnpCache {
  std::function<std::optional<UpnpCachedIgd>()> load;
  std::function<void(const UpnpCachedIgd&)> save;  // after a discovery
  std::function<void()> forget;                    // the cached device was refused or failed
};

// The device a cache entry describes, if it may be used on this gateway: the same
// gateway and local address, a WAN connection service type, and a LOCATION and control
// URL that pass check_device_url under the same policy as a fresh discovery's.
// Errc::no_service says why not ("the gateway changed", the URL's refusal).
Result<IgdDescription> cached_device(const UpnpCachedIgd& cached, const GatewayInfo& gw);

// Whether the first exchange with a cached device failed in a way that means the cache
// is stale and discovery must run: the exchange itself failed (refused, reset, no
// connection within the cached-URL budget, an HTTP error, an answer that is no SOAP
// reply), or the device says it has no such action (UPnP 401 Invalid Action).
bool cache_looks_stale(const Result<SoapReply>& reply);

// How long a cached control URL gets to accept the TCP connection before discovery
// runs instead (a LAN connect takes about a millisecond).
inline constexpr std::chrono::milliseconds kCachedConnectBudget{300};

class UpnpClient final : public PortMapper, public UpnpPortActions {
 public:
  explicit UpnpClient(GatewayInfo info, UpnpCache cache = {});
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
  void find_ahead(Transport transport, std::uint16_t external_port, Deadline deadline) override;
  // Ask GetExternalIPAddress again on the next call instead of using the cached
  // answer (`hold` watches the address over months).
  void refresh_external_ip() override;
  // GetExternalIPAddress (unless known) and GetSpecificPortMappingEntry on the wanted
  // port, sent to the device when it is known (cached or found by an earlier call; no
  // discovery here); map() reads their answers.
  bool asks_ahead() const override { return true; }
  void ask_ahead(const MapParams& params, Deadline deadline) override;

 private:
  struct Device;
  Status ensure_device(Deadline deadline);
  // The cached device, when the cache has one this gateway may use.
  bool use_cached_device();
  Status discover_device(Deadline deadline);
  // Of a device with several WAN connection services, the one to use (see the .cpp).
  Status choose_service(Device& dev, Deadline deadline) const;
  // One exchange with the device, or the answer to the same action with the same
  // arguments sent ahead (ask_ahead).
  Result<SoapReply> soap_once(std::string_view action, const std::vector<SoapArgument>& args,
                              Deadline deadline);
  // One SOAP action on the device's WAN connection service, over http_request: bounded
  // by the deadline and kMaxSoapReplyBytes. Errors are those of the exchange itself
  // (timeout, refused connection, malformed answer); a UPnP fault is a SoapReply.
  Result<SoapReply> soap(std::string_view action, const std::vector<SoapArgument>& args,
                         Deadline deadline);
  Result<std::string> external_ip(Deadline deadline);
  Result<UpnpTable> list_in_pages(Deadline deadline);
  // The connect budget of an exchange: kCachedConnectBudget while the cached device is
  // unconfirmed, else none (the deadline alone).
  std::optional<Deadline> connect_by() const;
  // Sends one action ahead (see soap_once); false when it could not be sent.
  bool send_ahead(std::string_view action, const std::vector<SoapArgument>& args,
                  Deadline deadline);
  UpnpTable list_by_index(Deadline deadline);

  GatewayInfo info_;
  UpnpCache cache_;
  std::optional<UpnpCachedIgd> cached_;  // the entry in use or last refused
  std::unique_ptr<Device> dev_;
  Error lost_;  // why dev_ is gone after a failed cached device (soap() answers it)
};

}  // namespace porthole::detail
