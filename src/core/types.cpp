#include "porthole/types.hpp"

#include <arpa/inet.h>
#include <charconv>
#include <string>

#include <fmt/format.h>

#include "codec/url_check.hpp"

namespace porthole {

const char* protocol_name(Protocol p) noexcept {
  switch (p) {
    case Protocol::pcp: return "pcp";
    case Protocol::natpmp: return "natpmp";
    case Protocol::upnp: return "upnp";
  }
  return "?";
}

const char* transport_name(Transport t) noexcept { return t == Transport::udp ? "udp" : "tcp"; }

std::optional<Protocol> parse_protocol(std::string_view s) {
  if (s == "pcp") return Protocol::pcp;
  if (s == "natpmp") return Protocol::natpmp;
  if (s == "upnp") return Protocol::upnp;
  return std::nullopt;
}

const char* via_name(Via v) noexcept {
  switch (v) {
    case Via::automatic: return "auto";
    case Via::pcp: return "pcp";
    case Via::natpmp: return "natpmp";
    case Via::upnp: return "upnp";
  }
  return "?";
}

Result<Via> parse_via(std::string_view s) {
  if (s == "auto") return Via::automatic;
  if (s == "pcp") return Via::pcp;
  if (s == "natpmp") return Via::natpmp;
  if (s == "upnp") return Via::upnp;
  return make_error(Errc::usage,
                    fmt::format("unknown protocol '{}': use auto, pcp, natpmp or upnp", s));
}

Result<PortSpec> parse_port_spec(std::string_view text) {
  PortSpec spec;
  std::string_view number = text;
  if (auto slash = text.find('/'); slash != std::string_view::npos) {
    number = text.substr(0, slash);
    std::string_view proto = text.substr(slash + 1);
    if (proto == "tcp" || proto == "TCP") {
      spec.transport = Transport::tcp;
    } else if (proto == "udp" || proto == "UDP") {
      spec.transport = Transport::udp;
    } else {
      return make_error(Errc::usage,
                        fmt::format("'{}': transport must be tcp or udp, not '{}'", text, proto));
    }
  }
  unsigned long value = 0;
  const char* first = number.data();
  const char* last = number.data() + number.size();
  auto [ptr, ec] = std::from_chars(first, last, value);
  if (number.empty() || ec == std::errc::invalid_argument || ptr != last)
    return make_error(Errc::usage,
                      fmt::format("'{}' is not a port: use N, N/tcp or N/udp with N in 1-65535",
                                  text));
  if (ec == std::errc::result_out_of_range || value == 0 || value > 65535)
    return make_error(Errc::usage, fmt::format("port {} is out of range 1-65535", number));
  spec.port = static_cast<std::uint16_t>(value);
  return spec;
}

bool is_ipv4_literal(std::string_view text) {
  if (text.empty() || text.size() > 15) return false;
  std::string s(text);
  in_addr addr{};
  // inet_pton accepts only the dotted-quad form (no "1.2.3", no octal, no hex).
  return ::inet_pton(AF_INET, s.c_str(), &addr) == 1;
}

Result<HostPort> parse_host_port(std::string_view text, std::uint16_t default_port) {
  auto bad = [&](std::string_view why) {
    return make_error(Errc::usage, fmt::format("'{}' {}: use HOST or HOST:PORT",
                                               detail::printable_excerpt(text, 80), why));
  };
  if (text.empty()) return bad("is empty");
  HostPort out;
  std::string_view host = text;
  out.port = default_port;
  if (auto colon = text.rfind(':'); colon != std::string_view::npos) {
    host = text.substr(0, colon);
    auto port = text.substr(colon + 1);
    unsigned value = 0;
    auto [end, ec] = std::from_chars(port.data(), port.data() + port.size(), value);
    if (port.empty() || ec != std::errc{} || end != port.data() + port.size() || value == 0 ||
        value > 65535)
      return bad("has no port between 1 and 65535 after the colon");
    out.port = static_cast<std::uint16_t>(value);
  }
  // A DNS name (RFC 1123 letters, digits, hyphens, dots) or an IPv4 literal; nothing
  // else reaches the resolver.
  if (host.empty() || host.size() > 253) return bad("has no host name");
  for (char c : host) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '-' || c == '.';
    if (!ok) return bad("is not a host name or IPv4 address");
  }
  out.host = std::string(host);
  return out;
}

}  // namespace porthole
