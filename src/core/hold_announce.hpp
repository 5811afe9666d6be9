// The gateway's multicast announcements (224.0.0.1:5350): a PCP ANNOUNCE after a
// restart (RFC 6887 s14.1.3) or a NAT-PMP public address announcement after a restart
// or an address change (RFC 6886 s3.2.1). Either means: renew everything now.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>

#include "net/udp_socket.hpp"
#include "porthole/types.hpp"

namespace porthole::detail {

struct Announcement {
  Protocol protocol = Protocol::pcp;  // pcp or natpmp
  std::uint32_t epoch = 0;
  std::optional<IpAddress> external_ip;  // NAT-PMP only; nullopt for PCP
};

// Decodes one datagram with the protocol codecs: a successful PCP ANNOUNCE response,
// or a successful NAT-PMP public address reply. Anything else: nullopt (dropped).
std::optional<Announcement> parse_announcement(std::span<const std::uint8_t> bytes);

// A UDP socket on 0.0.0.0:port that has joined 224.0.0.1 on the interface of
// `local_ip`. SO_REUSEADDR and SO_REUSEPORT: several holders on one host all hear
// the announcements.
Result<UdpSocket> open_announce_listener(const IpAddress& local_ip, std::uint16_t port);

}  // namespace porthole::detail
