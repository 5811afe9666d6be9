// STUN codec (RFC 8489): the RFC 5769 test vectors, CRC-32 and FINGERPRINT, every receive
// check of RFC 8489 s6.3 (see decode_message in src/codec/stun_codec.hpp), and golden
// bytes / round trips of our encoder.
#include <catch2/catch.hpp>

#include <cstdint>
#include <string>
#include <vector>

#include "codec/hmac.hpp"
#include "codec/stun_codec.hpp"
#include "porthole/ip_address.hpp"
#include "ip_literal.hpp"

using porthole::test::ip;

namespace stun = porthole::detail::stun;
using Bytes = std::vector<std::uint8_t>;

namespace {

// RFC 5769 s2.1: sample request (short-term credentials, ICE attributes).
// Software "STUN test client", username "evtj:h6vY", password "VOkJxbRl1RmTxUk/WvJxBt".
const Bytes kSampleRequest = {
    0x00, 0x01, 0x00, 0x58,  // Binding request, Message Length 88
    0x21, 0x12, 0xa4, 0x42,  // magic cookie
    0xb7, 0xe7, 0xa7, 0x01,  // transaction ID (96 bits)
    0xbc, 0x34, 0xd6, 0x86,  //
    0xfa, 0x87, 0xdf, 0xae,  //
    0x80, 0x22, 0x00, 0x10,  // SOFTWARE, length 16
    0x53, 0x54, 0x55, 0x4e,  //   "STUN"
    0x20, 0x74, 0x65, 0x73,  //   " tes"
    0x74, 0x20, 0x63, 0x6c,  //   "t cl"
    0x69, 0x65, 0x6e, 0x74,  //   "ient"
    0x00, 0x24, 0x00, 0x04,  // PRIORITY (ICE, comprehension-required), length 4
    0x6e, 0x00, 0x01, 0xff,  //   priority value
    0x80, 0x29, 0x00, 0x08,  // ICE-CONTROLLED (comprehension-optional), length 8
    0x93, 0x2f, 0xf9, 0xb1,  //   tie breaker
    0x51, 0x26, 0x3b, 0x36,  //
    0x00, 0x06, 0x00, 0x09,  // USERNAME, length 9
    0x65, 0x76, 0x74, 0x6a,  //   "evtj"
    0x3a, 0x68, 0x36, 0x76,  //   ":h6v"
    0x59, 0x20, 0x20, 0x20,  //   "Y" + 3 bytes of padding (spaces)
    0x00, 0x08, 0x00, 0x14,  // MESSAGE-INTEGRITY, length 20
    0x9a, 0xea, 0xa7, 0x0c,  //   HMAC-SHA1
    0xbf, 0xd8, 0xcb, 0x56,  //
    0x78, 0x1e, 0xf2, 0xb5,  //
    0xb2, 0xd3, 0xf2, 0x49,  //
    0xc1, 0xb5, 0x71, 0xa2,  //
    0x80, 0x28, 0x00, 0x04,  // FINGERPRINT, length 4
    0xe5, 0x7a, 0x3b, 0xcf,  //   CRC-32 xor 0x5354554e
};

// RFC 5769 s2.2: sample IPv4 response, mapped address 192.0.2.1:32853.
const Bytes kIpv4Response = {
    0x01, 0x01, 0x00, 0x3c,  // Binding success response, Message Length 60
    0x21, 0x12, 0xa4, 0x42,  // magic cookie
    0xb7, 0xe7, 0xa7, 0x01,  // transaction ID
    0xbc, 0x34, 0xd6, 0x86,  //
    0xfa, 0x87, 0xdf, 0xae,  //
    0x80, 0x22, 0x00, 0x0b,  // SOFTWARE, length 11
    0x74, 0x65, 0x73, 0x74,  //   "test"
    0x20, 0x76, 0x65, 0x63,  //   " vec"
    0x74, 0x6f, 0x72, 0x20,  //   "tor" + 1 byte of padding (a space)
    0x00, 0x20, 0x00, 0x08,  // XOR-MAPPED-ADDRESS, length 8
    0x00, 0x01, 0xa1, 0x47,  //   reserved, family IPv4, X-Port (32853 ^ 0x2112)
    0xe1, 0x12, 0xa6, 0x43,  //   X-Address (192.0.2.1 ^ 0x2112a442)
    0x00, 0x08, 0x00, 0x14,  // MESSAGE-INTEGRITY, length 20
    0x2b, 0x91, 0xf5, 0x99,  //   HMAC-SHA1
    0xfd, 0x9e, 0x90, 0xc3,  //
    0x8c, 0x74, 0x89, 0xf9,  //
    0x2a, 0xf9, 0xba, 0x53,  //
    0xf0, 0x6b, 0xe7, 0xd7,  //
    0x80, 0x28, 0x00, 0x04,  // FINGERPRINT, length 4
    0xc0, 0x7d, 0x4c, 0x96,  //   CRC-32 xor 0x5354554e
};

// RFC 5769 s2.3: sample IPv6 response, 2001:db8:1234:5678:11:2233:4455:6677 port 32853.
const Bytes kIpv6Response = {
    0x01, 0x01, 0x00, 0x48,  // Binding success response, Message Length 72
    0x21, 0x12, 0xa4, 0x42,  // magic cookie
    0xb7, 0xe7, 0xa7, 0x01,  // transaction ID
    0xbc, 0x34, 0xd6, 0x86,  //
    0xfa, 0x87, 0xdf, 0xae,  //
    0x80, 0x22, 0x00, 0x0b,  // SOFTWARE, length 11
    0x74, 0x65, 0x73, 0x74,  //   "test"
    0x20, 0x76, 0x65, 0x63,  //   " vec"
    0x74, 0x6f, 0x72, 0x20,  //   "tor" + padding
    0x00, 0x20, 0x00, 0x14,  // XOR-MAPPED-ADDRESS, length 20
    0x00, 0x02, 0xa1, 0x47,  //   reserved, family IPv6, X-Port
    0x01, 0x13, 0xa9, 0xfa,  //   X-Address (xor cookie and transaction ID)
    0xa5, 0xd3, 0xf1, 0x79,  //
    0xbc, 0x25, 0xf4, 0xb5,  //
    0xbe, 0xd2, 0xb9, 0xd9,  //
    0x00, 0x08, 0x00, 0x14,  // MESSAGE-INTEGRITY, length 20
    0xa3, 0x82, 0x95, 0x4e,  //   HMAC-SHA1
    0x4b, 0xe6, 0x7b, 0xf1,  //
    0x17, 0x84, 0xc9, 0x7c,  //
    0x82, 0x92, 0xc2, 0x75,  //
    0xbf, 0xe3, 0xed, 0x41,  //
    0x80, 0x28, 0x00, 0x04,  // FINGERPRINT, length 4
    0xc8, 0xfb, 0x0b, 0x4c,  //   CRC-32 xor 0x5354554e
};

// RFC 5769 s2.4: sample request with long-term credentials (no FINGERPRINT).
const Bytes kLongTermRequest = {
    0x00, 0x01, 0x00, 0x60,  // Binding request, Message Length 96
    0x21, 0x12, 0xa4, 0x42,  // magic cookie
    0x78, 0xad, 0x34, 0x33,  // transaction ID
    0xc6, 0xad, 0x72, 0xc0,  //
    0x29, 0xda, 0x41, 0x2e,  //
    0x00, 0x06, 0x00, 0x12,  // USERNAME, length 18 (six katakana in UTF-8)
    0xe3, 0x83, 0x9e, 0xe3,  //
    0x83, 0x88, 0xe3, 0x83,  //
    0xaa, 0xe3, 0x83, 0x83,  //
    0xe3, 0x82, 0xaf, 0xe3,  //
    0x82, 0xb9, 0x00, 0x00,  //   + 2 bytes of padding
    0x00, 0x15, 0x00, 0x1c,  // NONCE, length 28
    0x66, 0x2f, 0x2f, 0x34,  //   "f//4"
    0x39, 0x39, 0x6b, 0x39,  //   "99k9"
    0x35, 0x34, 0x64, 0x36,  //   "54d6"
    0x4f, 0x4c, 0x33, 0x34,  //   "OL34"
    0x6f, 0x4c, 0x39, 0x46,  //   "oL9F"
    0x53, 0x54, 0x76, 0x79,  //   "STvy"
    0x36, 0x34, 0x73, 0x41,  //   "64sA"
    0x00, 0x14, 0x00, 0x0b,  // REALM, length 11
    0x65, 0x78, 0x61, 0x6d,  //   "exam"
    0x70, 0x6c, 0x65, 0x2e,  //   "ple."
    0x6f, 0x72, 0x67, 0x00,  //   "org" + 1 byte of padding
    0x00, 0x08, 0x00, 0x14,  // MESSAGE-INTEGRITY, length 20
    0xf6, 0x70, 0x24, 0x65,  //   HMAC-SHA1
    0x6d, 0xd6, 0x4a, 0x3e,  //
    0x02, 0xb8, 0xe0, 0x71,  //
    0x2e, 0x85, 0xc9, 0xa2,  //
    0x8c, 0xa8, 0x96, 0x66,  //
};

const stun::TransactionId kVectorId = {0xb7, 0xe7, 0xa7, 0x01, 0xbc, 0x34,
                                       0xd6, 0x86, 0xfa, 0x87, 0xdf, 0xae};
const stun::TransactionId kId = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12};

