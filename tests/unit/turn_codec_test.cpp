// TURN codec (RFC 8656): each request and indication against bytes written out by hand,
// the long-term credential attributes against RFC 5769 s2.4's vector, ChannelData
// framing and its receive checks.
#include <catch2/catch.hpp>

#include <cstdint>
#include <string>
#include <vector>

#include "codec/stun_codec.hpp"
#include "codec/turn_codec.hpp"

namespace stun = porthole::detail::stun;
namespace turn = porthole::detail::turn;
using Bytes = std::vector<std::uint8_t>;

namespace {

const stun::TransactionId kId = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12};

// The 20-byte header: type, Message Length, magic cookie, transaction ID kId.
Bytes header(std::uint8_t type_hi, std::uint8_t type_lo, std::uint8_t length) {
  Bytes h = {type_hi, type_lo, 0x00, length, 0x21, 0x12, 0xa4, 0x42};
  h.insert(h.end(), kId.begin(), kId.end());
  return h;
}

Bytes operator+(Bytes a, const Bytes& b) {
  a.insert(a.end(), b.begin(), b.end());
  return a;
}

// XOR-PEER-ADDRESS 192.0.2.1:32853: the X-Port and X-Address of RFC 5769 s2.2.
const Bytes kPeer = {
    0x00, 0x12, 0x00, 0x08,  // XOR-PEER-ADDRESS, length 8
    0x00, 0x01, 0xa1, 0x47,  //   IPv4, port 32853 ^ 0x2112
    0xe1, 0x12, 0xa6, 0x43,  //   192.0.2.1 ^ 0x2112a442
};

porthole::Endpoint endpoint(const std::string& text) {
  auto e = porthole::Endpoint::parse(text);
  REQUIRE(e.ok());
  return *e;
}

template <class R>
auto value(R r) {
  INFO((r.ok() ? std::string() : r.error().message));
  REQUIRE(r.ok());
  return std::move(*r);
}

stun::Message decoded(const Bytes& b) { return value(stun::decode(b)); }

// RFC 5769 s2.4 and RFC 8489 Appendix B.1: the username is six katakana (UTF-8).
const std::string kKatakanaUser =
    "\xe3\x83\x9e\xe3\x83\x88\xe3\x83\xaa\xe3\x83\x83\xe3\x82\xaf\xe3\x82\xb9";

}  // namespace

TEST_CASE("TURN long-term auth attributes rebuild RFC 5769 s2.4's request", "[turn]") {
  const Bytes expected = {
      0x00, 0x01, 0x00, 0x60, 0x21, 0x12, 0xa4, 0x42, 0x78, 0xad,
      0x34, 0x33, 0xc6, 0xad, 0x72, 0xc0, 0x29, 0xda, 0x41, 0x2e,  // header
      0x00, 0x06, 0x00, 0x12, 0xe3, 0x83, 0x9e, 0xe3, 0x83, 0x88,  // USERNAME
      0xe3, 0x83, 0xaa, 0xe3, 0x83, 0x83, 0xe3, 0x82, 0xaf, 0xe3,  //
      0x82, 0xb9, 0x00, 0x00,                                      //
      0x00, 0x15, 0x00, 0x1c, 0x66, 0x2f, 0x2f, 0x34, 0x39, 0x39,  // NONCE
      0x6b, 0x39, 0x35, 0x34, 0x64, 0x36, 0x4f, 0x4c, 0x33, 0x34,  //
      0x6f, 0x4c, 0x39, 0x46, 0x53, 0x54, 0x76, 0x79, 0x36, 0x34,  //
      0x73, 0x41,                                                  //
      0x00, 0x14, 0x00, 0x0b, 0x65, 0x78, 0x61, 0x6d, 0x70, 0x6c,  // REALM "example.org"
      0x65, 0x2e, 0x6f, 0x72, 0x67, 0x00,                          //
      0x00, 0x08, 0x00, 0x14, 0xf6, 0x70, 0x24, 0x65, 0x6d, 0xd6,  // MESSAGE-INTEGRITY
      0x4a, 0x3e, 0x02, 0xb8, 0xe0, 0x71, 0x2e, 0x85, 0xc9, 0xa2,  //
      0x8c, 0xa8, 0x96, 0x66,
  };
  const stun::TransactionId id = {0x78, 0xad, 0x34, 0x33, 0xc6, 0xad,
                                  0x72, 0xc0, 0x29, 0xda, 0x41, 0x2e};
  turn::LongTermAuth auth{kKatakanaUser, "example.org", "f//499k954d6OL34oL9FSTvy64sA",
                          value(stun::IntegrityKey::long_term(kKatakanaUser, "example.org",
                                                              "TheMatrIX"))};
  stun::MessageWriter w(stun::method::binding, stun::MessageClass::request, id);
  turn::add_long_term_auth(w, auth);
  CHECK(value(w.finish(false)) == expected);
}

