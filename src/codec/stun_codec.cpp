// STUN (RFC 8489) wire codec. Every field is read and written at an explicit offset in
// network byte order, one byte at a time (no struct overlays, no htonl), like
// codec/pcp_codec; see the packet diagrams in stun_codec.hpp.
#include "codec/stun_codec.hpp"

#include <arpa/inet.h>

#include <algorithm>
#include <cstring>

#include <fmt/format.h>
#include "codec/byte_order.hpp"

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

constexpr std::size_t kMessageIntegritySize = 20;  // HMAC-SHA1 (s14.5)
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
bool understood(std::uint16_t type) {
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
    case attr::padding:
      return true;
    default:
      return type >= 0x8000;
  }
}

// An address attribute's value (see the diagram in the header). `xored`: undo the XOR
// of XOR-MAPPED-ADDRESS with the magic cookie and (IPv6) the transaction ID.
Result<Endpoint> decode_address(std::uint16_t type, std::span<const std::uint8_t> value,
                                bool xored, const TransactionId& id) {
  if (value.size() < 4)
    return drop(fmt::format("{} of {} bytes: too short for an address", attribute_name(type),
                            value.size()));
  const std::uint8_t family = value[1];
  std::uint16_t port = get_u16(value, 2);
  if (xored) port = static_cast<std::uint16_t>(port ^ (kMagicCookie >> 16));
  if (family == kFamilyIpv4) {
    if (value.size() != kAddressValueIpv4)
      return drop(fmt::format("{}: an IPv4 address in {} bytes (should be {})",
                              attribute_name(type), value.size(), kAddressValueIpv4));
    std::uint32_t a = get_u32(value, 4);
    if (xored) a ^= kMagicCookie;
    return Endpoint{fmt::format("{}.{}.{}.{}", a >> 24, (a >> 16) & 0xff, (a >> 8) & 0xff,
                                a & 0xff),
                    port};
  }
  if (family == kFamilyIpv6) {
    if (value.size() != kAddressValueIpv6)
      return drop(fmt::format("{}: an IPv6 address in {} bytes (should be {})",
                              attribute_name(type), value.size(), kAddressValueIpv6));
    std::array<std::uint8_t, 16> a{};
    std::copy_n(value.begin() + 4, 16, a.begin());
    if (xored) {
      // s14.2: xor with the 128-bit concatenation of the cookie and the transaction ID.
      std::array<std::uint8_t, 16> key{};
      key[0] = static_cast<std::uint8_t>(kMagicCookie >> 24);
      key[1] = static_cast<std::uint8_t>((kMagicCookie >> 16) & 0xff);
      key[2] = static_cast<std::uint8_t>((kMagicCookie >> 8) & 0xff);
      key[3] = static_cast<std::uint8_t>(kMagicCookie & 0xff);
      std::copy(id.begin(), id.end(), key.begin() + 4);
      for (std::size_t i = 0; i < a.size(); ++i) a[i] ^= key[i];
    }
    char text[INET6_ADDRSTRLEN] = {};
    if (::inet_ntop(AF_INET6, a.data(), text, sizeof(text)) == nullptr)
      return drop(fmt::format("{}: unprintable IPv6 address", attribute_name(type)));
    return Endpoint{text, port};
  }
  return drop(fmt::format("{}: unknown address family {}", attribute_name(type), family));
}

// --- encoding ---

struct ParsedIp {
  std::uint8_t family = kFamilyIpv4;
  std::array<std::uint8_t, 16> bytes{};  // the first 4 for IPv4
};

Result<ParsedIp> parse_ip(std::string_view text) {
  char buf[INET6_ADDRSTRLEN] = {};
  if (text.empty() || text.size() >= sizeof(buf))
    return make_error(Errc::usage, fmt::format("'{}' is not an IP address", text));
  std::memcpy(buf, text.data(), text.size());
  ParsedIp ip;
  if (::inet_pton(AF_INET, buf, ip.bytes.data()) == 1) return ip;
  if (::inet_pton(AF_INET6, buf, ip.bytes.data()) == 1) {
    ip.family = kFamilyIpv6;
    return ip;
  }
  return make_error(Errc::usage, fmt::format("'{}' is not an IP address", text));
}

// Builds a message: header first, attributes appended, Message Length set at the end.
class Writer {
 public:
  Writer(MessageClass message_class, std::uint16_t method_bits, const TransactionId& id)
      : id_(id) {
    append_u16(out_, message_type(method_bits, message_class));
    append_u16(out_, 0);  // Message Length: set by finish()
    append_u32(out_, kMagicCookie);
    out_.insert(out_.end(), id.begin(), id.end());
  }

  void attribute(std::uint16_t type, std::span<const std::uint8_t> value) {
    append_u16(out_, type);
    append_u16(out_, static_cast<std::uint16_t>(value.size()));
    out_.insert(out_.end(), value.begin(), value.end());
    while (out_.size() % 4 != 0) out_.push_back(0);  // s14: padding (we send zeros)
  }