// A Binding success response by hand, without FINGERPRINT, for the receive checks:
// XOR-MAPPED-ADDRESS 192.0.2.1:32853 with transaction ID kVectorId.
Bytes plain_response() {
  return {
      0x01, 0x01, 0x00, 0x0c,  // Binding success response, Message Length 12
      0x21, 0x12, 0xa4, 0x42,  // magic cookie
      0xb7, 0xe7, 0xa7, 0x01,  // transaction ID
      0xbc, 0x34, 0xd6, 0x86,  //
      0xfa, 0x87, 0xdf, 0xae,  //
      0x00, 0x20, 0x00, 0x08,  // XOR-MAPPED-ADDRESS, length 8
      0x00, 0x01, 0xa1, 0x47,  //   family IPv4, X-Port
      0xe1, 0x12, 0xa6, 0x43,  //   X-Address
  };
}

// Appends an attribute with zero padding and fixes Message Length.
Bytes with_attribute(Bytes b, std::uint16_t type, const Bytes& value) {
  b.push_back(static_cast<std::uint8_t>(type >> 8));
  b.push_back(static_cast<std::uint8_t>(type & 0xff));
  b.push_back(static_cast<std::uint8_t>(value.size() >> 8));
  b.push_back(static_cast<std::uint8_t>(value.size() & 0xff));
  b.insert(b.end(), value.begin(), value.end());
  while (b.size() % 4 != 0) b.push_back(0);
  const std::size_t length = b.size() - stun::kHeaderSize;
  b[2] = static_cast<std::uint8_t>(length >> 8);
  b[3] = static_cast<std::uint8_t>(length & 0xff);
  return b;
}

Bytes text_bytes(const std::string& s) { return Bytes(s.begin(), s.end()); }

std::string drop_reason(const Bytes& bytes) {
  auto r = stun::decode(bytes);
  REQUIRE_FALSE(r.ok());
  CHECK(r.error().code == porthole::Errc::internal);
  return r.error().message;
}

stun::Message decoded(const Bytes& bytes) {
  auto r = stun::decode(bytes);
  INFO((r.ok() ? std::string() : r.error().message));
  REQUIRE(r.ok());
  return *r;
}

}  // namespace

TEST_CASE("CRC-32 is the ITU-T V.42 one", "[stun]") {
  const std::string check = "123456789";
  CHECK(stun::crc32(text_bytes(check)) == 0xCBF43926u);
  CHECK(stun::crc32({}) == 0u);
  const Bytes zeros(32, 0);
  CHECK(stun::crc32(zeros) == 0x190A55ADu);
}

TEST_CASE("RFC 5769 s2.1 sample request decodes, PRIORITY is reported unknown", "[stun]") {
  auto m = decoded(kSampleRequest);
  CHECK(m.message_class == stun::MessageClass::request);
  CHECK(m.method == stun::method::binding);
  CHECK(m.transaction_id == kVectorId);
  REQUIRE(m.software);
  CHECK(*m.software == "STUN test client");
  CHECK(m.has_message_integrity);
  CHECK(m.has_fingerprint);
  // ICE's PRIORITY is comprehension-required and porthole does not speak ICE; the
  // comprehension-optional ICE-CONTROLLED is skipped without a word.
  CHECK(m.unknown_required == std::vector<std::uint16_t>{0x0024});
  CHECK(m.mapped() == nullptr);
  CHECK_FALSE(m.change_request);
}

TEST_CASE("RFC 5769 s2.2 IPv4 response: XOR-MAPPED-ADDRESS 192.0.2.1:32853", "[stun]") {
  auto m = decoded(kIpv4Response);
  CHECK(m.message_class == stun::MessageClass::success_response);
  CHECK(m.method == stun::method::binding);
  CHECK(m.transaction_id == kVectorId);
  REQUIRE(m.xor_mapped_address);
  CHECK(*m.xor_mapped_address == stun::Endpoint{ip("192.0.2.1"), 32853});
  REQUIRE(m.mapped() != nullptr);
  CHECK(*m.mapped() == stun::Endpoint{ip("192.0.2.1"), 32853});
  REQUIRE(m.software);
  CHECK(*m.software == "test vector");  // length 11: the 12th byte is padding
  CHECK(m.has_message_integrity);
  CHECK(m.has_fingerprint);
  CHECK(m.unknown_required.empty());
  CHECK(stun::describe(m).find("XOR-MAPPED-ADDRESS 192.0.2.1:32853") != std::string::npos);
}

