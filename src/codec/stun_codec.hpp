// STUN (RFC 8489) wire codec, with the RFC 5780 behaviour-discovery attributes and the
// RFC 3489 attributes old servers still send: pure functions from structs to bytes and
// back.
//
// No sockets, no clock, no globals, no randomness: the transaction ID comes in as a
// parameter, so every function here can be unit-tested (RFC 5769 vectors) and fuzzed.
//
// Two layers. The general one reads and writes any method and class: decode() keeps
// every attribute as raw bytes in order (Message::attributes) next to the typed fields,
// MessageWriter builds any message, and check_integrity() / MessageWriter's
// add_message_integrity*() handle MESSAGE-INTEGRITY and MESSAGE-INTEGRITY-SHA256 with
// short-term and long-term credentials (s9.1, s9.2). The Binding layer on top
// (encode_binding_*, decode_rfc3489) is what porthole's STUN client and server use;
// they speak no credentials, so for them MESSAGE-INTEGRITY is stepped over.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "codec/crc32.hpp"
#include "porthole/error.hpp"
#include "porthole/ip_address.hpp"

namespace porthole::detail::stun {

inline constexpr std::uint32_t kMagicCookie = 0x2112A442;     // RFC 8489 s5
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
// TURN (RFC 8656 s17).
inline constexpr std::uint16_t allocate = 0x003;
inline constexpr std::uint16_t refresh = 0x004;
inline constexpr std::uint16_t send = 0x006;
inline constexpr std::uint16_t data = 0x007;
inline constexpr std::uint16_t create_permission = 0x008;
inline constexpr std::uint16_t channel_bind = 0x009;
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
inline constexpr std::uint16_t reflected_from = 0x000B;    // RFC 3489
inline constexpr std::uint16_t channel_number = 0x000C;    // RFC 8656 s18.1
inline constexpr std::uint16_t lifetime = 0x000D;          // RFC 8656 s18.2
inline constexpr std::uint16_t xor_peer_address = 0x0012;  // RFC 8656 s18.3
inline constexpr std::uint16_t data = 0x0013;              // RFC 8656 s18.4
inline constexpr std::uint16_t realm = 0x0014;
inline constexpr std::uint16_t nonce = 0x0015;
inline constexpr std::uint16_t xor_relayed_address = 0x0016;  // RFC 8656 s18.5
inline constexpr std::uint16_t requested_transport = 0x0019;  // RFC 8656 s18.7
inline constexpr std::uint16_t message_integrity_sha256 = 0x001C;
inline constexpr std::uint16_t password_algorithm = 0x001D;
inline constexpr std::uint16_t userhash = 0x001E;
inline constexpr std::uint16_t xor_mapped_address = 0x0020;
inline constexpr std::uint16_t priority = 0x0024;       // RFC 8445 s16.1
inline constexpr std::uint16_t use_candidate = 0x0025;  // RFC 8445 s16.1
inline constexpr std::uint16_t padding = 0x0026;        // RFC 5780 s7.6
inline constexpr std::uint16_t response_port = 0x0027;  // RFC 5780 s7.5; not supported
inline constexpr std::uint16_t software = 0x8022;
inline constexpr std::uint16_t alternate_server = 0x8023;
inline constexpr std::uint16_t fingerprint = 0x8028;
inline constexpr std::uint16_t response_origin = 0x802B;  // RFC 5780 s7.3
inline constexpr std::uint16_t other_address = 0x802C;    // RFC 5780 s7.4
inline constexpr std::uint16_t ice_controlled = 0x8029;   // RFC 8445 s16.1
inline constexpr std::uint16_t ice_controlling = 0x802A;  // RFC 8445 s16.1
}  // namespace attr

// REQUESTED-TRANSPORT's protocol number for UDP (RFC 8656 s18.7).
inline constexpr std::uint8_t kTransportUdp = 17;

// "XOR-MAPPED-ADDRESS", ...; "0x1234" for types porthole does not know.
std::string attribute_name(std::uint16_t type);

