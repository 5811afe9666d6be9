#include "codec/url_check.hpp"

#include <algorithm>

#include <fmt/format.h>
#include "codec/ascii.hpp"

namespace porthole::detail {
namespace {

struct Ipv4Net {
  std::uint32_t net;
  int prefix;
};

bool in_net(std::uint32_t addr, Ipv4Net n) {
  std::uint32_t mask = n.prefix == 0 ? 0 : ~std::uint32_t{0} << (32 - n.prefix);
  return (addr & mask) == (n.net & mask);
}

std::string dotted(std::uint32_t a) {
  return fmt::format("{}.{}.{}.{}", a >> 24, (a >> 16) & 0xff, (a >> 8) & 0xff, a & 0xff);
}

// Why an address may never be a device URL's host (empty: no objection). These are
// the targets a hostile LOCATION would pick: our own loopback services, link-local
// metadata endpoints, and addresses that are not one host at all.
std::string_view forbidden_range(std::uint32_t a) {
  if (in_net(a, {0x00000000, 8})) return "the unspecified network 0.0.0.0/8";
  if (in_net(a, {0x7f000000, 8})) return "a loopback address";
  if (in_net(a, {0xa9fe0000, 16})) return "a link-local address";
  if (in_net(a, {0xe0000000, 4})) return "a multicast address";
  if (in_net(a, {0xf0000000, 4}))
    return "a reserved or broadcast address";  // incl. 255.255.255.255
  return {};
}

// The syntax check proper: on failure, `reason` completes "<url> ...: refused".
std::optional<HttpUrl> parse_url(std::string_view url, std::string& reason) {
  if (url.size() > kMaxDeviceUrlLength) {
    reason = fmt::format("is longer than {} characters", kMaxDeviceUrlLength);
    return std::nullopt;
  }
  for (char ch : url) {
    auto c = static_cast<unsigned char>(ch);
    // No whitespace, control bytes or non-ASCII anywhere: they are how parser
    // differentials start (miniupnpc re-parses the same string to make SOAP calls).
    if (c <= 0x20 || c >= 0x7f || c == '\\') {
      reason = "contains a space, control, backslash or non-ASCII character";
      return std::nullopt;
    }
  }
  constexpr std::string_view kScheme = "http://";
  if (!ascii_istarts_with(url, kScheme)) {
    reason = "is not an http:// URL";
    return std::nullopt;
  }
  std::string_view rest = url.substr(kScheme.size());
  std::size_t authority_end = rest.find_first_of("/?#");
  std::string_view authority = rest.substr(0, authority_end);
  std::string_view tail = authority_end == std::string_view::npos ? std::string_view{}
                                                                  : rest.substr(authority_end);

  if (authority.find('@') != std::string_view::npos) {
    reason = "carries userinfo (user@host)";
    return std::nullopt;
  }
  if (!authority.empty() && authority.front() == '[') {
    reason = "has an IPv6 host (only IPv4 literals are accepted)";
    return std::nullopt;
  }
  std::size_t colon = authority.find(':');
  std::string_view host = authority.substr(0, colon);
  if (host.empty()) {
    reason = "has an empty host";
    return std::nullopt;
  }
  if (!parse_ipv4_strict(host)) {
    reason = "has a host that is not an IPv4 literal (host names are refused)";
    return std::nullopt;
  }
  HttpUrl out;
  out.host = std::string(host);
  if (colon != std::string_view::npos) {
    std::string_view port = authority.substr(colon + 1);
    std::uint32_t value = 0;
    bool good = !port.empty() && port.size() <= 5;
    for (char c : port) {
      if (c < '0' || c > '9') {
        good = false;
        break;
      }
      value = value * 10 + static_cast<std::uint32_t>(c - '0');
    }
    if (!good || value == 0 || value > 65535) {
      reason = "has a bad port";
      return std::nullopt;
    }
    out.port = static_cast<std::uint16_t>(value);
  }
  if (tail.find('#') != std::string_view::npos) {
    reason = "has a fragment";
    return std::nullopt;
  }
  if (tail.empty())
    out.path = "/";
  else if (tail.front() == '?')
    out.path = "/" + std::string(tail);
  else
    out.path = std::string(tail);
  return out;
}

}  // namespace

std::string HttpUrl::to_string() const { return fmt::format("http://{}:{}{}", host, port, path); }

std::optional<std::uint32_t> parse_ipv4_strict(std::string_view text) {
  if (text.empty() || text.size() > 15) return std::nullopt;
  std::uint32_t out = 0;
  int parts = 0;
  std::size_t i = 0;
  while (true) {
    std::size_t start = i;
    std::uint32_t part = 0;
    while (i < text.size() && text[i] >= '0' && text[i] <= '9') {
      part = part * 10 + static_cast<std::uint32_t>(text[i] - '0');
      ++i;
      if (i - start > 3) return std::nullopt;
    }
    std::size_t digits = i - start;
    if (digits == 0 || part > 255) return std::nullopt;
    if (digits > 1 && text[start] == '0') return std::nullopt;  // octal lookalike
    out = (out << 8) | part;
    ++parts;
    if (i == text.size()) break;
    if (text[i] != '.' || parts == 4) return std::nullopt;
    ++i;
  }
  if (parts != 4) return std::nullopt;
  return out;
}

Result<HttpUrl> parse_http_url(std::string_view url) {
  std::string reason;
  auto parsed = parse_url(url, reason);
  if (!parsed)
    return make_error(Errc::no_service,
                      fmt::format("URL {} {}: refused", printable_excerpt(url), reason));
  return *parsed;
}

Result<HttpUrl> check_device_url(std::string_view url, std::string_view gateway_ip,
                                 bool allow_lan_subnet, std::string_view local_ip, int prefix_len,
                                 std::string_view what) {
  auto refuse = [&](std::string_view reason) -> Error {
    return make_error(Errc::no_service,
                      fmt::format("{} {} {}: refused", what, printable_excerpt(url), reason));
  };
  std::string reason;
  auto parsed = parse_url(url, reason);
  if (!parsed) return refuse(reason);

  auto gateway = parse_ipv4_strict(gateway_ip);
  if (!gateway)
    return make_error(Errc::internal,
                      fmt::format("cannot check {} {}: the gateway '{}' is not an IPv4 "
                                  "address",
                                  what, printable_excerpt(url), printable_excerpt(gateway_ip)));
  std::uint32_t host = *parse_ipv4_strict(parsed->host);  // parse_url checked it

  // Equality with the gateway wins over the range checks below (see the header), but a
  // gateway in 0/8, multicast or 240/4 is no single host and never acceptable.
  if (host == *gateway) {
    if (in_net(host, {0x00000000, 8}) || in_net(host, {0xe0000000, 4}) ||
        in_net(host, {0xf0000000, 4}))
      return refuse(fmt::format("is {}", forbidden_range(host)));
    return *parsed;
  }
  std::string gw_text = dotted(*gateway);
  if (auto bad = forbidden_range(host); !bad.empty())
    return refuse(fmt::format("is {}, not the gateway {}", bad, gw_text));

  if (allow_lan_subnet && prefix_len >= 8 && prefix_len <= 32) {
    if (auto local = parse_ipv4_strict(local_ip)) {
      Ipv4Net lan{*local, prefix_len};
      std::string lan_text = fmt::format("{}/{}", dotted(*local), prefix_len);
      if (in_net(host, lan)) {
        // Our own address would let a device aim us at services on this host.
        if (host == *local)
          return refuse(fmt::format("is this host's own address, not the gateway {}", gw_text));
        std::uint32_t hostmask = prefix_len == 32 ? 0 : ~std::uint32_t{0} >> prefix_len;
        if (prefix_len <= 30 && ((host & hostmask) == 0 || (host & hostmask) == hostmask))
          return refuse(fmt::format("is the network or broadcast address of {}", lan_text));
        return *parsed;
      }
      return refuse(
          fmt::format("is neither on the gateway {} nor in the LAN {}", gw_text, lan_text));
    }
  }
  return refuse(fmt::format("is not on the gateway {}", gw_text));
}

std::string printable_excerpt(std::string_view text, std::size_t max_len) {
  std::string out;
  std::size_t n = std::min(text.size(), max_len);
  out.reserve(n + 8);
  for (std::size_t i = 0; i < n; ++i) {
    auto c = static_cast<unsigned char>(text[i]);
    if (c >= 0x20 && c < 0x7f && c != '\\')
      out.push_back(static_cast<char>(c));
    else
      out += fmt::format("\\x{:02x}", c);
  }
  if (text.size() > max_len) out += "...";
  return out;
}

}  // namespace porthole::detail
