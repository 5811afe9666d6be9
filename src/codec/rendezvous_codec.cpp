// The rendezvous codec (codec/rendezvous_codec.hpp, docs/rendezvous.md).
#include "codec/rendezvous_codec.hpp"

#include <algorithm>
#include <string_view>

#include <fmt/format.h>

#include "codec/byte_order.hpp"
#include "codec/ed25519.hpp"

namespace porthole::detail::rendezvous {
namespace {

constexpr std::string_view kDescriptionLabel = "porthole rendezvous description v1";
constexpr std::string_view kRegistrationLabel = "porthole rendezvous register v1";
// Fixed part of a description: version, kind, NAT mapping, candidate count, two keys,
// the session ID.
constexpr std::size_t kDescriptionFixed = 4 + 32 + 32 + kSessionIdSize;
// Each candidate: type, transport, family, foundation length, port, priority, then
// the address and the foundation.
constexpr std::size_t kCandidateFixed = 10;
constexpr std::size_t kMaxDescriptionSize = kDescriptionFixed + 2 + kUfragMax + kPasswordMax +
                                            kMaxCandidates *
                                                (kCandidateFixed + 16 + kFoundationMax);
constexpr std::uint8_t kFamilyV4 = 0x01, kFamilyV6 = 0x02;  // as in STUN (RFC 8489 s14.1)

Error bad(Errc code, std::string message) { return make_error(code, std::move(message)); }

bool ice_chars(std::string_view text) noexcept {
  // RFC 8445 s5.3 and RFC 8839 s5.4: ice-char = ALPHA / DIGIT / "+" / "/".
  return std::all_of(text.begin(), text.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '+' ||
           c == '/';
  });
}

Status check_text(std::string_view what, std::string_view text, std::size_t min, std::size_t max,
                  Errc code) {
  if (text.size() < min || text.size() > max)
    return bad(code, fmt::format("{} has {} characters, not {}..{}", what, text.size(), min, max));
  if (!ice_chars(text))
    return bad(code, fmt::format("{} has a character other than A-Z a-z 0-9 + /", what));
  return ok_status();
}

bool known_type(std::uint8_t type) noexcept { return type <= 4; }

Status check_candidate(const Candidate& c, std::size_t index, Errc code) {
  std::string what = fmt::format("candidate {}", index + 1);
  if (!known_type(static_cast<std::uint8_t>(c.type)))
    return bad(code, what + ": unknown candidate type");
  if (c.transport != stun::kTransportUdp)
    return bad(code, fmt::format("{}: transport {} (only UDP, 17)", what, c.transport));
  if (c.address.port == 0) return bad(code, what + ": port 0");
  if (c.address.ip.is_unspecified() || c.address.ip.is_multicast())
    return bad(code,
               fmt::format("{}: address {} cannot be a candidate", what, c.address.ip.to_string()));
  if (c.priority == 0 || c.priority > 0x7FFFFFFFu)
    return bad(code, fmt::format("{}: priority {} is not in 1..2^31-1", what, c.priority));
  return check_text(what + "'s foundation", c.foundation, 1, kFoundationMax, code);
}

// Byte 2 of a description (docs/rendezvous.md): the mapping in bits 0-1, the port
// allocation in bits 2-3, a sequential allocation's step (4-bit two's complement) in
// bits 4-7. After check_description().
std::uint8_t nat_byte(const Description& d) {
  const auto step = static_cast<std::uint8_t>(static_cast<unsigned>(d.port_step) & 0xf);
  return static_cast<std::uint8_t>(static_cast<unsigned>(d.nat_mapping) |
                                   (static_cast<unsigned>(d.allocation) << 2) | (step << 4));
}

Status check_description(const Description& d, Errc code) {
  if (d.kind != Kind::offer && d.kind != Kind::answer)
    return bad(code, "description: unknown kind");
  if (static_cast<std::uint8_t>(d.nat_mapping) > 3)
    return bad(code, "description: unknown NAT mapping behaviour");
  if (static_cast<std::uint8_t>(d.allocation) > 3)
    return bad(code, "description: unknown port allocation");
  // The allocation is what predicting a dependent mapping needs; with no such mapping
  // it is left unknown.
  if (d.allocation != PortAllocation::unknown && d.nat_mapping != NatMapping::address_dependent &&
      d.nat_mapping != NatMapping::address_and_port_dependent)
    return bad(code, "description: a port allocation without a dependent NAT mapping");
  const bool step_ok = d.allocation == PortAllocation::sequential
                           ? d.port_step != 0 && d.port_step >= -kMaxPortStep &&
                                 d.port_step <= kMaxPortStep
                           : d.port_step == 0;
  if (!step_ok)
    return bad(code, fmt::format("description: port step {} with that allocation",
                                 static_cast<int>(d.port_step)));
  if (auto st = check_text("ICE ufrag", d.ufrag, kUfragMin, kUfragMax, code); !st) return st;
  if (auto st = check_text("ICE password", d.password, kPasswordMin, kPasswordMax, code); !st)
    return st;
  if (d.candidates.size() > kMaxCandidates)
    return bad(code, fmt::format("description: {} candidates, at most {}", d.candidates.size(),
                                 kMaxCandidates));
  for (std::size_t i = 0; i < d.candidates.size(); ++i)
    if (auto st = check_candidate(d.candidates[i], i, code); !st) return st;
  return ok_status();
}

void append(std::vector<std::uint8_t>& out, std::span<const std::uint8_t> bytes) {
  out.insert(out.end(), bytes.begin(), bytes.end());
}
void append_text(std::vector<std::uint8_t>& out, std::string_view text) {
  out.insert(out.end(), text.begin(), text.end());
}

// Reads a description front to back; every read is bounds-checked.
class Reader {
 public:
  explicit Reader(std::span<const std::uint8_t> in) : in_(in) {}
  bool take(std::size_t n, std::span<const std::uint8_t>& out) {
    if (in_.size() - pos_ < n) return false;
    out = in_.subspan(pos_, n);
    pos_ += n;
    return true;
  }
  bool byte(std::uint8_t& out) {
    std::span<const std::uint8_t> b;
    if (!take(1, b)) return false;
    out = b[0];
    return true;
  }
  bool text(std::size_t n, std::string& out) {
    std::span<const std::uint8_t> b;
    if (!take(n, b)) return false;
    out.assign(b.begin(), b.end());
    return true;
  }
  bool done() const { return pos_ == in_.size(); }

