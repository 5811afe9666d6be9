// porthole::close_all (include/porthole/porthole.hpp) and its selection
// (core/close_all.hpp).
#include "core/close_all.hpp"

#include <algorithm>
#include <tuple>

#include <fmt/format.h>

#include "codec/ip_address_format.hpp"
#include "core/session.hpp"
#include "porthole/porthole.hpp"

namespace porthole {
namespace detail {

bool via_selects(Via via, Protocol made) noexcept {
  switch (via) {
    case Via::automatic: return true;
    case Via::pcp: return made == Protocol::pcp;
    case Via::natpmp: return made == Protocol::natpmp;
    case Via::upnp: return made == Protocol::upnp;
  }
  return false;
}

CloseAllPlan plan_close_all(const std::vector<StoredMapping>& stored, const IpAddress& gateway,
                            const IpAddress& me, Via via) {
  CloseAllPlan plan;
  for (const auto& m : stored) {
    if (!via_selects(via, m.mapping.protocol)) continue;
    if (m.gateway == gateway && m.mapping.internal_ip == me)
      plan.close.push_back(m);
    else
      plan.elsewhere.push_back(m);
  }
  auto key = [](const StoredMapping& m) {
    return std::make_tuple(static_cast<int>(m.mapping.transport), m.mapping.internal_port);
  };
  std::stable_sort(plan.close.begin(), plan.close.end(),
                   [&](const StoredMapping& a, const StoredMapping& b) { return key(a) < key(b); });
  return plan;
}

}  // namespace detail

Result<CloseAllResult> close_all(const Options& options, const CloseAllRequest& request) {
  auto session = detail::open_session(options);
  if (!session) return session.error();
  CloseAllResult result;
  detail::CloseAllPlan plan;
  {
    // Read under the lock, then let it go: each close() below takes it again.
    auto store = detail::open_state(*session);
    if (!store) return store.error();
    result.state_file = store->file();
    plan = detail::plan_close_all(store->mappings(), session->gateway.gateway_ip,
                                  session->gateway.local_ip, request.via);
  }
  for (const auto& m : plan.elsewhere)
    result.warnings.push_back(fmt::format(
        "{}/{} (via {}) was made on gateway {} from {}, not reachable from here: left in the "
        "state",
        m.mapping.internal_port, transport_name(m.mapping.transport),
        protocol_name(m.mapping.protocol), m.gateway, m.mapping.internal_ip));
  Options each = options;
  each.gateway = session->gateway.gateway_ip;  // the same gateway for every one of them
  for (const auto& m : plan.close) {
    CloseRequest req;
    req.port = {m.mapping.internal_port, m.mapping.transport};
    req.external_port = m.mapping.external_port;
    // A mapping recorded before its answer came may sit on another external port.
    if (m.pending) req.external_port.reset();
    req.via = request.via;
    result.items.push_back(
        CloseAllItem{req.port, m.mapping.protocol, m.mapping.external_port, close(each, req)});
  }
  return result;
}

}  // namespace porthole