TEST_CASE("RFC 5769 s2.3 IPv6 response: the address xored with cookie and ID", "[stun]") {
  auto m = decoded(kIpv6Response);
  REQUIRE(m.xor_mapped_address);
  CHECK(*m.xor_mapped_address == stun::Endpoint{ip("2001:db8:1234:5678:11:2233:4455:6677"), 32853});
  CHECK(m.xor_mapped_address->to_string() == "[2001:db8:1234:5678:11:2233:4455:6677]:32853");
  CHECK(m.has_fingerprint);
}

TEST_CASE("RFC 5769 s2.4 long-term credential request decodes", "[stun]") {
  auto m = decoded(kLongTermRequest);
  CHECK(m.message_class == stun::MessageClass::request);
  CHECK(m.transaction_id == stun::TransactionId{0x78, 0xad, 0x34, 0x33, 0xc6, 0xad, 0x72, 0xc0,
                                                0x29, 0xda, 0x41, 0x2e});
  CHECK(m.has_message_integrity);
  CHECK_FALSE(m.has_fingerprint);
  CHECK(m.unknown_required.empty());  // USERNAME, NONCE, REALM: credential attributes
}

TEST_CASE("Every byte of the RFC 5769 vectors matters to FINGERPRINT", "[stun]") {
  for (const Bytes* vector : {&kSampleRequest, &kIpv4Response, &kIpv6Response}) {
    // FINGERPRINT covers everything before its own attribute header: the transaction ID,
    // every attribute and its padding. (A flip in the bytes 0..7 is caught earlier, and
    // one in FINGERPRINT's own type would make it an unknown optional attribute.)
    const std::size_t header_at = vector->size() - 8;
    for (std::size_t i = 8; i < vector->size(); ++i) {
      if (i >= header_at && i < header_at + 4) continue;
      Bytes b = *vector;
      b[i] ^= 0x10;
      INFO("bit flip at byte " << i);
      CHECK_FALSE(stun::decode(b).ok());
    }
  }
}

TEST_CASE("Receive checks: each failure is a drop with its reason", "[stun]") {
  SECTION("shorter than the header") {
    Bytes b = plain_response();
    b.resize(19);
    CHECK(drop_reason(b).find("shorter than the 20-byte") != std::string::npos);
    CHECK_FALSE(stun::decode({}).ok());
  }
  SECTION("top two bits must be 0") {
    for (std::uint8_t bit : {std::uint8_t{0x80}, std::uint8_t{0x40}}) {
      Bytes b = plain_response();
      b[0] |= bit;
      CHECK(drop_reason(b).find("top two bits") != std::string::npos);
    }
  }
  SECTION("magic cookie") {
    Bytes b = plain_response();
    b[7] = 0x43;
    CHECK(drop_reason(b).find("magic cookie") != std::string::npos);
    // An RFC 3489 message (random bytes where the cookie is) is not accepted either.
    b[4] = 0xde;
    b[5] = 0xad;
    CHECK(drop_reason(b).find("magic cookie") != std::string::npos);
  }
  SECTION("Message Length a multiple of 4") {
    Bytes b = plain_response();
    b[3] = 0x0d;
    b.push_back(0);
    CHECK(drop_reason(b).find("multiple of 4") != std::string::npos);
  }
  SECTION("Message Length consistent with the datagram") {
    Bytes longer = plain_response();
    longer.insert(longer.end(), {0, 0, 0, 0});  // trailing bytes the length does not count
    CHECK(drop_reason(longer).find("Message Length 12 but 16") != std::string::npos);
    Bytes truncated = plain_response();
    truncated.resize(truncated.size() - 4);  // the datagram lost its tail
    CHECK(drop_reason(truncated).find("Message Length 12 but 8") != std::string::npos);
  }
  SECTION("an attribute longer than what is left") {
    Bytes b = plain_response();
    b[23] = 0x0c;  // XOR-MAPPED-ADDRESS claims 12 bytes, 8 follow
    CHECK(drop_reason(b).find("claims 12 bytes") != std::string::npos);
    Bytes odd = plain_response();
    odd[23] = 0x09;  // 9 bytes + padding = 12 > 8
    CHECK(drop_reason(odd).find("padded 12") != std::string::npos);
  }
  SECTION("address attributes: family and length") {
    Bytes family = plain_response();
    family[25] = 0x03;
    CHECK(drop_reason(family).find("unknown address family 3") != std::string::npos);
    Bytes v6_short = plain_response();
    v6_short[25] = 0x02;  // IPv6 in 8 bytes
    CHECK(drop_reason(v6_short).find("IPv6 address in 8 bytes") != std::string::npos);
    auto long_v4 = with_attribute(stun::encode_binding_request({kId, {}, "", false}),
                                  stun::attr::mapped_address,
                                  {0, 1, 0, 80, 192, 0, 2, 1, 0, 0, 0, 0});
    CHECK(drop_reason(long_v4).find("IPv4 address in 12 bytes") != std::string::npos);
  }
  SECTION("bad FINGERPRINT") {
    Bytes b = kIpv4Response;
    b.back() ^= 0x01;
    CHECK(drop_reason(b).find("FINGERPRINT 0xc07d4c97 does not match") != std::string::npos);
    Bytes body = kIpv4Response;
    body[24] = 'T';  // "Test vector": the CRC no longer matches
    CHECK(drop_reason(body).find("does not match") != std::string::npos);
  }
  SECTION("FINGERPRINT must be last") {
    Bytes b = with_attribute(kIpv4Response, stun::attr::software, text_bytes("late"));
    CHECK(drop_reason(b).find("not the last attribute") != std::string::npos);
  }
  SECTION("FINGERPRINT of the wrong size") {
    Bytes b = with_attribute(plain_response(), stun::attr::fingerprint, {1, 2, 3, 4, 5, 6, 7, 8});
    CHECK(drop_reason(b).find("FINGERPRINT of 8 bytes") != std::string::npos);
  }
  SECTION("ERROR-CODE, CHANGE-REQUEST, UNKNOWN-ATTRIBUTES, MESSAGE-INTEGRITY sizes") {
    const Bytes base = stun::encode_binding_request({kId, {}, "", false});
    CHECK(drop_reason(with_attribute(base, stun::attr::error_code, {0, 0, 2, 0})).find("class 2") !=
          std::string::npos);
    CHECK(drop_reason(with_attribute(base, stun::attr::error_code, {0, 0, 4, 100}))
              .find("number 100") != std::string::npos);
    CHECK(drop_reason(with_attribute(base, stun::attr::error_code, {0, 0, 4}))
              .find("ERROR-CODE of 3 bytes") != std::string::npos);
    CHECK(drop_reason(with_attribute(base, stun::attr::change_request, {0, 0, 0, 0, 0, 6}))
              .find("CHANGE-REQUEST of 6 bytes") != std::string::npos);
    CHECK(drop_reason(with_attribute(base, stun::attr::unknown_attributes, {0, 1, 0}))
              .find("UNKNOWN-ATTRIBUTES of 3 bytes") != std::string::npos);
    CHECK(drop_reason(with_attribute(base, stun::attr::message_integrity, Bytes(16, 0)))
              .find("MESSAGE-INTEGRITY of 16 bytes") != std::string::npos);
  }
}

