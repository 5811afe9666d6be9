// A connected UDP socket with deadline-bounded receive.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "net/deadline.hpp"
#include "porthole/error.hpp"
#include "porthole/ip_address.hpp"

namespace porthole::detail {

struct Datagram {
  std::vector<std::uint8_t> bytes;
  Endpoint from;  // the source, parsed once from the socket address
};

class UdpSocket {
 public:
  UdpSocket() = default;
  ~UdpSocket();
  UdpSocket(UdpSocket&& other) noexcept;
  UdpSocket& operator=(UdpSocket&& other) noexcept;
  UdpSocket(const UdpSocket&) = delete;
  UdpSocket& operator=(const UdpSocket&) = delete;

  // An unconnected socket bound to an ephemeral port on any address.
  static Result<UdpSocket> open_unconnected();
  // A socket connected to `to` (kernel picks a random source port). Connected sockets
  // see ICMP port-unreachable as ECONNREFUSED on the next receive. Errc::usage for IPv6.
  static Result<UdpSocket> open_connected(const Endpoint& to);

  Status send(std::span<const std::uint8_t> bytes);
  Status send_to(std::span<const std::uint8_t> bytes, const Endpoint& to);  // IPv4 only

  // Waits until a datagram arrives or the deadline passes. Errors:
  // Errc::timeout (deadline), Errc::no_service (ICMP port unreachable), Errc::internal.
  Result<Datagram> receive(Deadline deadline, std::size_t max_size = 2048);

  // The local address/port the kernel chose (after connect): RFC 6887 s8.1 wants the
  // PCP client IP field to be the address the request is actually sent from.
  // 0.0.0.0 when the kernel cannot tell.
  IpAddress local_ip() const;
  std::uint16_t local_port() const;
  int fd() const { return fd_; }

 private:
  explicit UdpSocket(int fd) : fd_(fd) {}
  int fd_ = -1;
};

}  // namespace porthole::detail
