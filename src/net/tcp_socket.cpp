#include "net/tcp_socket.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include <fmt/format.h>

#include "net/ipv4_sockaddr.hpp"

namespace porthole::detail {
namespace {

Error sys_error(Errc code, const std::string& what) {
  const int err = errno;
  return make_error(code, fmt::format("{}: {}", what, std::strerror(err)), err);
}

std::string ip_text(const sockaddr_in& sa) {
  char buf[INET_ADDRSTRLEN] = {};
  ::inet_ntop(AF_INET, &sa.sin_addr, buf, sizeof(buf));
  return buf;
}

bool name_of(int fd, bool peer, sockaddr_in& sa) {
  socklen_t len = sizeof(sa);
  auto* p = reinterpret_cast<sockaddr*>(&sa);
  return (peer ? ::getpeername(fd, p, &len) : ::getsockname(fd, p, &len)) == 0 &&
         sa.sin_family == AF_INET;
}

}  // namespace

TcpSocket::~TcpSocket() { reset(); }
TcpSocket::TcpSocket(TcpSocket&& other) noexcept : fd_(other.fd_) { other.fd_ = -1; }
TcpSocket& TcpSocket::operator=(TcpSocket&& other) noexcept {
  if (this != &other) {
    reset();
    fd_ = other.fd_;
    other.fd_ = -1;
  }
  return *this;
}
void TcpSocket::reset() {
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
}

std::string TcpSocket::local_ip() const {
  sockaddr_in sa{};
  return name_of(fd_, false, sa) ? ip_text(sa) : std::string();
}
std::uint16_t TcpSocket::local_port() const {
  sockaddr_in sa{};
  return name_of(fd_, false, sa) ? ntohs(sa.sin_port) : 0;
}
std::string TcpSocket::peer_ip() const {
  sockaddr_in sa{};
  return name_of(fd_, true, sa) ? ip_text(sa) : std::string();
}
std::uint16_t TcpSocket::peer_port() const {
  sockaddr_in sa{};
  return name_of(fd_, true, sa) ? ntohs(sa.sin_port) : 0;
}

Result<TcpSocket> tcp_listen(const std::string& ip, std::uint16_t port, int backlog) {
  auto sa = ipv4_sockaddr(ip, port);
  if (!sa) return sa.error();
  TcpSocket s(::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
  if (!s.valid()) return sys_error(Errc::internal, "socket");
  const int one = 1;
  ::setsockopt(s.fd(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  if (::bind(s.fd(), reinterpret_cast<const sockaddr*>(&*sa), sizeof(*sa)) != 0)
    return sys_error(Errc::internal, fmt::format("cannot bind TCP {}:{}", ip, port));
  if (::listen(s.fd(), backlog) != 0)
    return sys_error(Errc::internal, fmt::format("cannot listen on TCP {}:{}", ip, port));
  return s;
}

Result<TcpSocket> tcp_connect_start(const std::string& ip, std::uint16_t port,
                                    const std::string& source_ip) {
  auto sa = ipv4_sockaddr(ip, port);
  if (!sa) return sa.error();
  TcpSocket s(::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
  if (!s.valid()) return sys_error(Errc::internal, "socket");
  if (!source_ip.empty() && source_ip != "0.0.0.0") {
    auto src = ipv4_sockaddr(source_ip, 0);
    if (!src) return src.error();
    if (::bind(s.fd(), reinterpret_cast<const sockaddr*>(&*src), sizeof(*src)) != 0)
      return sys_error(Errc::internal, fmt::format("cannot bind TCP {}:0", source_ip));
  }
  if (::connect(s.fd(), reinterpret_cast<const sockaddr*>(&*sa), sizeof(*sa)) != 0 &&
      errno != EINPROGRESS)
    return sys_error(Errc::no_service, fmt::format("connect to {}:{}", ip, port));
  return s;
}

int tcp_connect_error(const TcpSocket& socket) {
  int err = 0;
  socklen_t len = sizeof(err);
  if (::getsockopt(socket.fd(), SOL_SOCKET, SO_ERROR, &err, &len) != 0) return errno;
  return err;
}

TcpSocket tcp_accept(const TcpSocket& listener) {
  return TcpSocket(::accept4(listener.fd(), nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC));
}

}  // namespace porthole::detail