TEST_CASE("Attribute rules: padding, duplicates, MESSAGE-INTEGRITY, unknown types", "[stun]") {
  SECTION("padding bytes may hold anything (s14)") {
    Bytes b = with_attribute(plain_response(), stun::attr::software, text_bytes("abcde"));
    b[b.size() - 1] = 0xff;
    b[b.size() - 2] = 0xee;
    b[b.size() - 3] = 0xdd;
    auto m = decoded(b);
    REQUIRE(m.software);
    CHECK(*m.software == "abcde");
  }
  SECTION("the first occurrence counts") {
    Bytes b = with_attribute(plain_response(), stun::attr::xor_mapped_address,
                             {0, 1, 0x00, 0x00, 0x21, 0x12, 0xa4, 0x42});
    CHECK(*decoded(b).xor_mapped_address == stun::Endpoint{ip("192.0.2.1"), 32853});
  }
  SECTION("attributes after MESSAGE-INTEGRITY are ignored (s14.5)") {
    Bytes b = with_attribute(stun::encode_binding_request({kId, {}, "", false}),
                             stun::attr::message_integrity, Bytes(20, 0xaa));
    b = with_attribute(b, stun::attr::software, text_bytes("hidden"));
    b = with_attribute(b, 0x7777, {1, 2, 3, 4});
    auto m = decoded(b);
    CHECK(m.has_message_integrity);
    CHECK_FALSE(m.software);
    CHECK(m.unknown_required.empty());
  }
  SECTION("unknown comprehension-required types are listed once; optional ones skipped") {
    Bytes b = stun::encode_binding_request({kId, {}, "", false});
    b = with_attribute(b, 0x7777, {1});
    b = with_attribute(b, 0xc001, {1, 2});
    b = with_attribute(b, stun::attr::response_address, {0, 1, 0, 80, 192, 0, 2, 1});
    b = with_attribute(b, 0x7777, {2});
    b = with_attribute(b, stun::attr::response_port, {0x1f, 0x90, 0, 0});
    CHECK(decoded(b).unknown_required == std::vector<std::uint16_t>{0x7777,
                                                                    stun::attr::response_address,
                                                                    stun::attr::response_port});
  }
  SECTION("RFC 3489 / RFC 5780 address attributes") {
    Bytes b = plain_response();
    b = with_attribute(b, stun::attr::mapped_address, {0, 1, 0x1f, 0x90, 198, 51, 100, 7});
    b = with_attribute(b, stun::attr::source_address, {0, 1, 0x0d, 0x96, 203, 0, 113, 1});
    b = with_attribute(b, stun::attr::changed_address, {0, 1, 0x0d, 0x97, 203, 0, 113, 2});
    auto classic = decoded(b);
    CHECK(*classic.mapped_address == stun::Endpoint{ip("198.51.100.7"), 8080});
    CHECK(*classic.mapped() == stun::Endpoint{ip("192.0.2.1"), 32853});  // XOR wins
    CHECK(*classic.origin() == stun::Endpoint{ip("203.0.113.1"), 3478});
    CHECK(*classic.other() == stun::Endpoint{ip("203.0.113.2"), 3479});
    b = with_attribute(b, stun::attr::response_origin, {0, 1, 0x0d, 0x96, 203, 0, 113, 9});
    b = with_attribute(b, stun::attr::other_address, {0, 1, 0x0d, 0x97, 203, 0, 113, 10});
    auto modern = decoded(b);
    CHECK(*modern.origin() == stun::Endpoint{ip("203.0.113.9"), 3478});  // RFC 5780 wins
    CHECK(*modern.other() == stun::Endpoint{ip("203.0.113.10"), 3479});
  }
  SECTION("text from the network is sanitised") {
    Bytes b = with_attribute(plain_response(), stun::attr::software,
                             {'o', 'k', 0x1b, '[', '2', 'J', 0x07, 0xc3, 0xa9});
    CHECK(*decoded(b).software == "ok?[2J???");
  }
}

TEST_CASE("Message types: class bits interleaved with the method (s5)", "[stun]") {
  CHECK(stun::encode_binding_request({kId, {}, "", false})[0] == 0x00);
  CHECK(stun::encode_binding_request({kId, {}, "", false})[1] == 0x01);
  auto ok = stun::encode_binding_success({kId, {ip("192.0.2.1"), 1}, false, {}, {}, "", false});
  REQUIRE(ok);
  CHECK((*ok)[0] == 0x01);
  CHECK((*ok)[1] == 0x01);
  auto err = stun::encode_binding_error({kId, 400, "Bad Request", {}, "", false});
  REQUIRE(err);
  CHECK((*err)[0] == 0x01);
  CHECK((*err)[1] == 0x11);
  CHECK(decoded(*err).message_class == stun::MessageClass::error_response);
  // An indication (0x0011) of another method (0x003) decodes with both parts.
  Bytes ind = stun::encode_binding_request({kId, {}, "", false});
  ind[1] = 0x13;
  auto m = decoded(ind);
  CHECK(m.message_class == stun::MessageClass::indication);
  CHECK(m.method == 0x003);
}

