// PCP (RFC 6887) wire codec: pure functions from structs to bytes and back.
//
// No sockets, no clock, no globals, no randomness: the caller passes in the time and
// the random values, so every function here can be unit-tested and fuzzed.
// Only what porthole uses is implemented: ANNOUNCE and MAP over IPv4 (addresses travel
// as IPv4-mapped IPv6 addresses, RFC 6887 s5). PEER and IPv6 mappings are not.
#pragma once

#include <array>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "porthole/error.hpp"
#include "porthole/ip_address.hpp"
#include "porthole/types.hpp"

namespace porthole::detail {

// A PCP mapping nonce (RFC 6887 s11.1): 96 random bits that own a mapping; the mapping
// core stores it (src/state/state_store.hpp) to renew or delete the mapping later.
using Nonce = std::array<std::uint8_t, 12>;

}  // namespace porthole::detail

namespace porthole::detail::pcp {

inline constexpr std::uint8_t kVersion = 2;
inline constexpr std::uint16_t kServerPort = 5351;
inline constexpr std::size_t kHeaderSize = 24;   // s7.1 / s7.2
inline constexpr std::size_t kMapBodySize = 36;  // s11.1
inline constexpr std::size_t kMapMessageSize = kHeaderSize + kMapBodySize;
inline constexpr std::size_t kMaxMessageSize = 1100;  // s7
// porthole's cap on the lifetimes it asks for, 24 h: servers clamp longer requests
// anyway (RFC 6887 s15), and a renewal a day keeps a forgotten mapping from living on.
inline constexpr std::uint32_t kMaxLifetime = 86400;

namespace opcode {
inline constexpr std::uint8_t announce = 0;
inline constexpr std::uint8_t map = 1;
inline constexpr std::uint8_t peer = 2;
}  // namespace opcode

// s7.4 result codes.
namespace result {
inline constexpr std::uint8_t success = 0;
inline constexpr std::uint8_t unsupp_version = 1;
inline constexpr std::uint8_t not_authorized = 2;
inline constexpr std::uint8_t malformed_request = 3;
inline constexpr std::uint8_t unsupp_opcode = 4;
inline constexpr std::uint8_t unsupp_option = 5;
inline constexpr std::uint8_t malformed_option = 6;
inline constexpr std::uint8_t network_failure = 7;
inline constexpr std::uint8_t no_resources = 8;
inline constexpr std::uint8_t unsupp_protocol = 9;
inline constexpr std::uint8_t user_ex_quota = 10;
inline constexpr std::uint8_t cannot_provide_external = 11;
inline constexpr std::uint8_t address_mismatch = 12;
inline constexpr std::uint8_t excessive_remote_peers = 13;
}  // namespace result

// IANA protocol numbers carried in the MAP Protocol field.
namespace iana {
inline constexpr std::uint8_t tcp = 6;
inline constexpr std::uint8_t udp = 17;
}  // namespace iana

using Address = std::array<std::uint8_t, 16>;  // an IPv6 address; IPv4 as ::ffff:a.b.c.d
using detail::Nonce;

std::uint8_t iana_protocol(Transport transport) noexcept;
// "tcp", "udp", or "protocol N".
std::string protocol_label(std::uint8_t protocol);

// An address as PCP carries it (s5): IPv4 as ::ffff:a.b.c.d, IPv6 as it is.
Address to_address(const IpAddress& ip) noexcept;
// The address-family-specific all-zeros address for IPv4 (s5): ::ffff:0.0.0.0. A MAP
// request carries it as Suggested External IP when the client has no preference (s11.1).
Address ipv4_all_zeros() noexcept;
// The IPv4 address inside an IPv4-mapped address; nullopt for any other address.
std::optional<IpAddress> ipv4_from_mapped(const Address& address);

// ---------------------------------------------------------------------------------
// Requests
// ---------------------------------------------------------------------------------

// Request header (s7.1), 24 bytes:
//   0                   1                   2                   3
//   0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//  +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//  |  Version = 2  |R|   Opcode    |         Reserved              |  0
//  +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//  |                 Requested Lifetime (32 bits)                  |  4
//  +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//  |            PCP Client's IP Address (128 bits)                 |  8..23
//  +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//  :             (optional) Opcode-specific information            :  24..
//  :             (optional) PCP Options                            :
//
// MAP opcode-specific information (s11.1), 36 bytes, at offset 24:
//  +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//  |                 Mapping Nonce (96 bits)                       |  24..35
//  +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//  |   Protocol    |          Reserved (24 bits)                   |  36
//  +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//  |        Internal Port          |    Suggested External Port    |  40, 42
//  +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//  |           Suggested External IP Address (128 bits)            |  44..59
//  +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
// All multi-byte fields are big-endian.
struct MapRequest {
  IpAddress client_ip;         // the address the request is sent from (s8.1)
  std::uint32_t lifetime = 0;  // seconds; 0 deletes the mapping (s15)
  Nonce nonce{};
  std::uint8_t protocol = iana::tcp;
  std::uint16_t internal_port = 0;                 // 1..65535 (0 would mean "all ports")
  std::uint16_t suggested_external_port = 0;       // 0: no preference
  std::optional<IpAddress> suggested_external_ip;  // nullopt: no preference
};

// 60 bytes. Errc::usage when internal_port is 0.
Result<std::vector<std::uint8_t>> encode_map_request(const MapRequest& request);
// ANNOUNCE (s14.1): the bare 24-byte header, opcode 0, lifetime 0.
std::vector<std::uint8_t> encode_announce_request(const IpAddress& client_ip);

// ---------------------------------------------------------------------------------
// Responses
// ---------------------------------------------------------------------------------

// Response header (s7.2), 24 bytes:
//   0                   1                   2                   3
//   0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//  +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//  |  Version = 2  |R|   Opcode    |   Reserved    |  Result Code  |  0
//  +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//  |                      Lifetime (32 bits)                       |  4
//  +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//  |                     Epoch Time (32 bits)                      |  8
//  +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//  |                      Reserved (96 bits)                       |  12..23
//  +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//  :             (optional) Opcode-specific response data          :  24..
//  :             (optional) Options                                :
//
// MAP response data (s11.1) has the request's layout, with the Assigned External Port
// at offset 42 and the Assigned External IP Address at 44..59.
//
// Option (s7.3), at a 4-byte boundary after the opcode data:
//  +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//  |  Option Code  |  Reserved     |       Option Length           |
//  +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//  :  data: Option Length bytes, then zero padding to a multiple of 4 :
//
// A NAT-PMP-only server answers a PCP request with its own "unsupported version" reply
// (RFC 6886 s3.5, RFC 6887 s9), 8 bytes:
//  +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//  | Vers = 0      | OP = 128 (or 0)| Result Code = 1 (16 bits)    |
//  +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//  | Seconds Since Start of Epoch                                  |
//  +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+

struct Option {
  std::uint8_t code = 0;
  std::vector<std::uint8_t> data;  // without the padding
};

struct MapResponseData {
  Nonce nonce{};
  std::uint8_t protocol = 0;
  std::uint16_t internal_port = 0;
  std::uint16_t external_port = 0;       // assigned
  Address external_address{};            // assigned
  std::optional<IpAddress> external_ip;  // set when external_address is IPv4-mapped
};

struct Response {
  // 2; for an UNSUPP_VERSION answer the server's own version (0: a NAT-PMP server).
  std::uint8_t version = kVersion;
  std::uint8_t opcode = 0;  // without the R bit
  std::uint8_t result_code = 0;
  std::uint32_t lifetime = 0;  // granted lifetime, or how long an error holds (s7.4)
  std::uint32_t epoch = 0;
  std::optional<MapResponseData> map;  // set for MAP responses (not for UNSUPP_VERSION)
  std::vector<Option> options;

