// The XML an IGD sends back: its device description, SOAP answers, and the port listing
// of IGDv2 GetListOfPortMappings. Pure parsers over untrusted bytes (no sockets): this
// is what fuzz/fuzz_igd_description.cpp and fuzz/fuzz_soap_reply.cpp feed.
// src/codec/igd_xml.cpp is the only file that includes <miniupnpc/...>.
#pragma once

#include <charconv>
#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "codec/url_check.hpp"
#include "porthole/error.hpp"
#include "porthole/types.hpp"

namespace porthole::detail {

// One WAN connection service of an IGD: its type as published (the SOAP actions'
// namespace, UDA 1.1 s3.2.1) and its control URL.
struct IgdService {
  std::string service_type;  // "urn:schemas-upnp-org:service:WANIPConnection:2"
  std::string control_url;   // absolute, resolved against URLBase or the LOCATION
  HttpUrl control;           // control_url, checked (check_device_url)
  bool v2 = false;           // a version-2 service: AddAnyPortMapping exists
};

// What porthole takes from an IGD's device description: the WAN connection service to
// use (the members of IgdService: the first in description order until the client has
// asked them which is connected) and every candidate.
struct IgdDescription : IgdService {
  // The root device's UDN ("uuid:..."), printable ASCII of at most kMaxUdnLength
  // characters; "" when the description has none we would keep.
  std::string udn;
  // Every WAN connection service whose control URL passed the checks, in description
  // order (at most kMaxWanServices); the first is the one above. A router with several
  // WAN connections (multi-WAN, PPP beside IP) lists one per connection, not all up.
  std::vector<IgdService> services;
};

inline constexpr std::size_t kMaxWanServices = 8;

inline constexpr std::size_t kMaxUdnLength = 128;

// A service type porthole can map ports with: WANIPConnection:1 or :2 or
// WANPPPConnection:1, in the UPnP Forum's namespace (urn:schemas-upnp-org:service:) or
// the DSL Forum's (urn:dslforum-org:service:, TR-064), which some routers publish.
bool is_wan_connection_service(std::string_view service_type);

// The text of the first <UDN> element of a device description (UDA 1.1 s2.3: the root
// device's comes first), blanks trimmed; nullopt when there is none, or it is empty,
// longer than kMaxUdnLength or not printable ASCII.
std::optional<std::string> read_udn(std::string_view xml);

// Parses a device description fetched from `location`: the WAN connection services
// (is_wan_connection_service: miniupnpc's parserootdesc keeps only the UPnP Forum's
// first two, so porthole finds them itself), each control URL resolved with miniupnpc
// (GetUPNPUrls) and checked like every URL a device hands us
// (check_device_url: on gateway_ip, or anywhere in local_ip/prefix_len when
// allow_lan_subnet; otherwise local_ip/prefix_len only name the LAN in messages).
// Errc::no_service when there is no WAN connection service or every control URL is
// refused (the first refusal says why).
Result<IgdDescription> read_igd_description(std::string_view xml, std::string_view location,
                                            std::string_view gateway_ip, std::string_view local_ip,
                                            int prefix_len, bool allow_lan_subnet = false);

// A SOAP answer is far smaller than this (the largest porthole asks for, a table row,
// is ~700 bytes; a GetListOfPortMappings page of 128 rows ~50 KiB); anything longer is
// cut off as hostile.
inline constexpr std::size_t kMaxSoapReplyBytes = 64 * 1024;

// What a SOAP answer says: the values of a success, or the UPnP error code of a fault.
struct SoapReply {
  int fault = 0;  // 0: success; else the errorCode of the UPnPError (UDA 1.1 s3.2.2)
  // Every element with text, by name (the last one wins, as in miniupnpc); values are
  // cut at 127 bytes by miniupnpc's parser.
  std::map<std::string, std::string> values;
  // NewPortListing (GetListOfPortMappings), uncut: an XML document of its own.
  std::optional<std::string> port_listing;
  // The value of element `name`, nullopt when the answer has none.
  std::optional<std::string> value(const std::string& name) const;
};

// Reads a SOAP answer body (at most kMaxSoapReplyBytes) with miniupnpc's reply parser
// (ParseNameValue). http_status is 200 or 500. A fault is a UPnPError with an errorCode
// (1..9999), in a 500 answer or, as some routers send it, in a 200 one.
// Errc::internal: a 500 answer without a readable errorCode, or an oversized body.
Result<SoapReply> read_soap_reply(std::string_view body, int http_status);

// UPnP error codes porthole acts on (WANIPConnection:2 s2.5, UDA 1.1 s3.2.2).
inline constexpr int kSuccess = 0;
inline constexpr int kInvalidArgs = 402;
inline constexpr int kActionFailed = 501;
inline constexpr int kNotAuthorized = 606;
inline constexpr int kNoSuchEntry = 714;
inline constexpr int kConflict = 718;
inline constexpr int kOnlyPermanentLeases = 725;

// The protocol as a SOAP argument: upper case, as some routers insist.
inline const char* proto_text(Transport t) { return t == Transport::udp ? "UDP" : "TCP"; }

// A port in a SOAP answer; 0 when it is none.
inline std::uint16_t to_port(std::string_view s) {
  unsigned v = 0;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || v > 65535) return 0;
  return static_cast<std::uint16_t>(v);
}

