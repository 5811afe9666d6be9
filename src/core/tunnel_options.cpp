// The parts of include/porthole/tunnel.hpp that are plain rules: option checks, the
// allow list, event names. The tunnel itself is in src/tunnel/.
#include <algorithm>

#include "porthole/tunnel.hpp"

namespace porthole {

const char* tunnel_event_name(TunnelEventType type) noexcept {
  switch (type) {
    case TunnelEventType::ready: return "ready";
    case TunnelEventType::mapping: return "mapping";
    case TunnelEventType::peer_connected: return "peer-connected";
    case TunnelEventType::peer_refused: return "peer-refused";
    case TunnelEventType::peer_gone: return "peer-gone";
    case TunnelEventType::connected: return "connected";
    case TunnelEventType::listening: return "listening";
    case TunnelEventType::path_lost: return "path-lost";
    case TunnelEventType::reconnected: return "reconnected";
  }
  return "unknown";
}

Status check_expose_options(const ExposeOptions& options) {
  if (options.ports.empty()) return make_error(Errc::usage, "expose: name at least one port");
  if (options.allow.empty() && !options.allow_any)
    return make_error(Errc::usage,
                      "expose: name the peers to let in (--allow PEER_ID), or --allow-any");
  auto to = IpAddress::parse(options.to);
  if (!to || !to->is_v4())
    return make_error(Errc::usage, "--to '" + options.to + "': want an IPv4 address");
  for (std::size_t i = 0; i < options.ports.size(); ++i)
    for (std::size_t j = 0; j < i; ++j)
      if (options.ports[i] == options.ports[j])
        return make_error(Errc::usage, "port " + to_string(options.ports[i]) + " named twice");
  if (options.punch.rendezvous.empty())
    return make_error(Errc::usage, "expose: --rendezvous is required");
  return ok_status();
}

bool expose_allows(const ExposeOptions& options, const PeerId& peer) {
  if (options.allow_any) return true;
  return std::find(options.allow.begin(), options.allow.end(), peer) != options.allow.end();
}

}  // namespace porthole
