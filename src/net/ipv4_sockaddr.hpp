// A dotted quad and a port as the sockaddr_in the socket calls take.
#pragma once

#include <arpa/inet.h>
#include <netinet/in.h>

#include <cstdint>
#include <cstring>
#include <string>

#include <fmt/format.h>

#include "porthole/error.hpp"
#include "porthole/ip_address.hpp"

namespace porthole::detail {

// Errc::usage when `ip` is not an IPv4 dotted quad.
inline Result<sockaddr_in> ipv4_sockaddr(const std::string& ip, std::uint16_t port) {
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_port = htons(port);
  if (::inet_pton(AF_INET, ip.c_str(), &sa.sin_addr) != 1)
    return make_error(Errc::usage, fmt::format("'{}' is not an IPv4 address", ip));
  return sa;
}

// The same for a parsed endpoint: Errc::usage when it is IPv6 (these sockets are AF_INET).
inline Result<sockaddr_in> ipv4_sockaddr(const Endpoint& endpoint) {
  if (!endpoint.ip.is_v4())
    return make_error(Errc::usage,
                      fmt::format("'{}' is not an IPv4 address", endpoint.ip.to_string()));
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_port = htons(endpoint.port);
  std::memcpy(&sa.sin_addr, endpoint.ip.bytes().data(), 4);
  return sa;
}

}  // namespace porthole::detail
