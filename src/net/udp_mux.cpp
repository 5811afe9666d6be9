#include "net/udp_mux.hpp"

#include <netinet/in.h>
#include <sys/socket.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include <fmt/format.h>

#include "codec/byte_order.hpp"
#include "codec/crc32.hpp"
#include "codec/stun_codec.hpp"

namespace porthole::detail {
namespace {

// The largest UDP payload over IPv4 or IPv6 without jumbograms.
// A datagram longer than this is cut (and then fails to parse): STUN, TURN and QUIC
// packets on a path of Ethernet MTU are under 1500 bytes.
constexpr std::size_t kMaxDatagram = 4096;
constexpr std::size_t kBatch = 32;

// RFC 8489 s5 and s14: the header checks of stun::decode and the attribute walk, without
// reading any value but FINGERPRINT's.
bool is_stun(std::span<const std::uint8_t> b) {
  if (b.size() < stun::kHeaderSize || (b[0] & 0xc0) != 0) return false;
  if (get_u32(b, 4) != stun::kMagicCookie) return false;
  const std::size_t length = get_u16(b, 2);
  if (length % 4 != 0 || length != b.size() - stun::kHeaderSize) return false;
  std::size_t off = stun::kHeaderSize;
  while (off < b.size()) {
    if (b.size() - off < 4) return false;
    const std::uint16_t type = get_u16(b, off);
    const std::size_t len = get_u16(b, off + 2);
    const std::size_t next = off + 4 + ((len + 3) & ~std::size_t{3});
    if (next > b.size()) return false;
    if (type == stun::attr::fingerprint)  // s14.7: last, and the CRC matches
      return len == 4 && next == b.size() &&
             get_u32(b, off + 4) == (crc32(b.first(off)) ^ stun::kFingerprintXor);
    off = next;
  }
  return true;
}

// RFC 8656 s12.4: Channel Number 0x4000..0x4FFF, Length, data; over UDP the padding to
// a multiple of 4 may be there or not (s12.5).
bool is_channel_data(std::span<const std::uint8_t> b) {
  if (b.size() < 4) return false;
  const std::uint16_t channel = get_u16(b, 0);
  if (channel < 0x4000 || channel > 0x4fff) return false;
  const std::size_t length = get_u16(b, 2);
  return b.size() >= 4 + length && b.size() <= 4 + ((length + 3) & ~std::size_t{3});
}

}  // namespace

DatagramKind classify_datagram(std::span<const std::uint8_t> bytes, const Endpoint& from,
                               std::span<const Endpoint> turn_servers) {
  if (bytes.empty()) return DatagramKind::drop;
  if (std::find(turn_servers.begin(), turn_servers.end(), from) != turn_servers.end())
    return is_channel_data(bytes) || is_stun(bytes) ? DatagramKind::turn : DatagramKind::drop;
  return is_stun(bytes) ? DatagramKind::stun : DatagramKind::quic;
}

UdpMux::UdpMux(UdpSocket socket) : socket_(std::move(socket)), batch_(socket_.fd()) {}

void UdpMux::add_turn_server(const Endpoint& server) {
  if (std::find(turn_servers_.begin(), turn_servers_.end(), server) == turn_servers_.end())
    turn_servers_.push_back(server);
}

void UdpMux::remove_turn_server(const Endpoint& server) { std::erase(turn_servers_, server); }

Result<std::size_t> UdpMux::on_readable() {
  std::size_t count = 0;
  auto dispatch = [this](std::span<const std::uint8_t> bytes, const Endpoint& source) {
    const Handler* handler = nullptr;
    switch (classify_datagram(bytes, source, turn_servers_)) {
      case DatagramKind::stun: handler = &stun_; break;
      case DatagramKind::turn: handler = &turn_; break;
      case DatagramKind::quic: handler = &quic_; break;
      case DatagramKind::drop: break;
    }
    if (handler == nullptr || !*handler) {
      ++dropped_;
      return;
    }
    (*handler)(bytes, source);
  };
  for (;;) {
    auto n = batch_.receive_each(dispatch, kBatch, kMaxDatagram);
    if (!n) return n.error();
    if (*n == 0) return count;
    count += *n;
  }
}

Status UdpMux::send_to(std::span<const std::uint8_t> bytes, const Endpoint& to) {
  sockaddr_storage sa{};
  const std::size_t len = to.to_sockaddr(sa);
  if (::sendto(socket_.fd(), bytes.data(), bytes.size(), 0, reinterpret_cast<const sockaddr*>(&sa),
               static_cast<socklen_t>(len)) < 0)
    return make_error(Errc::internal,
                      fmt::format("sendto {}: {}", to.to_string(), std::strerror(errno)));
  return ok_status();
}

}  // namespace porthole::detail