TEST_CASE("TURN Allocate without credentials: REQUESTED-TRANSPORT UDP and LIFETIME", "[turn]") {
  const Bytes expected = header(0x00, 0x03, 0x10) +  // Allocate request, length 16
                         Bytes{
                             0x00, 0x19, 0x00, 0x04,  // REQUESTED-TRANSPORT
                             0x11, 0x00, 0x00, 0x00,  //   UDP (17), RFFU
                             0x00, 0x0d, 0x00, 0x04,  // LIFETIME
                             0x00, 0x00, 0x02, 0x58,  //   600 s
                         };
  const auto bytes = value(turn::encode_allocate(kId, 600, nullptr));
  CHECK(bytes == expected);
  const auto m = decoded(bytes);
  CHECK(m.method == stun::method::allocate);
  CHECK(m.requested_transport == stun::kTransportUdp);
  CHECK(m.lifetime == 600u);
  CHECK_FALSE(m.has_message_integrity);
}

TEST_CASE("TURN Allocate with credentials verifies with MD5(user:realm:password)", "[turn]") {
  turn::LongTermAuth auth{"alice", "lab", "abcd1234",
                          value(stun::IntegrityKey::long_term("alice", "lab", "secret"))};
  const auto bytes = value(turn::encode_allocate(kId, std::nullopt, &auth));
  const auto m = decoded(bytes);
  CHECK(m.username == "alice");
  CHECK(m.realm == "lab");
  CHECK(m.nonce == "abcd1234");
  REQUIRE(m.attributes.back().type == stun::attr::message_integrity);
  CHECK(stun::check_integrity(bytes, m, auth.key).ok());
  auto wrong = value(stun::IntegrityKey::long_term("alice", "lab", "Secret"));
  CHECK_FALSE(stun::check_integrity(bytes, m, wrong).ok());
}

TEST_CASE("TURN Refresh with LIFETIME 0 deletes: golden bytes", "[turn]") {
  const Bytes expected = header(0x00, 0x04, 0x08) +  // Refresh request, length 8
                         Bytes{
                             0x00, 0x0d, 0x00, 0x04,  // LIFETIME
                             0x00, 0x00, 0x00, 0x00,  //   0: delete
                         };
  CHECK(value(turn::encode_refresh(kId, 0, nullptr)) == expected);
}

TEST_CASE("TURN CreatePermission: XOR-PEER-ADDRESS with port 0, golden bytes", "[turn]") {
  const Bytes expected = header(0x00, 0x08, 0x0c) +  // CreatePermission request, length 12
                         Bytes{
                             0x00, 0x12, 0x00, 0x08,  // XOR-PEER-ADDRESS
                             0x00, 0x01, 0x21, 0x12,  //   IPv4, port 0 ^ 0x2112
                             0xe1, 0x12, 0xa6, 0x43,  //   192.0.2.1 ^ 0x2112a442
                         };
  const std::vector<porthole::IpAddress> peers = {endpoint("192.0.2.1:9").ip};
  CHECK(value(turn::encode_create_permission(kId, peers, nullptr)) == expected);
  auto none = turn::encode_create_permission(kId, {}, nullptr);
  REQUIRE_FALSE(none.ok());
  CHECK(none.error().code == porthole::Errc::usage);
}

TEST_CASE("TURN ChannelBind: CHANNEL-NUMBER then XOR-PEER-ADDRESS, golden bytes", "[turn]") {
  const Bytes expected = header(0x00, 0x09, 0x14) +  // ChannelBind request, length 20
                         Bytes{
                             0x00, 0x0c, 0x00, 0x04,  // CHANNEL-NUMBER
                             0x40, 0x00, 0x00, 0x00,  //   0x4000, RFFU
                         } +
                         kPeer;
  const auto bytes = value(
      turn::encode_channel_bind(kId, 0x4000, endpoint("192.0.2.1:32853"), nullptr));
  CHECK(bytes == expected);
  const auto m = decoded(bytes);
  CHECK(m.channel_number == 0x4000);
  CHECK(m.xor_peer_address == endpoint("192.0.2.1:32853"));
  for (std::uint16_t bad : {std::uint16_t{0x3fff}, std::uint16_t{0x5000}}) {
    auto r = turn::encode_channel_bind(kId, bad, endpoint("192.0.2.1:32853"), nullptr);
    REQUIRE_FALSE(r.ok());
    CHECK(r.error().code == porthole::Errc::usage);
  }
}