TEST_CASE("Binding request: golden bytes", "[stun]") {
  const Bytes bare = {
      0x00, 0x01, 0x00, 0x00,  // Binding request, Message Length 0
      0x21, 0x12, 0xa4, 0x42,  // magic cookie
      0x01, 0x02, 0x03, 0x04,  // transaction ID
      0x05, 0x06, 0x07, 0x08,  //
      0x09, 0x0a, 0x0b, 0x0c,  //
  };
  CHECK(stun::encode_binding_request({kId, {}, "", false}) == bare);

  // CRC values from Python's zlib.crc32 (an independent implementation), xor "STUN".
  const Bytes with_fingerprint = {
      0x00, 0x01, 0x00, 0x08,  // Binding request, Message Length 8
      0x21, 0x12, 0xa4, 0x42,  // magic cookie
      0x01, 0x02, 0x03, 0x04,  // transaction ID
      0x05, 0x06, 0x07, 0x08,  //
      0x09, 0x0a, 0x0b, 0x0c,  //
      0x80, 0x28, 0x00, 0x04,  // FINGERPRINT, length 4
      0x5b, 0x20, 0xf9, 0xcc,  //   CRC-32 of the 20 bytes above, xor 0x5354554e
  };
  CHECK(stun::encode_binding_request({kId, {}, "", true}) == with_fingerprint);

  const Bytes change = {
      0x00, 0x01, 0x00, 0x10,  // Binding request, Message Length 16
      0x21, 0x12, 0xa4, 0x42,  // magic cookie
      0x01, 0x02, 0x03, 0x04,  // transaction ID
      0x05, 0x06, 0x07, 0x08,  //
      0x09, 0x0a, 0x0b, 0x0c,  //
      0x00, 0x03, 0x00, 0x04,  // CHANGE-REQUEST, length 4
      0x00, 0x00, 0x00, 0x06,  //   change IP (0x4) | change port (0x2)
      0x80, 0x28, 0x00, 0x04,  // FINGERPRINT, length 4
      0x5e, 0xb7, 0x18, 0x3d,  //   CRC-32 xor 0x5354554e
  };
  CHECK(stun::encode_binding_request({kId, stun::ChangeRequest{true, true}, "", true}) == change);

  auto m = decoded(change);
  REQUIRE(m.change_request);
  CHECK(*m.change_request == stun::ChangeRequest{true, true});
  CHECK(decoded(stun::encode_binding_request({kId, stun::ChangeRequest{false, true}, "", false}))
            .change_request == stun::ChangeRequest{false, true});
  CHECK(decoded(stun::encode_binding_request({kId, stun::ChangeRequest{true, false}, "", false}))
            .change_request == stun::ChangeRequest{true, false});
  CHECK(decoded(stun::encode_binding_request({kId, stun::ChangeRequest{}, "", false}))
            .change_request == stun::ChangeRequest{});

  auto named = decoded(stun::encode_binding_request({kId, {}, "porthole 0.1", true}));
  CHECK(*named.software == "porthole 0.1");
  CHECK(named.has_fingerprint);
}

TEST_CASE("Binding success: our XOR-MAPPED-ADDRESS matches RFC 5769's bytes", "[stun]") {
  auto v4 = stun::encode_binding_success(
      {kVectorId, {ip("192.0.2.1"), 32853}, false, {}, {}, "", false});
  REQUIRE(v4);
  CHECK(*v4 == plain_response());

  auto v6 = stun::encode_binding_success(
      {kVectorId, {ip("2001:db8:1234:5678:11:2233:4455:6677"), 32853}, false, {}, {}, "", false});
  REQUIRE(v6);
  // Bytes 20..43 of the RFC's IPv6 response starting at XOR-MAPPED-ADDRESS (offset 36).
  const Bytes expected(kIpv6Response.begin() + 36, kIpv6Response.begin() + 60);
  CHECK(Bytes(v6->begin() + 20, v6->end()) == expected);
}

TEST_CASE("Binding success: round trip of every attribute", "[stun]") {
  stun::BindingSuccess s;
  s.transaction_id = kId;
  s.mapped = {ip("198.51.100.20"), 40001};
  s.include_mapped_address = true;
  s.response_origin = stun::Endpoint{ip("203.0.113.1"), 3478};
  s.other_address = stun::Endpoint{ip("203.0.113.2"), 3479};
  s.software = "porthole";
  s.fingerprint = true;
  auto bytes = stun::encode_binding_success(s);
  REQUIRE(bytes);
  // 20 header + 4 address attributes of 12 + SOFTWARE 12 + FINGERPRINT 8.
  CHECK(bytes->size() == 20 + 4 * 12 + 12 + 8);
  auto m = decoded(*bytes);
  CHECK(m.message_class == stun::MessageClass::success_response);
  CHECK(m.transaction_id == kId);
  CHECK(*m.xor_mapped_address == s.mapped);
  CHECK(*m.mapped_address == s.mapped);
  CHECK(*m.response_origin == *s.response_origin);
  CHECK(*m.other_address == *s.other_address);
  CHECK(*m.software == "porthole");
  CHECK(m.has_fingerprint);
  CHECK(m.unknown_required.empty());

  // IPv6 everywhere.
  s.mapped = {ip("2001:db8::7"), 5};
  s.response_origin = stun::Endpoint{ip("2001:db8::1"), 3478};
  s.other_address = stun::Endpoint{ip("::ffff:192.0.2.1"), 3479};
  auto v6 = stun::encode_binding_success(s);
  REQUIRE(v6);
  auto m6 = decoded(*v6);
  CHECK(*m6.xor_mapped_address == stun::Endpoint{ip("2001:db8::7"), 5});
  CHECK(*m6.mapped_address == stun::Endpoint{ip("2001:db8::7"), 5});
  CHECK(*m6.other_address == stun::Endpoint{ip("::ffff:192.0.2.1"), 3479});

  // Usage error: SOFTWARE too long. (The addresses are parsed Endpoints: no text that
  // is not an address gets this far.)
  s.mapped = {ip("192.0.2.1"), 1};
  s.software = std::string(200, 'x');
  CHECK_FALSE(stun::encode_binding_success(s).ok());
}

TEST_CASE("Binding error: ERROR-CODE and UNKNOWN-ATTRIBUTES round trip", "[stun]") {
  auto bytes = stun::encode_binding_error({kId,
                                           420,
                                           stun::error_reason(420),
                                           {stun::attr::response_address, 0x7777, 0x0024},
                                           "",
                                           true});
  REQUIRE(bytes);
  auto m = decoded(*bytes);
  CHECK(m.message_class == stun::MessageClass::error_response);
  REQUIRE(m.error_code);
  CHECK(m.error_code->code == 420);
  CHECK(m.error_code->reason == "Unknown Attribute");
  // Three types: 6 bytes, padded to 8 (the padding is not a fourth type).
  CHECK(m.unknown_attributes ==
        std::vector<std::uint16_t>{stun::attr::response_address, 0x7777, 0x0024});
  CHECK(m.has_fingerprint);

  auto other = stun::encode_binding_error({kId, 599, "", {}, "", false});
  REQUIRE(other);
  CHECK(decoded(*other).error_code->code == 599);
  CHECK_FALSE(stun::encode_binding_error({kId, 299, "", {}, "", false}).ok());
  CHECK_FALSE(stun::encode_binding_error({kId, 700, "", {}, "", false}).ok());
}

TEST_CASE("Decoding survives every truncation and length lie of a full message", "[stun]") {
  stun::BindingSuccess s{kId,
                         {ip("198.51.100.20"), 40001},
                         true,
                         stun::Endpoint{ip("203.0.113.1"), 3478},
                         stun::Endpoint{ip("203.0.113.2"), 3479},
                         "porthole",
                         true};
  const Bytes full = *stun::encode_binding_success(s);
  for (std::size_t n = 0; n < full.size(); ++n) {
    const Bytes cut(full.begin(), full.begin() + static_cast<std::ptrdiff_t>(n));
    CHECK_FALSE(stun::decode(cut).ok());
  }
  for (unsigned length = 0; length < 0x100; ++length) {
    Bytes b = full;
    b[3] = static_cast<std::uint8_t>(length);
    auto r = stun::decode(b);
    CHECK(r.ok() == (length == full.size() - 20));
  }
}

