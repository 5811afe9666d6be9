// URLs that a UPnP device hands us (SSDP LOCATION, the description's controlURL) are
// hostile input: a device on the LAN, or anything that can answer an M-SEARCH, could
// point us at our own loopback services, at a link-local metadata service, or at a DNS
// name that resolves anywhere. We accept only plain http:// to an IPv4 literal, and only
// on the gateway (or, when asked, on our own LAN subnet). Pure: no sockets, no DNS.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "porthole/error.hpp"

namespace porthole::detail {

// URLs longer than this are refused outright (a real LOCATION is ~40 characters).
inline constexpr std::size_t kMaxDeviceUrlLength = 1024;

struct HttpUrl {
  std::string host;         // a dotted-quad IPv4 literal, as written in the URL
  std::uint16_t port = 80;  // never 0
  std::string path = "/";   // starts with '/', may carry a query; no fragment

  // "http://host:port/path", for messages and for Host headers' sake.
  std::string to_string() const;
};

// Strict dotted-quad: four decimal parts 0..255, no leading zeros (so no octal "0177"),
// no short forms ("127.1"), no hex, no integer form ("2130706433"). Host byte order.
std::optional<std::uint32_t> parse_ipv4_strict(std::string_view text);

// Syntax only: "http://" (scheme case-insensitive) IPv4-literal [":" port] [path].
// Refused: other schemes, userinfo ("user@"), IPv6 literals ("[::1]",
// "[::ffff:127.0.0.1]"), DNS names, empty host, empty/zero/non-numeric/too-large port,
// fragments, whitespace, control or non-ASCII bytes, backslashes, more than
// kMaxDeviceUrlLength characters. Errors: Errc::no_service.
Result<HttpUrl> parse_http_url(std::string_view url);

// Syntax plus policy. Accepted only when the host
//  - equals gateway_ip, or
//  - allow_lan_subnet is set and the host is inside local_ip/prefix_len
//    (prefix_len 8..32; not local_ip itself, not the subnet's network or broadcast).
// Always refused: 0.0.0.0/8, loopback 127/8, link-local 169.254/16, multicast 224/4,
// 240/4 and 255.255.255.255 -- except that a host exactly equal to gateway_ip is
// accepted even on loopback, because the caller chose that gateway (tests with fakes on
// 127.0.0.1); a device cannot move us to loopback unless we were already there.
// `what` names the URL in messages ("LOCATION", "controlURL"). Errors: Errc::no_service,
// e.g. "LOCATION http://127.0.0.1:5000/x is a loopback address, not the gateway
// 192.168.1.1: refused".
Result<HttpUrl> check_device_url(std::string_view url, std::string_view gateway_ip,
                                 bool allow_lan_subnet, std::string_view local_ip, int prefix_len,
                                 std::string_view what = "device URL");

// Untrusted text made safe for a log line or an error message: control characters,
// backslashes and non-ASCII bytes become \xNN, and anything past max_len is cut and
// marked with "...".
std::string printable_excerpt(std::string_view text, std::size_t max_len = 200);

}  // namespace porthole::detail
