// porthole::probe: ask all three protocols at once and report each.
#include <fmt/format.h>

#include "codec/ip_address_format.hpp"
#include "core/session.hpp"
#include "net/ipv4_class.hpp"

namespace porthole {

Result<ProbeReport> probe(const Options& options) {
  // probe reports what the network says now: UPnP is searched for, never taken from the
  // cache (and nothing is written to it).
  Options fresh = options;
  fresh.upnp_cache = false;
  auto session = detail::open_session(fresh);
  if (!session) return session.error();
  auto& s = *session;
  const std::vector<Protocol> all = {Protocol::pcp, Protocol::natpmp, Protocol::upnp};
  detail::ProbeRace race(s, all);

  ProbeReport report;
  report.gateway = s.gateway.gateway_ip;
  report.local_ip = s.gateway.local_ip;
  for (Protocol p : all) {
    auto o = race.await(p, std::nullopt);
    ProtocolProbe pp;
    pp.protocol = p;
    pp.elapsed = o.elapsed;
    if (o.finished && o.result && o.result->ok()) {
      pp.available = true;
      pp.external_ip = o.result->value().external_ip;
    } else if (o.finished && o.result) {
      pp.error = o.result->error();
    } else {
      pp.error = make_error(Errc::no_service, "no answer before the deadline");
    }
    report.protocols.push_back(std::move(pp));
  }

  // One external address, as the protocols that can tell report it.
  std::optional<IpAddress> ext;
  for (const auto& pp : report.protocols)
    if (pp.available && pp.external_ip) ext = pp.external_ip;
  bool any = false;
  for (const auto& pp : report.protocols) any = any || pp.available;
  if (any && !ext)
    report.warnings.emplace_back(
        "the gateway reports no external address: it probably sits behind another NAT "
        "(CGNAT), and mappings will be refused");
  else if (ext && detail::is_reserved_ipv4(*ext))
    report.warnings.push_back(fmt::format(
        "the gateway's external address {} is private/reserved: it probably sits behind "
        "another NAT (double NAT or CGNAT)",
        *ext));
  return report;
}

}  // namespace porthole