// A count of seconds in a SOAP answer; 0 when it is none.
inline std::uint32_t to_u32(std::string_view s) {
  std::uint32_t v = 0;
  std::from_chars(s.data(), s.data() + s.size(), v);
  return v;
}

// The value of a SOAP answer element as a C++ string ("" when absent).
inline std::string text_of(const SoapReply& reply, const std::string& name) {
  return reply.value(name).value_or(std::string());
}

// "ConflictInMappingEntry (718)": miniupnpc's name for a UPnP error code, or
// "UPnP error N" for one it does not know.
std::string upnp_error_text(int code);

// One row of the router's port-mapping table.
struct UpnpEntry {
  Transport transport = Transport::tcp;
  std::uint16_t external_port = 0;
  // NewInternalClient as the router sent it (bounded): untrusted text, compared with
  // this host's address as text and printed as it came.
  std::string internal_ip;
  std::uint16_t internal_port = 0;
  std::string description;
  std::uint32_t lease = 0;  // seconds left; 0 = permanent
  bool enabled = true;

  // The row as a Mapping: who, which ports, which transport (lifetime left unset); an
  // internal client that is not an IP address becomes 0.0.0.0.
  Mapping mapping() const {
    Mapping m;
    m.protocol = Protocol::upnp;
    m.transport = transport;
    if (auto ip = IpAddress::parse(internal_ip)) m.internal_ip = *ip;
    m.internal_port = internal_port;
    m.external_port = external_port;
    m.description = description;
    return m;
  }
};

// A full table, or the rows read before something stopped the reading.
struct UpnpTable {
  std::vector<UpnpEntry> entries;
  bool complete = true;          // false: not read to its end
  std::optional<Error> stopped;  // why not (Errc::timeout: the deadline ran out)
};

// The rows of a PortMappingList document (the NewPortListing of IGDv2
// GetListOfPortMappings, WANIPConnection:2 s2.5.20), in document order, parsed with
// miniupnpc's bounded ParsePortListing: descriptions and addresses are cut at 63
// bytes, rows without an external port are left out. A document the router wrote with
// entities (&lt;p:PortMappingList...) instead of CDATA is unescaped first. Errc::internal
// when the text is no PortMappingList at all.
Result<std::vector<UpnpEntry>> read_port_listing(std::string_view document);

// The miniupnpc version whose headers (and, in a static build, archive) this library
// was built with (MINIUPNPC_VERSION).
std::string_view miniupnpc_version() noexcept;

}  // namespace porthole::detail
