// TURN (RFC 8656) over UDP on the STUN codec (codec/stun_codec.hpp): the requests a
// client sends (Allocate, Refresh, CreatePermission, ChannelBind), the Send indication,
// the long-term credential attributes (RFC 8489 s9.2.4), the Data indication it
// receives, and ChannelData framing (s12.4). Pure functions: no sockets, no clock; the
// transaction ID comes in as a parameter.
//
// The typed TURN attributes (LIFETIME, XOR-PEER-ADDRESS, XOR-RELAYED-ADDRESS, DATA,
// CHANNEL-NUMBER, REQUESTED-TRANSPORT) are read by stun::decode() into stun::Message.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "codec/stun_codec.hpp"
#include "porthole/error.hpp"
#include "porthole/ip_address.hpp"

namespace porthole::detail::turn {

// s12: channel numbers a client may bind.
inline constexpr std::uint16_t kChannelMin = 0x4000;
inline constexpr std::uint16_t kChannelMax = 0x4FFF;
inline constexpr std::size_t kChannelDataHeaderSize = 4;
// s18.2: the lifetime a server grants when none is asked (and the least it must allow).
inline constexpr std::uint32_t kDefaultLifetime = 600;

// The long-term credentials of one allocation (RFC 8489 s9.2): the user's name, and the
// realm and nonce the server's last 401 or 438 gave, with the key they make.
struct LongTermAuth {
  std::string username;
  std::string realm;
  std::string nonce;
  stun::IntegrityKey key;  // stun::IntegrityKey::long_term(username, realm, password)
};

// Adds USERNAME, NONCE, REALM and MESSAGE-INTEGRITY (s9.2.4), in the order RFC 5769
// s2.4's vector has them; MESSAGE-INTEGRITY must be the last attribute the caller adds.
void add_long_term_auth(stun::MessageWriter& w, const LongTermAuth& auth);

// The requests (s7.1, s7.2, s9.1, s11.1), each signed when `auth` is set. No FINGERPRINT:
// RFC 8656 does not ask for one and the server's address already tells its answers apart.
//
// Allocate: REQUESTED-TRANSPORT UDP (17), and LIFETIME when `lifetime` is set.
Result<std::vector<std::uint8_t>> encode_allocate(const stun::TransactionId& id,
                                                  std::optional<std::uint32_t> lifetime,
                                                  const LongTermAuth* auth);
// Refresh: LIFETIME (0 deletes the allocation, s7.2).
Result<std::vector<std::uint8_t>> encode_refresh(const stun::TransactionId& id,
                                                 std::uint32_t lifetime, const LongTermAuth* auth);
// CreatePermission: one XOR-PEER-ADDRESS per peer IP (the port is ignored, s9.1); at
// least one peer, or Errc::usage.
Result<std::vector<std::uint8_t>> encode_create_permission(const stun::TransactionId& id,
                                                           std::span<const IpAddress> peers,
                                                           const LongTermAuth* auth);
// ChannelBind: CHANNEL-NUMBER and XOR-PEER-ADDRESS; Errc::usage when the channel is
// outside 0x4000..0x4FFF.
Result<std::vector<std::uint8_t>> encode_channel_bind(const stun::TransactionId& id,
                                                      std::uint16_t channel, const Endpoint& peer,
                                                      const LongTermAuth* auth);
// Send indication (s11.1): XOR-PEER-ADDRESS and DATA; never signed (indications cannot
// be, s5). Errc::usage when the data does not fit in a STUN message.
Result<std::vector<std::uint8_t>> encode_send_indication(const stun::TransactionId& id,
                                                         const Endpoint& peer,
                                                         std::span<const std::uint8_t> data);

// A Data indication (s11.4) from the server: where the peer's datagram came from and
// its bytes. Errc::internal (drop it) when `m` is not one or lacks XOR-PEER-ADDRESS or
// DATA.
struct DataIndication {
  Endpoint peer;
  std::vector<std::uint8_t> data;
};
Result<DataIndication> read_data_indication(const stun::Message& m);

// ChannelData (s12.4):
//   0                   1                   2                   3
//   0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//  +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//  |         Channel Number        |            Length             |
//  +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//  :                Application Data (Length bytes), padded to 4  :
// Over UDP the padding may be left out (s12.5); porthole sends it.
struct ChannelData {
  std::uint16_t channel = 0;
  std::span<const std::uint8_t> data;  // into the decoded datagram
};
// Errc::internal (drop it) when the datagram is shorter than the header, the channel is
// outside 0x4000..0x4FFF, Length runs past the datagram, or more than 3 bytes of padding
// follow the data.
Result<ChannelData> decode_channel_data(std::span<const std::uint8_t> datagram);
// Errc::usage when the channel is outside the range or the data longer than 65535 bytes.
Result<std::vector<std::uint8_t>> encode_channel_data(std::uint16_t channel,
                                                      std::span<const std::uint8_t> data);

}  // namespace porthole::detail::turn
