#include "net/bound_udp_socket.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <cerrno>
#include <cstring>

#include <fmt/format.h>

namespace porthole::detail {

Result<UdpSocket> open_bound_udp_socket(const std::string& ip, std::uint16_t port) {
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_port = htons(port);
  if (::inet_pton(AF_INET, ip.c_str(), &sa.sin_addr) != 1)
    return make_error(Errc::usage, fmt::format("'{}' is not an IPv4 address", ip));
  // An unconnected socket is not bound until its first send: bind it now.
  auto socket = UdpSocket::open_unconnected();
  if (!socket) return socket.error();
  if (::bind(socket->fd(), reinterpret_cast<const sockaddr*>(&sa), sizeof(sa)) != 0)
    return make_error(Errc::internal,
                      fmt::format("cannot bind UDP {}:{}: {}", ip, port, std::strerror(errno)));
  return socket;
}

}  // namespace porthole::detail
