// porthole::list: the router's UPnP table (ours marked) plus our PCP/NAT-PMP mappings.
#include <ctime>

#include <fmt/format.h>

#include "core/session.hpp"
#include "state/state_store.hpp"

namespace porthole {

Result<ListResult> list(const Options& options) {
  auto session = detail::open_session(options);
  if (!session) return session.error();
  auto& s = *session;
  std::vector<detail::StoredMapping> records;
  {
    auto store = detail::open_state(s);  // read, then let the lock go before the network
    if (!store) return store.error();
    records = store->mappings();
  }
  const IpAddress& me = s.gateway.local_ip;
  ListResult result;

  // Our own records first: PCP and NAT-PMP mappings cannot be listed any other way.
  auto now = static_cast<std::int64_t>(std::time(nullptr));
  struct Recorded {
    Mapping mapping;
    bool pending;  // written before the router answered: its external port may differ
  };
  std::vector<Recorded> recorded;
  for (const auto& rec : records) {
    if (rec.gateway != s.gateway.gateway_ip) continue;
    Mapping m = rec.mapping;
    if (m.expires_at > 0)
      m.lifetime = static_cast<std::uint32_t>(std::max<std::int64_t>(0, m.expires_at - now));
    recorded.push_back({m, rec.pending});
  }

  auto table = s.upnp->list(s.deadline);
  if (!table) {
    result.warnings.push_back(
        fmt::format("the router's UPnP table cannot be read ({}); "
                    "showing only porthole's own records",
                    table.error().message));
    // No UPnP at all leaves nothing unread; a UPnP device that failed (or the deadline)
    // leaves its whole table unread.
    if (table.error().code != Errc::no_service) {
      result.complete = false;
      result.incomplete = table.error();
    }
  } else {
    if (!table->complete) {
      result.complete = false;
      result.incomplete = table->stopped;
      result.warnings.push_back(fmt::format(
          "the router's UPnP table was not read to its end ({}); {} of its rows are shown",
          table->stopped ? table->stopped->message : "stopped", table->entries.size()));
    }
    for (const auto& e : table->entries) {
      ListedMapping lm;
      lm.ours = e.internal_ip == me.to_string();
      lm.confirmed = true;
      lm.mapping = e.mapping();
      if (!IpAddress::parse(e.internal_ip)) lm.internal_client_text = e.internal_ip;
      Mapping& m = lm.mapping;
      m.lifetime = e.lease;
      m.expires_at = e.lease ? now + e.lease : 0;
      // miniupnpd lists PCP and NAT-PMP mappings in its UPnP table too: show such an
      // entry once, as the protocol that made it.
      auto same = std::find_if(recorded.begin(), recorded.end(), [&](const Recorded& rec) {
        const Mapping& r = rec.mapping;
        return r.transport == m.transport && (rec.pending || r.external_port == m.external_port) &&
               r.internal_ip == m.internal_ip && r.internal_port == m.internal_port;
      });
      if (same != recorded.end()) {
        std::uint16_t real_port = m.external_port;
        lm.mapping = same->mapping;
        lm.mapping.external_port = real_port;  // the router's word, for a pending record
        recorded.erase(same);
      }
      result.mappings.push_back(std::move(lm));
    }
  }
  // Records the router's table does not show: not confirmed (the router restarted,
  // someone removed them, or porthole was killed before the router answered).
  for (auto& rec : recorded) {
    ListedMapping lm;
    lm.ours = rec.mapping.internal_ip == me;
    if (table) lm.confirmed = false;
    lm.mapping = std::move(rec.mapping);
    result.mappings.push_back(std::move(lm));
  }
  // The external address for UPnP rows, when the router tells it.
  if (auto info = s.upnp->probe(s.deadline); info && info->external_ip)
    for (auto& lm : result.mappings)
      if (!lm.mapping.external_ip) lm.mapping.external_ip = info->external_ip;
  return result;
}

}  // namespace porthole