// ---------------------------------------------------------------------------------
// The general layer: raw attributes, the writer, MESSAGE-INTEGRITY(-SHA256)
// ---------------------------------------------------------------------------------

namespace {

const stun::TransactionId kLongTermId = {0x78, 0xad, 0x34, 0x33, 0xc6, 0xad,
                                         0x72, 0xc0, 0x29, 0xda, 0x41, 0x2e};
// RFC 5769 s2.4 and RFC 8489 Appendix B.1: the username is six katakana (UTF-8).
const std::string kKatakanaUser =
    "\xe3\x83\x9e\xe3\x83\x88\xe3\x83\xaa\xe3\x83\x83\xe3\x82\xaf\xe3\x82\xb9";

stun::IntegrityKey short_term(const std::string& password) {
  auto k = stun::IntegrityKey::short_term(password);
  REQUIRE(k.ok());
  return *k;
}

stun::IntegrityKey long_term(const std::string& user, const std::string& realm,
                             const std::string& password,
                             stun::PasswordAlgorithm algorithm = stun::PasswordAlgorithm::md5) {
  auto k = stun::IntegrityKey::long_term(user, realm, password, algorithm);
  REQUIRE(k.ok());
  return *k;
}

Bytes written(stun::MessageWriter& w, bool fingerprint) {
  auto r = w.finish(fingerprint);
  INFO((r.ok() ? std::string() : r.error().message));
  REQUIRE(r.ok());
  return *r;
}

porthole::Endpoint endpoint(const std::string& text) {
  auto e = porthole::Endpoint::parse(text);
  REQUIRE(e.ok());
  return *e;
}

}  // namespace

TEST_CASE("RFC 5769 s2.1: the raw attribute list, ICE fields, short-term integrity", "[stun]") {
  auto m = decoded(kSampleRequest);
  std::vector<std::uint16_t> types;
  std::vector<std::size_t> offsets;
  for (const auto& a : m.attributes) {
    types.push_back(a.type);
    offsets.push_back(a.offset);
  }
  CHECK(types == std::vector<std::uint16_t>{stun::attr::software, stun::attr::priority,
                                            stun::attr::ice_controlled, stun::attr::username,
                                            stun::attr::message_integrity,
                                            stun::attr::fingerprint});
  CHECK(offsets == std::vector<std::size_t>{20, 40, 48, 60, 76, 100});
  CHECK(m.attributes[3].value == text_bytes("evtj:h6vY"));  // without the padding
  CHECK(m.priority == 0x6e0001ffu);
  CHECK(m.ice_controlled == 0x932ff9b151263b36u);
  CHECK_FALSE(m.ice_controlling);
  CHECK(m.username == "evtj:h6vY");
  // The Binding layer still does not speak ICE; a user that does says so.
  CHECK(m.unknown_required == std::vector<std::uint16_t>{stun::attr::priority});
  const std::uint16_t ice[] = {stun::attr::priority};
  CHECK(m.unknown_required_except(ice).empty());

  auto ok = stun::check_integrity(kSampleRequest, m, short_term("VOkJxbRl1RmTxUk/WvJxBt"));
  INFO((ok.ok() ? std::string() : ok.error().message));
  REQUIRE(ok.ok());
  CHECK(*ok == stun::IntegrityAlgorithm::hmac_sha1);
  auto wrong = stun::check_integrity(kSampleRequest, m, short_term("VOkJxbRl1RmTxUk/WvJxBu"));
  REQUIRE_FALSE(wrong.ok());
  CHECK(wrong.error().code == porthole::Errc::refused);
  CHECK(wrong.error().message == "MESSAGE-INTEGRITY does not match the credentials");
}

TEST_CASE("RFC 5769 s2.1, s2.2, s2.3: the writer rebuilds every byte", "[stun]") {
  const auto key = short_term("VOkJxbRl1RmTxUk/WvJxBt");
  SECTION("s2.1 request") {
    stun::MessageWriter w(stun::method::binding, stun::MessageClass::request, kVectorId);
    w.set_padding_byte(0x20);
    w.add_text(stun::attr::software, "STUN test client");
    w.add_priority(0x6e0001ff);
    w.add_u64(stun::attr::ice_controlled, 0x932ff9b151263b36u);
    w.add_text(stun::attr::username, "evtj:h6vY");
    w.add_message_integrity(key);
    CHECK(written(w, true) == kSampleRequest);
  }
  SECTION("s2.2 IPv4 response") {
    stun::MessageWriter w(stun::method::binding, stun::MessageClass::success_response, kVectorId);
    w.set_padding_byte(0x20);
    w.add_text(stun::attr::software, "test vector");
    w.add_xor_address(stun::attr::xor_mapped_address, endpoint("192.0.2.1:32853"));
    w.add_message_integrity(key);
    CHECK(written(w, true) == kIpv4Response);
    CHECK(stun::check_integrity(kIpv4Response, decoded(kIpv4Response), key).ok());
  }
  SECTION("s2.3 IPv6 response") {
    stun::MessageWriter w(stun::method::binding, stun::MessageClass::success_response, kVectorId);
    w.set_padding_byte(0x20);
    w.add_text(stun::attr::software, "test vector");
    w.add_xor_address(stun::attr::xor_mapped_address,
                      endpoint("[2001:db8:1234:5678:11:2233:4455:6677]:32853"));
    w.add_message_integrity(key);
    CHECK(written(w, true) == kIpv6Response);
    CHECK(stun::check_integrity(kIpv6Response, decoded(kIpv6Response), key).ok());
  }
}

TEST_CASE("RFC 5769 s2.4: long-term credentials, key MD5(user:realm:password)", "[stun]") {
  const auto key = long_term(kKatakanaUser, "example.org", "TheMatrIX");
  auto m = decoded(kLongTermRequest);
  CHECK(m.username == kKatakanaUser);
  CHECK(m.realm == "example.org");
  CHECK(m.nonce == "f//499k954d6OL34oL9FSTvy64sA");
  REQUIRE(stun::check_integrity(kLongTermRequest, m, key).ok());

  stun::MessageWriter w(stun::method::binding, stun::MessageClass::request, kLongTermId);
  w.add_text(stun::attr::username, kKatakanaUser);
  w.add_text(stun::attr::nonce, "f//499k954d6OL34oL9FSTvy64sA");
  w.add_text(stun::attr::realm, "example.org");
  w.add_message_integrity(key);
  CHECK(written(w, false) == kLongTermRequest);

  // No FINGERPRINT here, so a flipped byte anywhere before MESSAGE-INTEGRITY's value
  // still decodes: integrity is what catches it.
  const std::size_t integrity_at = m.attributes.back().offset;
  for (std::size_t i = 8; i < kLongTermRequest.size(); ++i) {
    if (i >= integrity_at && i < integrity_at + 4) continue;  // its own header
    Bytes b = kLongTermRequest;
    b[i] ^= 0x01;
    auto tampered = stun::decode(b);
    if (!tampered) continue;
    INFO("bit flip at byte " << i);
    CHECK_FALSE(stun::check_integrity(b, *tampered, key).ok());
  }
  CHECK_FALSE(stun::check_integrity(kLongTermRequest, m,
                                    long_term(kKatakanaUser, "example.com", "TheMatrIX"))
                  .ok());
}