// A transport address is a porthole::Endpoint (include/porthole/ip_address.hpp), parsed
// once; its to_string() gives "192.0.2.1:32853" or "[2001:db8::1]:32853".
using porthole::Endpoint;

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
// One attribute as it is on the wire: its type and value (without the padding), and
// where its 4-byte header starts in the message.
struct Attribute {
  std::uint16_t type = 0;
  std::vector<std::uint8_t> value;
  std::size_t offset = 0;
  friend bool operator==(const Attribute&, const Attribute&) = default;
};

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
  std::optional<std::string> software;            // sanitised like ErrorCode::reason
  std::vector<std::uint16_t> unknown_attributes;  // the UNKNOWN-ATTRIBUTES list (420)
  // Comprehension-required attributes this codec does not understand, in message
  // order. A server answers 420 listing them (s6.3.1); a client treats a response
  // carrying any as failed (s6.3.3, s6.3.4).
  std::vector<std::uint16_t> unknown_required;
  bool has_message_integrity = false;  // present; check_integrity() verifies it
  bool has_fingerprint = false;        // present and correct

  // Every attribute in message order, duplicates and the ones after MESSAGE-INTEGRITY
  // included (the typed fields ignore those, s14.5; a user of this list must too).
  std::vector<Attribute> attributes;

  // Credentials (s14.3, s14.9, s14.10): the bytes as sent, not sanitised (the key is
  // computed from them); describe() sanitises them.
  std::optional<std::string> username;
  std::optional<std::string> realm;
  std::optional<std::string> nonce;
  // ICE (RFC 8445 s7.1.1, s16.1).
  std::optional<std::uint32_t> priority;
  std::optional<std::uint64_t> ice_controlling;  // the tie-breaker
  std::optional<std::uint64_t> ice_controlled;
  bool use_candidate = false;
  // TURN (RFC 8656 s18). A malformed one of these leaves its field empty rather than
  // dropping the message: the Binding client and server do not act on them (they are
  // in unknown_required where comprehension-required) and behave as before.
  std::optional<std::uint16_t> channel_number;
  std::optional<std::uint32_t> lifetime;               // seconds
  std::optional<porthole::Endpoint> xor_peer_address;  // the first one (s18.3 allows several)
  std::optional<std::vector<std::uint8_t>> data;
  std::optional<porthole::Endpoint> xor_relayed_address;
  std::optional<std::uint8_t> requested_transport;  // protocol number, kTransportUdp
  // Also 420's list, as the general layer sees it: comprehension-required types in
  // `attributes` outside understood_by_binding() and `extra_understood`.
  std::vector<std::uint16_t> unknown_required_except(
      std::span<const std::uint16_t> extra_understood) const;

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

// Comprehension-required types the Binding client and server act on or step over (the
// credential attributes, s9); ICE and TURN attributes are not among them.
bool understood_by_binding(std::uint16_t type) noexcept;

// ---------------------------------------------------------------------------------
// Credentials and MESSAGE-INTEGRITY (s9, s14.5, s14.6)
// ---------------------------------------------------------------------------------

enum class PasswordAlgorithm : std::uint16_t { md5 = 0x0001, sha256 = 0x0002 };  // s18.5

// The HMAC key of a credential. Passwords go through OpaqueString (RFC 8265, as s9.2.2
// asks); porthole implements it for printable ASCII only, which it leaves unchanged:
// any other byte is Errc::usage, as is an empty password. The username and realm are
// used as they were sent (they come from the wire or the user, already prepared).
struct IntegrityKey {
  std::vector<std::uint8_t> bytes;
  // s9.1.1: key = OpaqueString(password).
  static Result<IntegrityKey> short_term(std::string_view password);
  // s9.2.2: key = MD5(username ":" realm ":" OpaqueString(password)), or SHA-256 of the
  // same with PASSWORD-ALGORITHM SHA-256.
  static Result<IntegrityKey> long_term(std::string_view username, std::string_view realm,
                                        std::string_view password,
                                        PasswordAlgorithm algorithm = PasswordAlgorithm::md5);
};

enum class IntegrityAlgorithm { hmac_sha1, hmac_sha256 };

// Checks the MESSAGE-INTEGRITY-SHA256 of `bytes` (which decode() accepted as `message`)
// if it has one, else its MESSAGE-INTEGRITY: the HMAC over the message up to that
// attribute with Message Length counting up to its end (s14.5, s14.6), compared in
// constant time. Returns the algorithm that was checked. Errc::refused when the HMAC
// does not match, Errc::internal when the message carries neither attribute.
Result<IntegrityAlgorithm> check_integrity(std::span<const std::uint8_t> bytes,
                                           const Message& message, const IntegrityKey& key);

// The receiving side of MessageWriter::covered_by_next(): the bytes of `bytes` (which
// decode() accepted as the message holding `attribute`) up to that attribute, with
// Message Length counting up to its end. Errc::internal when it is not inside them.
Result<std::vector<std::uint8_t>> covered_by(std::span<const std::uint8_t> bytes,
                                             const Attribute& attribute);

