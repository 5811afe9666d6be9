// libFuzzer target: the device-URL policy (parse_http_url, check_device_url,
// parse_ipv4_strict, printable_excerpt). The first byte picks the gateway and LAN the
// URL is checked against (bit 7: allow the LAN subnet); the rest is the URL.
// Properties: an accepted URL is on the gateway, or in the LAN when allowed, and never
// on loopback, link-local, 0/8, multicast or 240/4 unless that is the gateway the
// caller chose itself; check_device_url accepts nothing parse_http_url refuses; a
// parsed URL is canonical and survives to_string() -> parse; every IPv4 literal that
// parses is printed back as itself (no octal, short or integer forms).
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include <fmt/format.h>

#include "codec/url_check.hpp"
#include "fuzz_check.hpp"

using namespace porthole::detail;

namespace {

struct Policy {
  const char* gateway;
  const char* local;
  int prefix;
};
// The lab's LAN, a /8, a /12, host routes, the loopback gateway of tests with fakes,
// and a gateway that is not an address at all.
constexpr Policy kPolicies[] = {
    {"192.168.1.1", "192.168.1.100", 24}, {"10.0.0.1", "10.20.30.40", 8},
    {"172.16.0.1", "172.16.5.5", 12},     {"192.168.1.1", "192.168.1.100", 32},
    {"192.168.1.1", "192.168.1.100", 31}, {"192.168.1.1", "192.168.1.100", 30},
    {"127.0.0.1", "127.0.0.1", 8},        {"192.168.1.1", "192.168.1.100", 7},
    {"gateway", "192.168.1.100", 24},     {"0.0.0.0", "192.168.1.100", 24},
};
constexpr std::size_t kPolicyCount = sizeof(kPolicies) / sizeof(kPolicies[0]);

std::string dotted(std::uint32_t a) {
  return fmt::format("{}.{}.{}.{}", a >> 24, (a >> 16) & 0xff, (a >> 8) & 0xff, a & 0xff);
}

bool in(std::uint32_t a, std::uint32_t net, int prefix) {
  std::uint32_t mask = prefix == 0 ? 0 : ~std::uint32_t{0} << (32 - prefix);
  return (a & mask) == (net & mask);
}

bool never_a_device(std::uint32_t a) {
  return in(a, 0x00000000, 8) || in(a, 0x7f000000, 8) || in(a, 0xa9fe0000, 16) ||
         in(a, 0xe0000000, 4) || in(a, 0xf0000000, 4);
}

void check_parsed(std::string_view url, const HttpUrl& u) {
  PORTHOLE_FUZZ_CHECK(url.size() <= kMaxDeviceUrlLength);
  auto host = parse_ipv4_strict(u.host);
  PORTHOLE_FUZZ_CHECK(host && dotted(*host) == u.host);
  PORTHOLE_FUZZ_CHECK(u.port != 0);
  PORTHOLE_FUZZ_CHECK(!u.path.empty() && u.path.front() == '/');
  for (char ch : u.path) {
    auto c = static_cast<unsigned char>(ch);
    PORTHOLE_FUZZ_CHECK(c > 0x20 && c < 0x7f && c != '\\' && c != '#');
  }
  auto again = parse_http_url(u.to_string());
  PORTHOLE_FUZZ_CHECK(again.ok());
  PORTHOLE_FUZZ_CHECK(again->host == u.host && again->port == u.port && again->path == u.path);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  const Policy& policy = kPolicies[(data[0] & 0x7f) % kPolicyCount];
  const bool allow_lan = (data[0] & 0x80) != 0;
  const std::string_view url(reinterpret_cast<const char*>(data + 1), size - 1);

  auto parsed = parse_http_url(url);
  if (parsed) check_parsed(url, *parsed);
  auto checked = check_device_url(url, policy.gateway, allow_lan, policy.local, policy.prefix,
                                  "LOCATION");

  if (!checked) {
    const auto code = checked.error().code;
    PORTHOLE_FUZZ_CHECK(code == porthole::Errc::no_service || code == porthole::Errc::internal);
  } else {
    PORTHOLE_FUZZ_CHECK(parsed.ok());
    PORTHOLE_FUZZ_CHECK(checked->host == parsed->host && checked->port == parsed->port &&
                        checked->path == parsed->path);
    const std::uint32_t host = *parse_ipv4_strict(checked->host);
    auto gateway = parse_ipv4_strict(policy.gateway);
    PORTHOLE_FUZZ_CHECK(gateway.has_value());
    // Never a network, a multicast group or 240/4, not even as the gateway.
    PORTHOLE_FUZZ_CHECK(!in(host, 0x00000000, 8) && !in(host, 0xe0000000, 4) &&
                        !in(host, 0xf0000000, 4));
    if (host != *gateway) {
      // Off the gateway: only inside the LAN when allowed, never loopback and the like,
      // never this host itself or the LAN's network / broadcast address.
      PORTHOLE_FUZZ_CHECK(allow_lan && policy.prefix >= 8 && policy.prefix <= 32);
      const std::uint32_t local = *parse_ipv4_strict(policy.local);
      PORTHOLE_FUZZ_CHECK(in(host, local, policy.prefix));
      PORTHOLE_FUZZ_CHECK(host != local);
      PORTHOLE_FUZZ_CHECK(!never_a_device(host));
      if (policy.prefix <= 30) {
        const std::uint32_t hostmask = ~std::uint32_t{0} >> policy.prefix;
        PORTHOLE_FUZZ_CHECK((host & hostmask) != 0 && (host & hostmask) != hostmask);
      }
    }
    // Loopback only ever when the caller's own gateway is on loopback.
    if (!in(*gateway, 0x7f000000, 8)) PORTHOLE_FUZZ_CHECK(!in(host, 0x7f000000, 8));
  }

  // Any text that parses as a strict dotted quad prints back as itself.
  if (auto a = parse_ipv4_strict(url)) PORTHOLE_FUZZ_CHECK(dotted(*a) == url);

  // Excerpts for messages: printable ASCII only, bounded.
  const std::string excerpt = printable_excerpt(url, 64);
  PORTHOLE_FUZZ_CHECK(excerpt.size() <= 64 * 4 + 3);
  for (char ch : excerpt) {
    auto c = static_cast<unsigned char>(ch);
    PORTHOLE_FUZZ_CHECK(c >= 0x20 && c < 0x7f);
  }
  return 0;
}
