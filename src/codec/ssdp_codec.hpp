// SSDP (UPnP Device Architecture 1.1, section 1.3): the M-SEARCH request we send and the
// unicast search response a device returns. Pure: bytes in, structs out; no sockets,
// no clock. Everything in a response is untrusted and bounded in size.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>

#include "porthole/error.hpp"

namespace porthole::detail::ssdp {

inline constexpr std::string_view kMulticastIp = "239.255.255.250";
inline constexpr std::uint16_t kPort = 1900;

// A search response is one datagram of a dozen short headers (miniupnpd's are ~400
// bytes); anything larger is not one, and no line of a real one nears kMaxLine.
inline constexpr std::size_t kMaxDatagram = 2048;
inline constexpr std::size_t kMaxLine = 1024;

// The search targets porthole asks for (UDA 1.3.2: a device must answer for every
// version it supports, with the version that was asked).
inline constexpr std::string_view kIgd1 = "urn:schemas-upnp-org:device:InternetGatewayDevice:1";
inline constexpr std::string_view kIgd2 = "urn:schemas-upnp-org:device:InternetGatewayDevice:2";
inline constexpr std::string_view kWanIp1 = "urn:schemas-upnp-org:service:WANIPConnection:1";
inline constexpr std::string_view kWanIp2 = "urn:schemas-upnp-org:service:WANIPConnection:2";

// An M-SEARCH for `search_target` (HOST 239.255.255.250:1900, MAN "ssdp:discover").
// mx_seconds is clamped to 1..5 (UDA 1.3.2). Control characters in search_target are
// dropped, so the request cannot be split into extra headers.
std::string build_msearch(std::string_view search_target, int mx_seconds);

// The headers of a search response that porthole uses; values trimmed of blanks.
struct SearchResponse {
  std::string location;  // LOCATION: the device description URL (never empty)
  std::string st;        // ST: the search target answered (may be empty)
  std::string usn;       // USN: "uuid:...::<type>" (may be empty)
  std::string server;    // SERVER: "OS/version UPnP/1.1 product/version" (may be empty)
};

// Parses one search-response datagram. It must start with "HTTP/1.1 200"; header
// names are case-insensitive; CRLF or bare LF line ends; the header block ends at an
// empty line or at the end of the datagram. Refused (Errc::internal, with the reason):
// more than kMaxDatagram bytes, a line longer than kMaxLine, NUL or other control
// bytes, a line that is not "name: value", no LOCATION, or a repeated LOCATION / ST /
// USN / SERVER with a different value.
Result<SearchResponse> parse_search_response(std::string_view datagram);
Result<SearchResponse> parse_search_response(std::span<const std::uint8_t> datagram);

enum class TargetKind {
  other,            // anything else: a media server, "upnp:rootdevice", "ssdp:all", ...
  igd_device,       // urn:schemas-upnp-org:device:InternetGatewayDevice:1 or :2
  wan_ip_service,   // urn:schemas-upnp-org:service:WANIPConnection:1 or :2
  wan_ppp_service,  // urn:schemas-upnp-org:service:WANPPPConnection:1 or :2
};

// Classifies an ST value, or a USN (the part after "::" is used). Compared
// case-insensitively; versions other than 1 and 2 are `other`. The DSL Forum's types
// (urn:dslforum-org:...) count as the UPnP Forum's of the same name.
TargetKind classify_target(std::string_view st_or_usn);

// Whether a response is from an IGD (or its WAN connection service): decided by ST;
// by the USN only when ST is absent. A device answering with another type (a TV
// answering ssdp:all, say) is not one.
bool denotes_igd(const SearchResponse& response);

}  // namespace porthole::detail::ssdp