  void text(std::uint16_t type, std::string_view s) {
    attribute(type, std::span(reinterpret_cast<const std::uint8_t*>(s.data()), s.size()));
  }

  Status address(std::uint16_t type, const Endpoint& endpoint, bool xored) {
    auto ip = parse_ip(endpoint.ip);
    if (!ip) return make_error(Errc::usage, attribute_name(type) + ": " + ip.error().message);
    Bytes value;
    value.push_back(0);
    value.push_back(ip->family);
    std::uint16_t port = endpoint.port;
    if (xored) port = static_cast<std::uint16_t>(port ^ (kMagicCookie >> 16));
    append_u16(value, port);
    const std::size_t n = ip->family == kFamilyIpv4 ? 4 : 16;
    for (std::size_t i = 0; i < n; ++i) {
      std::uint8_t b = ip->bytes[i];
      if (xored) b ^= i < 4 ? static_cast<std::uint8_t>((kMagicCookie >> (24 - 8 * i)) & 0xff)
                            : id_[i - 4];
      value.push_back(b);
    }
    attribute(type, value);
    return ok_status();
  }

  // s14.7: FINGERPRINT last, computed with Message Length already counting it.
  Bytes finish(bool fingerprint) {
    const std::size_t body =
        out_.size() - kHeaderSize + (fingerprint ? kFingerprintAttributeSize : 0);
    put_u16(out_, kOffLength, static_cast<std::uint16_t>(body));
    if (fingerprint) {
      const std::uint32_t crc = crc32(out_) ^ kFingerprintXor;
      append_u16(out_, attr::fingerprint);
      append_u16(out_, 4);
      append_u32(out_, crc);
    }
    return std::move(out_);
  }

 private:
  TransactionId id_;
  Bytes out_;
};

std::string_view clip(std::string_view s) { return s.substr(0, std::min(s.size(), kMaxTextBytes)); }

// The CRC table, computed at compile time from the reflected polynomial.
constexpr std::array<std::uint32_t, 256> make_crc_table() {
  std::array<std::uint32_t, 256> table{};
  for (std::uint32_t n = 0; n < 256; ++n) {
    std::uint32_t c = n;
    for (int k = 0; k < 8; ++k) c = (c & 1) ? 0xEDB88320u ^ (c >> 1) : c >> 1;
    table[n] = c;
  }
  return table;
}
constexpr std::array<std::uint32_t, 256> kCrcTable = make_crc_table();

}  // namespace

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

std::string to_string(const Endpoint& endpoint) {
  if (endpoint.ip.find(':') != std::string::npos)
    return fmt::format("[{}]:{}", endpoint.ip, endpoint.port);
  return fmt::format("{}:{}", endpoint.ip, endpoint.port);
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

std::uint32_t crc32(std::span<const std::uint8_t> bytes) noexcept {
  std::uint32_t c = 0xFFFFFFFFu;
  for (std::uint8_t b : bytes) c = kCrcTable[(c ^ b) & 0xff] ^ (c >> 8);
  return c ^ 0xFFFFFFFFu;
}

// --- decoding ---

Result<Message> decode(std::span<const std::uint8_t> bytes) {
  const std::size_t size = bytes.size();
  if (size < kHeaderSize)
    return drop(fmt::format("{} bytes: shorter than the {}-byte STUN header", size, kHeaderSize));
  // s6.3: "the most significant 2 bits of every STUN message MUST be zeroes".
  if ((bytes[0] & 0xc0) != 0)
    return drop(fmt::format("first byte 0x{:02x}: the top two bits of a STUN message are 0",
                            bytes[0]));
  const std::uint32_t cookie = get_u32(bytes, kOffCookie);
  if (cookie != kMagicCookie)
    return drop(fmt::format("magic cookie 0x{:08x}, not 0x{:08x}", cookie, kMagicCookie));
  const std::size_t length = get_u16(bytes, kOffLength);
  if (length % 4 != 0)
    return drop(fmt::format("Message Length {} is not a multiple of 4", length));
  if (length != size - kHeaderSize)
    return drop(fmt::format("Message Length {} but {} bytes follow the header", length,
                            size - kHeaderSize));

  Message m;
  const std::uint16_t type = get_u16(bytes, kOffType);
  m.message_class = class_of(type);
  m.method = method_of(type);
  std::copy_n(bytes.begin() + kOffTransactionId, m.transaction_id.size(),
              m.transaction_id.begin());

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

    if (t == attr::fingerprint) {
      if (len != 4) return drop(fmt::format("FINGERPRINT of {} bytes (should be 4)", len));
      if (next != size)
        return drop(fmt::format("FINGERPRINT at offset {} is not the last attribute", off));
      const std::uint32_t expected = crc32(bytes.first(off)) ^ kFingerprintXor;
      const std::uint32_t got = get_u32(value, 0);
      if (got != expected)
        return drop(fmt::format("FINGERPRINT 0x{:08x} does not match the message (0x{:08x})",
                                got, expected));
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
        auto a = decode_address(t, value, t == attr::xor_mapped_address, m.transaction_id);
        if (!a) return a.error();
        std::optional<Endpoint>* slot =
            t == attr::xor_mapped_address ? &m.xor_mapped_address
            : t == attr::mapped_address   ? &m.mapped_address
            : t == attr::response_origin  ? &m.response_origin
            : t == attr::other_address    ? &m.other_address
            : t == attr::source_address   ? &m.source_address
                                          : &m.changed_address;
        if (!*slot) *slot = std::move(*a);  // s14: the first occurrence counts
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
          return drop(fmt::format("ERROR-CODE class {} number {}: not a code 300..699",
                                  error_class, number));
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
      default:
        if (!understood(t) &&
            std::find(m.unknown_required.begin(), m.unknown_required.end(), t) ==
                m.unknown_required.end())
          m.unknown_required.push_back(t);
        break;
    }
    off = next;
  }
  return m;
}

