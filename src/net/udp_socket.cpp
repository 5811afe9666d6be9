#include "net/udp_socket.hpp"

#include <arpa/inet.h>
#include <array>
#include <cerrno>
#include <cstring>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <fmt/format.h>

#include "net/ipv4_sockaddr.hpp"

namespace porthole::detail {
namespace {

Error sys_error(const char* what) {
  return make_error(Errc::internal, fmt::format("{}: {}", what, std::strerror(errno)));
}

}  // namespace

UdpSocket::~UdpSocket() {
  if (fd_ >= 0) ::close(fd_);
}
UdpSocket::UdpSocket(UdpSocket&& other) noexcept : fd_(other.fd_) { other.fd_ = -1; }
UdpSocket& UdpSocket::operator=(UdpSocket&& other) noexcept {
  if (this != &other) {
    if (fd_ >= 0) ::close(fd_);
    fd_ = other.fd_;
    other.fd_ = -1;
  }
  return *this;
}

Result<UdpSocket> UdpSocket::open_unconnected() {
  int fd = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return sys_error("socket");
  return UdpSocket(fd);
}

Result<UdpSocket> UdpSocket::open_connected(const Endpoint& to) {
  auto sa = ipv4_sockaddr(to);
  if (!sa) return sa.error();
  int fd = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return sys_error("socket");
  UdpSocket sock(fd);
  if (::connect(fd, reinterpret_cast<const sockaddr*>(&*sa), sizeof(*sa)) != 0) {
    // ENETUNREACH and friends: there is no route to the gateway at all.
    return make_error(Errc::no_service,
                      fmt::format("cannot reach {}: {}", to.to_string(), std::strerror(errno)));
  }
  return sock;
}

// Not const: sending changes the socket's state (its queue, its error, a first send
// binds it), even though no member changes.
// NOLINTNEXTLINE(readability-make-member-function-const)
Status UdpSocket::send(std::span<const std::uint8_t> bytes) {
  if (::send(fd_, bytes.data(), bytes.size(), 0) < 0) {
    if (errno == ECONNREFUSED)
      return make_error(Errc::no_service, "port unreachable (ICMP): no service there");
    return sys_error("send");
  }
  return ok_status();
}

// NOLINTNEXTLINE(readability-make-member-function-const): as send()
Status UdpSocket::send_to(std::span<const std::uint8_t> bytes, const Endpoint& to) {
  auto sa = ipv4_sockaddr(to);
  if (!sa) return sa.error();
  if (::sendto(fd_, bytes.data(), bytes.size(), 0, reinterpret_cast<const sockaddr*>(&*sa),
               sizeof(*sa)) < 0)
    return sys_error("sendto");
  return ok_status();
}

Result<Datagram> UdpSocket::receive(Deadline deadline, std::size_t max_size) {
  for (;;) {
    auto left = remaining(deadline);
    if (left.count() == 0 && expired(deadline))
      return make_error(Errc::timeout, "no answer before the deadline");
    pollfd pfd{fd_, POLLIN, 0};
    int n = ::poll(&pfd, 1, static_cast<int>(left.count()));
    if (n < 0) {
      if (errno == EINTR) continue;
      return sys_error("poll");
    }
    if (n == 0) return make_error(Errc::timeout, "no answer before the deadline");
    Datagram d;
    // One byte more than allowed tells an oversized datagram apart from a full one.
    d.bytes.resize(max_size + 1);
    sockaddr_in from{};
    socklen_t fromlen = sizeof(from);
    ssize_t got = ::recvfrom(fd_, d.bytes.data(), d.bytes.size(), MSG_TRUNC,
                             reinterpret_cast<sockaddr*>(&from), &fromlen);
    if (got < 0) {
      if (errno == EINTR || errno == EAGAIN) continue;
      if (errno == ECONNREFUSED)
        return make_error(Errc::no_service, "port unreachable (ICMP): no service there");
      return sys_error("recvfrom");
    }
    d.bytes.resize(std::min<std::size_t>(static_cast<std::size_t>(got), max_size + 1));
    auto source = Endpoint::from_sockaddr(reinterpret_cast<const sockaddr*>(&from), fromlen);
    if (!source) return source.error();
    d.from = *source;
    return d;
  }
}

IpAddress UdpSocket::local_ip() const {
  sockaddr_in sa{};
  socklen_t len = sizeof(sa);
  if (::getsockname(fd_, reinterpret_cast<sockaddr*>(&sa), &len) != 0) return {};
  std::array<std::uint8_t, 4> bytes{};
  std::memcpy(bytes.data(), &sa.sin_addr, bytes.size());
  return IpAddress::v4(bytes);
}

std::uint16_t UdpSocket::local_port() const {
  sockaddr_in sa{};
  socklen_t len = sizeof(sa);
  if (::getsockname(fd_, reinterpret_cast<sockaddr*>(&sa), &len) != 0) return 0;
  return ntohs(sa.sin_port);
}

}  // namespace porthole::detail
