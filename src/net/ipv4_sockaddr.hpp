// A dotted quad and a port as the sockaddr_in the socket calls take.
#pragma once

#include <arpa/inet.h>
#include <netinet/in.h>

#include <cstdint>
#include <string>

#include <fmt/format.h>

#include "porthole/error.hpp"

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

}  // namespace porthole::detail