TEST_CASE("TURN Send indication: XOR-PEER-ADDRESS and padded DATA, golden bytes", "[turn]") {
  const Bytes expected = header(0x00, 0x16, 0x14) + kPeer +  // Send indication, length 20
                         Bytes{
                             0x00, 0x13, 0x00, 0x03,  // DATA, length 3
                             0x61, 0x62, 0x63, 0x00,  //   "abc" + 1 byte of padding
                         };
  const Bytes abc = {'a', 'b', 'c'};
  CHECK(value(turn::encode_send_indication(kId, endpoint("192.0.2.1:32853"), abc)) == expected);
  const Bytes huge(70000, 0);
  CHECK_FALSE(turn::encode_send_indication(kId, endpoint("192.0.2.1:32853"), huge).ok());
}

TEST_CASE("TURN Data indication: the peer and its bytes, anything else is dropped", "[turn]") {
  const Bytes data = {
      0x00, 0x13, 0x00, 0x04,  // DATA, length 4
      0x01, 0x02, 0x03, 0x04,  //
  };
  const Bytes data_indication = header(0x00, 0x17, 0x14) + kPeer + data;  // length 20
  auto d = value(turn::read_data_indication(decoded(data_indication)));
  CHECK(d.peer == endpoint("192.0.2.1:32853"));
  CHECK(d.data == Bytes{1, 2, 3, 4});

  CHECK_FALSE(turn::read_data_indication(decoded(header(0x00, 0x17, 0x0c) + kPeer)).ok());
  CHECK_FALSE(turn::read_data_indication(decoded(header(0x00, 0x17, 0x08) + data)).ok());
  // A Send indication (what a client sends) is not a Data indication.
  const Bytes abc = {'a', 'b', 'c'};
  auto send = value(turn::encode_send_indication(kId, endpoint("192.0.2.1:32853"), abc));
  CHECK_FALSE(turn::read_data_indication(decoded(send)).ok());
}

TEST_CASE("ChannelData: 4-byte header, data padded to 4, and back", "[turn]") {
  const Bytes abcde = {'a', 'b', 'c', 'd', 'e'};
  const Bytes expected = {0x40, 0x01, 0x00, 0x05, 'a', 'b', 'c', 'd', 'e', 0, 0, 0};
  const auto bytes = value(turn::encode_channel_data(0x4001, abcde));
  CHECK(bytes == expected);
  auto cd = value(turn::decode_channel_data(bytes));
  CHECK(cd.channel == 0x4001);
  CHECK(Bytes(cd.data.begin(), cd.data.end()) == abcde);
  // s12.5: over UDP the padding may be left out.
  const Bytes unpadded(expected.begin(), expected.begin() + 9);
  CHECK(value(turn::decode_channel_data(unpadded)).data.size() == 5);
  // Empty data is a valid message.
  CHECK(value(turn::encode_channel_data(0x4fff, {})) == Bytes{0x4f, 0xff, 0x00, 0x00});

  CHECK_FALSE(turn::encode_channel_data(0x3fff, abcde).ok());
  CHECK_FALSE(turn::encode_channel_data(0x5000, abcde).ok());
  CHECK_FALSE(turn::encode_channel_data(0x4000, Bytes(65536, 0)).ok());
}

TEST_CASE("ChannelData receive checks: range, Length, padding", "[turn]") {
  CHECK_FALSE(turn::decode_channel_data(Bytes{0x40, 0x00, 0x00}).ok());  // short header
  CHECK_FALSE(turn::decode_channel_data(Bytes{0x3f, 0xff, 0x00, 0x00}).ok());
  CHECK_FALSE(turn::decode_channel_data(Bytes{0x50, 0x00, 0x00, 0x00}).ok());
  CHECK_FALSE(turn::decode_channel_data(Bytes{0x40, 0x00, 0x00, 0x02, 0x01}).ok());  // past
  // Four bytes after one byte of data: more than padding.
  CHECK_FALSE(turn::decode_channel_data(Bytes{0x40, 0x00, 0x00, 0x01, 1, 0, 0, 0, 0}).ok());
  CHECK(turn::decode_channel_data(Bytes{0x40, 0x00, 0x00, 0x01, 1, 0, 0, 0}).ok());
}
