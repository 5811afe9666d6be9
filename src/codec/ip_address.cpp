// IpAddress and Endpoint: inet_pton reads the text (the C library's parser, strict
// about octal and zones); formatting is done here so that IPv6 text is RFC 5952's
// whatever the C library prints.
#include "porthole/ip_address.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <algorithm>
#include <charconv>
#include <cstring>

#include <fmt/format.h>

namespace porthole {
namespace {

Error bad_address(std::string_view text) {
  return make_error(Errc::usage, fmt::format("'{}' is not an IP address", text));
}

Error bad_endpoint(std::string_view text, std::string_view why) {
  return make_error(Errc::usage, fmt::format("'{}' is not IP:PORT or [IPv6]:PORT: {}", text, why));
}

}  // namespace

Result<IpAddress> IpAddress::parse(std::string_view text) {
  char buf[INET6_ADDRSTRLEN] = {};
  // inet_pton would stop at an embedded NUL and read "1.2.3.4\0junk" as 1.2.3.4.
  if (text.empty() || text.size() >= sizeof(buf) || text.find('\0') != std::string_view::npos)
    return bad_address(text);
  std::memcpy(buf, text.data(), text.size());  // inet_pton wants a NUL-terminated string
  std::array<std::uint8_t, 16> bytes{};
  if (::inet_pton(AF_INET, buf, bytes.data()) == 1) {
    std::array<std::uint8_t, 4> v4_bytes{};
    std::copy_n(bytes.begin(), 4, v4_bytes.begin());
    return v4(v4_bytes);
  }
  if (::inet_pton(AF_INET6, buf, bytes.data()) == 1) return v6(bytes);
  return bad_address(text);
}

IpAddress IpAddress::v4(const std::array<std::uint8_t, 4>& bytes) noexcept {
  IpAddress a;
  std::copy(bytes.begin(), bytes.end(), a.bytes_.begin());
  return a;
}

IpAddress IpAddress::v6(const std::array<std::uint8_t, 16>& bytes) noexcept {
  IpAddress a;
  a.v6_ = true;
  a.bytes_ = bytes;
  return a;
}

Result<IpAddress> IpAddress::from_bytes(std::span<const std::uint8_t> bytes) {
  if (bytes.size() == 4) return v4({bytes[0], bytes[1], bytes[2], bytes[3]});
  if (bytes.size() == 16) {
    std::array<std::uint8_t, 16> b{};
    std::copy(bytes.begin(), bytes.end(), b.begin());
    return v6(b);
  }
  return make_error(Errc::usage,
                    fmt::format("an IP address is 4 or 16 bytes, not {}", bytes.size()));
}

bool IpAddress::is_unspecified() const noexcept {
  return std::all_of(bytes_.begin(), bytes_.end(), [](std::uint8_t b) { return b == 0; });
}

bool IpAddress::is_loopback() const noexcept {
  if (!v6_) return bytes_[0] == 127;
  return std::all_of(bytes_.begin(), bytes_.begin() + 15, [](std::uint8_t b) { return b == 0; }) &&
         bytes_[15] == 1;
}

bool IpAddress::is_private() const noexcept {
  if (v6_) return (bytes_[0] & 0xfe) == 0xfc;
  const std::uint8_t a = bytes_[0], b = bytes_[1];
  return a == 10 || (a == 172 && (b & 0xf0) == 16) || (a == 192 && b == 168) ||
         (a == 100 && (b & 0xc0) == 64);
}

bool IpAddress::is_link_local() const noexcept {
  if (v6_) return bytes_[0] == 0xfe && (bytes_[1] & 0xc0) == 0x80;
  return bytes_[0] == 169 && bytes_[1] == 254;
}

bool IpAddress::is_multicast() const noexcept {
  if (v6_) return bytes_[0] == 0xff;
  return (bytes_[0] & 0xf0) == 224;
}

bool IpAddress::is_v4_mapped() const noexcept {
  return v6_ &&
         std::all_of(bytes_.begin(), bytes_.begin() + 10, [](std::uint8_t b) { return b == 0; }) &&
         bytes_[10] == 0xff && bytes_[11] == 0xff;
}

IpAddress IpAddress::unmapped() const noexcept {
  if (!is_v4_mapped()) return *this;
  return v4({bytes_[12], bytes_[13], bytes_[14], bytes_[15]});
}

std::string IpAddress::to_string() const {
  if (!v6_) return fmt::format("{}.{}.{}.{}", bytes_[0], bytes_[1], bytes_[2], bytes_[3]);
  if (is_v4_mapped())  // RFC 5952 s5
    return fmt::format("::ffff:{}.{}.{}.{}", bytes_[12], bytes_[13], bytes_[14], bytes_[15]);
  std::array<unsigned, 8> groups{};
  for (std::size_t i = 0; i < 8; ++i)
    groups[i] = (unsigned{bytes_[2 * i]} << 8) | bytes_[2 * i + 1];
  // RFC 5952 s4.2: "::" stands for the longest run of zero groups, the first one when
  // runs tie, and never for a single group (s4.2.2).
  std::size_t best_at = 8, best_len = 0;
  for (std::size_t i = 0; i < 8;) {
    if (groups[i] != 0) {
      ++i;
      continue;
    }
    std::size_t j = i;
    while (j < 8 && groups[j] == 0) ++j;
    if (j - i > best_len) {
      best_at = i;
      best_len = j - i;
    }
    i = j;
  }
  if (best_len < 2) best_at = 8;
  std::string s;
  for (std::size_t i = 0; i < 8; ++i) {
    if (i == best_at) {
      s += "::";
      i += best_len - 1;
      continue;
    }
    if (!s.empty() && s.back() != ':') s += ':';
    s += fmt::format("{:x}", groups[i]);  // s4.3: lower case; s4.1: no leading zeros
  }
  return s;
}

Result<Endpoint> Endpoint::parse(std::string_view text) {
  std::string_view host;
  std::string_view port_text;
  if (!text.empty() && text.front() == '[') {
    const auto close = text.find(']');
    if (close == std::string_view::npos) return bad_endpoint(text, "no ']'");
    if (close + 1 >= text.size() || text[close + 1] != ':')
      return bad_endpoint(text, "no ':PORT' after ']'");
    host = text.substr(1, close - 1);
    port_text = text.substr(close + 2);
  } else {
    const auto colon = text.rfind(':');
    if (colon == std::string_view::npos) return bad_endpoint(text, "no ':PORT'");
    host = text.substr(0, colon);
    if (host.find(':') != std::string_view::npos)
      return bad_endpoint(text, "an IPv6 address needs brackets");
    port_text = text.substr(colon + 1);
  }
  auto ip = IpAddress::parse(host);
  if (!ip) return bad_endpoint(text, ip.error().message);
  if (!text.empty() && text.front() == '[' && !ip->is_v6())
    return bad_endpoint(text, "brackets are for IPv6 addresses");
  if (port_text.empty() || port_text.size() > 5 ||
      !std::all_of(port_text.begin(), port_text.end(), [](char c) { return c >= '0' && c <= '9'; }))
    return bad_endpoint(text, "the port is not a number 0..65535");
  unsigned port = 0;
  std::from_chars(port_text.data(), port_text.data() + port_text.size(), port);
  if (port > 65535) return bad_endpoint(text, "the port is not a number 0..65535");
  return Endpoint{*ip, static_cast<std::uint16_t>(port)};
}

Result<Endpoint> Endpoint::from_sockaddr(const sockaddr* address, std::size_t length) {
  if (address == nullptr || length < sizeof(sa_family_t))
    return make_error(Errc::usage, "no socket address");
  if (address->sa_family == AF_INET && length >= sizeof(sockaddr_in)) {
    sockaddr_in in{};
    std::memcpy(&in, address, sizeof(in));
    std::array<std::uint8_t, 4> b{};
    std::memcpy(b.data(), &in.sin_addr, 4);
    return Endpoint{IpAddress::v4(b), ntohs(in.sin_port)};
  }
  if (address->sa_family == AF_INET6 && length >= sizeof(sockaddr_in6)) {
    sockaddr_in6 in6{};
    std::memcpy(&in6, address, sizeof(in6));
    std::array<std::uint8_t, 16> b{};
    std::memcpy(b.data(), &in6.sin6_addr, 16);
    return Endpoint{IpAddress::v6(b), ntohs(in6.sin6_port)};
  }
  return make_error(Errc::usage, fmt::format("socket address family {} ({} bytes) is not IPv4 "
                                             "or IPv6",
                                             address->sa_family, length));
}

std::size_t Endpoint::to_sockaddr(sockaddr_storage& out) const noexcept {
  std::memset(&out, 0, sizeof(out));
  if (ip.is_v4()) {
    sockaddr_in in{};
    in.sin_family = AF_INET;
    in.sin_port = htons(port);
    std::memcpy(&in.sin_addr, ip.bytes().data(), 4);
    std::memcpy(&out, &in, sizeof(in));
    return sizeof(in);
  }
  sockaddr_in6 in6{};
  in6.sin6_family = AF_INET6;
  in6.sin6_port = htons(port);
  std::memcpy(&in6.sin6_addr, ip.bytes().data(), 16);
  std::memcpy(&out, &in6, sizeof(in6));
  return sizeof(in6);
}

std::string Endpoint::to_string() const {
  if (ip.is_v6()) return fmt::format("[{}]:{}", ip.to_string(), port);
  return fmt::format("{}:{}", ip.to_string(), port);
}

}  // namespace porthole
