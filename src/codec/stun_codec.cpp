// STUN (RFC 8489) wire codec. Every field is read and written at an explicit offset in
// network byte order, one byte at a time (no struct overlays, no htonl), like
// codec/pcp_codec; see the packet diagrams in stun_codec.hpp.
#include "codec/stun_codec.hpp"

#include <arpa/inet.h>

#include <algorithm>
#include <cstring>

#include <fmt/format.h>
#include "codec/byte_order.hpp"
#include "codec/hmac.hpp"

namespace porthole::detail::stun {
namespace {

constexpr std::size_t kOffType = 0;
constexpr std::size_t kOffLength = 2;
constexpr std::size_t kOffCookie = 4;
constexpr std::size_t kOffTransactionId = 8;
constexpr std::size_t kAttributeHeaderSize = 4;
constexpr std::size_t kFingerprintAttributeSize = 8;

constexpr std::uint8_t kFamilyIpv4 = 0x01;
constexpr std::uint8_t kFamilyIpv6 = 0x02;
constexpr std::size_t kAddressValueIpv4 = 8;
constexpr std::size_t kAddressValueIpv6 = 20;

constexpr std::uint8_t kChangeIpFlag = 0x04;    // RFC 5780 s7.2 "A"
constexpr std::uint8_t kChangePortFlag = 0x02;  // RFC 5780 s7.2 "B"

constexpr std::size_t kMessageIntegritySize = 20;        // HMAC-SHA1 (s14.5)
constexpr std::size_t kMessageIntegritySha256Size = 32;  // what we write (s14.6)
// Message Length is 16 bits: a message is at most 20 + 65535 bytes, less the last 3
// (the body is a multiple of 4).
constexpr std::size_t kMaxBodySize = 0xfffc;
// s14.14 / s14.8: fewer than 128 characters, at most 763 bytes. porthole writes ASCII,
// so 127 bytes.
constexpr std::size_t kMaxTextBytes = 127;

using Bytes = std::vector<std::uint8_t>;

Error drop(std::string why) { return make_error(Errc::internal, std::move(why)); }

// s5: the class bits C1 (bit 8) and C0 (bit 4) sit between the method bits.
std::uint16_t message_type(std::uint16_t method_bits, MessageClass message_class) {
  const auto c = static_cast<std::uint16_t>(message_class);
  return static_cast<std::uint16_t>((method_bits & 0x000f) | ((method_bits & 0x0070) << 1) |
                                    ((method_bits & 0x0f80) << 2) | ((c & 0x1) << 4) |
                                    ((c & 0x2) << 7));
}

std::uint16_t method_of(std::uint16_t type) {
  return static_cast<std::uint16_t>((type & 0x000f) | ((type & 0x00e0) >> 1) |
                                    ((type & 0x3e00) >> 2));
}

MessageClass class_of(std::uint16_t type) {
  return static_cast<MessageClass>(((type >> 4) & 0x1) | ((type >> 7) & 0x2));
}

const char* class_name(MessageClass c) {
  switch (c) {
    case MessageClass::request: return "request";
    case MessageClass::indication: return "indication";
    case MessageClass::success_response: return "success response";
    case MessageClass::error_response: return "error response";
  }
  return "?";
}

// Text from the network ends up in terminals and logs: keep printable ASCII only, so
// no escape sequence or control character can get through.
std::string sanitise(std::span<const std::uint8_t> text) {
  std::string s;
  s.reserve(text.size());
  for (std::uint8_t c : text) s.push_back(c >= 0x20 && c < 0x7f ? static_cast<char>(c) : '?');
  return s;
}

// Comprehension-required attributes (type < 0x8000) porthole understands. Credential
// attributes are understood in the sense of s9: a server or client that uses no
// credential mechanism steps over them. RESPONSE-ADDRESS (RFC 3489) and RESPONSE-PORT
// (RFC 5780) are deliberately not: honouring them would let anyone aim our answers at
// a third party, so a request carrying them gets a 420.
bool understood(std::uint16_t type) noexcept {
  switch (type) {
    case attr::mapped_address:
    case attr::change_request:
    case attr::source_address:
    case attr::changed_address:
    case attr::username:
    case attr::message_integrity:
    case attr::error_code:
    case attr::unknown_attributes:
    case attr::reflected_from:
    case attr::realm:
    case attr::nonce:
    case attr::message_integrity_sha256:
    case attr::password_algorithm:
    case attr::userhash:
    case attr::xor_mapped_address:
    case attr::padding: return true;
    default: return type >= 0x8000;
  }
}

// An address attribute's value (see the diagram in the header). `xored`: undo the XOR
// of XOR-MAPPED-ADDRESS with the magic cookie and (IPv6) the transaction ID.
Result<porthole::Endpoint> decode_ip_endpoint(std::uint16_t type,
                                              std::span<const std::uint8_t> value, bool xored,
                                              const TransactionId& id) {
  if (value.size() < 4)
    return drop(fmt::format("{} of {} bytes: too short for an address", attribute_name(type),
                            value.size()));
  const std::uint8_t family = value[1];
  std::uint16_t port = get_u16(value, 2);
  if (xored) port = static_cast<std::uint16_t>(port ^ (kMagicCookie >> 16));
  const std::size_t expected = family == kFamilyIpv4   ? kAddressValueIpv4
                               : family == kFamilyIpv6 ? kAddressValueIpv6
                                                       : 0;
  if (expected == 0)
    return drop(fmt::format("{}: unknown address family {}", attribute_name(type), family));
  if (value.size() != expected)
    return drop(fmt::format("{}: an {} address in {} bytes (should be {})", attribute_name(type),
                            family == kFamilyIpv4 ? "IPv4" : "IPv6", value.size(), expected));
  std::array<std::uint8_t, 16> a{};
  const std::size_t n = expected - 4;
  std::copy_n(value.begin() + 4, n, a.begin());
  // s14.2: xor with the cookie (IPv4), or with the 128-bit concatenation of the cookie
  // and the transaction ID (IPv6).
  if (xored)
    for (std::size_t i = 0; i < n; ++i)
      a[i] ^= i < 4 ? static_cast<std::uint8_t>((kMagicCookie >> (24 - 8 * i)) & 0xff) : id[i - 4];
  auto ip = porthole::IpAddress::from_bytes(std::span<const std::uint8_t>(a.data(), n));
  return porthole::Endpoint{*ip, port};
}

Bytes finished(MessageWriter& w, bool fingerprint) {
  // The Binding layer's messages are a few hundred bytes at most: finish() cannot fail.
  auto out = w.finish(fingerprint);
  return out ? std::move(*out) : Bytes{};
}

std::string_view clip(std::string_view s) { return s.substr(0, std::min(s.size(), kMaxTextBytes)); }

// The ICE (RFC 8445 s16.1) and TURN (RFC 8656 s18) attributes; the first occurrence
// counts, a malformed one is left out of the typed fields.
void read_extension(Message& m, std::uint16_t t, std::span<const std::uint8_t> value) {
  const std::size_t len = value.size();
  switch (t) {
    case attr::priority:
      if (len == 4 && !m.priority) m.priority = get_u32(value, 0);
      break;
    case attr::ice_controlling:
    case attr::ice_controlled: {
      auto& slot = t == attr::ice_controlling ? m.ice_controlling : m.ice_controlled;
      if (len == 8 && !slot) slot = (std::uint64_t{get_u32(value, 0)} << 32) | get_u32(value, 4);
      break;
    }
    case attr::use_candidate:
      if (len == 0) m.use_candidate = true;
      break;
    case attr::channel_number:
      if (len == 4 && !m.channel_number) m.channel_number = get_u16(value, 0);
      break;
    case attr::lifetime:
      if (len == 4 && !m.lifetime) m.lifetime = get_u32(value, 0);
      break;
    case attr::requested_transport:
      if (len == 4 && !m.requested_transport) m.requested_transport = value[0];
      break;
    case attr::data:
      if (!m.data) m.data = Bytes(value.begin(), value.end());
      break;
    case attr::xor_peer_address:
    case attr::xor_relayed_address: {
      auto& slot = t == attr::xor_peer_address ? m.xor_peer_address : m.xor_relayed_address;
      if (slot) break;
      if (auto e = decode_ip_endpoint(t, value, true, m.transaction_id)) slot = *e;
      break;
    }
    default: break;
  }
}

// OpaqueString (RFC 8265 s4.2) for printable ASCII: width mapping, case and
// normalisation leave it alone, and its only ASCII exclusions are the controls.
Result<std::string> opaque_string_ascii(std::string_view password) {
  if (password.empty()) return make_error(Errc::usage, "the STUN password is empty");
  for (char c : password) {
    const auto b = static_cast<unsigned char>(c);
    if (b >= 0x80)
      return make_error(Errc::usage,
                        "the STUN password is not ASCII: porthole prepares only "
                        "ASCII passwords (OpaqueString, RFC 8265)");
    if (b < 0x20 || b == 0x7f)
      return make_error(Errc::usage, "the STUN password contains a control character");
  }
  return std::string(password);
}

std::span<const std::uint8_t> as_bytes(std::string_view s) {
  return std::span(reinterpret_cast<const std::uint8_t*>(s.data()), s.size());
}

// The bytes an HMAC covers (s14.5, s14.6): the message up to the attribute at `offset`,
// with Message Length counting up to the end of that attribute (`value_size` bytes).
Bytes integrity_input(std::span<const std::uint8_t> message, std::size_t offset,
                      std::size_t value_size) {
  Bytes in(message.begin(), message.begin() + static_cast<std::ptrdiff_t>(offset));
  put_u16(in, kOffLength,
          static_cast<std::uint16_t>(offset - kHeaderSize + kAttributeHeaderSize + value_size));
  return in;
}

}  // namespace

bool understood_by_binding(std::uint16_t type) noexcept { return understood(type); }

std::vector<std::uint16_t> Message::unknown_required_except(
    std::span<const std::uint16_t> extra_understood) const {
  std::vector<std::uint16_t> out;
  for (const Attribute& a : attributes) {
    if (understood(a.type)) continue;
    if (std::find(extra_understood.begin(), extra_understood.end(), a.type) !=
        extra_understood.end())
      continue;
    if (std::find(out.begin(), out.end(), a.type) == out.end()) out.push_back(a.type);
  }
  return out;
}

Result<IntegrityKey> IntegrityKey::short_term(std::string_view password) {
  auto prepared = opaque_string_ascii(password);
  if (!prepared) return prepared.error();
  return IntegrityKey{Bytes(prepared->begin(), prepared->end())};
}

Result<IntegrityKey> IntegrityKey::long_term(std::string_view username, std::string_view realm,
                                             std::string_view password,
                                             PasswordAlgorithm algorithm) {
  auto prepared = opaque_string_ascii(password);
  if (!prepared) return prepared.error();
  const std::string input = fmt::format("{}:{}:{}", username, realm, *prepared);
  if (algorithm == PasswordAlgorithm::sha256) {
    const auto d = sha256(as_bytes(input));
    return IntegrityKey{Bytes(d.begin(), d.end())};
  }
  const auto d = md5(as_bytes(input));
  return IntegrityKey{Bytes(d.begin(), d.end())};
}

Result<IntegrityAlgorithm> check_integrity(std::span<const std::uint8_t> bytes,
                                           const Message& message, const IntegrityKey& key) {
  const Attribute* sha1 = nullptr;
  const Attribute* sha256_attr = nullptr;
  for (const Attribute& a : message.attributes) {
    if (a.type == attr::message_integrity && !sha1 && !sha256_attr) sha1 = &a;
    if (a.type == attr::message_integrity_sha256 && !sha256_attr) sha256_attr = &a;
  }
  // decode() checked sizes and offsets; a Message that does not belong to `bytes` is
  // refused rather than read out of bounds.
  auto fits = [&](const Attribute* a) {
    return a->offset + kAttributeHeaderSize + a->value.size() <= bytes.size() &&
           a->offset >= kHeaderSize;
  };
  if (sha256_attr) {
    if (!fits(sha256_attr)) return drop("MESSAGE-INTEGRITY-SHA256 is not inside the message");
    const auto mac = hmac_sha256(key.bytes, integrity_input(bytes, sha256_attr->offset,
                                                            sha256_attr->value.size()));
    // s14.6: a truncated HMAC (16 to 32 bytes) is compared on its own length.
    if (sha256_attr->value.size() > mac.size() ||
        !equal_secret(std::span(mac).first(sha256_attr->value.size()), sha256_attr->value))
      return make_error(Errc::refused, "MESSAGE-INTEGRITY-SHA256 does not match the credentials");
    return IntegrityAlgorithm::hmac_sha256;
  }
  if (sha1) {
    if (!fits(sha1)) return drop("MESSAGE-INTEGRITY is not inside the message");
    const auto mac = hmac_sha1(key.bytes, integrity_input(bytes, sha1->offset, sha1->value.size()));
    if (!equal_secret(mac, sha1->value))
      return make_error(Errc::refused, "MESSAGE-INTEGRITY does not match the credentials");
    return IntegrityAlgorithm::hmac_sha1;
  }
  return drop("no MESSAGE-INTEGRITY or MESSAGE-INTEGRITY-SHA256 to check");
}

Result<std::vector<std::uint8_t>> covered_by(std::span<const std::uint8_t> bytes,
                                             const Attribute& attribute) {
  if (attribute.offset < kHeaderSize || bytes.size() < kHeaderSize ||
      attribute.offset + kAttributeHeaderSize + attribute.value.size() > bytes.size())
    return drop("the attribute is not inside the message");
  return integrity_input(bytes, attribute.offset, attribute.value.size());
}

MessageWriter::MessageWriter(std::uint16_t method, MessageClass message_class,
                             const TransactionId& id)
    : id_(id) {
  if (method > 0x0fff && !error_)
    error_ = make_error(Errc::usage, fmt::format("STUN method 0x{:x} is not 12 bits", method));
  append_u16(out_, message_type(method, message_class));
  append_u16(out_, 0);  // Message Length: set as attributes are added
  append_u32(out_, kMagicCookie);
  out_.insert(out_.end(), id.begin(), id.end());
}

void MessageWriter::set_length(std::size_t body) {
  put_u16(out_, kOffLength, static_cast<std::uint16_t>(body));
}

void MessageWriter::add(std::uint16_t type, std::span<const std::uint8_t> value) {
  if (error_) return;
  const std::size_t padded = (value.size() + 3) & ~std::size_t{3};
  if (out_.size() - kHeaderSize + kAttributeHeaderSize + padded > kMaxBodySize) {
    error_ = make_error(Errc::usage, fmt::format("{} of {} bytes does not fit in a STUN message",
                                                 attribute_name(type), value.size()));
    return;
  }
  append_u16(out_, type);
  append_u16(out_, static_cast<std::uint16_t>(value.size()));
  out_.insert(out_.end(), value.begin(), value.end());
  while (out_.size() % 4 != 0) out_.push_back(padding_);  // s14: any value
  set_length(out_.size() - kHeaderSize);
}

void MessageWriter::add_text(std::uint16_t type, std::string_view text) {
  add(type, as_bytes(text));
}

void MessageWriter::add_u32(std::uint16_t type, std::uint32_t value) {
  Bytes v;
  append_u32(v, value);
  add(type, v);
}

void MessageWriter::add_u64(std::uint16_t type, std::uint64_t value) {
  Bytes v;
  append_u32(v, static_cast<std::uint32_t>(value >> 32));
  append_u32(v, static_cast<std::uint32_t>(value & 0xffffffffu));
  add(type, v);
}

void MessageWriter::add_address(std::uint16_t type, const porthole::Endpoint& endpoint) {
  Bytes value = {0, endpoint.ip.is_v4() ? kFamilyIpv4 : kFamilyIpv6};
  append_u16(value, endpoint.port);
  const auto ip = endpoint.ip.bytes();
  value.insert(value.end(), ip.begin(), ip.end());
  add(type, value);
}

void MessageWriter::add_xor_address(std::uint16_t type, const porthole::Endpoint& endpoint) {
  Bytes value = {0, endpoint.ip.is_v4() ? kFamilyIpv4 : kFamilyIpv6};
  append_u16(value, static_cast<std::uint16_t>(endpoint.port ^ (kMagicCookie >> 16)));
  const auto ip = endpoint.ip.bytes();
  for (std::size_t i = 0; i < ip.size(); ++i)
    value.push_back(static_cast<std::uint8_t>(
        ip[i] ^
        (i < 4 ? static_cast<std::uint8_t>((kMagicCookie >> (24 - 8 * i)) & 0xff) : id_[i - 4])));
  add(type, value);
}

void MessageWriter::add_error_code(int code, std::string_view reason) {
  if (code < 300 || code > 699) {
    if (!error_)
      error_ = make_error(Errc::usage, fmt::format("STUN error code {} is not 300..699", code));
    return;
  }
  Bytes value = {0, 0, static_cast<std::uint8_t>(code / 100),
                 static_cast<std::uint8_t>(code % 100)};
  value.insert(value.end(), reason.begin(), reason.end());
  add(attr::error_code, value);
}

void MessageWriter::add_requested_transport(std::uint8_t protocol) {
  const std::array<std::uint8_t, 4> value = {protocol, 0, 0, 0};
  add(attr::requested_transport, value);
}

void MessageWriter::add_channel_number(std::uint16_t channel) {
  const std::array<std::uint8_t, 4> value = {static_cast<std::uint8_t>(channel >> 8),
                                             static_cast<std::uint8_t>(channel & 0xff), 0, 0};
  add(attr::channel_number, value);
}

std::vector<std::uint8_t> MessageWriter::covered_by_next(std::size_t value_size) const {
  if (error_) return {};
  return integrity_input(out_, out_.size(), value_size);
}

void MessageWriter::add_message_integrity(const IntegrityKey& key) {
  if (error_) return;
  const std::size_t at = out_.size();
  const auto mac = hmac_sha1(key.bytes, integrity_input(out_, at, kMessageIntegritySize));
  add(attr::message_integrity, mac);
}

void MessageWriter::add_message_integrity_sha256(const IntegrityKey& key) {
  if (error_) return;
  const std::size_t at = out_.size();
  const auto mac = hmac_sha256(key.bytes, integrity_input(out_, at, kMessageIntegritySha256Size));
  add(attr::message_integrity_sha256, mac);
}

// s14.7: FINGERPRINT last, computed with Message Length already counting it.
Result<std::vector<std::uint8_t>> MessageWriter::finish(bool fingerprint) {
  if (error_) return *error_;
  if (fingerprint) {
    if (out_.size() - kHeaderSize + kFingerprintAttributeSize > kMaxBodySize)
      return make_error(Errc::usage, "no room for FINGERPRINT in the STUN message");
    set_length(out_.size() - kHeaderSize + kFingerprintAttributeSize);
    const std::uint32_t crc = crc32(out_) ^ kFingerprintXor;
    append_u16(out_, attr::fingerprint);
    append_u16(out_, 4);
    append_u32(out_, crc);
  }
  return std::move(out_);
}

std::string attribute_name(std::uint16_t type) {
  switch (type) {
    case attr::mapped_address: return "MAPPED-ADDRESS";
    case attr::response_address: return "RESPONSE-ADDRESS";
    case attr::change_request: return "CHANGE-REQUEST";
    case attr::source_address: return "SOURCE-ADDRESS";
    case attr::changed_address: return "CHANGED-ADDRESS";
    case attr::username: return "USERNAME";
    case attr::message_integrity: return "MESSAGE-INTEGRITY";
    case attr::error_code: return "ERROR-CODE";
    case attr::unknown_attributes: return "UNKNOWN-ATTRIBUTES";
    case attr::reflected_from: return "REFLECTED-FROM";
    case attr::channel_number: return "CHANNEL-NUMBER";
    case attr::lifetime: return "LIFETIME";
    case attr::xor_peer_address: return "XOR-PEER-ADDRESS";
    case attr::data: return "DATA";
    case attr::xor_relayed_address: return "XOR-RELAYED-ADDRESS";
    case attr::requested_transport: return "REQUESTED-TRANSPORT";
    case attr::priority: return "PRIORITY";
    case attr::use_candidate: return "USE-CANDIDATE";
    case attr::ice_controlled: return "ICE-CONTROLLED";
    case attr::ice_controlling: return "ICE-CONTROLLING";
    case attr::realm: return "REALM";
    case attr::nonce: return "NONCE";
    case attr::message_integrity_sha256: return "MESSAGE-INTEGRITY-SHA256";
    case attr::password_algorithm: return "PASSWORD-ALGORITHM";
    case attr::userhash: return "USERHASH";
    case attr::xor_mapped_address: return "XOR-MAPPED-ADDRESS";
    case attr::padding: return "PADDING";
    case attr::response_port: return "RESPONSE-PORT";
    case attr::software: return "SOFTWARE";
    case attr::alternate_server: return "ALTERNATE-SERVER";
    case attr::fingerprint: return "FINGERPRINT";
    case attr::response_origin: return "RESPONSE-ORIGIN";
    case attr::other_address: return "OTHER-ADDRESS";
    default: return fmt::format("0x{:04x}", type);
  }
}

const Endpoint* Message::mapped() const noexcept {
  if (xor_mapped_address) return &*xor_mapped_address;
  if (mapped_address) return &*mapped_address;
  return nullptr;
}

const Endpoint* Message::origin() const noexcept {
  if (response_origin) return &*response_origin;
  if (source_address) return &*source_address;
  return nullptr;
}

const Endpoint* Message::other() const noexcept {
  if (other_address) return &*other_address;
  if (changed_address) return &*changed_address;
  return nullptr;
}

// --- decoding ---

Result<Message> decode(std::span<const std::uint8_t> bytes) {
  const std::size_t size = bytes.size();
  if (size < kHeaderSize)
    return drop(fmt::format("{} bytes: shorter than the {}-byte STUN header", size, kHeaderSize));
  // s6.3: "the most significant 2 bits of every STUN message MUST be zeroes".
  if ((bytes[0] & 0xc0) != 0)
    return drop(
        fmt::format("first byte 0x{:02x}: the top two bits of a STUN message are 0", bytes[0]));
  const std::uint32_t cookie = get_u32(bytes, kOffCookie);
  if (cookie != kMagicCookie)
    return drop(fmt::format("magic cookie 0x{:08x}, not 0x{:08x}", cookie, kMagicCookie));
  const std::size_t length = get_u16(bytes, kOffLength);
  if (length % 4 != 0) return drop(fmt::format("Message Length {} is not a multiple of 4", length));
  if (length != size - kHeaderSize)
    return drop(fmt::format("Message Length {} but {} bytes follow the header", length,
                            size - kHeaderSize));

  Message m;
  const std::uint16_t type = get_u16(bytes, kOffType);
  m.message_class = class_of(type);
  m.method = method_of(type);
  std::copy_n(bytes.begin() + kOffTransactionId, m.transaction_id.size(), m.transaction_id.begin());

  bool after_integrity = false;  // s14.5: what follows MESSAGE-INTEGRITY is ignored
  std::size_t off = kHeaderSize;
  while (off < size) {
    if (size - off < kAttributeHeaderSize)
      return drop(fmt::format("truncated attribute header at offset {}", off));
    const std::uint16_t t = get_u16(bytes, off);
    const std::size_t len = get_u16(bytes, off + 2);
    const std::size_t padded = (len + 3) & ~std::size_t{3};
    const std::size_t value_off = off + kAttributeHeaderSize;
    if (padded > size - value_off)
      return drop(fmt::format("{} at offset {} claims {} bytes (padded {}), only {} left",
                              attribute_name(t), off, len, padded, size - value_off));
    const auto value = bytes.subspan(value_off, len);
    const std::size_t next = value_off + padded;
    m.attributes.push_back(Attribute{t, Bytes(value.begin(), value.end()), off});

    if (t == attr::fingerprint) {
      if (len != 4) return drop(fmt::format("FINGERPRINT of {} bytes (should be 4)", len));
      if (next != size)
        return drop(fmt::format("FINGERPRINT at offset {} is not the last attribute", off));
      const std::uint32_t expected = crc32(bytes.first(off)) ^ kFingerprintXor;
      const std::uint32_t got = get_u32(value, 0);
      if (got != expected)
        return drop(fmt::format("FINGERPRINT 0x{:08x} does not match the message (0x{:08x})", got,
                                expected));
      m.has_fingerprint = true;
      off = next;
      continue;
    }
    if (after_integrity && t != attr::message_integrity_sha256) {
      off = next;
      continue;
    }

    switch (t) {
      case attr::xor_mapped_address:
      case attr::mapped_address:
      case attr::response_origin:
      case attr::other_address:
      case attr::source_address:
      case attr::changed_address: {
        auto a = decode_ip_endpoint(t, value, t == attr::xor_mapped_address, m.transaction_id);
        if (!a) return a.error();
        std::optional<Endpoint>* slot = t == attr::xor_mapped_address ? &m.xor_mapped_address
                                        : t == attr::mapped_address   ? &m.mapped_address
                                        : t == attr::response_origin  ? &m.response_origin
                                        : t == attr::other_address    ? &m.other_address
                                        : t == attr::source_address   ? &m.source_address
                                                                      : &m.changed_address;
        if (!*slot) *slot = *a;  // s14: the first occurrence counts
        break;
      }
      case attr::change_request: {
        if (len != 4) return drop(fmt::format("CHANGE-REQUEST of {} bytes (should be 4)", len));
        if (!m.change_request)
          m.change_request = ChangeRequest{(value[3] & kChangeIpFlag) != 0,
                                           (value[3] & kChangePortFlag) != 0};
        break;
      }
      case attr::error_code: {
        if (len < 4) return drop(fmt::format("ERROR-CODE of {} bytes (at least 4)", len));
        const int error_class = value[2] & 0x07;
        const int number = value[3];
        if (error_class < 3 || error_class > 6 || number > 99)
          return drop(fmt::format("ERROR-CODE class {} number {}: not a code 300..699", error_class,
                                  number));
        if (!m.error_code)
          m.error_code = ErrorCode{error_class * 100 + number, sanitise(value.subspan(4))};
        break;
      }
      case attr::unknown_attributes: {
        if (len % 2 != 0)
          return drop(fmt::format("UNKNOWN-ATTRIBUTES of {} bytes (a list of 16-bit types)", len));
        if (m.unknown_attributes.empty())
          for (std::size_t i = 0; i < len; i += 2)
            m.unknown_attributes.push_back(get_u16(value, i));
        break;
      }
      case attr::software:
        if (!m.software) m.software = sanitise(value);
        break;
      case attr::username:
        if (!m.username) m.username = std::string(value.begin(), value.end());
        break;
      case attr::realm:
        if (!m.realm) m.realm = std::string(value.begin(), value.end());
        break;
      case attr::nonce:
        if (!m.nonce) m.nonce = std::string(value.begin(), value.end());
        break;
      default:
        // ICE and TURN: typed when well-formed; whether the message is acted on is
        // decided by unknown_required, as before these were read.
        read_extension(m, t, value);
        if (!understood(t) && std::find(m.unknown_required.begin(), m.unknown_required.end(), t) ==
                                  m.unknown_required.end())
          m.unknown_required.push_back(t);
        break;
      case attr::message_integrity:
        if (len != kMessageIntegritySize)
          return drop(fmt::format("MESSAGE-INTEGRITY of {} bytes (should be {})", len,
                                  kMessageIntegritySize));
        m.has_message_integrity = true;
        after_integrity = true;
        break;
      case attr::message_integrity_sha256:
        // s14.6: 16 to 32 bytes, a multiple of 4.
        if (len < 16 || len > 32 || len % 4 != 0)
          return drop(fmt::format("MESSAGE-INTEGRITY-SHA256 of {} bytes", len));
        m.has_message_integrity = true;
        after_integrity = true;
        break;
    }
    off = next;
  }
  return m;
}

// --- encoding ---

std::vector<std::uint8_t> encode_binding_request(const BindingRequest& request) {
  MessageWriter w(method::binding, MessageClass::request, request.transaction_id);
  if (!request.software.empty()) w.add_text(attr::software, clip(request.software));
  if (request.change_request) {
    std::uint8_t flags = 0;
    if (request.change_request->change_ip) flags |= kChangeIpFlag;
    if (request.change_request->change_port) flags |= kChangePortFlag;
    const std::array<std::uint8_t, 4> value = {0, 0, 0, flags};
    w.add(attr::change_request, value);
  }
  return finished(w, request.fingerprint);
}

Result<std::vector<std::uint8_t>> encode_binding_success(const BindingSuccess& response) {
  if (response.software.size() > kMaxTextBytes)
    return make_error(Errc::usage, fmt::format("SOFTWARE longer than {} bytes", kMaxTextBytes));
  MessageWriter w(method::binding, MessageClass::success_response, response.transaction_id);
  w.add_xor_address(attr::xor_mapped_address, response.mapped);
  if (response.include_mapped_address) w.add_address(attr::mapped_address, response.mapped);
  if (response.response_origin) w.add_address(attr::response_origin, *response.response_origin);
  if (response.other_address) w.add_address(attr::other_address, *response.other_address);
  if (!response.software.empty()) w.add_text(attr::software, response.software);
  return w.finish(response.fingerprint);
}

Result<std::vector<std::uint8_t>> encode_binding_error(const BindingError& response) {
  if (response.code < 300 || response.code > 699)
    return make_error(Errc::usage,
                      fmt::format("STUN error code {} is not 300..699", response.code));
  if (response.reason.size() > kMaxTextBytes || response.software.size() > kMaxTextBytes)
    return make_error(Errc::usage,
                      fmt::format("reason or SOFTWARE longer than {} bytes", kMaxTextBytes));
  if (response.unknown_attributes.size() > 0x7fff)
    return make_error(Errc::usage, "too many unknown attributes");
  MessageWriter w(method::binding, MessageClass::error_response, response.transaction_id);
  w.add_error_code(response.code, response.reason);
  if (!response.unknown_attributes.empty()) {
    Bytes list;
    for (std::uint16_t t : response.unknown_attributes) append_u16(list, t);
    w.add(attr::unknown_attributes, list);
  }
  if (!response.software.empty()) w.add_text(attr::software, response.software);
  return w.finish(response.fingerprint);
}

Result<ClassicRequest> decode_rfc3489(std::span<const std::uint8_t> bytes) {
  if (bytes.size() < kHeaderSize)
    return drop(
        fmt::format("{} bytes: shorter than the {}-byte STUN header", bytes.size(), kHeaderSize));
  if (get_u32(bytes, kOffCookie) == kMagicCookie)
    return drop("the magic cookie is there: an RFC 8489 message, not an RFC 3489 one");
  // The rest is checked by decode() on a copy that carries the cookie; the first four
  // bytes of the 128-bit ID are put back afterwards. (RFC 3489 has no FINGERPRINT, so
  // nothing is computed over the changed bytes.)
  Bytes copy(bytes.begin(), bytes.end());
  put_u32(copy, kOffCookie, kMagicCookie);
  auto m = decode(copy);
  if (!m) return m.error();
  // FINGERPRINT came with RFC 5389: one that checks out over the magic cookie belongs
  // to a modern message whose cookie got damaged, not to an RFC 3489 client.
  if (m->has_fingerprint) return drop("an RFC 3489 message with a FINGERPRINT");
  ClassicRequest out;
  std::copy_n(bytes.begin() + kOffCookie, out.transaction_id.size(), out.transaction_id.begin());
  out.message = std::move(*m);
  return out;
}

Result<std::vector<std::uint8_t>> encode_rfc3489_binding_success(
    const ClassicBindingSuccess& response) {
  TransactionId tail{};
  std::copy_n(response.transaction_id.begin() + 4, tail.size(), tail.begin());
  MessageWriter w(method::binding, MessageClass::success_response, tail);
  w.add_address(attr::mapped_address, response.mapped);
  if (response.source_address) w.add_address(attr::source_address, *response.source_address);
  if (response.changed_address) w.add_address(attr::changed_address, *response.changed_address);
  Bytes out = finished(w, false);
  std::copy_n(response.transaction_id.begin(), 4, out.begin() + kOffCookie);
  return out;
}

const char* error_reason(int code) noexcept {
  switch (code) {
    case 300: return "Try Alternate";
    case 400: return "Bad Request";
    case 401: return "Unauthenticated";
    case 420: return "Unknown Attribute";
    case 438: return "Stale Nonce";
    case 500: return "Server Error";
    default: return "";
  }
}

// --- descriptions ---

std::string transaction_hex(const TransactionId& id) {
  std::string s;
  for (std::uint8_t b : id) s += fmt::format("{:02x}", b);
  return s;
}

std::string describe(const Message& m) {
  std::string s = m.method == method::binding ? "Binding"
                                              : fmt::format("method 0x{:03x}", m.method);
  s += fmt::format(" {} txid {}", class_name(m.message_class), transaction_hex(m.transaction_id));
  auto add = [&s](const char* name, const std::optional<Endpoint>& e) {
    if (e) s += fmt::format(" {} {}", name, e->to_string());
  };
  add("XOR-MAPPED-ADDRESS", m.xor_mapped_address);
  add("MAPPED-ADDRESS", m.mapped_address);
  add("RESPONSE-ORIGIN", m.response_origin);
  add("OTHER-ADDRESS", m.other_address);
  add("SOURCE-ADDRESS", m.source_address);
  add("CHANGED-ADDRESS", m.changed_address);
  if (m.change_request)
    s += fmt::format(" CHANGE-REQUEST{}{}", m.change_request->change_ip ? " ip" : "",
                     m.change_request->change_port ? " port" : "");
  if (m.error_code)
    s += fmt::format(" ERROR-CODE {} \"{}\"", m.error_code->code, m.error_code->reason);
  if (!m.unknown_attributes.empty()) {
    s += " UNKNOWN-ATTRIBUTES";
    for (std::uint16_t t : m.unknown_attributes) s += " " + attribute_name(t);
  }
  if (m.software) s += fmt::format(" SOFTWARE \"{}\"", *m.software);
  auto add_text = [&s](const char* name, const std::optional<std::string>& text) {
    if (text) s += fmt::format(" {} \"{}\"", name, sanitise(as_bytes(*text)));
  };
  add_text("USERNAME", m.username);
  add_text("REALM", m.realm);
  add_text("NONCE", m.nonce);
  if (m.priority) s += fmt::format(" PRIORITY {}", *m.priority);
  if (m.ice_controlling) s += fmt::format(" ICE-CONTROLLING {:016x}", *m.ice_controlling);
  if (m.ice_controlled) s += fmt::format(" ICE-CONTROLLED {:016x}", *m.ice_controlled);
  if (m.use_candidate) s += " USE-CANDIDATE";
  if (m.lifetime) s += fmt::format(" LIFETIME {}", *m.lifetime);
  if (m.xor_relayed_address) s += " XOR-RELAYED-ADDRESS " + m.xor_relayed_address->to_string();
  if (m.xor_peer_address) s += " XOR-PEER-ADDRESS " + m.xor_peer_address->to_string();
  if (m.requested_transport) s += fmt::format(" REQUESTED-TRANSPORT {}", *m.requested_transport);
  if (m.channel_number) s += fmt::format(" CHANNEL-NUMBER 0x{:04x}", *m.channel_number);
  if (m.data) s += fmt::format(" DATA ({} bytes)", m.data->size());
  for (std::uint16_t t : m.unknown_required) s += fmt::format(" (unknown {})", attribute_name(t));
  if (m.has_message_integrity) s += " MESSAGE-INTEGRITY (not checked)";
  if (m.has_fingerprint) s += " FINGERPRINT";
  return s;
}

}  // namespace porthole::detail::stun
