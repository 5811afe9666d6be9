// porthole::open and porthole::close: the mapping core.
#include <algorithm>

#include <fmt/format.h>
#include "porthole/text.hpp"

#include "core/session.hpp"
#include "net/ipv4_class.hpp"
#include "state/state_store.hpp"

namespace porthole {
namespace {

using detail::StoredMapping;

// After one protocol answered, how long a higher-ranked one may still take
// (on a real router all three answer within a few ms of each other).
constexpr std::chrono::milliseconds kProbeGrace{300};
Error labelled(Protocol p, const Error& e) {
  Error out = e;
  out.message = fmt::format("{}: {}", protocol_name(p), e.message);
  return out;
}

Error combine(const std::string& what, const std::vector<Error>& errors) {
  std::string msg = what;
  for (const auto& e : errors) msg += "\n  " + e.message;
  int code = 0;
  auto errc = detail::combined_errc(errors);
  for (const auto& e : errors)
    if (e.code == errc && e.protocol_code != 0) {
      code = e.protocol_code;
      break;
    }
  return make_error(errc, msg, code);
}

}  // namespace

Result<OpenResult> open(const Options& options, const OpenRequest& req) {
  if (auto st = detail::check_ports(req.port, req.external_port); !st) return st.error();
  if (auto st = check_description(req.description); !st) return st.error();
  auto session = detail::open_session(options);
  if (!session) return session.error();
  auto& s = *session;
  auto store = detail::open_state(s);
  if (!store) return store.error();

  const std::string& me = s.gateway.local_ip;
  auto prior = store->find(s.gateway.gateway_ip, me, req.port.transport, req.port.port);
  if (prior)
    s.log(LogLevel::debug,
          fmt::format("state: {} {} already mapped via {} on external port {}",
                      transport_name(req.port.transport), req.port.port,
                      protocol_name(prior->mapping.protocol), prior->mapping.external_port));

  detail::MapParams base;
  base.transport = req.port.transport;
  base.internal_ip = me;
  base.internal_port = req.port.port;
  std::uint16_t wanted = req.external_port.value_or(req.port.port);
  base.suggested_external_port = wanted;
  if (prior && !req.external_port) base.suggested_external_port = prior->mapping.external_port;
  base.lifetime = req.lifetime;
  base.description = req.description;

  auto order = detail::protocol_order(
      req.via, prior ? std::optional<Protocol>(prior->mapping.protocol) : std::nullopt);
  std::optional<detail::ProbeRace> race;
  if (req.via == Via::automatic) race.emplace(s, order);

  std::vector<Error> errors;
  for (Protocol p : order) {
    bool answered_probe = false;
    if (race) {
      auto o = race->await(p, kProbeGrace);
      if (!o.finished) {
        errors.push_back(labelled(p, make_error(Errc::no_service,
                                                "no answer while another protocol did")));
        continue;
      }
      if (!o.result->ok()) {
        errors.push_back(labelled(p, o.result->error()));
        continue;
      }
      answered_probe = true;
    }
    detail::MapParams params = base;
    std::vector<std::string> warnings;
    if (p != Protocol::upnp && params.lifetime == 0) {
      params.lifetime = detail::lease_for(p, 0);
      warnings.push_back(fmt::format("{} has no permanent mappings: asked for {} s; run the "
                                     "same `porthole open` again (cron) before it runs out",
                                     protocol_name(p), detail::kLongestLease));
    }
    if (p == Protocol::pcp && prior && prior->mapping.protocol == Protocol::pcp &&
        prior->has_nonce) {
      params.have_nonce = true;
      params.nonce = prior->nonce;
      params.suggested_external_ip = prior->mapping.external_ip;
    }
    auto client = s.client(p);
    auto mapped = client->map(params, s.deadline);
    if (!mapped) {
      Error e = mapped.error();
      // The service answered its probe, so silence now is a timeout, not an absence.
      if (answered_probe && e.code == Errc::no_service) e.code = Errc::timeout;
      errors.push_back(labelled(p, e));
      continue;
    }
    Mapping granted = mapped->mapping;
    if (req.strict_port && granted.external_port != wanted) {
      (void)client->unmap(granted, mapped->nonce, s.deadline);
      errors.push_back(labelled(p, make_error(Errc::refused,
          fmt::format("the router assigned external port {} instead of {} and --strict-port "
                      "was given; the mapping was removed again",
                      granted.external_port, wanted))));
      continue;
    }
    // Moved to another protocol (the old one vanished): do not leave the old entry.
    if (prior && prior->mapping.protocol != p) {
      auto old = s.client(prior->mapping.protocol);
      if (auto st = old->unmap(prior->mapping, prior->nonce, s.deadline); !st)
        warnings.push_back(fmt::format("could not remove the earlier {} mapping: {}",
                                       protocol_name(prior->mapping.protocol),
                                       st.error().message));
    }
    StoredMapping rec;
    rec.mapping = granted;
    rec.gateway = s.gateway.gateway_ip;
    rec.has_nonce = p == Protocol::pcp;
    rec.nonce = mapped->nonce;
    store->upsert(rec);
    if (auto st = store->save(); !st) return st.error();

    OpenResult result;
    // The router may assign another port (RFC 6887 s11.3, AddAnyPortMapping, NAT-PMP):
    // fine, but the user must hear of it.
    if (granted.external_port != base.suggested_external_port)
      warnings.push_back(fmt::format("external port {} is not available; the router "
                                     "assigned {} instead", base.suggested_external_port,
                                     granted.external_port));
    // A reserved external address (miniupnpc's GetValidIGD returns 2 for it) still
    // maps, but the internet may not reach it: say so, whatever the protocol.
    if (!granted.external_ip.empty() && detail::is_reserved_ipv4(granted.external_ip))
      warnings.push_back(fmt::format(
          "the router's external address {} is private/reserved: it probably sits behind "
          "another NAT (double NAT or CGNAT), so the internet may not reach this mapping",
          granted.external_ip));
    result.mapping = granted;
    result.refreshed = prior && prior->mapping.protocol == p &&
                       prior->mapping.external_port == granted.external_port;
    result.warnings = std::move(warnings);
    for (auto& w : mapped->warnings) result.warnings.push_back(std::move(w));
    return result;
  }
  return combine(fmt::format("could not open {}/{}:", req.port.port,
                             transport_name(req.port.transport)),
                 errors);
}

Result<CloseResult> close(const Options& options, const CloseRequest& req) {
  if (auto st = detail::check_ports(req.port, req.external_port); !st) return st.error();
  auto session = detail::open_session(options);
  if (!session) return session.error();
  auto& s = *session;
  auto store = detail::open_state(s);
  if (!store) return store.error();
  const std::string& me = s.gateway.local_ip;
  CloseResult result;

  auto prior = store->find(s.gateway.gateway_ip, me, req.port.transport, req.port.port);
  if (prior && (!req.external_port || prior->mapping.external_port == *req.external_port)) {
    auto st = s.client(prior->mapping.protocol)->unmap(prior->mapping, prior->nonce, s.deadline);
    if (!st) return labelled(prior->mapping.protocol, st.error());
    store->remove(s.gateway.gateway_ip, me, req.port.transport, req.port.port);
    if (auto saved = store->save(); !saved) return saved.error();
    result.removed.push_back(prior->mapping);
    return result;
  }

  // Nothing recorded here (another state dir, or a mapping made by another tool):
  // the UPnP table is the one place that tells who holds what.
  auto table = s.upnp->list(s.deadline);
  if (!table) {
    result.warnings.push_back(fmt::format(
        "no mapping of ours is recorded for {}/{}, and the router's UPnP table cannot be "
        "read ({}): nothing to close", req.port.port, transport_name(req.port.transport),
        table.error().message));
    return result;
  }
  std::uint16_t ext_wanted = req.external_port.value_or(req.port.port);
  std::vector<detail::UpnpEntry> foreign;
  for (const auto& e : table->entries) {
    if (e.transport != req.port.transport) continue;
    bool mine = e.internal_ip == me && e.internal_port == req.port.port &&
                (!req.external_port || e.external_port == *req.external_port);
    if (mine) {
      Mapping m = e.mapping();
      auto st = s.upnp->unmap(m, detail::Nonce{}, s.deadline);
      if (!st) return labelled(Protocol::upnp, st.error());
      result.removed.push_back(m);
    } else if (e.external_port == ext_wanted && e.internal_ip != me) {
      foreign.push_back(e);
    }
  }
  if (result.removed.empty() && !foreign.empty()) {
    const auto& f = foreign.front();
    return make_error(Errc::refused,
                      fmt::format("external {} port {} is mapped to another host ({}:{}, "
                                  "\"{}\"); porthole only removes this host's mappings, so it "
                                  "was left alone", transport_name(f.transport),
                                  f.external_port, f.internal_ip, f.internal_port,
                                  f.description));
  }
  if (result.removed.empty())
    result.warnings.push_back(fmt::format("no mapping of this host for {}/{}: nothing to close",
                                          req.port.port, transport_name(req.port.transport)));
  return result;
}

}  // namespace porthole