TEST_CASE("RFC 8489 Appendix B.1: MESSAGE-INTEGRITY-SHA256 with USERHASH, SHA-256 key", "[stun]") {
  // The appendix's parameters: username six katakana, password "TheMatrIX" (after
  // OpaqueString), realm "example.org", PASSWORD-ALGORITHM SHA-256. The USERHASH
  // (SHA-256 of username ":" realm, s14.4) and the HMAC are the appendix's values.
  const Bytes kUserhash = {0x4a, 0x3c, 0xf3, 0x8f, 0xef, 0x69, 0x92, 0xbd, 0xa9, 0x52, 0xc6,
                           0x78, 0x04, 0x17, 0xda, 0x0f, 0x24, 0x81, 0x94, 0x15, 0x56, 0x9e,
                           0x60, 0xb2, 0x05, 0xc4, 0x6e, 0x41, 0x40, 0x7f, 0x17, 0x04};
  const Bytes kHmac = {0xb5, 0xc7, 0xbf, 0x00, 0x5b, 0x6c, 0x52, 0xa2, 0x1c, 0x51, 0xc5,
                       0xe8, 0x92, 0xf8, 0x19, 0x24, 0x13, 0x62, 0x96, 0xcb, 0x92, 0x7c,
                       0x43, 0x14, 0x93, 0x09, 0x27, 0x8c, 0xc6, 0x51, 0x8e, 0x65};
  const std::string nonce = "obMatJos2AAACf//499k954d6OL34oL9FSTvy64sA";
  const std::string user_realm = kKatakanaUser + ":example.org";
  const auto userhash = porthole::detail::sha256(text_bytes(user_realm));
  CHECK(Bytes(userhash.begin(), userhash.end()) == kUserhash);

  const auto key = long_term(kKatakanaUser, "example.org", "TheMatrIX",
                             stun::PasswordAlgorithm::sha256);
  stun::MessageWriter w(stun::method::binding, stun::MessageClass::request, kLongTermId);
  w.add(stun::attr::userhash, kUserhash);
  w.add_text(stun::attr::nonce, nonce);
  w.add_text(stun::attr::realm, "example.org");
  w.add(stun::attr::password_algorithm, Bytes{0x00, 0x02, 0x00, 0x00});
  w.add_message_integrity_sha256(key);
  const Bytes b = written(w, false);
  CHECK(b.size() == 20 + 0x90);
  auto m = decoded(b);
  REQUIRE_FALSE(m.attributes.empty());
  CHECK(m.attributes.back().type == stun::attr::message_integrity_sha256);
  CHECK(m.attributes.back().value == kHmac);
  auto ok = stun::check_integrity(b, m, key);
  REQUIRE(ok.ok());
  CHECK(*ok == stun::IntegrityAlgorithm::hmac_sha256);
  auto md5_key = long_term(kKatakanaUser, "example.org", "TheMatrIX");
  auto wrong = stun::check_integrity(b, m, md5_key);
  REQUIRE_FALSE(wrong.ok());
  CHECK(wrong.error().message == "MESSAGE-INTEGRITY-SHA256 does not match the credentials");
}

TEST_CASE("Integrity: both attributes, truncated SHA256, after-integrity attributes, none",
          "[stun]") {
  const auto key = short_term("secret");
  stun::MessageWriter w(stun::method::binding, stun::MessageClass::success_response, kId);
  w.add_xor_address(stun::attr::xor_mapped_address, endpoint("198.51.100.1:4000"));
  w.add_message_integrity(key);
  w.add_message_integrity_sha256(key);
  const Bytes both = written(w, true);
  auto m = decoded(both);
  CHECK(m.has_fingerprint);
  auto ok = stun::check_integrity(both, m, key);
  REQUIRE(ok.ok());
  CHECK(*ok == stun::IntegrityAlgorithm::hmac_sha256);  // the stronger one is checked

  SECTION("a truncated MESSAGE-INTEGRITY-SHA256 (16 bytes, s14.6) is compared as sent") {
    stun::MessageWriter full(stun::method::binding, stun::MessageClass::request, kId);
    full.add_text(stun::attr::username, "u");
    Bytes b = written(full, false);
    // Build the 16-byte form by hand: the HMAC with Message Length counting 20 bytes.
    Bytes in = b;
    in[3] = static_cast<std::uint8_t>(in.size() - 20 + 20);
    const auto mac = porthole::detail::hmac_sha256(key.bytes, in);
    b = with_attribute(b, stun::attr::message_integrity_sha256,
                       Bytes(mac.begin(), mac.begin() + 16));
    auto t = decoded(b);
    CHECK(stun::check_integrity(b, t, key).ok());
    b[b.size() - 1] ^= 1;
    CHECK(stun::check_integrity(b, decoded(b), key).error().code == porthole::Errc::refused);
  }
  SECTION("attributes after MESSAGE-INTEGRITY are not covered, and not typed") {
    stun::MessageWriter one(stun::method::binding, stun::MessageClass::request, kId);
    one.add_message_integrity(key);
    Bytes b = written(one, false);
    b = with_attribute(b, stun::attr::username, text_bytes("late"));
    auto t = decoded(b);
    CHECK(stun::check_integrity(b, t, key).ok());
    CHECK_FALSE(t.username);
    CHECK(t.attributes.back().type == stun::attr::username);  // still in the raw list
  }
  SECTION("no integrity attribute") {
    auto r = stun::check_integrity(plain_response(), decoded(plain_response()), key);
    REQUIRE_FALSE(r.ok());
    CHECK(r.error().message == "no MESSAGE-INTEGRITY or MESSAGE-INTEGRITY-SHA256 to check");
  }
  SECTION("a Message that is not from these bytes is refused, not read past the end") {
    const Bytes shorter(both.begin(), both.begin() + 40);
    CHECK_FALSE(stun::check_integrity(shorter, m, key).ok());
  }
}

