// Addresses in tests, written as text: ip("192.0.2.1") is the parsed IpAddress. A literal
// that does not parse is a bug in the test, so it aborts.
#pragma once

#include <cstdlib>
#include <string_view>

#include "porthole/ip_address.hpp"

namespace porthole::test {

inline IpAddress ip(std::string_view text) {
  auto parsed = IpAddress::parse(text);
  if (!parsed) std::abort();
  return *parsed;
}

}  // namespace porthole::test

namespace porthole {

// Checks read best with the text: CHECK(reply.observed_ip == "192.0.2.1"). Found by
// argument-dependent lookup, also for std::optional<IpAddress> (nullopt equals no text).
inline bool operator==(const IpAddress& address, std::string_view text) {
  return address.to_string() == text;
}

}  // namespace porthole
