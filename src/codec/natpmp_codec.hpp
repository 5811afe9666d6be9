// NAT-PMP (RFC 6886) replies: a pure decoder and validator of our own.
//
// libnatpmp sends the requests and parses the replies, but it reads whatever arrives
// into a 16-byte buffer without checking its length, and it matches a reply's opcode to
// the request (RFC 6886 s3.2, s3.3: 128 + the request's opcode) only in its
// readnatpmpresponseorretry() wrapper. Peeking at a datagram and passing it through
// decode_reply() and mismatch() first keeps runts, requests, PCP packets and answers to
// other requests away from it. No sockets, no clock, no globals.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "porthole/error.hpp"
#include "porthole/ip_address.hpp"

namespace porthole::detail::natpmp {

inline constexpr std::uint8_t kVersion = 0;
inline constexpr std::uint16_t kServerPort = 5351;
// Every reply starts with this header (s3.2, s3.3, s3.5); an error reply may be no more.
inline constexpr std::size_t kHeaderSize = 8;
inline constexpr std::size_t kPublicAddressReplySize = 12;  // s3.2
inline constexpr std::size_t kMappingReplySize = 16;        // s3.3
// The largest reply RFC 6886 defines: anything longer is not a NAT-PMP reply.
inline constexpr std::size_t kMaxReplySize = kMappingReplySize;
// The top bit of the opcode byte marks a reply (s3.2): reply opcode = 128 + request opcode.
inline constexpr std::uint8_t kReplyBit = 0x80;

// Request opcodes (s3.2, s3.3); a reply carries 128 + these.
namespace opcode {
inline constexpr std::uint8_t public_address = 0;
inline constexpr std::uint8_t map_udp = 1;
inline constexpr std::uint8_t map_tcp = 2;
}  // namespace opcode

// s3.5 result codes (16 bits on the wire).
namespace result {
inline constexpr std::uint16_t success = 0;
inline constexpr std::uint16_t unsupported_version = 1;
inline constexpr std::uint16_t not_authorized = 2;   // "Not Authorized/Refused"
inline constexpr std::uint16_t network_failure = 3;  // e.g. no external address yet
inline constexpr std::uint16_t out_of_resources = 4;
inline constexpr std::uint16_t unsupported_opcode = 5;
}  // namespace result

// Public address reply (s3.2), 12 bytes:
//   0                   1                   2                   3
//   0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//  +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//  | Vers = 0      | OP = 128 + 0  | Result Code (16 bits)         |  0
//  +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//  | Seconds Since Start of Epoch (32 bits)                        |  4
//  +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//  | External IPv4 Address (a.b.c.d)                               |  8
//  +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//
// Mapping reply (s3.3), 16 bytes:
//  +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//  | Vers = 0      | OP = 128 + x  | Result Code                   |  0   x: 1 UDP, 2 TCP
//  +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//  | Seconds Since Start of Epoch                                  |  4
//  +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//  | Internal Port                 | Mapped External Port          |  8, 10
//  +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//  | Port Mapping Lifetime in Seconds                              |  12
//  +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//
// An error reply (result != 0) is either the 8-byte header alone (miniupnpd answers
// an unknown opcode so) or the opcode's full-size reply. The "Unsupported Version"
// reply (s3.5) is the 8-byte header with result 1. All fields big-endian.
struct Reply {
  // 0; for an unsupported-version answer from a server that speaks another version
  // (a PCP-only server answers with its own version, 2), that version.
  std::uint8_t version = kVersion;
  std::uint8_t opcode = 0;  // of the request answered: the reply's opcode minus 128
  std::uint16_t result_code = result::success;
  std::uint32_t epoch = 0;  // seconds since the gateway's epoch started (s3.6)
  // Whether the opcode's fields below were on the wire (always for a success reply).
  bool has_body = false;
  // Public address reply:
  std::array<std::uint8_t, 4> external_address{};  // network order, as on the wire
  // Mapping reply:
  std::uint16_t internal_port = 0;
  std::uint16_t external_port = 0;  // the mapped external port
  std::uint32_t lifetime = 0;       // seconds

  bool unsupported_version() const noexcept { return result_code == result::unsupported_version; }
  bool is_mapping() const noexcept {
    return opcode == opcode::map_udp || opcode == opcode::map_tcp;
  }
  // external_address as an address (for a public address reply with has_body).
  IpAddress external_ip() const;
};

// Checks what can be checked on the bytes alone and decodes the reply. Dropped
// (Errc::internal, the message says why): fewer than 8 bytes (libnatpmp would read
// them as a reply), more than 16, a version other than 0 (except an unsupported-version
// answer, see Reply::version), the reply bit clear (a request: maybe our own, looped
// back), a success whose opcode porthole never sends (anything but 0, 1, 2), and a
// length that does not fit the opcode: a success must be exactly 12 (public address)
// or 16 (mapping) bytes; an error for opcode 0..2 must be 8 or that full size.
// An unsupported-version reply is accepted with or without the reply bit: the original
// RFC text shows it with opcode 0, erratum 3618 with 128.
Result<Reply> decode_reply(std::span<const std::uint8_t> bytes);

// The wire form of a reply: the 8-byte header, plus the opcode's fields when
// has_body is set and the opcode is 0, 1 or 2. decode_reply(encode_reply(r)) gives r
// back for every reply decode_reply accepts. For fake gateways in tests.
std::vector<std::uint8_t> encode_reply(const Reply& reply);

// What a reply has to echo to answer a request (s3.2, s3.3).
struct RequestKey {
  std::uint8_t opcode = opcode::public_address;
  std::uint16_t internal_port = 0;  // mapping requests only
};
inline RequestKey public_address_key() noexcept { return RequestKey{}; }
inline RequestKey mapping_key(std::uint8_t map_opcode, std::uint16_t internal_port) noexcept {
  return RequestKey{map_opcode, internal_port};
}

// Why `reply` does not answer the request `key` ("opcode", "internal port"), or
// nullptr when it does. A mapping reply must carry the request's internal port (an
// 8-byte error reply has none and matches on the opcode alone). Unsupported-version
// answers carry nothing to match and never match: the caller checks
// Reply::unsupported_version() first.
const char* mismatch(const Reply& reply, const RequestKey& key) noexcept;
inline bool answers(const Reply& reply, const RequestKey& key) noexcept {
  return mismatch(reply, key) == nullptr;
}

bool is_known_result(std::uint16_t code) noexcept;  // 0..5
// "SUCCESS", "NETWORK_FAILURE", ...; "UNKNOWN" for codes RFC 6886 does not define.
const char* result_name(std::uint16_t code) noexcept;
// "NETWORK_FAILURE (3): the gateway has no external address ...", or
// "unknown NAT-PMP result code 42".
std::string describe_result(std::uint16_t code);

// One line for the debug log: "MAP TCP SUCCESS internal 8080 -> external 8081 lifetime
// 7200 epoch 842", "PUBLIC ADDRESS SUCCESS 203.0.113.2 epoch 842", ...
std::string describe(const Reply& reply);

}  // namespace porthole::detail::natpmp
