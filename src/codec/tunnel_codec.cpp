#include "codec/tunnel_codec.hpp"

#include <charconv>

#include "codec/byte_order.hpp"

namespace porthole {

namespace dt = detail::tunnel;

const char* tunnel_proto_name(TunnelProto proto) noexcept {
  return proto == TunnelProto::udp ? "udp" : "tcp";
}

namespace {

// A port number 1..65535, all digits.
std::optional<std::uint16_t> parse_port_number(std::string_view text) {
  if (text.empty() || text.size() > 5) return std::nullopt;
  unsigned value = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc() || end != text.data() + text.size()) return std::nullopt;
  if (value == 0 || value > 65535) return std::nullopt;
  return static_cast<std::uint16_t>(value);
}

// Splits "/tcp" or "/udp" off the end; nothing when another suffix is there.
std::optional<TunnelProto> split_proto(std::string_view& spec) {
  auto slash = spec.rfind('/');
  if (slash == std::string_view::npos) return TunnelProto::tcp;
  auto suffix = spec.substr(slash + 1);
  spec = spec.substr(0, slash);
  if (suffix == "tcp") return TunnelProto::tcp;
  if (suffix == "udp") return TunnelProto::udp;
  return std::nullopt;
}

}  // namespace

Result<ExposedPort> parse_exposed_port(std::string_view spec) {
  std::string_view rest = spec;
  auto proto = split_proto(rest);
  if (!proto)
    return make_error(Errc::usage,
                      "port '" + std::string(spec) + "': the protocol must be /tcp or /udp");
  auto port = parse_port_number(rest);
  if (!port)
    return make_error(Errc::usage,
                      "port '" + std::string(spec) + "': want PORT[/tcp|/udp] with PORT 1-65535");
  return ExposedPort{*port, *proto};
}

std::string to_string(const ExposedPort& port) {
  return std::to_string(port.port) + "/" + tunnel_proto_name(port.proto);
}

Result<Forward> parse_forward(std::string_view spec) {
  const std::string quoted = "-L '" + std::string(spec) + "': ";
  std::string_view rest = spec;
  auto proto = split_proto(rest);
  if (!proto) return make_error(Errc::usage, quoted + "the protocol must be /tcp or /udp");
  // [BIND:]LOCAL:REMOTE: the last two colon-separated fields are the ports.
  auto last = rest.rfind(':');
  if (last == std::string_view::npos)
    return make_error(Errc::usage, quoted + "want [BIND:]LOCAL:REMOTE[/udp]");
  auto remote_text = rest.substr(last + 1);
  auto head = rest.substr(0, last);
  std::string_view bind_text;
  std::string_view local_text = head;
  if (auto colon = head.rfind(':'); colon != std::string_view::npos) {
    bind_text = head.substr(0, colon);
    local_text = head.substr(colon + 1);
    if (bind_text.empty() || bind_text.find(':') != std::string_view::npos)
      return make_error(Errc::usage, quoted + "want [BIND:]LOCAL:REMOTE[/udp]");
  }
  Forward f;
  f.proto = *proto;
  auto local = parse_port_number(local_text);
  if (!local) return make_error(Errc::usage, quoted + "the local port must be 1-65535");
  auto remote = parse_port_number(remote_text);
  if (!remote) return make_error(Errc::usage, quoted + "the remote port must be 1-65535");
  f.local = *local;
  f.remote = *remote;
  if (!bind_text.empty()) {
    auto ip = IpAddress::parse(bind_text);
    if (!ip || !ip->is_v4())
      return make_error(Errc::usage, quoted + "the bind address must be an IPv4 address");
    f.bind = *ip;
  }
  return f;
}

}  // namespace porthole

namespace porthole::detail::tunnel {

std::array<std::uint8_t, kStreamHeaderSize> encode_stream_header(std::uint16_t port) {
  return {'P', '1', static_cast<std::uint8_t>(port >> 8), static_cast<std::uint8_t>(port & 0xff)};
}

Result<std::optional<std::uint16_t>> decode_stream_header(std::span<const std::uint8_t> bytes) {
  if (!bytes.empty() && bytes[0] != 'P')
    return make_error(Errc::refused, "not a tunnel stream (no P1 header)");
  if (bytes.size() >= 2 && bytes[1] != '1')
    return make_error(Errc::refused, "not a tunnel stream (no P1 header)");
  if (bytes.size() < kStreamHeaderSize) return std::optional<std::uint16_t>{};
  const std::uint16_t port = get_u16(bytes, 2);
  if (port == 0) return make_error(Errc::refused, "a tunnel stream for port 0");
  return std::optional<std::uint16_t>{port};
}

std::vector<std::uint8_t> encode_datagram(std::uint16_t port, std::uint16_t flow,
                                          std::span<const std::uint8_t> payload) {
  std::vector<std::uint8_t> out;
  out.reserve(kDatagramHeaderSize + payload.size());
  append_u16(out, port);
  append_u16(out, flow);
  out.insert(out.end(), payload.begin(), payload.end());
  return out;
}

Result<TunnelDatagram> decode_datagram(std::span<const std::uint8_t> bytes) {
  if (bytes.size() < kDatagramHeaderSize)
    return make_error(Errc::refused, "a tunnel datagram shorter than its header");
  TunnelDatagram d;
  d.port = get_u16(bytes, 0);
  d.flow = get_u16(bytes, 2);
  if (d.port == 0) return make_error(Errc::refused, "a tunnel datagram for port 0");
  d.payload = bytes.subspan(kDatagramHeaderSize);
  return d;
}

std::vector<std::uint8_t> encode_port_list(std::span<const ExposedPort> ports) {
  std::vector<std::uint8_t> out{'P', 'L'};
  append_u16(out, static_cast<std::uint16_t>(ports.size()));
  for (const auto& p : ports) {
    append_u16(out, p.port);
    out.push_back(p.proto == TunnelProto::udp ? 1 : 0);
  }
  return out;
}

Result<std::optional<std::vector<ExposedPort>>> decode_port_list(
    std::span<const std::uint8_t> bytes) {
  using Out = std::optional<std::vector<ExposedPort>>;
  const Error bad = make_error(Errc::refused, "a malformed exposed-port list");
  if ((!bytes.empty() && bytes[0] != 'P') || (bytes.size() >= 2 && bytes[1] != 'L')) return bad;
  if (bytes.size() < 4) return Out{};
  const std::size_t count = get_u16(bytes, 2);
  if (count > kMaxExposedPorts) return bad;
  const std::size_t size = 4 + 3 * count;
  if (bytes.size() < size) return Out{};
  if (bytes.size() > size) return bad;
  std::vector<ExposedPort> ports;
  for (std::size_t i = 0; i < count; ++i) {
    const std::size_t off = 4 + 3 * i;
    ExposedPort p;
    p.port = get_u16(bytes, off);
    if (p.port == 0 || bytes[off + 2] > 1) return bad;
    p.proto = bytes[off + 2] == 1 ? TunnelProto::udp : TunnelProto::tcp;
    ports.push_back(p);
  }
  return Out{std::move(ports)};
}

}  // namespace porthole::detail::tunnel
