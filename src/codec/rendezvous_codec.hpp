// The rendezvous protocol's wire codec (docs/rendezvous.md): STUN-formatted messages
// (RFC 8489) with porthole's own methods and attributes, and the signed session
// description (offer or answer) two peers exchange through the server. Pure functions
// from structs to bytes and back: no sockets, no clock, no randomness (transaction IDs,
// challenges and session IDs come in as parameters). Signatures are checked here, with
// GnuTLS through codec/ed25519; making them is the caller's (porthole::Identity).
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "codec/ice_priority.hpp"
#include "codec/stun_codec.hpp"
#include "porthole/error.hpp"
#include "porthole/identity.hpp"
#include "porthole/ip_address.hpp"

namespace porthole::detail::rendezvous {

// Methods. RFC 8489 s18.2 has no private or experimental range: 0x000-0x07F is IETF
// Review, 0x080-0x0FF Expert Review, and RFC 7983 reserves 0x100-0xFFF (their first
// byte would leave STUN's 0-3 range, which the UDP mux and RFC 7983 classify on). These
// are unassigned values from the top of the Expert Review range, unregistered.
namespace method {
inline constexpr std::uint16_t register_peer = 0x0F0;  // prove an ID, go online
inline constexpr std::uint16_t connect = 0x0F1;        // A's offer to B (and its relay)
inline constexpr std::uint16_t answer = 0x0F2;         // B's answer to A (and its relay)
}  // namespace method
bool is_rendezvous_method(std::uint16_t method) noexcept;

// Attributes, likewise unregistered values from the Expert Review, comprehension-
// required range 0x4000-0x7FFF (RFC 8489 s18.3): a receiver that does not know them
// must not act on the message.
namespace attr {
inline constexpr std::uint16_t peer_id = 0x7F01;         // 32 bytes: an Ed25519 public key
inline constexpr std::uint16_t challenge = 0x7F02;       // 16..64 bytes from the server
inline constexpr std::uint16_t signature = 0x7F03;       // 64 bytes, Ed25519
inline constexpr std::uint16_t target_peer_id = 0x7F04;  // 32 bytes: whom it is for
inline constexpr std::uint16_t description = 0x7F05;     // a session description
}  // namespace attr

inline constexpr std::size_t kChallengeMin = 16;
inline constexpr std::size_t kChallengeMax = 64;
inline constexpr std::size_t kSessionIdSize = 16;
inline constexpr std::size_t kUfragMin = 4;  // RFC 8445 s5.3: at least 24 bits
inline constexpr std::size_t kUfragMax = 32;
inline constexpr std::size_t kPasswordMin = 22;  // RFC 8445 s5.3: at least 128 bits
inline constexpr std::size_t kPasswordMax = 64;
inline constexpr std::size_t kFoundationMax = 32;  // RFC 8445 s5.1.1.3: 1*32 ice-char
// With every field at its maximum a Connect request is 1016 bytes, so it fits the
// 1232-byte UDP payload of an IPv6 path at the minimum MTU (1280) without fragments.
inline constexpr std::size_t kMaxCandidates = 12;
inline constexpr std::uint8_t kDescriptionVersion = 1;

// Error codes the server answers with (RFC 8489 s14.8 classes).
inline constexpr int kBadRequest = 400;
inline constexpr int kUnauthenticated = 401;  // "prove it": CHALLENGE attached
inline constexpr int kPeerNotOnline = 404;
inline constexpr int kUnknownAttribute = 420;

enum class Kind : std::uint8_t { offer = 1, answer = 2 };

// The sender's NAT mapping behaviour (RFC 4787 s4.1) as it measured it.
enum class NatMapping : std::uint8_t {
  unknown = 0,
  endpoint_independent = 1,
  address_dependent = 2,
  address_and_port_dependent = 3,
};

// How the sender's NAT picks the external port of a new mapping, as its STUN answers
// showed (RFC 4787 s4.2.1 port preservation; the rest is what port prediction needs):
// unknown, the internal port kept, each new mapping `port_step` after the last
// (sequential), or no pattern seen (random). Only with a dependent mapping (with an
// endpoint-independent one nothing needs predicting): otherwise unknown.
enum class PortAllocation : std::uint8_t {
  unknown = 0,
  preserving = 1,
  sequential = 2,
  random = 3
};
// |port_step| of a sequential allocation: 1..kMaxPortStep.
inline constexpr int kMaxPortStep = 7;

struct Candidate {
  ice::CandidateType type = ice::CandidateType::host;
  std::uint8_t transport = stun::kTransportUdp;  // IANA protocol number; UDP only for now
  Endpoint address;
  std::uint32_t priority = 0;  // 1..2^31-1 (RFC 8445 s5.1.2.1)
  std::string foundation;      // 1..32 ice-chars
  friend bool operator==(const Candidate&, const Candidate&) = default;
};

// An offer or an answer: everything B needs to run ICE checks with A, end to end.
struct Description {
  Kind kind = Kind::offer;
  PeerId sender;
  PeerId receiver;
  std::array<std::uint8_t, kSessionIdSize> session_id{};  // the offer's, echoed by the answer
  NatMapping nat_mapping = NatMapping::unknown;
  PortAllocation allocation = PortAllocation::unknown;
  std::int8_t port_step = 0;  // sequential: -kMaxPortStep..kMaxPortStep, not 0; else 0
  std::string ufrag;          // ice-chars (ALPHA / DIGIT / "+" / "/")
  std::string password;       // ice-chars
  std::vector<Candidate> candidates;
  friend bool operator==(const Description&, const Description&) = default;
};

// The description's bytes (docs/rendezvous.md gives the layout). Errc::usage naming the
// field when a bound is broken (lengths, character set, candidate count, priority,
// an unspecified or multicast address, port 0, a transport other than UDP).
Result<std::vector<std::uint8_t>> encode_description(const Description& description);
// The reverse, with the same checks; Errc::internal with the reason (as stun::decode).
Result<Description> decode_description(std::span<const std::uint8_t> bytes);

// What a description's signature covers: a domain-separation label, then the bytes.
std::vector<std::uint8_t> description_signing_input(std::span<const std::uint8_t> bytes);

struct SignedDescription {
  std::vector<std::uint8_t> bytes;      // encode_description()
  std::vector<std::uint8_t> signature;  // the sender's Ed25519 over description_signing_input
  friend bool operator==(const SignedDescription&, const SignedDescription&) = default;
};

// Checks the signature against `expected_sender` (the ID the user named, or the one
// this side is waiting for) before anything is read, then decodes and checks that the
// description is of `expected_kind`, from that sender, for `receiver`. Errc::refused
// when the signature or the IDs do not match (a lying or broken rendezvous), else
// decode_description()'s errors.
Result<Description> open_description(const SignedDescription& signed_description,
                                     const PeerId& expected_sender, const PeerId& receiver,
                                     Kind expected_kind);

// What a registration signature covers: label, the peer's key, the server's challenge
// and the peer's address as the server saw it (family, port, address), so a signature
// can be used neither for another challenge nor from another address.
std::vector<std::uint8_t> registration_signing_input(const PeerId& peer,
                                                     std::span<const std::uint8_t> challenge,
                                                     const Endpoint& observed);
bool verify_registration(const PeerId& peer, std::span<const std::uint8_t> challenge,
                         const Endpoint& observed, std::span<const std::uint8_t> signature);

// One rendezvous message, decoded or to encode. Which fields a method and class need
// is in docs/rendezvous.md; decode() and encode() check them.
struct Message {
  std::uint16_t method = method::register_peer;
  stun::MessageClass message_class = stun::MessageClass::request;
  stun::TransactionId transaction_id{};