 private:
  std::span<const std::uint8_t> in_;
  std::size_t pos_ = 0;
};

PeerId peer_from(std::span<const std::uint8_t> bytes) {
  PeerId id;
  std::copy(bytes.begin(), bytes.end(), id.key.begin());
  return id;
}

void append_endpoint(std::vector<std::uint8_t>& out, const Endpoint& e) {
  out.push_back(e.ip.is_v4() ? kFamilyV4 : kFamilyV6);
  append_u16(out, e.port);
  append(out, e.ip.bytes());
}

}  // namespace

bool is_rendezvous_method(std::uint16_t m) noexcept {
  return m == method::register_peer || m == method::connect || m == method::answer;
}

Result<std::vector<std::uint8_t>> encode_description(const Description& d) {
  if (auto st = check_description(d, Errc::usage); !st) return st.error();
  std::vector<std::uint8_t> out;
  out.reserve(kMaxDescriptionSize);
  out.push_back(kDescriptionVersion);
  out.push_back(static_cast<std::uint8_t>(d.kind));
  out.push_back(nat_byte(d));
  out.push_back(static_cast<std::uint8_t>(d.candidates.size()));
  append(out, d.sender.key);
  append(out, d.receiver.key);
  append(out, d.session_id);
  out.push_back(static_cast<std::uint8_t>(d.ufrag.size()));
  append_text(out, d.ufrag);
  out.push_back(static_cast<std::uint8_t>(d.password.size()));
  append_text(out, d.password);
  for (const Candidate& c : d.candidates) {
    out.push_back(static_cast<std::uint8_t>(c.type));
    out.push_back(c.transport);
    out.push_back(c.address.ip.is_v4() ? kFamilyV4 : kFamilyV6);
    out.push_back(static_cast<std::uint8_t>(c.foundation.size()));
    append_u16(out, c.address.port);
    append_u32(out, c.priority);
    append(out, c.address.ip.bytes());
    append_text(out, c.foundation);
  }
  return out;
}