// ---------------------------------------------------------------------------------
// Encoding
// ---------------------------------------------------------------------------------

// Builds any message: the header, then attributes in the order they are added, then
// MESSAGE-INTEGRITY, MESSAGE-INTEGRITY-SHA256 and FINGERPRINT as the last ones (s14.5,
// s14.6, s14.7). The first bad input (a value longer than a STUN message can carry, an
// address that does not fit) is remembered and finish() reports it.
class MessageWriter {
 public:
  MessageWriter(std::uint16_t method, MessageClass message_class, const TransactionId& id);

  // Padding after values whose length is not a multiple of 4; zero unless changed
  // (RFC 5769's vectors pad with spaces; s14 lets the sender choose).
  void set_padding_byte(std::uint8_t byte) { padding_ = byte; }

  void add(std::uint16_t type, std::span<const std::uint8_t> value);
  void add_text(std::uint16_t type, std::string_view text);
  void add_u32(std::uint16_t type, std::uint32_t value);
  void add_u64(std::uint16_t type, std::uint64_t value);
  // MAPPED-ADDRESS layout (s14.1) and XOR-MAPPED-ADDRESS layout (s14.2), which TURN's
  // XOR-PEER-ADDRESS and XOR-RELAYED-ADDRESS share.
  void add_address(std::uint16_t type, const porthole::Endpoint& endpoint);
  void add_xor_address(std::uint16_t type, const porthole::Endpoint& endpoint);
  // ERROR-CODE (s14.8): Errc::usage at finish() unless 300..699.
  void add_error_code(int code, std::string_view reason);
  void add_priority(std::uint32_t priority) { add_u32(attr::priority, priority); }
  void add_use_candidate() { add(attr::use_candidate, {}); }
  // REQUESTED-TRANSPORT (RFC 8656 s18.7): protocol, then 3 bytes RFFU.
  void add_requested_transport(std::uint8_t protocol = kTransportUdp);
  // CHANNEL-NUMBER (RFC 8656 s18.1): the number, then 2 bytes RFFU.
  void add_channel_number(std::uint16_t channel);

  // The bytes an attribute of `value_size` bytes added next would cover if it
  // authenticated the message the way MESSAGE-INTEGRITY does (s14.5): the message so
  // far with Message Length counting up to that attribute's end. Empty after an error.
  // For an end-to-end signature attribute: sign these, then add() the signature.
  std::vector<std::uint8_t> covered_by_next(std::size_t value_size) const;
  void add_message_integrity(const IntegrityKey& key);         // HMAC-SHA1, s14.5
  void add_message_integrity_sha256(const IntegrityKey& key);  // HMAC-SHA256, 32 bytes, s14.6
  // The message, with FINGERPRINT appended when asked (s14.7).
  Result<std::vector<std::uint8_t>> finish(bool fingerprint);

 private:
  void set_length(std::size_t body);
  std::vector<std::uint8_t> out_;
  TransactionId id_;
  std::uint8_t padding_ = 0;
  std::optional<Error> error_;
};

struct BindingRequest {
  TransactionId transaction_id{};
  std::optional<ChangeRequest> change_request;  // RFC 5780 behaviour tests
  std::string software;                         // empty: no SOFTWARE attribute; cut to 127 bytes
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
// Errc::usage when SOFTWARE is too long.
Result<std::vector<std::uint8_t>> encode_binding_success(const BindingSuccess& response);

struct BindingError {
  TransactionId transaction_id{};
  int code = 400;                                 // 300..699
  std::string reason;                             // "Bad Request", "Unknown Attribute", ...
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
// Succeeds for every input (the addresses are parsed already); a Result like its siblings.
Result<std::vector<std::uint8_t>> encode_rfc3489_binding_success(
    const ClassicBindingSuccess& response);

// The reason phrases of s14.8 ("Bad Request", ...); "" for other codes.
const char* error_reason(int code) noexcept;

// CRC-32 of ITU-T V.42 (codec/crc32.hpp), as FINGERPRINT uses it.
using detail::crc32;

// ---------------------------------------------------------------------------------
// One-line descriptions for the debug log
// ---------------------------------------------------------------------------------

std::string transaction_hex(const TransactionId& id);
// "Binding success response txid 0123... XOR-MAPPED-ADDRESS 192.0.2.1:32853 ..."
std::string describe(const Message& message);

}  // namespace porthole::detail::stun