  std::optional<PeerId> peer_id;                         // PEER-ID
  std::optional<std::vector<std::uint8_t>> challenge;    // CHALLENGE
  std::optional<std::vector<std::uint8_t>> signature;    // SIGNATURE (64 bytes)
  std::optional<PeerId> target_peer_id;                  // TARGET-PEER-ID
  std::optional<std::vector<std::uint8_t>> description;  // DESCRIPTION (its bytes)
  std::optional<Endpoint> xor_mapped_address;            // the sender as the server sees it
  std::optional<Endpoint> xor_peer_address;              // the offerer as the server saw it
  std::optional<std::uint32_t> lifetime;                 // LIFETIME, seconds
  std::optional<stun::ErrorCode> error_code;             // ERROR-CODE
  std::vector<std::uint16_t> unknown_attributes;         // UNKNOWN-ATTRIBUTES, with 420

  // Comprehension-required attributes of a request this codec does not know, in message
  // order: the server answers 420 listing them (RFC 8489 s6.3.1) and acts on nothing.
  // decode() refuses a response or indication with any (s6.3.3, s6.3.4).
  std::vector<std::uint16_t> unknown_required;

  // DESCRIPTION and SIGNATURE together, when both are present.
  std::optional<SignedDescription> signed_description() const;
};

// A datagram the UDP mux classified as STUN: stun::decode()'s checks, then a
// FINGERPRINT (required), a rendezvous method, well-formed values of the attributes
// above and those the method and class need. Errc::internal with the reason otherwise.
Result<Message> decode(std::span<const std::uint8_t> bytes);
// Errc::usage when a field the method and class need is missing or out of bounds.
Result<std::vector<std::uint8_t>> encode(const Message& message);

}  // namespace porthole::detail::rendezvous
