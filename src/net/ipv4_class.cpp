#include "net/ipv4_class.hpp"

#include <cstdint>

namespace porthole::detail {
namespace {

bool parse(const IpAddress& ip, std::uint32_t& out) {
  if (!ip.is_v4()) return false;
  const auto b = ip.bytes();
  out = std::uint32_t{b[0]} << 24 | std::uint32_t{b[1]} << 16 | std::uint32_t{b[2]} << 8 | b[3];
  return true;
}

bool in(std::uint32_t addr, std::uint32_t net, int prefix) {
  std::uint32_t mask = prefix == 0 ? 0 : ~std::uint32_t{0} << (32 - prefix);
  return (addr & mask) == (net & mask);
}

bool unusable(std::uint32_t a) {
  return a == 0 || in(a, 0x7f000000, 8) || in(a, 0xe0000000, 4) || a == 0xffffffff;
}

bool reserved(std::uint32_t a) {
  struct Net {
    std::uint32_t net;
    int prefix;
  };
  static constexpr Net kReserved[] = {
      {0x00000000, 8},  {0x0a000000, 8},  {0x64400000, 10}, {0x7f000000, 8},  {0xa9fe0000, 16},
      {0xac100000, 12}, {0xc0000000, 24}, {0xc0000200, 24}, {0xc0a80000, 16}, {0xc6120000, 15},
      {0xc6336400, 24}, {0xcb007100, 24}, {0xe0000000, 4},  {0xf0000000, 4},
  };
  for (const auto& r : kReserved)
    if (in(a, r.net, r.prefix)) return true;
  return false;
}

}  // namespace

bool is_unusable_external_ip(std::string_view ip) {
  const auto parsed = IpAddress::parse(ip);
  return !parsed.ok() || is_unusable_external_ip(*parsed);
}

bool is_unusable_external_ip(const IpAddress& ip) {
  std::uint32_t a = 0;
  return !parse(ip, a) || unusable(a);
}

bool is_reserved_ipv4(std::string_view ip) {
  const auto parsed = IpAddress::parse(ip);
  return !parsed.ok() || is_reserved_ipv4(*parsed);
}

bool is_reserved_ipv4(const IpAddress& ip) {
  std::uint32_t a = 0;
  return !parse(ip, a) || reserved(a);
}

}  // namespace porthole::detail