TEST_CASE("Credentials: OpaqueString for ASCII, a clear error otherwise", "[stun]") {
  CHECK(short_term("VOkJxbRl1RmTxUk/WvJxBt").bytes == text_bytes("VOkJxbRl1RmTxUk/WvJxBt"));
  auto md5_key = long_term("user", "realm", "pass");
  CHECK(md5_key.bytes.size() == 16);
  CHECK(long_term("user", "realm", "pass", stun::PasswordAlgorithm::sha256).bytes.size() == 32);
  // RFC 8489 Appendix B.1's password before OpaqueString: "The<U+00AD>M<U+00AA>tr<U+2168>".
  auto non_ascii = stun::IntegrityKey::long_term(kKatakanaUser, "example.org",
                                                 "The\xc2\xadM\xc2\xaatr\xe2\x85\xa8");
  REQUIRE_FALSE(non_ascii.ok());
  CHECK(non_ascii.error().code == porthole::Errc::usage);
  CHECK(non_ascii.error().message.find("not ASCII") != std::string::npos);
  CHECK(stun::IntegrityKey::short_term("").error().message == "the STUN password is empty");
  CHECK(stun::IntegrityKey::short_term("a\tb").error().message ==
        "the STUN password contains a control character");
  CHECK_FALSE(stun::IntegrityKey::short_term(std::string("a\x7f", 2)).ok());
}

TEST_CASE("General writer and decoder: TURN and ICE attributes round trip", "[stun]") {
  stun::MessageWriter w(stun::method::allocate, stun::MessageClass::success_response, kId);
  w.add_xor_address(stun::attr::xor_relayed_address, endpoint("203.0.113.5:49152"));
  w.add_xor_address(stun::attr::xor_peer_address, endpoint("[2001:db8::9]:5000"));
  w.add_xor_address(stun::attr::xor_peer_address, endpoint("192.0.2.99:1"));
  w.add_address(stun::attr::mapped_address, endpoint("[2001:db8::1]:7"));
  w.add_u32(stun::attr::lifetime, 600);
  w.add_requested_transport();
  w.add_channel_number(0x4001);
  w.add(stun::attr::data, Bytes{1, 2, 3, 4, 5});
  w.add_u64(stun::attr::ice_controlling, 0x0102030405060708u);
  w.add_use_candidate();
  w.add_priority(1862270975);
  w.add_text(stun::attr::realm, "example.org");
  w.add_text(stun::attr::nonce, "n0nce");
  w.add_error_code(438, "Stale Nonce");
  const Bytes b = written(w, true);
  auto m = decoded(b);
  CHECK(m.method == stun::method::allocate);
  CHECK(m.message_class == stun::MessageClass::success_response);
  CHECK(m.xor_relayed_address == endpoint("203.0.113.5:49152"));
  CHECK(m.xor_peer_address == endpoint("[2001:db8::9]:5000"));  // the first one
  CHECK(m.mapped_address == stun::Endpoint{ip("2001:db8::1"), 7});
  CHECK(m.lifetime == 600u);
  CHECK(m.requested_transport == stun::kTransportUdp);
  CHECK(m.channel_number == 0x4001);
  CHECK(m.data == Bytes{1, 2, 3, 4, 5});
  CHECK(m.ice_controlling == 0x0102030405060708u);
  CHECK(m.use_candidate);
  CHECK(m.priority == 1862270975u);
  CHECK(m.realm == "example.org");
  CHECK(m.nonce == "n0nce");
  REQUIRE(m.error_code);
  CHECK(m.error_code->code == 438);
  CHECK(m.attributes.size() == 15);  // with FINGERPRINT
  const std::string text = stun::describe(m);
  CHECK(text.find("XOR-RELAYED-ADDRESS 203.0.113.5:49152") != std::string::npos);
  CHECK(text.find("XOR-PEER-ADDRESS [2001:db8::9]:5000") != std::string::npos);
  CHECK(text.find("CHANNEL-NUMBER 0x4001") != std::string::npos);
  CHECK(stun::attribute_name(stun::attr::requested_transport) == "REQUESTED-TRANSPORT");
  const std::uint16_t turn[] = {stun::attr::xor_relayed_address,
                                stun::attr::xor_peer_address,
                                stun::attr::lifetime,
                                stun::attr::requested_transport,
                                stun::attr::channel_number,
                                stun::attr::data,
                                stun::attr::priority,
                                stun::attr::use_candidate};
  CHECK_FALSE(m.unknown_required.empty());
  CHECK(m.unknown_required_except(turn).empty());
}

TEST_CASE("General decoder: malformed TURN and ICE values stay out of the typed fields", "[stun]") {
  Bytes b = stun::encode_binding_request({kId, {}, "", false});
  b = with_attribute(b, stun::attr::lifetime, {0, 0, 1});
  b = with_attribute(b, stun::attr::priority, {1, 2});
  b = with_attribute(b, stun::attr::use_candidate, {1});
  b = with_attribute(b, stun::attr::xor_relayed_address, {0, 9, 0, 0, 1, 2, 3, 4});
  b = with_attribute(b, stun::attr::channel_number, {0x40});
  auto m = decoded(b);
  CHECK_FALSE(m.lifetime);
  CHECK_FALSE(m.priority);
  CHECK_FALSE(m.use_candidate);
  CHECK_FALSE(m.xor_relayed_address);
  CHECK_FALSE(m.channel_number);
  CHECK(m.attributes.size() == 5);
  CHECK(m.unknown_required.size() == 5);  // the Binding server answers 420, as before
}

TEST_CASE("General writer: bad input is an error at finish()", "[stun]") {
  {
    stun::MessageWriter w(stun::method::binding, stun::MessageClass::request, kId);
    w.add(stun::attr::data, Bytes(70000, 0));
    auto r = w.finish(true);
    REQUIRE_FALSE(r.ok());
    CHECK(r.error().code == porthole::Errc::usage);
    CHECK(r.error().message == "DATA of 70000 bytes does not fit in a STUN message");
  }
  {
    stun::MessageWriter w(stun::method::binding, stun::MessageClass::request, kId);
    w.add(stun::attr::data, Bytes(0xfffc - 4, 0));  // exactly full
    CHECK(w.finish(false).ok());
  }
  {
    stun::MessageWriter w(stun::method::binding, stun::MessageClass::request, kId);
    w.add(stun::attr::data, Bytes(0xfffc - 4, 0));
    CHECK(w.finish(true).error().message == "no room for FINGERPRINT in the STUN message");
  }
  {
    stun::MessageWriter w(stun::method::binding, stun::MessageClass::error_response, kId);
    w.add_error_code(700, "x");
    CHECK(w.finish(false).error().message == "STUN error code 700 is not 300..699");
  }
  {
    stun::MessageWriter w(0x1000, stun::MessageClass::request, kId);
    CHECK(w.finish(false).error().message == "STUN method 0x1000 is not 12 bits");
  }
  {
    // Method bits across the class bits: 0xfff request is 0x3eef (s5).
    stun::MessageWriter w(0x0fff, stun::MessageClass::request, kId);
    const Bytes b = written(w, false);
    CHECK(b[0] == 0x3e);
    CHECK(b[1] == 0xef);
    CHECK(decoded(b).method == 0x0fff);
  }
}
