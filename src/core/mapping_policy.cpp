#include "core/mapping_policy.hpp"

#include <algorithm>

namespace porthole::detail {

std::vector<Protocol> protocol_order(Via via, std::optional<Protocol> prior) {
  switch (via) {
    case Via::pcp: return {Protocol::pcp};
    case Via::natpmp: return {Protocol::natpmp};
    case Via::upnp: return {Protocol::upnp};
    case Via::automatic: break;
  }
  std::vector<Protocol> order = {Protocol::pcp, Protocol::natpmp, Protocol::upnp};
  if (prior) {
    std::erase(order, *prior);
    order.insert(order.begin(), *prior);
  }
  return order;
}

std::uint32_t lease_for(Protocol p, std::uint32_t requested) noexcept {
  return p != Protocol::upnp && requested == 0 ? kLongestLease : requested;
}

Status check_ports(const PortSpec& port, const std::optional<std::uint16_t>& external) {
  if (port.port == 0) return make_error(Errc::usage, "port 0 is not a port: use 1-65535");
  if (external && *external == 0)
    return make_error(Errc::usage, "external port 0 is not a port: use 1-65535");
  return ok_status();
}

Errc combined_errc(const std::vector<Error>& errors) {
  bool timeout = false;
  for (const auto& e : errors) {
    if (e.code == Errc::refused) return Errc::refused;
    if (e.code == Errc::timeout) timeout = true;
    if (e.code == Errc::internal || e.code == Errc::state || e.code == Errc::usage) return e.code;
  }
  return timeout ? Errc::timeout : Errc::no_service;
}

std::string state_dir_for(const Options& options) {
  return options.state_dir.empty() ? default_state_dir() : options.state_dir;
}

}  // namespace porthole::detail