  // RFC 6887 s9: the caller falls back to NAT-PMP.
  bool unsupported_version() const noexcept { return result_code == result::unsupp_version; }
};

// Checks every rule of s8.3 / s11.4 that can be checked on the bytes alone:
// length 24..1100 and a multiple of 4, R bit set, version 2, a complete MAP body,
// well-formed options. A version-0 (NAT-PMP) reply with result 1, and any PCP reply
// with result UNSUPP_VERSION, come back as a Response whose unsupported_version() is
// true. Every other failure is an Error (Errc::internal) whose message says why the
// datagram must be dropped.
Result<Response> decode_response(std::span<const std::uint8_t> bytes);

// What a response has to echo to answer a request (s8.3, s11.4).
struct RequestKey {
  std::uint8_t opcode = opcode::map;
  std::uint8_t protocol = 0;        // MAP only
  std::uint16_t internal_port = 0;  // MAP only
  Nonce nonce{};                    // MAP only
};
RequestKey key_of(const MapRequest& request) noexcept;
RequestKey announce_key() noexcept;

// Why `response` does not answer the request `key` ("opcode", "nonce", ...), or nullptr
// when it does. UNSUPP_VERSION answers carry nothing to match and never match: the
// caller checks Response::unsupported_version() first.
const char* mismatch(const Response& response, const RequestKey& key) noexcept;
inline bool answers(const Response& response, const RequestKey& key) noexcept {
  return mismatch(response, key) == nullptr;
}

// ---------------------------------------------------------------------------------
// Result codes (s7.4)
// ---------------------------------------------------------------------------------

bool is_known_result(std::uint8_t code) noexcept;  // 0..13
// "SUCCESS", "NO_RESOURCES", ...; "UNKNOWN" for codes RFC 6887 does not define.
const char* result_name(std::uint8_t code) noexcept;
// A sentence for people; empty for unknown codes.
const char* result_explanation(std::uint8_t code) noexcept;
// "NO_RESOURCES (8): port held elsewhere, ...", or "unknown PCP result code 42".
std::string describe_result(std::uint8_t code);
// s7.4: NETWORK_FAILURE, NO_RESOURCES and USER_EX_QUOTA are short-lifetime errors
// (conditions that may clear soon); every other error is long-lifetime.
bool is_short_lifetime_error(std::uint8_t code) noexcept;

// ---------------------------------------------------------------------------------
// Timing rules, as pure functions of the time and random values passed in
// ---------------------------------------------------------------------------------

// s8.5. `previous_epoch` / `previous_client_time`: the Epoch Time of the last valid
// response from this server and our clock when it arrived; `epoch` / `now`: the new
// ones. False means the server lost its state (rebooted): recreate every mapping.
bool epoch_is_valid(std::uint32_t previous_epoch, std::uint32_t epoch,
                    std::chrono::steady_clock::time_point previous_client_time,
                    std::chrono::steady_clock::time_point now) noexcept;

// s8.1.1 retransmission: IRT 3 s, MRT 1024 s, RAND uniform in -0.1..+0.1.
inline constexpr std::chrono::milliseconds kInitialRetransmitTimeout{3000};
inline constexpr std::chrono::milliseconds kMaxRetransmitTimeout{1024000};
// How long to wait for an answer to the next transmission. `previous` is the RT of the
// previous transmission, or 0 for the first: RT = (1+RAND)*IRT, then
// RT = (1+RAND)*min(2*RTprev, MRT). `random01` in [0,1) gives RAND = -0.1 + 0.2*random01.
// (When `max_rt` is configured below IRT, the first RT is capped by it as well.)
// MRC and MRD are 0 in the RFC (retry forever): the caller imposes its own deadline.
std::chrono::milliseconds next_retransmit_timeout(
    std::chrono::milliseconds previous, double random01,
    std::chrono::milliseconds max_rt = kMaxRetransmitTimeout) noexcept;

// s11.2.1 renewal: no two renewal attempts (nor the grant and the first attempt) closer
// than this.
inline constexpr std::chrono::seconds kMinRenewalInterval{4};
// When to send renewal attempts for a mapping granted `lifetime` seconds, as offsets
// from the moment it was granted: attempt k (k = 0, 1, 2, ...) at a random point of
// [1 - 2^-(k+1), 1 - 2^-(k+1) + 2^-(k+3)] of the lifetime, i.e. 1/2..5/8, 3/4..3/4+1/16,
// 7/8..7/8+1/32, ...; attempt k uses random01[k] in [0,1). An attempt closer than
// kMinRenewalInterval to the previous one is pushed back to that distance; the list
// ends before the mapping expires or when random01 runs out. Attempt k+1 is only due
// if attempt k failed; after a success, compute a new schedule from the new lifetime.
std::vector<std::chrono::milliseconds> renewal_schedule(std::uint32_t lifetime,
                                                        std::span<const double> random01);

// ---------------------------------------------------------------------------------
// One-line descriptions for the debug log
// ---------------------------------------------------------------------------------

std::string nonce_hex(const Nonce& nonce);
// "MAP tcp 8080 suggest 0.0.0.0:8080 lifetime 7200 nonce ... client 192.168.1.10"
std::string describe(const MapRequest& request);
// "MAP SUCCESS tcp 8080 -> 203.0.113.2:8080 lifetime 7200 epoch 42 nonce ..."
std::string describe(const Response& response);

}  // namespace porthole::detail::pcp
