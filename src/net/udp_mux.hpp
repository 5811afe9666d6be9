// One UDP socket, several users: STUN (checks and Binding answers), TURN (the relay's
// ChannelData and STUN messages) and QUIC share the socket, and so the NAT mapping,
// that hole punching opened. The mux reads each datagram, decides whose it is with
// classify_datagram() and hands it over; every user sends through the same socket.
//
// No thread and no loop of its own: register fd() with a poll loop (the reactor) and
// call on_readable() when it is readable.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <span>
#include <vector>

#include "net/udp_batch.hpp"
#include "net/udp_socket.hpp"
#include "porthole/error.hpp"
#include "porthole/ip_address.hpp"

namespace porthole::detail {

enum class DatagramKind {
  stun,  // a STUN message from anyone but a TURN server
  turn,  // ChannelData or a STUN message from a registered TURN server
  quic,  // everything else
  drop,  // empty, or from a TURN server but neither ChannelData nor STUN
};

// Whose a datagram is (pure; no socket):
//  - from an address in `turn_servers`: ChannelData (RFC 8656 s12.4: channel number
//    0x4000..0x4FFF, Length within the datagram) or STUN -> turn, anything else -> drop;
//  - STUN (RFC 8489 s5, s6.3: top two bits 0, the magic cookie at offset 4, Message
//    Length a multiple of 4 equal to the bytes after the header, attributes inside the
//    message, FINGERPRINT last and correct when there is one) -> stun;
//  - everything else, and datagrams that only look like STUN -> quic (ngtcp2 checks).
//
// Why not by the first byte as RFC 7983 and RFC 9443 describe (0..3 STUN, 64..79 TURN
// channels, 128..191 QUIC, ...): RFC 9287 lets a QUIC endpoint "grease" the fixed bit
// (0x40) of its packets, and Debian's ngtcp2 (0.12.1) always does, so about half of
// QUIC's short-header packets start with a byte below 64 and land in STUN's and TURN's
// ranges. The magic cookie, the length and FINGERPRINT tell STUN apart, and TURN
// traffic is recognised by where it comes from.
DatagramKind classify_datagram(std::span<const std::uint8_t> bytes, const Endpoint& from,
                               std::span<const Endpoint> turn_servers);

class UdpMux {
 public:
  using Handler = std::function<void(std::span<const std::uint8_t> bytes, const Endpoint& from)>;

  explicit UdpMux(UdpSocket socket);

  // A handler left unset drops its datagrams (counted in dropped()).
  void on_stun(Handler handler) { stun_ = std::move(handler); }
  void on_turn(Handler handler) { turn_ = std::move(handler); }
  void on_quic(Handler handler) { quic_ = std::move(handler); }
  // UDP generic receive offload on the socket (UdpBatch::enable_gro); false without.
  bool enable_gro() { return batch_.enable_gro(); }
  void add_turn_server(const Endpoint& server);
  void remove_turn_server(const Endpoint& server);

  int fd() const { return socket_.fd(); }
  std::uint16_t local_port() const { return socket_.local_port(); }

  // Reads every datagram waiting on the socket (without blocking) and hands each to
  // its user; returns how many were read. Errc::internal on a socket error (an ICMP
  // error reported on the socket is not one: it is skipped).
  Result<std::size_t> on_readable();

  // What every user sends with: the one socket, so the answers come back to it.
  Status send_to(std::span<const std::uint8_t> bytes, const Endpoint& to);

  std::size_t dropped() const { return dropped_; }

 private:
  UdpSocket socket_;
  std::vector<Endpoint> turn_servers_;
  Handler stun_, turn_, quic_;
  std::size_t dropped_ = 0;
  UdpBatch batch_;  // recvmmsg(2): up to kBatch datagrams a system call
};

}  // namespace porthole::detail