Result<Description> decode_description(std::span<const std::uint8_t> bytes) {
  constexpr Errc kWire = Errc::internal;
  if (bytes.size() > kMaxDescriptionSize)
    return bad(kWire, fmt::format("description of {} bytes, at most {}", bytes.size(),
                                  kMaxDescriptionSize));
  Reader r(bytes);
  Description d;
  std::uint8_t version = 0, kind = 0, nat = 0, count = 0, len = 0;
  std::span<const std::uint8_t> b;
  if (!r.byte(version) || !r.byte(kind) || !r.byte(nat) || !r.byte(count))
    return bad(kWire, "description truncated in its header");
  if (version != kDescriptionVersion)
    return bad(kWire, fmt::format("description version {}, this porthole reads {}", version,
                                  kDescriptionVersion));
  if (kind != 1 && kind != 2) return bad(kWire, fmt::format("description kind {}", kind));
  // The NAT byte: mapping in bits 0-1, allocation in bits 2-3, the step in bits 4-7.
  d.nat_mapping = static_cast<NatMapping>(nat & 3);
  d.allocation = static_cast<PortAllocation>((nat >> 2) & 3);
  const int step = nat >> 4;
  d.port_step = static_cast<std::int8_t>(
      step >= 8
          ? step - 16
          : step);  // (check_description() below refuses a step that does not fit the allocation.)
  if (count > kMaxCandidates)
    return bad(kWire, fmt::format("description: {} candidates, at most {}", count, kMaxCandidates));
  d.kind = static_cast<Kind>(kind);
  if (!r.take(32, b)) return bad(kWire, "description truncated in the sender's key");
  d.sender = peer_from(b);
  if (!r.take(32, b)) return bad(kWire, "description truncated in the receiver's key");
  d.receiver = peer_from(b);
  if (!r.take(kSessionIdSize, b)) return bad(kWire, "description truncated in the session ID");
  std::copy(b.begin(), b.end(), d.session_id.begin());
  if (!r.byte(len) || !r.text(len, d.ufrag))
    return bad(kWire, "description truncated in the ufrag");
  if (!r.byte(len) || !r.text(len, d.password))
    return bad(kWire, "description truncated in the password");
  for (std::size_t i = 0; i < count; ++i) {
    Candidate c;
    std::uint8_t type = 0, family = 0, foundation = 0;
    if (!r.byte(type) || !r.byte(c.transport) || !r.byte(family) || !r.byte(foundation) ||
        !r.take(6, b))
      return bad(kWire, fmt::format("description truncated in candidate {}", i + 1));
    if (!known_type(type))
      return bad(kWire, fmt::format("candidate {}: unknown type {}", i + 1, type));
    c.type = static_cast<ice::CandidateType>(type);
    c.address.port = get_u16(b, 0);
    c.priority = get_u32(b, 2);
    if (family != kFamilyV4 && family != kFamilyV6)
      return bad(kWire, fmt::format("candidate {}: address family {}", i + 1, family));
    if (!r.take(family == kFamilyV4 ? 4 : 16, b))
      return bad(kWire, fmt::format("description truncated in candidate {}", i + 1));
    c.address.ip = *IpAddress::from_bytes(b);  // 4 or 16 bytes: cannot fail
    if (!r.text(foundation, c.foundation))
      return bad(kWire, fmt::format("description truncated in candidate {}", i + 1));
    d.candidates.push_back(std::move(c));
  }
  if (!r.done()) return bad(kWire, "description has bytes after its last candidate");
  if (auto st = check_description(d, kWire); !st) return st.error();
  return d;
}

std::vector<std::uint8_t> description_signing_input(std::span<const std::uint8_t> bytes) {
  std::vector<std::uint8_t> out;
  append_text(out, kDescriptionLabel);
  out.push_back(0);
  append(out, bytes);
  return out;
}

Result<Description> open_description(const SignedDescription& s, const PeerId& expected_sender,
                                     const PeerId& receiver, Kind expected_kind) {
  if (!ed25519::verify(expected_sender.key, description_signing_input(s.bytes), s.signature))
    return bad(Errc::refused,
               fmt::format("the description is not signed by {}", expected_sender.to_string()));
  auto d = decode_description(s.bytes);
  if (!d) return d.error();
  if (d->sender != expected_sender)
    return bad(Errc::refused, "the description names another sender than its signer");
  if (d->receiver != receiver)
    return bad(Errc::refused,
               fmt::format("the description is for {}, not for us", d->receiver.to_string()));
  if (d->kind != expected_kind)
    return bad(Errc::refused, fmt::format("expected an {}, got an {}",
                                          expected_kind == Kind::offer ? "offer" : "answer",
                                          d->kind == Kind::offer ? "offer" : "answer"));
  return d;
}

