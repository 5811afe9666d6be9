// UPnP IGD (v1 and v2): our own SSDP discovery, and our own bounded HTTP for the
// description and the SOAP calls; miniupnpc only parses what those bring back.
#pragma once

#include <cstddef>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "codec/soap_envelope.hpp"
#include "codec/url_check.hpp"
#include "proto/port_mapper.hpp"

namespace porthole::detail {

// What porthole takes from an IGD's device description: the WAN connection service
// miniupnpc picks (WANIPConnection, else WANPPPConnection) and its control URL.
struct IgdDescription {
  std::string service_type;  // "urn:schemas-upnp-org:service:WANIPConnection:2"
  std::string control_url;   // absolute, resolved against URLBase or the LOCATION
  HttpUrl control;           // control_url, checked (check_device_url)
  bool v2 = false;           // a version-2 service: AddAnyPortMapping exists
};

// Parses a device description fetched from `location` with miniupnpc (parserootdesc,
// GetUPNPUrls) and checks the control URL it yields like every URL a device hands us
// (check_device_url: on gateway_ip, or anywhere in local_ip/prefix_len when
// allow_lan_subnet; otherwise local_ip/prefix_len only name the LAN in messages).
// Errc::no_service when there is no WAN connection service or its control URL is
// refused. No sockets: the description is untrusted bytes, and this is what the
// fuzzer (fuzz/fuzz_igd_description.cpp) feeds.
Result<IgdDescription> read_igd_description(std::string_view xml, std::string_view location,
                                            std::string_view gateway_ip,
                                            std::string_view local_ip, int prefix_len,
                                            bool allow_lan_subnet = false);

// A SOAP answer is far smaller than this (the largest porthole asks for, a table row,
// is ~700 bytes); anything longer is cut off as hostile.
inline constexpr std::size_t kMaxSoapReplyBytes = 64 * 1024;

// What a SOAP answer says: the values of a success, or the UPnP error code of a fault.
struct SoapReply {
  int fault = 0;  // 0: success; else the errorCode of the UPnPError (UDA 1.1 s3.2.2)
  // Every element with text, by name (the last one wins, as in miniupnpc); values are
  // cut at 127 bytes by miniupnpc's parser.
  std::map<std::string, std::string> values;
  // The value of element `name`, nullopt when the answer has none.
  std::optional<std::string> value(const std::string& name) const;
};

// Reads a SOAP answer body (at most kMaxSoapReplyBytes) with miniupnpc's reply parser
// (ParseNameValue). http_status is 200 or 500. A fault is a UPnPError with an errorCode
// (1..9999), in a 500 answer or, as some routers send it, in a 200 one.
// Errc::internal: a 500 answer without a readable errorCode, or an oversized body.
// No sockets: this is what fuzz/fuzz_soap_reply.cpp feeds.
Result<SoapReply> read_soap_reply(std::string_view body, int http_status);

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
  Result<std::vector<UpnpEntry>> list(Deadline deadline) override;
  // The entry on one external port, if any.
  Result<std::optional<UpnpEntry>> find(Transport transport, std::uint16_t external_port,
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

  GatewayInfo info_;
  std::unique_ptr<Device> dev_;
};

}  // namespace porthole::detail
