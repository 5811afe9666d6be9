// Batched UDP send and receive (net/udp_batch.hpp).
#include "net/udp_batch.hpp"

#include <algorithm>
#include <array>
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

constexpr std::size_t kMaxMessages = 64;
constexpr std::size_t kGroBuffer = 65535;
constexpr std::size_t kMaxGroMessages = 8;

Error send_error(int err) {
  return make_error(Errc::internal, fmt::format("UDP send: {}", std::strerror(err)));
}

}  // namespace

std::span<std::uint8_t> DatagramBuffer::room(std::size_t max) {
  if (used_ + max > capacity_) {
    std::size_t grown = std::max(used_ + max, 2 * capacity_);
    auto bigger = std::make_unique<std::uint8_t[]>(grown);  // NOLINT: no zeroing wanted
    if (used_ > 0) std::memcpy(bigger.get(), bytes_.get(), used_);
    bytes_ = std::move(bigger);
    capacity_ = grown;
  }
  return {bytes_.get() + used_, max};
}

void DatagramBuffer::commit(std::size_t n) {
  used_ += std::min(n, capacity_ - used_);
  ends_.push_back(used_);
}

void DatagramBuffer::push(std::span<const std::uint8_t> datagram) {
  auto to = room(datagram.size());
  if (!datagram.empty()) std::memcpy(to.data(), datagram.data(), datagram.size());
  commit(datagram.size());
}

void DatagramBuffer::clear() noexcept {
  used_ = 0;
  ends_.clear();
}

std::span<const std::uint8_t> DatagramBuffer::operator[](std::size_t i) const noexcept {
  return run(i, 1);
}

std::span<const std::uint8_t> DatagramBuffer::run(std::size_t first,
                                                  std::size_t count) const noexcept {
  const std::size_t from = begin_of(first);
  return {bytes_.get() + from, ends_[first + count - 1] - from};
}

Result<std::size_t> UdpBatch::send(const DatagramBuffer& datagrams, const Endpoint& to,
                                   std::size_t first) {
  std::size_t done = 0;
  while (first + done < datagrams.size()) {
    const std::size_t at = first + done;
    const std::size_t rest = datagrams.size() - at;
    Result<std::size_t> n = mode_ == Mode::gso        ? send_gso(datagrams, at, to)
                            : mode_ == Mode::sendmmsg ? send_mmsg(datagrams, at, rest, to)
                                                      : send_mmsg(datagrams, at, 1, to);
    if (!n) {
      if (done > 0) return done;
      return n;
    }
    if (*n == 0) break;  // would block
    done += *n;
  }
  return done;
}

Result<std::size_t> UdpBatch::send_gso(const DatagramBuffer& datagrams, std::size_t first,
                                       const Endpoint& to) {
  // One run of equal-sized datagrams (the last of the run may be shorter), sent from
  // where they lie.
  const std::size_t size = datagrams[first].size();
  std::size_t count = 0, bytes = 0;
  while (first + count < datagrams.size() && count < kMaxGsoSegments) {
    std::size_t s = datagrams[first + count].size();
    if (s > size || bytes + s > kMaxGsoBytes || s == 0) break;
    bytes += s;
    ++count;
    if (s < size) break;
  }
  if (count <= 1) return send_mmsg(datagrams, first, 1, to);
  auto run = datagrams.run(first, count);
  sockaddr_storage sa{};
  auto sa_len = static_cast<socklen_t>(to.to_sockaddr(sa));
  iovec iov{const_cast<std::uint8_t*>(run.data()), run.size()};
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
      return send_mmsg(datagrams, first, datagrams.size() - first, to);
    }
    return send_error(errno);
  }
}

Result<std::size_t> UdpBatch::send_mmsg(const DatagramBuffer& datagrams, std::size_t first,
                                        std::size_t count, const Endpoint& to) {
  count = std::min({count, kMaxMessages, datagrams.size() - first});
  sockaddr_storage sa{};
  auto sa_len = static_cast<socklen_t>(to.to_sockaddr(sa));
  std::array<iovec, kMaxMessages> iov{};
  std::array<mmsghdr, kMaxMessages> msgs{};
  for (std::size_t i = 0; i < count; ++i) {
    auto d = datagrams[first + i];
    iov[i] = iovec{const_cast<std::uint8_t*>(d.data()), d.size()};
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
  // A GRO buffer holds up to 64 KiB of datagrams: fewer of them make a batch as large.
  if (gro_) {
    slot = kGroBuffer;
    count = std::min(count, kMaxGroMessages);
  }
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
  drained_ = n < static_cast<int>(count);
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
