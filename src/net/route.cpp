#include "net/route.hpp"

#include <arpa/inet.h>
#include <ifaddrs.h>
#include <netinet/in.h>

#include <array>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <sstream>

#include <fmt/format.h>

#include "net/udp_socket.hpp"

namespace porthole::detail {

Result<IpAddress> default_gateway() {
  std::ifstream in("/proc/net/route");
  if (!in) return make_error(Errc::no_service, "cannot read /proc/net/route to find the gateway");
  std::string line;
  std::getline(in, line);  // header
  while (std::getline(in, line)) {
    std::istringstream fields(line);
    std::string iface, dest_hex, gw_hex, flags_hex;
    if (!(fields >> iface >> dest_hex >> gw_hex >> flags_hex)) continue;
    unsigned long dest = std::strtoul(dest_hex.c_str(), nullptr, 16);
    unsigned long gw = std::strtoul(gw_hex.c_str(), nullptr, 16);
    unsigned long flags = std::strtoul(flags_hex.c_str(), nullptr, 16);
    constexpr unsigned long kRouteUp = 0x1, kRouteGateway = 0x2;
    if (dest != 0 || gw == 0 || (flags & kRouteUp) == 0 || (flags & kRouteGateway) == 0) continue;
    const auto addr = static_cast<in_addr_t>(gw);  // already in network byte order
    std::array<std::uint8_t, 4> bytes{};
    std::memcpy(bytes.data(), &addr, bytes.size());
    return IpAddress::v4(bytes);
  }
  return make_error(Errc::no_service,
                    "no IPv4 default route, so no gateway to ask: pass --gateway IP");
}

Result<IpAddress> local_ip_towards(const IpAddress& ip) {
  auto sock = UdpSocket::open_connected(Endpoint{ip, 9});  // connect() sends nothing
  if (!sock) return sock.error();
  const IpAddress local = sock->local_ip();
  if (local.is_unspecified())
    return make_error(Errc::no_service,
                      fmt::format("no local address routes to {}", ip.to_string()));
  return local;
}

int prefix_length_of(const IpAddress& local_ip) {
  ifaddrs* list = nullptr;
  if (::getifaddrs(&list) != 0) return 32;
  int prefix = 32;
  if (!local_ip.is_v4()) return 32;
  in_addr want{};
  std::memcpy(&want, local_ip.bytes().data(), sizeof(want));
  for (ifaddrs* it = list; it; it = it->ifa_next) {
    if (!it->ifa_addr || it->ifa_addr->sa_family != AF_INET || !it->ifa_netmask) continue;
    auto* a = reinterpret_cast<sockaddr_in*>(it->ifa_addr);
    if (a->sin_addr.s_addr != want.s_addr) continue;
    auto* m = reinterpret_cast<sockaddr_in*>(it->ifa_netmask);
    prefix = __builtin_popcount(m->sin_addr.s_addr);
    break;
  }
  ::freeifaddrs(list);
  return prefix;
}

}  // namespace porthole::detail
