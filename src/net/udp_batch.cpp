// Batched UDP send and receive (net/udp_batch.hpp).
#include "net/udp_batch.hpp"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <netinet/in.h>
#include <netinet/udp.h>
#include <sys/socket.h>

#include <fmt/format.h>

#ifndef UDP_SEGMENT
#define UDP_SEGMENT 103  // include/uapi/linux/udp.h
#endif
#ifndef UDP_GRO
#define UDP_GRO 104
#endif

namespace porthole::detail {
namespace {

// The kernel's limits for one GSO send (UDP_MAX_SEGMENTS, and the 64 KiB of an IP
// datagram the segments are cut from).
constexpr std::size_t kMaxSegments = 64;
constexpr std::size_t kMaxGsoBytes = 65000;
constexpr std::size_t kMaxMessages = 64;
constexpr std::size_t kGroBuffer = 65535;

Error send_error(int err) {
  return make_error(Errc::internal, fmt::format("UDP send: {}", std::strerror(err)));
}

}  // namespace

Result<std::size_t> UdpBatch::send(std::span<const std::vector<std::uint8_t>> datagrams,
                                   const Endpoint& to) {
  std::size_t done = 0;
  while (done < datagrams.size()) {
    auto rest = datagrams.subspan(done);
    Result<std::size_t> n = mode_ == Mode::gso        ? send_gso(rest, to)
                            : mode_ == Mode::sendmmsg ? send_mmsg(rest, to)
                                                      : send_mmsg(rest.first(1), to);
    if (!n) {
      if (done > 0) return done;
      return n;
    }
    if (*n == 0) break;  // would block
    done += *n;
  }
  return done;
}

Result<std::size_t> UdpBatch::send_gso(std::span<const std::vector<std::uint8_t>> datagrams,
                                       const Endpoint& to) {
  // One run of equal-sized datagrams (the last of the run may be shorter).
  std::size_t size = datagrams[0].size();
  std::size_t count = 0, bytes = 0;
  while (count < datagrams.size() && count < kMaxSegments) {
    std::size_t s = datagrams[count].size();
    if (s > size || bytes + s > kMaxGsoBytes || s == 0) break;
    bytes += s;
    ++count;
    if (s < size) break;
  }
  if (count <= 1) return send_mmsg(datagrams.first(std::min<std::size_t>(datagrams.size(), 1)), to);
  gso_buffer_.resize(bytes);
  std::size_t at = 0;
  for (std::size_t i = 0; i < count; ++i) {
    std::memcpy(gso_buffer_.data() + at, datagrams[i].data(), datagrams[i].size());
    at += datagrams[i].size();
  }
  sockaddr_storage sa{};
  auto sa_len = static_cast<socklen_t>(to.to_sockaddr(sa));
  iovec iov{gso_buffer_.data(), bytes};
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(std::uint16_t))] = {};
  msghdr msg{};
  msg.msg_name = &sa;
  msg.msg_namelen = sa_len;
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  msg.msg_control = control;
  msg.msg_controllen = sizeof control;
  cmsghdr* cm = CMSG_FIRSTHDR(&msg);
  cm->cmsg_level = SOL_UDP;
  cm->cmsg_type = UDP_SEGMENT;
  cm->cmsg_len = CMSG_LEN(sizeof(std::uint16_t));
  auto segment = static_cast<std::uint16_t>(size);
  std::memcpy(CMSG_DATA(cm), &segment, sizeof segment);
  for (;;) {
    ++syscalls_;
    ssize_t n = ::sendmsg(fd_, &msg, 0);
    if (n >= 0) return count;
    if (errno == EINTR) continue;
    if (errno == EAGAIN || errno == EWOULDBLOCK) return std::size_t{0};
    // No GSO here (an old kernel, a device or route without it): per-datagram from now on.
    if (errno == EIO || errno == EINVAL || errno == ENOPROTOOPT || errno == EOPNOTSUPP) {
      mode_ = Mode::sendmmsg;
      return send_mmsg(datagrams, to);
    }
    return send_error(errno);
  }
}

Result<std::size_t> UdpBatch::send_mmsg(std::span<const std::vector<std::uint8_t>> datagrams,
                                        const Endpoint& to) {
  std::size_t count = std::min(datagrams.size(), kMaxMessages);
  sockaddr_storage sa{};
  auto sa_len = static_cast<socklen_t>(to.to_sockaddr(sa));
  std::vector<iovec> iov(count);
  std::vector<mmsghdr> msgs(count);
  for (std::size_t i = 0; i < count; ++i) {
    iov[i] = iovec{const_cast<std::uint8_t*>(datagrams[i].data()), datagrams[i].size()};
    msgs[i].msg_hdr.msg_name = &sa;
    msgs[i].msg_hdr.msg_namelen = sa_len;
    msgs[i].msg_hdr.msg_iov = &iov[i];
    msgs[i].msg_hdr.msg_iovlen = 1;
  }
  for (;;) {
    ++syscalls_;
    int n = ::sendmmsg(fd_, msgs.data(), static_cast<unsigned>(count), 0);
    if (n >= 0) return static_cast<std::size_t>(n);
    if (errno == EINTR) continue;
    if (errno == EAGAIN || errno == EWOULDBLOCK) return std::size_t{0};
    return send_error(errno);
  }
}

