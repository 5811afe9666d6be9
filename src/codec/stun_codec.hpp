// STUN (RFC 8489) wire codec, with the RFC 5780 behaviour-discovery attributes and the
// RFC 3489 attributes old servers still send: pure functions from structs to bytes and
// back.
//
// No sockets, no clock, no globals, no randomness: the transaction ID comes in as a
// parameter, so every function here can be unit-tested (RFC 5769 vectors) and fuzzed.
// porthole speaks no credentials: MESSAGE-INTEGRITY is stepped over, never checked.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "porthole/error.hpp"

namespace porthole::detail::stun {

inline constexpr std::uint32_t kMagicCookie = 0x2112A442;   // RFC 8489 s5
inline constexpr std::uint32_t kFingerprintXor = 0x5354554e;  // RFC 8489 s14.7 ("STUN")
inline constexpr std::size_t kHeaderSize = 20;
inline constexpr std::uint16_t kDefaultPort = 3478;  // "stun" over UDP (s17.1)
// What porthole reads from the network: a STUN message over UDP fits an Ethernet
// frame (RFC 8489 s6.2.1 asks for path-MTU-sized messages); anything longer is junk.
inline constexpr std::size_t kMaxDatagramSize = 1500;

using TransactionId = std::array<std::uint8_t, 12>;  // 96 bits (s5)

// The two class bits of the message type (s5).
enum class MessageClass : std::uint8_t {
  request = 0,
  indication = 1,
  success_response = 2,
  error_response = 3,
};

namespace method {
inline constexpr std::uint16_t binding = 0x001;
}  // namespace method

// Attribute types. Below 0x8000: comprehension-required; a receiver that does not
// understand one must not act on the message (s14).
namespace attr {
inline constexpr std::uint16_t mapped_address = 0x0001;
inline constexpr std::uint16_t response_address = 0x0002;  // RFC 3489; never honoured
inline constexpr std::uint16_t change_request = 0x0003;    // RFC 5780 s7.2 (and RFC 3489)
inline constexpr std::uint16_t source_address = 0x0004;    // RFC 3489
inline constexpr std::uint16_t changed_address = 0x0005;   // RFC 3489
inline constexpr std::uint16_t username = 0x0006;
inline constexpr std::uint16_t message_integrity = 0x0008;
inline constexpr std::uint16_t error_code = 0x0009;
inline constexpr std::uint16_t unknown_attributes = 0x000A;
inline constexpr std::uint16_t reflected_from = 0x000B;  // RFC 3489
inline constexpr std::uint16_t realm = 0x0014;
inline constexpr std::uint16_t nonce = 0x0015;
inline constexpr std::uint16_t message_integrity_sha256 = 0x001C;
inline constexpr std::uint16_t password_algorithm = 0x001D;
inline constexpr std::uint16_t userhash = 0x001E;
inline constexpr std::uint16_t xor_mapped_address = 0x0020;
inline constexpr std::uint16_t padding = 0x0026;        // RFC 5780 s7.6
inline constexpr std::uint16_t response_port = 0x0027;  // RFC 5780 s7.5; not supported
inline constexpr std::uint16_t software = 0x8022;
inline constexpr std::uint16_t alternate_server = 0x8023;
inline constexpr std::uint16_t fingerprint = 0x8028;
inline constexpr std::uint16_t response_origin = 0x802B;  // RFC 5780 s7.3
inline constexpr std::uint16_t other_address = 0x802C;    // RFC 5780 s7.4
}  // namespace attr

// "XOR-MAPPED-ADDRESS", ...; "0x1234" for types porthole does not know.
std::string attribute_name(std::uint16_t type);

// A transport address: a dotted quad (or IPv6 text) and a port.
struct Endpoint {
  std::string ip;
  std::uint16_t port = 0;
  friend bool operator==(const Endpoint&, const Endpoint&) = default;
};
// "192.0.2.1:32853", "[2001:db8::1]:32853".
std::string to_string(const Endpoint& endpoint);

// RFC 5780 s7.2 (RFC 3489 s11.2.4): where the server should answer from.
struct ChangeRequest {
  bool change_ip = false;
  bool change_port = false;
  friend bool operator==(const ChangeRequest&, const ChangeRequest&) = default;
};

struct ErrorCode {
  int code = 0;        // 300..699 (class * 100 + number)
  std::string reason;  // sanitised: printable ASCII only (it goes to terminals)
};

// ---------------------------------------------------------------------------------
// Wire format
// ---------------------------------------------------------------------------------
//
// Header (s5), 20 bytes:
//   0                   1                   2                   3
//   0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//  +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//  |0 0|     STUN Message Type     |         Message Length        |  0
//  +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//  |                  Magic Cookie = 0x2112A442                    |  4
//  +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//  |                  Transaction ID (96 bits)                     |  8..19
//  +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
// Message Length counts the bytes after the header (always a multiple of 4).
// Message Type interleaves the class bits C1 C0 with the 12 method bits M11..M0:
//   bit: 13 12 11 10 9 | 8  | 7 6 5 | 4  | 3 2 1 0
//        M11 ...    M7 | C1 | M6..M4| C0 | M3..M0
// so a Binding request is 0x0001, success response 0x0101, error response 0x0111.
//
// Attribute (s14), at a 4-byte boundary:
//  +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//  |         Type                  |            Length             |
//  +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//  :  Value: Length bytes, then 0-3 bytes of padding to a multiple of 4 (any value)
//
// Address attributes: MAPPED-ADDRESS (s14.1), RESPONSE-ORIGIN, OTHER-ADDRESS (RFC 5780),
// SOURCE-ADDRESS, CHANGED-ADDRESS (RFC 3489), value of 8 (IPv4) or 20 (IPv6) bytes:
//  +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//  |0 0 0 0 0 0 0 0|    Family     |           Port                |
//  +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//  |                 Address (32 bits or 128 bits)                 |
//  +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
// Family 0x01 = IPv4, 0x02 = IPv6. XOR-MAPPED-ADDRESS (s14.2) has the same layout with
// X-Port = port ^ (cookie >> 16) and X-Address = address ^ cookie (IPv4) or
// address ^ (cookie || transaction ID) (IPv6), so NATs that rewrite addresses found in
// payloads (ALGs) leave it alone.
//
// CHANGE-REQUEST (RFC 5780 s7.2), value of 4 bytes:
//  +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//  |0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0|A|B|0|
//  +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
// A = change IP (0x4), B = change port (0x2).
//
// ERROR-CODE (s14.8):
//  +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//  |           Reserved, should be 0         |Class|     Number    |
//  +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//  |      Reason Phrase (variable, UTF-8)                         ...
// Class 3..6 (the hundreds), Number 0..99.
//
// UNKNOWN-ATTRIBUTES (s14.9): a list of 16-bit attribute types.
// SOFTWARE (s14.14): UTF-8 text, fewer than 128 characters.
// FINGERPRINT (s14.7): CRC-32 (ITU-T V.42, as in Ethernet and zlib) of the message up to
// this attribute, with Message Length already counting the FINGERPRINT, xor 0x5354554e.
// It is always the last attribute.

// ---------------------------------------------------------------------------------
// Decoding
// ---------------------------------------------------------------------------------

// A message that passed every receive check (RFC 8489 s6.3, listed below). The first
// occurrence of an attribute counts (s14); attributes after MESSAGE-INTEGRITY, other
// than MESSAGE-INTEGRITY-SHA256 and FINGERPRINT, are ignored (s14.5).
struct Message {
  MessageClass message_class = MessageClass::request;
  std::uint16_t method = method::binding;
  TransactionId transaction_id{};

