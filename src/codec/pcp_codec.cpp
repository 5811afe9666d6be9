// PCP (RFC 6887) wire codec. Every field is read and written at an explicit offset, in
// network byte order (big-endian), one byte at a time: no struct overlays, no
// htonl/ntohl, so the byte order cannot depend on the host (libplum sent the PCP
// lifetime in host order; the golden-bytes test in pcp_codec_test.cpp guards this).
#include "codec/pcp_codec.hpp"

#include <algorithm>
#include <cmath>

#include <fmt/format.h>
#include "codec/byte_order.hpp"
#include "codec/ip_address_format.hpp"

namespace porthole::detail::pcp {
namespace {

// Offsets shared by requests and responses (see the diagrams in pcp_codec.hpp).
constexpr std::size_t kOffVersion = 0;
constexpr std::size_t kOffOpcode = 1;      // R bit + opcode
constexpr std::size_t kOffResultCode = 3;  // response
constexpr std::size_t kOffLifetime = 4;
constexpr std::size_t kOffClientIp = 8;   // request
constexpr std::size_t kOffEpoch = 8;      // response
constexpr std::size_t kOffNonce = 24;     // MAP
constexpr std::size_t kOffProtocol = 36;  // MAP
constexpr std::size_t kOffInternalPort = 40;
constexpr std::size_t kOffExternalPort = 42;  // suggested (request) / assigned (response)
constexpr std::size_t kOffExternalIp = 44;    // suggested (request) / assigned (response)

constexpr std::uint8_t kResponseBit = 0x80;  // the R bit of byte 1

// NAT-PMP (RFC 6886) replies: version 0, a 16-bit result code at 2, the epoch at 4.
constexpr std::size_t kNatpmpReplyMinSize = 8;
constexpr std::size_t kNatpmpOffResultCode = 2;
constexpr std::size_t kNatpmpOffEpoch = 4;

void put_bytes(std::vector<std::uint8_t>& out, std::size_t off,
               std::span<const std::uint8_t> bytes) {
  std::copy(bytes.begin(), bytes.end(), out.begin() + static_cast<std::ptrdiff_t>(off));
}

template <std::size_t N>
std::array<std::uint8_t, N> get_array(std::span<const std::uint8_t> in, std::size_t off) {
  std::array<std::uint8_t, N> a{};
  std::copy_n(in.begin() + static_cast<std::ptrdiff_t>(off), N, a.begin());
  return a;
}

Error drop(std::string why) { return make_error(Errc::internal, std::move(why)); }

// The 24-byte request header with the client's address.
std::vector<std::uint8_t> encode_header(std::uint8_t op, std::uint32_t lifetime,
                                        const IpAddress& client_ip, std::size_t total_size) {
  std::vector<std::uint8_t> out(total_size, 0);
  out[kOffVersion] = kVersion;
  out[kOffOpcode] = op;  // R bit clear: a request
  // Bytes 2-3 reserved: zero.
  put_u32(out, kOffLifetime, lifetime);
  put_bytes(out, kOffClientIp, to_address(client_ip));
  return out;
}

// Options follow the opcode data up to the end of the message (s7.3). The message
// length is already a multiple of 4, so each option starts 4-aligned.
Status parse_options(std::span<const std::uint8_t> bytes, std::size_t off,
                     std::vector<Option>& options) {
  while (off < bytes.size()) {
    if (bytes.size() - off < 4)
      return drop(fmt::format("truncated option header at offset {}", off));
    Option opt;
    opt.code = bytes[off];
    const std::size_t length = get_u16(bytes, off + 2);
    const std::size_t padded = (length + 3) & ~std::size_t{3};
    if (padded > bytes.size() - off - 4)
      return drop(fmt::format("option {} at offset {} claims {} bytes, only {} left", opt.code, off,
                              length, bytes.size() - off - 4));
    auto first = bytes.begin() + static_cast<std::ptrdiff_t>(off + 4);
    opt.data.assign(first, first + static_cast<std::ptrdiff_t>(length));
    options.push_back(std::move(opt));
    off += 4 + padded;
  }
  return ok_status();
}

}  // namespace

std::uint8_t iana_protocol(Transport transport) noexcept {
  return transport == Transport::udp ? iana::udp : iana::tcp;
}

std::string protocol_label(std::uint8_t protocol) {
  if (protocol == iana::tcp) return "tcp";
  if (protocol == iana::udp) return "udp";
  return fmt::format("protocol {}", protocol);
}

Address to_address(const IpAddress& ip) noexcept {
  Address a = ipv4_all_zeros();
  const auto bytes = ip.bytes();
  std::copy(bytes.begin(), bytes.end(), a.end() - static_cast<std::ptrdiff_t>(bytes.size()));
  return a;
}

Address ipv4_all_zeros() noexcept {
  Address a{};
  a[10] = 0xff;
  a[11] = 0xff;
  return a;
}

std::optional<IpAddress> ipv4_from_mapped(const Address& address) {
  for (std::size_t i = 0; i < 10; ++i)
    if (address[i] != 0) return std::nullopt;
  if (address[10] != 0xff || address[11] != 0xff) return std::nullopt;
  return IpAddress::v4({address[12], address[13], address[14], address[15]});
}

// --- requests ---

Result<std::vector<std::uint8_t>> encode_map_request(const MapRequest& request) {
  // s11.1: internal port 0 means "all ports" and is only valid with protocol 0.
  if (request.internal_port == 0)
    return make_error(Errc::usage, "PCP MAP needs an internal port (1-65535)");
  Address suggested = ipv4_all_zeros();  // s11.1: no preference, IPv4 family (s5)
  if (request.suggested_external_ip) suggested = to_address(*request.suggested_external_ip);
  auto out = encode_header(opcode::map, request.lifetime, request.client_ip, kMapMessageSize);
  auto& bytes = out;
  put_bytes(bytes, kOffNonce, request.nonce);
  bytes[kOffProtocol] = request.protocol;
  // Bytes 37-39 reserved: zero.
  put_u16(bytes, kOffInternalPort, request.internal_port);
  put_u16(bytes, kOffExternalPort, request.suggested_external_port);
  put_bytes(bytes, kOffExternalIp, suggested);
  return out;
}

std::vector<std::uint8_t> encode_announce_request(const IpAddress& client_ip) {
  // s14.1: ANNOUNCE has no opcode data; its requested lifetime is 0.
  return encode_header(opcode::announce, 0, client_ip, kHeaderSize);
}

// --- responses ---

Result<Response> decode_response(std::span<const std::uint8_t> bytes) {
  const std::size_t size = bytes.size();
  if (size > kMaxMessageSize)
    return drop(fmt::format("{} bytes: longer than the PCP maximum of {}", size, kMaxMessageSize));
  if (size == 0) return drop("empty datagram");

  // RFC 6887 s9 / RFC 6886 s3.5: a NAT-PMP-only server answers our version-2 request
  // with its version-0 "Unsupported Version" reply (result 1). It is shorter than a
  // PCP header, so it is recognised before the PCP length checks. (Its opcode byte is
  // 128 per RFC 6886 erratum 3618, 0 in the original text: not checked.)
  if (bytes[kOffVersion] == 0) {
    if (size < kNatpmpReplyMinSize)
      return drop(fmt::format("{} bytes: too short for a NAT-PMP reply", size));
    const std::uint16_t natpmp_result = get_u16(bytes, kNatpmpOffResultCode);
    if (natpmp_result != result::unsupp_version)
      return drop(
          fmt::format("a NAT-PMP (version 0) reply with result {}, not an answer "
                      "to a PCP request",
                      natpmp_result));
    Response r;
    r.version = 0;
    r.opcode = static_cast<std::uint8_t>(bytes[kOffOpcode] & ~kResponseBit);
    r.result_code = result::unsupp_version;
    r.epoch = get_u32(bytes, kNatpmpOffEpoch);
    return r;
  }

  // s8.3: drop anything shorter than 24, longer than 1100 or not a multiple of 4.
  if (size < kHeaderSize)
    return drop(fmt::format("{} bytes: shorter than the {}-byte PCP header", size, kHeaderSize));
  if (size % 4 != 0) return drop(fmt::format("{} bytes: not a multiple of 4", size));
  // s8.3: a response has the R bit set; anything else is a request (maybe our own).
  if ((bytes[kOffOpcode] & kResponseBit) == 0)
    return drop("R bit clear: a request, not a response");

  Response r;
  r.version = bytes[kOffVersion];
  r.opcode = static_cast<std::uint8_t>(bytes[kOffOpcode] & ~kResponseBit);
  r.result_code = bytes[kOffResultCode];
  r.lifetime = get_u32(bytes, kOffLifetime);
  r.epoch = get_u32(bytes, kOffEpoch);

  // s9: a server that does not speak version 2 says UNSUPP_VERSION with the version it
  // does speak. Its opcode data may have another layout, so nothing more is read.
  if (r.result_code == result::unsupp_version) return r;
  if (r.version != kVersion)
    return drop(fmt::format("PCP version {} (expected {})", r.version, kVersion));

  std::size_t body = 0;
  if (r.opcode == opcode::map) {
    body = kMapBodySize;
  } else if (r.opcode != opcode::announce) {
    return drop(fmt::format("opcode {}: porthole sends only ANNOUNCE and MAP", r.opcode));
  }
  if (size < kHeaderSize + body)
    return drop(
        fmt::format("{} bytes: too short for a MAP response ({} bytes)", size, kMapMessageSize));

  if (r.opcode == opcode::map) {
    MapResponseData m;
    m.nonce = get_array<12>(bytes, kOffNonce);
    m.protocol = bytes[kOffProtocol];
    m.internal_port = get_u16(bytes, kOffInternalPort);
    m.external_port = get_u16(bytes, kOffExternalPort);
    m.external_address = get_array<16>(bytes, kOffExternalIp);
    m.external_ip = ipv4_from_mapped(m.external_address);
    r.map = m;
  }
  auto opts = parse_options(bytes, kHeaderSize + body, r.options);
  if (!opts) return opts.error();
  return r;
}

RequestKey key_of(const MapRequest& request) noexcept {
  return RequestKey{opcode::map, request.protocol, request.internal_port, request.nonce};
}

RequestKey announce_key() noexcept { return RequestKey{opcode::announce, 0, 0, Nonce{}}; }

const char* mismatch(const Response& response, const RequestKey& key) noexcept {
  if (response.unsupported_version()) return "UNSUPP_VERSION answer (nothing to match)";
  if (response.opcode != key.opcode) return "opcode";
  if (key.opcode != opcode::map) return nullptr;
  // s11.4: a MAP response matches when protocol, internal port and nonce are ours.
  if (!response.map) return "MAP data missing";
  if (response.map->protocol != key.protocol) return "protocol";
  if (response.map->internal_port != key.internal_port) return "internal port";
  if (response.map->nonce != key.nonce) return "nonce";
  return nullptr;
}

// --- result codes ---

namespace {
struct ResultInfo {
  const char* name;
  const char* explanation;
};
// s7.4, with what each code usually means on a home router.
constexpr ResultInfo kResults[] = {
    {"SUCCESS", "success"},
    {"UNSUPP_VERSION", "the gateway does not speak PCP version 2 (fall back to NAT-PMP)"},
    {"NOT_AUTHORIZED",
     "the gateway's policy forbids this request, or the mapping nonce does not match"},
    {"MALFORMED_REQUEST", "the gateway could not parse the request"},
    {"UNSUPP_OPCODE", "the gateway does not support this PCP operation"},
    {"UNSUPP_OPTION", "the gateway does not support a mandatory option of the request"},
    {"MALFORMED_OPTION", "an option of the request is malformed"},
    {"NETWORK_FAILURE", "the gateway has a network failure (for example no external address yet)"},
    {"NO_RESOURCES",
     "port held elsewhere, or the router has no external address (upstream NAT / CGNAT?)"},
    {"UNSUPP_PROTOCOL", "the gateway cannot map this transport protocol"},
    {"USER_EX_QUOTA", "this host has used up its quota of mappings on the gateway"},
    {"CANNOT_PROVIDE_EXTERNAL",
     "the gateway cannot provide the suggested external port or address"},
    {"ADDRESS_MISMATCH",
     "the request arrived from another address than the one it names: a NAT between this "
     "host and the PCP server"},
    {"EXCESSIVE_REMOTE_PEERS", "the request names too many remote peers"},
};
constexpr std::size_t kResultCount = sizeof(kResults) / sizeof(kResults[0]);
}  // namespace

bool is_known_result(std::uint8_t code) noexcept { return code < kResultCount; }

const char* result_name(std::uint8_t code) noexcept {
  return is_known_result(code) ? kResults[code].name : "UNKNOWN";
}

const char* result_explanation(std::uint8_t code) noexcept {
  return is_known_result(code) ? kResults[code].explanation : "";
}

std::string describe_result(std::uint8_t code) {
  if (!is_known_result(code)) return fmt::format("unknown PCP result code {}", code);
  return fmt::format("{} ({}): {}", kResults[code].name, code, kResults[code].explanation);
}

bool is_short_lifetime_error(std::uint8_t code) noexcept {
  return code == result::network_failure || code == result::no_resources ||
         code == result::user_ex_quota;
}

// --- timing ---

bool epoch_is_valid(std::uint32_t previous_epoch, std::uint32_t epoch,
                    std::chrono::steady_clock::time_point previous_client_time,
                    std::chrono::steady_clock::time_point now) noexcept {
  // s8.5: the server's epoch may appear to go back by up to 1 s (reordering); more
  // than that means it restarted.
  if (std::uint64_t{epoch} + 1 < std::uint64_t{previous_epoch}) return false;
  // Both deltas in milliseconds; the RFC's test
  //   client_delta + 2 < server_delta - server_delta/16   or
  //   server_delta + 2 < client_delta - client_delta/16
  // is evaluated exactly by multiplying both sides by 16.
  const std::int64_t server_ms = (static_cast<std::int64_t>(epoch) -
                                  static_cast<std::int64_t>(previous_epoch)) *
                                 1000;
  const std::int64_t client_ms =
      std::chrono::duration_cast<std::chrono::milliseconds>(now - previous_client_time).count();
  if (16 * (client_ms + 2000) < 15 * server_ms) return false;
  if (16 * (server_ms + 2000) < 15 * client_ms) return false;
  return true;
}

namespace {
double clamp_unit(double r) noexcept {
  if (!(r >= 0.0)) return 0.0;  // also NaN
  return r < 1.0 ? r : std::nextafter(1.0, 0.0);
}
}  // namespace

std::chrono::milliseconds next_retransmit_timeout(std::chrono::milliseconds previous,
                                                  double random01,
                                                  std::chrono::milliseconds max_rt) noexcept {
  using std::chrono::milliseconds;
  const double rand = -0.1 + 0.2 * clamp_unit(random01);
  milliseconds base = previous.count() <= 0 ? kInitialRetransmitTimeout : 2 * previous;
  base = std::min(base, max_rt);
  return milliseconds(std::llround((1.0 + rand) * static_cast<double>(base.count())));
}

std::vector<std::chrono::milliseconds> renewal_schedule(std::uint32_t lifetime,
                                                        std::span<const double> random01) {
  using std::chrono::milliseconds;
  std::vector<milliseconds> out;
  const milliseconds expiry(std::int64_t{lifetime} * 1000);
  const double life_ms = static_cast<double>(expiry.count());
  milliseconds previous{0};  // the grant itself
  // Beyond ~40 halvings the windows are below a millisecond even for 2^32 s.
  const std::size_t attempts = std::min<std::size_t>(random01.size(), 40);
  for (std::size_t k = 0; k < attempts; ++k) {
    const int e = static_cast<int>(k);
    const double start = 1.0 - std::ldexp(1.0, -(e + 1));  // 1/2, 3/4, 7/8, ...
    const double width = std::ldexp(1.0, -(e + 3));        // 1/8, 1/16, 1/32, ...
    milliseconds at(std::llround(life_ms * (start + width * clamp_unit(random01[k]))));
    at = std::max(at, previous + kMinRenewalInterval);
    if (at >= expiry) break;
    out.push_back(at);
    previous = at;
  }
  return out;
}

// --- descriptions ---

std::string nonce_hex(const Nonce& nonce) {
  std::string s;
  s.reserve(nonce.size() * 2);
  for (auto b : nonce) s += fmt::format("{:02x}", b);
  return s;
}

std::string describe(const MapRequest& request) {
  return fmt::format("MAP {} {} suggest {}:{} lifetime {} nonce {} client {}",
                     protocol_label(request.protocol), request.internal_port,
                     request.suggested_external_ip.value_or(IpAddress()),
                     request.suggested_external_port, request.lifetime, nonce_hex(request.nonce),
                     request.client_ip);
}

std::string describe(const Response& response) {
  if (response.unsupported_version())
    return fmt::format("UNSUPP_VERSION from a version-{} server ({}) epoch {}", response.version,
                       response.version == 0 ? "NAT-PMP" : "PCP", response.epoch);
  std::string text;
  if (response.opcode == opcode::announce)
    text = fmt::format("ANNOUNCE {}", result_name(response.result_code));
  else if (response.opcode == opcode::map)
    text = fmt::format("MAP {}", result_name(response.result_code));
  else
    text = fmt::format("opcode {} {}", response.opcode, result_name(response.result_code));
  if (!is_known_result(response.result_code)) text += fmt::format(" ({})", response.result_code);
  if (response.map) {
    const auto& m = *response.map;
    text += fmt::format(" {} {} -> {}:{}", protocol_label(m.protocol), m.internal_port,
                        m.external_ip ? m.external_ip->to_string() : "(non-IPv4 address)",
                        m.external_port);
  }
  text += fmt::format(" lifetime {} epoch {}", response.lifetime, response.epoch);
  if (response.map) text += " nonce " + nonce_hex(response.map->nonce);
  if (!response.options.empty()) text += fmt::format(" options {}", response.options.size());
  return text;
}

}  // namespace porthole::detail::pcp