// NOLINTNEXTLINE(readability-make-member-function-const): it changes the socket
void UdpBatch::request_buffers(int bytes) {
  (void)::setsockopt(fd_, SOL_SOCKET, SO_RCVBUF, &bytes, sizeof bytes);
  (void)::setsockopt(fd_, SOL_SOCKET, SO_SNDBUF, &bytes, sizeof bytes);
}

bool UdpBatch::enable_gro() {
  int on = 1;
  gro_ = ::setsockopt(fd_, SOL_UDP, UDP_GRO, &on, sizeof on) == 0;
  return gro_;
}

Result<std::size_t> UdpBatch::receive(std::vector<Datagram>& out, std::size_t max) {
  return receive_each(
      [&out](std::span<const std::uint8_t> bytes, const Endpoint& from) {
        out.push_back(Datagram{std::vector<std::uint8_t>(bytes.begin(), bytes.end()), from});
      },
      max);
}

Result<std::size_t> UdpBatch::receive_each(const EachFn& each, std::size_t max, std::size_t slot) {
  std::size_t count = std::clamp<std::size_t>(max, 1, kMaxMessages);
  if (gro_) slot = kGroBuffer;
  receive_buffer_.resize(count * slot);
  receive_iov_.resize(count);
  receive_msgs_.assign(count, mmsghdr{});
  receive_from_.resize(count);
  constexpr std::size_t kControl = CMSG_SPACE(sizeof(int));
  receive_control_.assign(count * kControl, 0);
  for (std::size_t i = 0; i < count; ++i) {
    receive_iov_[i] = iovec{receive_buffer_.data() + i * slot, slot};
    auto& h = receive_msgs_[i].msg_hdr;
    h.msg_name = &receive_from_[i];
    h.msg_namelen = sizeof(sockaddr_storage);
    h.msg_iov = &receive_iov_[i];
    h.msg_iovlen = 1;
    if (gro_) {
      h.msg_control = receive_control_.data() + i * kControl;
      h.msg_controllen = kControl;
    }
  }
  int n;
  for (;;) {
    ++syscalls_;
    n = ::recvmmsg(fd_, receive_msgs_.data(), static_cast<unsigned>(count), MSG_DONTWAIT, nullptr);
    // EINTR, or an ICMP error queued on the socket (port unreachable: the call reports
    // it and consumes it), then the datagrams behind it.
    if (n >= 0 || (errno != EINTR && errno != ECONNREFUSED)) break;
  }
  if (n < 0) {
    if (errno == EAGAIN || errno == EWOULDBLOCK) return std::size_t{0};
    return make_error(Errc::internal, fmt::format("UDP receive: {}", std::strerror(errno)));
  }
  std::size_t seen = 0;
  for (int i = 0; i < n; ++i) {
    auto& h = receive_msgs_[static_cast<std::size_t>(i)];
    auto source = Endpoint::from_sockaddr(reinterpret_cast<const sockaddr*>(h.msg_hdr.msg_name),
                                          h.msg_hdr.msg_namelen);
    if (!source) continue;
    const std::uint8_t* data = receive_buffer_.data() + static_cast<std::size_t>(i) * slot;
    std::size_t length = std::min<std::size_t>(h.msg_len, slot);
    // GRO: one buffer holds several datagrams of gso_size bytes (the last may be shorter).
    std::size_t segment = length;
    for (cmsghdr* cm = gro_ ? CMSG_FIRSTHDR(&h.msg_hdr) : nullptr; cm;
         cm = CMSG_NXTHDR(&h.msg_hdr, cm)) {
      if (cm->cmsg_level == SOL_UDP && cm->cmsg_type == UDP_GRO) {
        int size = 0;
        std::memcpy(&size, CMSG_DATA(cm), sizeof size);
        if (size > 0) segment = static_cast<std::size_t>(size);
      }
    }
    if (length == 0) {  // an empty datagram is one too
      each(std::span<const std::uint8_t>(), *source);
      ++seen;
      continue;
    }
    for (std::size_t at = 0; at < length; at += segment) {
      each(std::span<const std::uint8_t>(data + at, std::min(segment, length - at)), *source);
      ++seen;
    }
  }
  return seen;
}

}  // namespace porthole::detail