std::vector<std::uint8_t> registration_signing_input(const PeerId& peer,
                                                     std::span<const std::uint8_t> challenge,
                                                     const Endpoint& observed) {
  std::vector<std::uint8_t> out;
  append_text(out, kRegistrationLabel);
  out.push_back(0);
  append(out, peer.key);
  out.push_back(static_cast<std::uint8_t>(std::min<std::size_t>(challenge.size(), 255)));
  append(out, challenge.first(std::min<std::size_t>(challenge.size(), 255)));
  append_endpoint(out, observed);
  return out;
}

bool verify_registration(const PeerId& peer, std::span<const std::uint8_t> challenge,
                         const Endpoint& observed, std::span<const std::uint8_t> signature) {
  if (challenge.size() < kChallengeMin || challenge.size() > kChallengeMax) return false;
  return ed25519::verify(peer.key, registration_signing_input(peer, challenge, observed),
                         signature);
}

std::optional<SignedDescription> Message::signed_description() const {
  if (!description || !signature) return std::nullopt;
  return SignedDescription{*description, *signature};
}

namespace {

const char* method_name(std::uint16_t m) {
  switch (m) {
    case method::register_peer: return "Register";
    case method::connect: return "Connect";
    case method::answer: return "Answer";
    default: return "?";
  }
}
const char* class_name(stun::MessageClass c) {
  switch (c) {
    case stun::MessageClass::request: return "request";
    case stun::MessageClass::indication: return "indication";
    case stun::MessageClass::success_response: return "success response";
    case stun::MessageClass::error_response: return "error response";
  }
  return "?";
}

// The attributes each method and class needs (docs/rendezvous.md), and the bounds of
// the values.
Status check_fields(const Message& m, Errc code) {
  std::string what = fmt::format("{} {}", method_name(m.method), class_name(m.message_class));
  auto missing = [&](const char* attribute) {
    return bad(code, fmt::format("{} without {}", what, attribute));
  };
  if (!is_rendezvous_method(m.method))
    return bad(code, fmt::format("method 0x{:03x} is not a rendezvous method", m.method));
  if (m.challenge && (m.challenge->size() < kChallengeMin || m.challenge->size() > kChallengeMax))
    return bad(code, fmt::format("CHALLENGE of {} bytes, not {}..{}", m.challenge->size(),
                                 kChallengeMin, kChallengeMax));
  if (m.signature && m.signature->size() != kSignatureLength)
    return bad(code,
               fmt::format("SIGNATURE of {} bytes, not {}", m.signature->size(), kSignatureLength));
  if (m.description && (m.description->empty() || m.description->size() > kMaxDescriptionSize))
    return bad(code, fmt::format("DESCRIPTION of {} bytes, not 1..{}", m.description->size(),
                                 kMaxDescriptionSize));
  using C = stun::MessageClass;
  if (m.message_class == C::error_response) {
    if (!m.error_code) return missing("ERROR-CODE");
    if (m.method == method::register_peer && m.error_code->code == kUnauthenticated) {
      if (!m.challenge) return missing("CHALLENGE");
      if (!m.xor_mapped_address) return missing("XOR-MAPPED-ADDRESS");
    }
    return ok_status();
  }
  if (m.message_class == C::success_response) {
    if (!m.xor_mapped_address) return missing("XOR-MAPPED-ADDRESS");
    if (m.method == method::register_peer && !m.lifetime) return missing("LIFETIME");
    return ok_status();
  }
  const bool request = m.message_class == C::request;
  if (m.method == method::register_peer) {
    if (!request) return bad(code, "a Register indication is not a rendezvous message");
    if (!m.peer_id) return missing("PEER-ID");
    if (m.challenge.has_value() != m.signature.has_value())
      return bad(code, "Register request with only one of CHALLENGE and SIGNATURE");
    return ok_status();
  }
  // Connect and Answer: requests to the server, indications from it.
  if (request && !m.target_peer_id) return missing("TARGET-PEER-ID");
  if (!m.description) return missing("DESCRIPTION");
  if (!m.signature) return missing("SIGNATURE");
  if (!request && m.method == method::connect && !m.xor_peer_address)
    return missing("XOR-PEER-ADDRESS");
  return ok_status();
}

// Comprehension-required attributes a rendezvous message may carry.
bool understood(std::uint16_t type) noexcept {
  switch (type) {
    case attr::peer_id:
    case attr::challenge:
    case attr::signature:
    case attr::target_peer_id:
    case attr::description:
    case stun::attr::xor_mapped_address:
    case stun::attr::xor_peer_address:
    case stun::attr::lifetime:
    case stun::attr::error_code:
    case stun::attr::unknown_attributes: return true;
    default: return false;
  }
}

}  // namespace

