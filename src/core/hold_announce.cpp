#include "core/hold_announce.hpp"

#include <arpa/inet.h>
#include <cerrno>
#include <cstring>
#include <netinet/in.h>
#include <sys/socket.h>

#include <fmt/format.h>

#include "codec/natpmp_codec.hpp"
#include "codec/pcp_codec.hpp"

namespace porthole::detail {

std::optional<Announcement> parse_announcement(std::span<const std::uint8_t> bytes) {
  if (bytes.empty()) return std::nullopt;
  if (bytes[0] == pcp::kVersion) {
    auto r = pcp::decode_response(bytes);
    if (!r || r->opcode != pcp::opcode::announce || r->result_code != pcp::result::success)
      return std::nullopt;
    return Announcement{Protocol::pcp, r->epoch, {}};
  }
  if (bytes[0] == natpmp::kVersion) {
    auto r = natpmp::decode_reply(bytes);
    if (!r || r->opcode != natpmp::opcode::public_address ||
        r->result_code != natpmp::result::success || !r->has_body)
      return std::nullopt;
    return Announcement{Protocol::natpmp, r->epoch, r->external_ip()};
  }
  return std::nullopt;
}

Result<UdpSocket> open_announce_listener(const IpAddress& local_ip, std::uint16_t port) {
  auto socket = UdpSocket::open_unconnected();
  if (!socket) return socket.error();
  const int fd = socket->fd();
  auto fail = [&](const char* what) -> Error {
    return make_error(Errc::internal, fmt::format("announcement listener on port {}: {}: {}", port,
                                                  what, std::strerror(errno)));
  };
  int one = 1;
  if (::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) != 0)
    return fail("SO_REUSEADDR");
  if (::setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one) != 0)
    return fail("SO_REUSEPORT");
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  addr.sin_addr.s_addr = htonl(INADDR_ANY);  // multicast and unicast both arrive here
  if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) return fail("bind");
  ip_mreq mreq{};
  ::inet_pton(AF_INET, "224.0.0.1", &mreq.imr_multiaddr);
  if (!local_ip.is_v4()) return fail("local address");
  std::memcpy(&mreq.imr_interface, local_ip.bytes().data(), sizeof mreq.imr_interface);
  if (::setsockopt(fd, IPPROTO_IP, IP_ADD_MEMBERSHIP, &mreq, sizeof mreq) != 0)
    return fail("IP_ADD_MEMBERSHIP 224.0.0.1");
  return socket;
}

}  // namespace porthole::detail
