// fmt support for IpAddress and Endpoint inside the library: "{}" formats them as their
// to_string() does, so log and error texts read as they did when the fields were text.
// (Kept out of include/porthole/ip_address.hpp: the public headers do not need fmt.)
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include <fmt/format.h>

#include "porthole/ip_address.hpp"

namespace porthole::detail {

// The text of an address that may be unknown: "" when it is (as the fields were).
inline std::string text_of(const std::optional<IpAddress>& ip) {
  return ip ? ip->to_string() : std::string();
}

}  // namespace porthole::detail

template <>
struct fmt::formatter<porthole::IpAddress> : fmt::formatter<std::string_view> {
  template <typename FormatContext>
  auto format(const porthole::IpAddress& ip, FormatContext& ctx) const {
    return fmt::formatter<std::string_view>::format(ip.to_string(), ctx);
  }
};

template <>
struct fmt::formatter<porthole::Endpoint> : fmt::formatter<std::string_view> {
  template <typename FormatContext>
  auto format(const porthole::Endpoint& endpoint, FormatContext& ctx) const {
    return fmt::formatter<std::string_view>::format(endpoint.to_string(), ctx);
  }
};