Result<Message> decode(std::span<const std::uint8_t> bytes) {
  constexpr Errc kWire = Errc::internal;
  auto decoded = stun::decode(bytes);
  if (!decoded) return decoded.error();
  const stun::Message& s = *decoded;
  if (!s.has_fingerprint) return bad(kWire, "rendezvous message without FINGERPRINT");
  if (!is_rendezvous_method(s.method))
    return bad(kWire, fmt::format("method 0x{:03x} is not a rendezvous method", s.method));
  Message m;
  m.method = s.method;
  m.message_class = s.message_class;
  m.transaction_id = s.transaction_id;
  std::vector<std::uint16_t> seen;
  for (const stun::Attribute& a : s.attributes) {
    const bool first = std::find(seen.begin(), seen.end(), a.type) == seen.end();
    if (!first) continue;  // the first occurrence counts (RFC 8489 s14)
    seen.push_back(a.type);
    const std::span<const std::uint8_t> v(a.value);
    switch (a.type) {
      case attr::peer_id:
      case attr::target_peer_id:
        if (v.size() != 32)
          return bad(kWire,
                     fmt::format("{} of {} bytes, not 32",
                                 a.type == attr::peer_id ? "PEER-ID" : "TARGET-PEER-ID", v.size()));
        (a.type == attr::peer_id ? m.peer_id : m.target_peer_id) = peer_from(v);
        break;
      case attr::challenge: m.challenge.emplace(v.begin(), v.end()); break;
      case attr::signature: m.signature.emplace(v.begin(), v.end()); break;
      case attr::description: m.description.emplace(v.begin(), v.end()); break;
      default:
        if (a.type < 0x8000 && !understood(a.type)) m.unknown_required.push_back(a.type);
        break;
    }
  }
  m.xor_mapped_address = s.xor_mapped_address;
  m.xor_peer_address = s.xor_peer_address;
  m.lifetime = s.lifetime;
  m.error_code = s.error_code;
  m.unknown_attributes = s.unknown_attributes;
  if (!m.unknown_required.empty()) {
    // s6.3.1: a request is answered with 420; s6.3.3, s6.3.4: anything else is dropped.
    if (m.message_class == stun::MessageClass::request) return m;
    return bad(kWire, fmt::format("{} {} with unknown comprehension-required attribute 0x{:04x}",
                                  method_name(m.method), class_name(m.message_class),
                                  m.unknown_required.front()));
  }
  if (auto st = check_fields(m, kWire); !st) return st.error();
  return m;
}

Result<std::vector<std::uint8_t>> encode(const Message& m) {
  if (auto st = check_fields(m, Errc::usage); !st) return st.error();
  stun::MessageWriter w(m.method, m.message_class, m.transaction_id);
  if (m.error_code) w.add_error_code(m.error_code->code, m.error_code->reason);
  if (!m.unknown_attributes.empty()) {
    std::vector<std::uint8_t> list;
    for (std::uint16_t t : m.unknown_attributes) append_u16(list, t);
    w.add(stun::attr::unknown_attributes, list);
  }
  if (m.peer_id) w.add(attr::peer_id, m.peer_id->key);
  if (m.target_peer_id) w.add(attr::target_peer_id, m.target_peer_id->key);
  if (m.challenge) w.add(attr::challenge, *m.challenge);
  if (m.xor_mapped_address)
    w.add_xor_address(stun::attr::xor_mapped_address, *m.xor_mapped_address);
  if (m.xor_peer_address) w.add_xor_address(stun::attr::xor_peer_address, *m.xor_peer_address);
  if (m.lifetime) w.add_u32(stun::attr::lifetime, *m.lifetime);
  if (m.description) w.add(attr::description, *m.description);
  if (m.signature) w.add(attr::signature, *m.signature);
  return w.finish(true);
}

}  // namespace porthole::detail::rendezvous
