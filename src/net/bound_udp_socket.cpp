#include "net/bound_udp_socket.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <cerrno>
#include <cstring>

#include <fmt/format.h>

#include "net/ipv4_sockaddr.hpp"

namespace porthole::detail {

Result<UdpSocket> open_bound_udp_socket(const std::string& ip, std::uint16_t port) {
  auto address = IpAddress::parse(ip);
  if (!address || !address->is_v4())
    return make_error(Errc::usage, fmt::format("'{}' is not an IPv4 address", ip));
  return open_bound_udp_socket(Endpoint{*address, port});
}

Result<UdpSocket> open_bound_udp_socket(const Endpoint& local) {
  auto sa = ipv4_sockaddr(local);
  if (!sa) return sa.error();
  // An unconnected socket is not bound until its first send: bind it now.
  auto socket = UdpSocket::open_unconnected();
  if (!socket) return socket.error();
  if (::bind(socket->fd(), reinterpret_cast<const sockaddr*>(&*sa), sizeof(*sa)) != 0)
    return make_error(Errc::internal, fmt::format("cannot bind UDP {}: {}", local.to_string(),
                                                  std::strerror(errno)));
  return socket;
}

}  // namespace porthole::detail