  std::optional<Endpoint> xor_mapped_address;
  std::optional<Endpoint> mapped_address;   // RFC 3489 servers send only this
  std::optional<Endpoint> response_origin;  // RFC 5780
  std::optional<Endpoint> other_address;    // RFC 5780
  std::optional<Endpoint> source_address;   // RFC 3489's RESPONSE-ORIGIN
  std::optional<Endpoint> changed_address;  // RFC 3489's OTHER-ADDRESS
  std::optional<ChangeRequest> change_request;
  std::optional<ErrorCode> error_code;
  std::optional<std::string> software;  // sanitised like ErrorCode::reason
  std::vector<std::uint16_t> unknown_attributes;  // the UNKNOWN-ATTRIBUTES list (420)
  // Comprehension-required attributes this codec does not understand, in message
  // order. A server answers 420 listing them (s6.3.1); a client treats a response
  // carrying any as failed (s6.3.3, s6.3.4).
  std::vector<std::uint16_t> unknown_required;
  bool has_message_integrity = false;  // present, not verified (porthole has no credentials)
  bool has_fingerprint = false;        // present and correct

  // The reflexive address: XOR-MAPPED-ADDRESS, else MAPPED-ADDRESS; nullptr if neither.
  const Endpoint* mapped() const noexcept;
  // Where the response came from, as the server says: RESPONSE-ORIGIN, else
  // SOURCE-ADDRESS.
  const Endpoint* origin() const noexcept;
  // The server's other IP and port: OTHER-ADDRESS, else CHANGED-ADDRESS.
  const Endpoint* other() const noexcept;
};

// Every receive check of RFC 8489 s6.3 and s14: at least 20 bytes, the top two
// bits 0, the magic cookie, Message Length a multiple of 4 and equal to the datagram's
// size minus 20, each attribute (with its padding) inside the message, well-formed values
// for the attributes porthole reads (address families and lengths, CHANGE-REQUEST,
// ERROR-CODE classes, UNKNOWN-ATTRIBUTES), and a FINGERPRINT, if present, last and
// correct. Any failure is an Error (Errc::internal) whose message says why the datagram
// must be dropped. Matching the transaction ID is the caller's business.
Result<Message> decode(std::span<const std::uint8_t> bytes);

// ---------------------------------------------------------------------------------
// Encoding
// ---------------------------------------------------------------------------------

struct BindingRequest {
  TransactionId transaction_id{};
  std::optional<ChangeRequest> change_request;  // RFC 5780 behaviour tests
  std::string software;  // empty: no SOFTWARE attribute; cut to 127 bytes
  bool fingerprint = true;
};
// A Binding request; 20 bytes bare, +8 with CHANGE-REQUEST, +8 with FINGERPRINT.
std::vector<std::uint8_t> encode_binding_request(const BindingRequest& request);

struct BindingSuccess {
  TransactionId transaction_id{};
  Endpoint mapped;                          // the request's source: XOR-MAPPED-ADDRESS
  bool include_mapped_address = false;      // MAPPED-ADDRESS too, for RFC 3489 clients
  std::optional<Endpoint> response_origin;  // the address the response is sent from
  std::optional<Endpoint> other_address;    // RFC 5780 servers with two addresses
  std::string software;                     // empty: no SOFTWARE attribute
  bool fingerprint = false;
};
// Errc::usage when an address is neither IPv4 nor IPv6 text, or SOFTWARE is too long.
Result<std::vector<std::uint8_t>> encode_binding_success(const BindingSuccess& response);

struct BindingError {
  TransactionId transaction_id{};
  int code = 400;      // 300..699
  std::string reason;  // "Bad Request", "Unknown Attribute", ...
  std::vector<std::uint16_t> unknown_attributes;  // for 420: UNKNOWN-ATTRIBUTES
  std::string software;
  bool fingerprint = false;
};
// Errc::usage when the code is out of range or a text too long.
Result<std::vector<std::uint8_t>> encode_binding_error(const BindingError& response);

// RFC 3489 ("classic STUN") clients -- miniupnpd's self-test, Debian's `stun` -- send
// no magic cookie: bytes 4..19 are one 128-bit transaction ID, and they know
// MAPPED-ADDRESS, SOURCE-ADDRESS and CHANGED-ADDRESS but not XOR-MAPPED-ADDRESS (an
// unknown attribute below 0x8000 makes them drop the answer, RFC 3489 s11.1).
using ClassicTransactionId = std::array<std::uint8_t, 16>;

struct ClassicRequest {
  ClassicTransactionId transaction_id{};
  Message message;  // the attributes, read as decode() reads them
};
// A datagram whose bytes 4..7 are not the magic cookie, checked like decode() checks
// (header bits, lengths, attributes). Whether it is a Binding request is the caller's
// business (message.message_class, message.method).
Result<ClassicRequest> decode_rfc3489(std::span<const std::uint8_t> bytes);

struct ClassicBindingSuccess {
  ClassicTransactionId transaction_id{};
  Endpoint mapped;                          // MAPPED-ADDRESS
  std::optional<Endpoint> source_address;   // where the answer is sent from
  std::optional<Endpoint> changed_address;  // the server's other IP and port
};
// Errc::usage when an address is not IPv4 or IPv6 text.
Result<std::vector<std::uint8_t>> encode_rfc3489_binding_success(
    const ClassicBindingSuccess& response);

// The reason phrases of s14.8 ("Bad Request", ...); "" for other codes.
const char* error_reason(int code) noexcept;

// CRC-32 of ITU-T V.42 / ISO 3309 (reflected polynomial 0xEDB88320, initial value and
// final xor 0xFFFFFFFF): crc32("123456789") == 0xCBF43926.
std::uint32_t crc32(std::span<const std::uint8_t> bytes) noexcept;

// ---------------------------------------------------------------------------------
// One-line descriptions for the debug log
// ---------------------------------------------------------------------------------

std::string transaction_hex(const TransactionId& id);
// "Binding success response txid 0123... XOR-MAPPED-ADDRESS 192.0.2.1:32853 ..."
std::string describe(const Message& message);

}  // namespace porthole::detail::stun