// --- encoding ---

std::vector<std::uint8_t> encode_binding_request(const BindingRequest& request) {
  Writer w(MessageClass::request, method::binding, request.transaction_id);
  if (!request.software.empty()) w.text(attr::software, clip(request.software));
  if (request.change_request) {
    std::uint8_t flags = 0;
    if (request.change_request->change_ip) flags |= kChangeIpFlag;
    if (request.change_request->change_port) flags |= kChangePortFlag;
    const std::array<std::uint8_t, 4> value = {0, 0, 0, flags};
    w.attribute(attr::change_request, value);
  }
  return w.finish(request.fingerprint);
}

Result<std::vector<std::uint8_t>> encode_binding_success(const BindingSuccess& response) {
  if (response.software.size() > kMaxTextBytes)
    return make_error(Errc::usage, fmt::format("SOFTWARE longer than {} bytes", kMaxTextBytes));
  Writer w(MessageClass::success_response, method::binding, response.transaction_id);
  if (auto s = w.address(attr::xor_mapped_address, response.mapped, true); !s) return s.error();
  if (response.include_mapped_address)
    if (auto s = w.address(attr::mapped_address, response.mapped, false); !s) return s.error();
  if (response.response_origin)
    if (auto s = w.address(attr::response_origin, *response.response_origin, false); !s)
      return s.error();
  if (response.other_address)
    if (auto s = w.address(attr::other_address, *response.other_address, false); !s)
      return s.error();
  if (!response.software.empty()) w.text(attr::software, response.software);
  return w.finish(response.fingerprint);
}

Result<std::vector<std::uint8_t>> encode_binding_error(const BindingError& response) {
  if (response.code < 300 || response.code > 699)
    return make_error(Errc::usage,
                      fmt::format("STUN error code {} is not 300..699", response.code));
  if (response.reason.size() > kMaxTextBytes || response.software.size() > kMaxTextBytes)
    return make_error(Errc::usage, fmt::format("reason or SOFTWARE longer than {} bytes",
                                               kMaxTextBytes));
  if (response.unknown_attributes.size() > 0x7fff)
    return make_error(Errc::usage, "too many unknown attributes");
  Writer w(MessageClass::error_response, method::binding, response.transaction_id);
  Bytes value = {0, 0, static_cast<std::uint8_t>(response.code / 100),
                 static_cast<std::uint8_t>(response.code % 100)};
  value.insert(value.end(), response.reason.begin(), response.reason.end());
  w.attribute(attr::error_code, value);
  if (!response.unknown_attributes.empty()) {
    Bytes list;
    for (std::uint16_t t : response.unknown_attributes) append_u16(list, t);
    w.attribute(attr::unknown_attributes, list);
  }
  if (!response.software.empty()) w.text(attr::software, response.software);
  return w.finish(response.fingerprint);
}

Result<ClassicRequest> decode_rfc3489(std::span<const std::uint8_t> bytes) {
  if (bytes.size() < kHeaderSize)
    return drop(fmt::format("{} bytes: shorter than the {}-byte STUN header", bytes.size(),
                            kHeaderSize));
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
  Writer w(MessageClass::success_response, method::binding, tail);
  if (auto s = w.address(attr::mapped_address, response.mapped, false); !s) return s.error();
  if (response.source_address)
    if (auto s = w.address(attr::source_address, *response.source_address, false); !s)
      return s.error();
  if (response.changed_address)
    if (auto s = w.address(attr::changed_address, *response.changed_address, false); !s)
      return s.error();
  Bytes out = w.finish(false);
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
  std::string s =
      m.method == method::binding ? "Binding" : fmt::format("method 0x{:03x}", m.method);
  s += fmt::format(" {} txid {}", class_name(m.message_class), transaction_hex(m.transaction_id));
  auto add = [&s](const char* name, const std::optional<Endpoint>& e) {
    if (e) s += fmt::format(" {} {}", name, to_string(*e));
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
  for (std::uint16_t t : m.unknown_required) s += fmt::format(" (unknown {})", attribute_name(t));
  if (m.has_message_integrity) s += " MESSAGE-INTEGRITY (not checked)";
  if (m.has_fingerprint) s += " FINGERPRINT";
  return s;
}

}  // namespace porthole::detail::stun
