#include "codec/turn_codec.hpp"

#include <fmt/format.h>

#include "codec/byte_order.hpp"

namespace porthole::detail::turn {
namespace {

using Bytes = std::vector<std::uint8_t>;

bool valid_channel(std::uint16_t channel) {
  return channel >= kChannelMin && channel <= kChannelMax;
}

Result<Bytes> finish_request(stun::MessageWriter& w, const LongTermAuth* auth) {
  if (auth != nullptr) add_long_term_auth(w, *auth);
  return w.finish(false);
}

}  // namespace

void add_long_term_auth(stun::MessageWriter& w, const LongTermAuth& auth) {
  w.add_text(stun::attr::username, auth.username);
  w.add_text(stun::attr::nonce, auth.nonce);
  w.add_text(stun::attr::realm, auth.realm);
  w.add_message_integrity(auth.key);
}

Result<Bytes> encode_allocate(const stun::TransactionId& id, std::optional<std::uint32_t> lifetime,
                              const LongTermAuth* auth) {
  stun::MessageWriter w(stun::method::allocate, stun::MessageClass::request, id);
  w.add_requested_transport(stun::kTransportUdp);
  if (lifetime) w.add_u32(stun::attr::lifetime, *lifetime);
  return finish_request(w, auth);
}

Result<Bytes> encode_refresh(const stun::TransactionId& id, std::uint32_t lifetime,
                             const LongTermAuth* auth) {
  stun::MessageWriter w(stun::method::refresh, stun::MessageClass::request, id);
  w.add_u32(stun::attr::lifetime, lifetime);
  return finish_request(w, auth);
}

Result<Bytes> encode_create_permission(const stun::TransactionId& id,
                                       std::span<const IpAddress> peers, const LongTermAuth* auth) {
  if (peers.empty()) return make_error(Errc::usage, "CreatePermission needs at least one peer");
  stun::MessageWriter w(stun::method::create_permission, stun::MessageClass::request, id);
  for (const auto& ip : peers) w.add_xor_address(stun::attr::xor_peer_address, Endpoint{ip, 0});
  return finish_request(w, auth);
}

Result<Bytes> encode_channel_bind(const stun::TransactionId& id, std::uint16_t channel,
                                  const Endpoint& peer, const LongTermAuth* auth) {
  if (!valid_channel(channel))
    return make_error(Errc::usage,
                      fmt::format("TURN channel 0x{:04x} is outside 0x4000..0x4fff", channel));
  stun::MessageWriter w(stun::method::channel_bind, stun::MessageClass::request, id);
  w.add_channel_number(channel);
  w.add_xor_address(stun::attr::xor_peer_address, peer);
  return finish_request(w, auth);
}

Result<Bytes> encode_send_indication(const stun::TransactionId& id, const Endpoint& peer,
                                     std::span<const std::uint8_t> data) {
  stun::MessageWriter w(stun::method::send, stun::MessageClass::indication, id);
  w.add_xor_address(stun::attr::xor_peer_address, peer);
  w.add(stun::attr::data, data);
  return w.finish(false);
}

Result<DataIndication> read_data_indication(const stun::Message& m) {
  if (m.method != stun::method::data || m.message_class != stun::MessageClass::indication)
    return make_error(Errc::internal, "not a TURN Data indication");
  if (!m.xor_peer_address)
    return make_error(Errc::internal, "Data indication without XOR-PEER-ADDRESS");
  if (!m.data) return make_error(Errc::internal, "Data indication without DATA");
  return DataIndication{*m.xor_peer_address, *m.data};
}

Result<ChannelData> decode_channel_data(std::span<const std::uint8_t> datagram) {
  if (datagram.size() < kChannelDataHeaderSize)
    return make_error(Errc::internal, "ChannelData shorter than its 4-byte header");
  const std::uint16_t channel = get_u16(datagram, 0);
  if (!valid_channel(channel))
    return make_error(Errc::internal,
                      fmt::format("ChannelData on channel 0x{:04x}, outside 0x4000..0x4fff",
                                  channel));
  const std::size_t length = get_u16(datagram, 2);
  const std::size_t room = datagram.size() - kChannelDataHeaderSize;
  if (length > room)
    return make_error(Errc::internal,
                      fmt::format("ChannelData Length {} runs past the {} bytes after the header",
                                  length, room));
  if (room - length > 3)
    return make_error(Errc::internal,
                      fmt::format("ChannelData: {} bytes after the data (padding is 0..3)",
                                  room - length));
  return ChannelData{channel, datagram.subspan(kChannelDataHeaderSize, length)};
}

Result<Bytes> encode_channel_data(std::uint16_t channel, std::span<const std::uint8_t> data) {
  if (!valid_channel(channel))
    return make_error(Errc::usage,
                      fmt::format("TURN channel 0x{:04x} is outside 0x4000..0x4fff", channel));
  if (data.size() > 0xffff)
    return make_error(Errc::usage,
                      fmt::format("{} bytes do not fit in one ChannelData message", data.size()));
  Bytes out;
  out.reserve(kChannelDataHeaderSize + data.size() + 3);
  append_u16(out, channel);
  append_u16(out, static_cast<std::uint16_t>(data.size()));
  out.insert(out.end(), data.begin(), data.end());
  while (out.size() % 4 != 0) out.push_back(0);  // s12.5: padded to 4 over UDP
  return out;
}

}  // namespace porthole::detail::turn
