// Non-blocking IPv4 TCP sockets for the connect-back check: a listener, a connect that
// is started here and finished by the caller's poll loop, and the endpoints of a
// connection. Every wait is the caller's, bounded by its deadline.
#pragma once

#include <cstdint>
#include <string>

#include "porthole/error.hpp"

namespace porthole::detail {

class TcpSocket {
 public:
  TcpSocket() = default;
  explicit TcpSocket(int fd) : fd_(fd) {}
  ~TcpSocket();
  TcpSocket(TcpSocket&& other) noexcept;
  TcpSocket& operator=(TcpSocket&& other) noexcept;
  TcpSocket(const TcpSocket&) = delete;
  TcpSocket& operator=(const TcpSocket&) = delete;

  int fd() const { return fd_; }
  bool valid() const { return fd_ >= 0; }
  void reset();

  // "ip", port of this end / the other end; empty / 0 when unknown.
  std::string local_ip() const;
  std::uint16_t local_port() const;
  std::string peer_ip() const;
  std::uint16_t peer_port() const;

 private:
  int fd_ = -1;
};

// A non-blocking listener on ip:port with SO_REUSEADDR (a port in TIME_WAIT is free;
// a port another socket listens on is not). Errors: Errc::usage for a bad address,
// Errc::internal when socket/bind/listen fail; protocol_code = errno (EADDRINUSE when
// another program listens there).
Result<TcpSocket> tcp_listen(const std::string& ip, std::uint16_t port, int backlog = 16);

// Starts a non-blocking connect to ip:port, from source_ip when not empty. The socket
// becomes writable when the attempt ends; tcp_connect_error() then tells how. Errors:
// Errc::usage for a bad address, Errc::no_service when the attempt fails at once
// (protocol_code = errno), Errc::internal for local failures.
Result<TcpSocket> tcp_connect_start(const std::string& ip, std::uint16_t port,
                                    const std::string& source_ip = {});
// 0 when the connect succeeded, else its errno (SO_ERROR).
int tcp_connect_error(const TcpSocket& socket);

// accept4() a pending connection, non-blocking; an invalid socket when none is pending.
TcpSocket tcp_accept(const TcpSocket& listener);

}  // namespace porthole::detail
