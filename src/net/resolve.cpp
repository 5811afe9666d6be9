#include "net/resolve.hpp"

#include <arpa/inet.h>
#include <netdb.h>
#include <sys/socket.h>

#include <array>
#include <cstdint>
#include <cstring>

#include <fmt/format.h>

#include "porthole/types.hpp"

namespace porthole::detail {

Result<IpAddress> resolve_ipv4(const std::string& host) {
  if (auto literal = IpAddress::parse(host); literal && literal->is_v4()) return *literal;
  addrinfo hints{};
  hints.ai_family = AF_INET;
  hints.ai_socktype = SOCK_DGRAM;
  addrinfo* found = nullptr;
  int rc = ::getaddrinfo(host.c_str(), nullptr, &hints, &found);
  if (rc != 0 || found == nullptr)
    return make_error(Errc::no_service,
                      fmt::format("cannot resolve '{}': {}", host, ::gai_strerror(rc)));
  std::array<std::uint8_t, 4> bytes{};
  const auto* sin = reinterpret_cast<const sockaddr_in*>(found->ai_addr);
  std::memcpy(bytes.data(), &sin->sin_addr, bytes.size());
  ::freeaddrinfo(found);
  return IpAddress::v4(bytes);
}

}  // namespace porthole::detail
