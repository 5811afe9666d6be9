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
  auto sa = ipv4_sockaddr(ip, port);
  if (!sa) return sa.error();
  // An unconnected socket is not bound until its first send: bind it now.
  auto socket = UdpSocket::open_unconnected();
  if (!socket) return socket.error();
  if (::bind(socket->fd(), reinterpret_cast<const sockaddr*>(&*sa), sizeof(*sa)) != 0)
    return make_error(Errc::internal,
                      fmt::format("cannot bind UDP {}:{}: {}", ip, port, std::strerror(errno)));
  return socket;
}

}  // namespace porthole::detail
