// Many UDP datagrams per system call, for bulk QUIC over a socket the caller owns: one
// sendto(2) per 1.4 KB packet puts most of a tunnel's CPU time in the kernel.
//   - send: UDP generic segmentation offload (UDP_SEGMENT, Linux 4.18) hands the kernel
//     up to 64 equal-sized datagrams (the last may be shorter) in one sendmsg(2); where
//     the kernel or the route refuses it, sendmmsg(2) with one message per datagram.
//   - receive: recvmmsg(2), and UDP generic receive offload (UDP_GRO, Linux 5.0) when
//     asked, whose coalesced buffers are cut back into the datagrams they were.
// Non-blocking sockets: a batch sends what the socket takes and says how many that was.
#pragma once

#include <sys/socket.h>
#include <sys/uio.h>

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <vector>

#include "net/udp_socket.hpp"
#include "porthole/error.hpp"
#include "porthole/ip_address.hpp"

namespace porthole::detail {

// What one GSO send takes at most: datagrams (the kernel's UDP_MAX_SEGMENTS) and their
// bytes (the 64 KiB IP datagram the segments are cut from, less headers, rounded down).
inline constexpr std::size_t kMaxGsoSegments = 64;
inline constexpr std::size_t kMaxGsoBytes = 65000;

// Datagrams laid end to end in one buffer, as one UDP GSO send takes them: a writer
// asks room() for the most it may write, writes there and commit()s what it wrote. No
// per-datagram allocation, and the bytes are never copied again on the way out.
class DatagramBuffer {
 public:
  // Space for one more datagram of up to `max` bytes (valid until the next room/push).
  std::span<std::uint8_t> room(std::size_t max);
  void commit(std::size_t n);  // the datagram room() gave is n bytes (n <= max)
  void push(std::span<const std::uint8_t> datagram);
  void clear() noexcept;

  std::size_t size() const noexcept { return ends_.size(); }
  bool empty() const noexcept { return ends_.empty(); }
  std::span<const std::uint8_t> operator[](std::size_t i) const noexcept;
  // The bytes of datagrams [first, first + count), contiguous.
  std::span<const std::uint8_t> run(std::size_t first, std::size_t count) const noexcept;

 private:
  std::size_t begin_of(std::size_t i) const noexcept { return i == 0 ? 0 : ends_[i - 1]; }
  std::unique_ptr<std::uint8_t[]> bytes_;  // not zeroed when it grows
  std::size_t capacity_ = 0;
  std::size_t used_ = 0;
  std::vector<std::size_t> ends_;  // where each datagram ends
};

class UdpBatch {
 public:
  enum class Mode { gso, sendmmsg, single };
  // `fd`: a UDP socket (not owned). Mode::gso falls back by itself when refused.
  explicit UdpBatch(int fd, Mode mode = Mode::gso) : fd_(fd), mode_(mode) {}

  // Sends datagrams[first..] to `to` in order; returns how many went (fewer when the socket
  // would block: the caller keeps the rest and waits for POLLOUT). An error only when
  // not one could be sent for another reason than EAGAIN.
  Result<std::size_t> send(const DatagramBuffer& datagrams, const Endpoint& to,
                           std::size_t first = 0);
  // Asks for socket buffers of `bytes` each way (SO_RCVBUF, SO_SNDBUF; the kernel caps
  // them at net.core.rmem_max / wmem_max): a GSO burst of 64 packets must not overflow
  // the default 208 KiB at the receiver, or every overflow is a loss to QUIC's
  // congestion control. Best effort.
  void request_buffers(int bytes);
  // Turns UDP_GRO on for the socket (false when the kernel has none).
  bool enable_gro();
  // Appends up to `max` datagrams that are waiting (none when none are: never blocks).
  Result<std::size_t> receive(std::vector<Datagram>& out, std::size_t max = 64);
  // The same without copies: `each` sees every datagram in the batch's own buffer (valid
  // during the call). `slot`: the largest datagram taken whole (without GRO); a longer
  // one is cut there, as recvfrom(2) would.
  using EachFn = std::function<void(std::span<const std::uint8_t>, const Endpoint&)>;
  Result<std::size_t> receive_each(const EachFn& each, std::size_t max = 64,
                                   std::size_t slot = 2048);

  // The last receive took fewer messages than it asked for: the socket was empty then,
  // so the caller may wait for poll(2) instead of asking again (a receive that finds
  // nothing costs a system call).
  bool drained() const noexcept { return drained_; }

  Mode mode() const noexcept { return mode_; }
  std::uint64_t syscalls() const noexcept { return syscalls_; }

 private:
  Result<std::size_t> send_gso(const DatagramBuffer& datagrams, std::size_t first,
                               const Endpoint& to);
  Result<std::size_t> send_mmsg(const DatagramBuffer& datagrams, std::size_t first,
                                std::size_t count, const Endpoint& to);
  int fd_;
  Mode mode_;
  bool gro_ = false;
  bool drained_ = false;
  std::uint64_t syscalls_ = 0;
  std::vector<std::uint8_t> receive_buffer_;
  std::vector<iovec> receive_iov_;
  std::vector<mmsghdr> receive_msgs_;
  std::vector<sockaddr_storage> receive_from_;
  std::vector<char> receive_control_;
};

}  // namespace porthole::detail
