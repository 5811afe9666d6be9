// porthole::open and porthole::close: the mapping core.
#include <algorithm>
#include <ctime>
#include <functional>
#include <utility>
#include <set>

#include <fmt/format.h>
#include "codec/ip_address_format.hpp"
#include "porthole/text.hpp"

#include "core/close_all.hpp"
#include "core/session.hpp"
#include "net/ipv4_class.hpp"
#include "core/state_intent.hpp"
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

// What the state says before anything is sent: the record for this port, and the
// external ports we already hold for other internal ports (same gateway, same
// transport, any protocol), which must never be silently taken over.
struct StateView {
  std::optional<StoredMapping> prior;
  std::set<std::uint16_t> taken;
  // The store still open (and locked), kept for the intent when nothing goes out on
  // the network before it (see open()): one read of the file instead of two.
  std::optional<detail::StateStore> store;
};

// keep_open: the caller writes its intent before any network exchange.
Result<StateView> read_state(const detail::Session& s, Transport transport,
                             std::uint16_t internal_port, bool keep_open) {
  // Unless kept, the lock is dropped again at the end of this call.
  auto store = detail::open_state(s);
  if (!store) return store.error();
  StateView view;
  view.prior = store->find(s.gateway.gateway_ip, s.gateway.local_ip, transport, internal_port);
  for (const auto& m : store->mappings())
    if (m.gateway == s.gateway.gateway_ip && m.mapping.transport == transport &&
        !(m.mapping.internal_ip == s.gateway.local_ip && m.mapping.internal_port == internal_port))
      view.taken.insert(m.mapping.external_port);
  if (keep_open) view.store.emplace(std::move(*store));
  return view;
}

// What open and close both start from: the session, then what the state says of the
// port (read before anything is sent).
struct Started {
  detail::Session session;
  StateView view;
};

// before_state, when set, runs on the session before the state is read (and locked).
Result<Started> start(const Options& options, const PortSpec& port, bool keep_open = false,
                      const std::function<void(const detail::Session&)>& before_state = {}) {
  auto session = detail::open_session(options);
  if (!session) return session.error();
  if (before_state) before_state(*session);
  auto view = read_state(*session, port.transport, port.port, keep_open);
  if (!view) return view.error();
  return Started{std::move(*session), std::move(*view)};
}

// The state steps (core/state_intent.hpp), with this call's deadline.
template <class Change>
Status update_state(const detail::Session& s, Change&& change) {
  return detail::update_state(s, s.deadline, std::forward<Change>(change));
}
Status record(const detail::Session& s, const StoredMapping& rec) {
  return detail::record_mapping(s, s.deadline, rec);
}
Status record_intent(const detail::Session& s, const StoredMapping& intent) {
  return detail::record_intent(s, s.deadline, intent);
}
// With the store read_state kept open, the intent goes into it and the lock is let
// go before the request is sent.
Status record_intent(const detail::Session& s, const StoredMapping& intent,
                     std::optional<detail::StateStore>& kept) {
  if (!kept) return record_intent(s, intent);
  std::optional<detail::StateStore> store = std::move(kept);
  kept.reset();
  return detail::record_intent(*store, intent);
}
void restore(const detail::Session& s, const StoredMapping& intent,
             const std::optional<StoredMapping>& prior) {
  detail::restore_prior(s, s.deadline, intent, prior);
}

// The router's UPnP row for this host's internal port (miniupnpd lists PCP and NAT-PMP
// mappings there too): an error when the table cannot be read, nullopt when absent.
Result<std::optional<detail::UpnpEntry>> router_row(const detail::Session& s, Transport transport,
                                                    std::uint16_t internal_port,
                                                    std::optional<std::uint16_t> external) {
  auto table = s.upnp->list(s.deadline);
  if (!table) return table.error();
  for (const auto& e : table->entries)
    if (e.transport == transport && e.internal_ip == s.gateway.local_ip.to_string() &&
        e.internal_port == internal_port && (!external || e.external_port == *external))
      return std::optional<detail::UpnpEntry>{e};
  return std::optional<detail::UpnpEntry>{};
}

// A PCP MAP for `m` with `nonce` and a lifetime of 120 s (the least miniupnpd grants),
// then its delete with the same nonce: what remains on the router afterwards is nothing.
Status reassert_and_delete(const detail::Session& s, const Mapping& m, const detail::Nonce& nonce) {
  detail::MapParams params;
  params.transport = m.transport;
  params.internal_ip = m.internal_ip;
  params.internal_port = m.internal_port;
  params.suggested_external_port = m.external_port;
  params.lifetime = 120;
  params.description = m.description;
  params.have_nonce = true;
  params.nonce = nonce;
  auto mapped = s.pcp->map(params, s.deadline);
  if (!mapped) return mapped.error();
  return s.pcp->unmap(mapped->mapping, nonce, s.deadline);
}

// A UPnP router answers GetSpecificPortMappingEntry with the lease left: a second
// boundary may have passed since the mapping was made.
constexpr std::uint32_t kLeaseReadSlack = 1;

// The lease the router really granted, read back after the record was written (the
// question went out right after the mapping: caller_reads_lease), and the record made
// true when it differs. Without an answer the lease asked stays, as map() would keep it.
void read_back_lease(const detail::Session& s, detail::PortMapper& client, StoredMapping& rec,
                     std::vector<std::string>& warnings) {
  Mapping& m = rec.mapping;
  auto entry = client.find(m.transport, m.external_port, s.deadline);
  if (!entry || !entry->has_value()) return;
  const std::uint32_t lease = (*entry)->lease;
  if (lease <= m.lifetime && m.lifetime - lease <= kLeaseReadSlack) return;
  m.lifetime = lease;
  m.expires_at = lease ? std::time(nullptr) + lease : 0;
  if (auto st = record(s, rec); !st)
    warnings.push_back(
        fmt::format("the router granted a lease of {} s, but the state could "
                    "not be updated to it: {}",
                    lease, st.error().message));
}

}  // namespace

Result<OpenResult> open(const Options& options, const OpenRequest& req) {
  if (auto st = detail::check_ports(req.port, req.external_port); !st) return st.error();
  if (auto st = check_description(req.description); !st) return st.error();
  // Without a probe race nothing but questions is sent before the first intent: the
  // store read for the prior record takes that intent too. With --via upnp the
  // questions for the port asked go out even before that read (ask_ahead), so the
  // router answers them while the state is read and the intent written.
  std::optional<std::uint16_t> asked_ahead;  // the external port they name
  auto ask_first = [&](const detail::Session& s) {
    if (req.via != Via::upnp) return;
    detail::MapParams guess;
    guess.transport = req.port.transport;
    guess.internal_port = req.port.port;
    guess.suggested_external_port = req.external_port.value_or(req.port.port);
    s.client(Protocol::upnp)->ask_ahead(guess, s.deadline);
    asked_ahead = guess.suggested_external_port;
  };
  auto started = start(options, req.port, req.via != Via::automatic, ask_first);
  if (!started) return started.error();
  auto& s = started->session;
  StateView& view = started->view;
  const auto& prior = view.prior;

  const IpAddress& me = s.gateway.local_ip;
  if (prior)
    s.log(LogLevel::debug,
          fmt::format("state: {} {} already mapped via {} on external port {}{}",
                      transport_name(req.port.transport), req.port.port,
                      protocol_name(prior->mapping.protocol), prior->mapping.external_port,
                      prior->pending ? " (not confirmed)" : ""));

  detail::MapParams base;
  base.transport = req.port.transport;
  base.internal_ip = me;
  base.internal_port = req.port.port;
  std::uint16_t wanted = req.external_port.value_or(req.port.port);
  base.suggested_external_port = wanted;
  if (prior && !req.external_port) base.suggested_external_port = prior->mapping.external_port;
  // An external port we already hold for another internal port: asking for it would
  // make the router (UPnP AddPortMapping, a PCP MAP with a new nonce) move our own
  // mapping over, and the state would no longer say what the router does.
  std::vector<std::string> early_warnings;
  if (view.taken.count(base.suggested_external_port)) {
    std::uint16_t busy = base.suggested_external_port;
    if (req.strict_port)
      return make_error(Errc::refused,
                        fmt::format("external {} port {} is already porthole's mapping for "
                                    "another internal port (see `porthole list`) and "
                                    "--strict-port was given: nothing was sent",
                                    transport_name(req.port.transport), busy));
    std::uint16_t next = busy;
    do next = static_cast<std::uint16_t>(next == 65535 ? 1024 : next + 1);
    while (view.taken.count(next) && next != busy);
    base.suggested_external_port = next;
    early_warnings.push_back(
        fmt::format("external port {} is already porthole's mapping for "
                    "another internal port; asked for {} instead",
                    busy, next));
  }
  base.lifetime = req.lifetime;
  base.description = req.description;

  auto order = detail::protocol_order(req.via,
                                      prior ? std::optional<Protocol>(prior->mapping.protocol)
                                            : std::nullopt);
  std::optional<detail::ProbeRace> race;
  if (req.via == Via::automatic) race.emplace(s, order);

  std::vector<Error> errors;
  for (Protocol p : order) {
    bool answered_probe = false;
    if (race) {
      auto o = race->await(p, kProbeGrace);
      if (!o.finished) {
        errors.push_back(
            labelled(p, make_error(Errc::no_service, "no answer while another protocol did")));
        continue;
      }
      if (!o.result->ok()) {
        errors.push_back(labelled(p, o.result->error()));
        continue;
      }
      answered_probe = true;
    }
    detail::MapParams params = base;
    params.caller_reads_lease = true;
    std::vector<std::string> warnings = early_warnings;
    if (p != Protocol::upnp && params.lifetime == 0) {
      params.lifetime = detail::lease_for(p, 0);
      warnings.push_back(
          fmt::format("{} has no permanent mappings: asked for {} s; run the "
                      "same `porthole open` again (cron) before it runs out",
                      protocol_name(p), detail::kLongestLease));
    }
    bool refresh = prior && prior->mapping.protocol == p;
    if (p == Protocol::pcp && refresh && prior->has_nonce) {
      params.have_nonce = true;
      params.nonce = prior->nonce;
      params.suggested_external_ip = prior->mapping.external_ip;
    } else if (p == Protocol::pcp) {
      auto nonce = detail::StateStore::new_nonce();
      if (!nonce) return nonce.error();
      params.have_nonce = true;
      params.nonce = *nonce;
    }
    // The questions that change nothing go out first (UPnP: the external address, what
    // is on the wanted port) and are answered while the intent is written; unless they
    // went before the state was read and name the port still wanted. The store kept
    // open is let go first: no lock is held over a network exchange (the intent then
    // reads the state afresh, while the router works).
    auto client = s.client(p);
    if (client->asks_ahead() && asked_ahead != params.suggested_external_port) {
      view.store.reset();
      client->ask_ahead(params, s.deadline);
    }
    // The intent, before anything is changed: killed or failing at any later point, the
    // state still says what may be on the router (and, for PCP, the nonce that can
    // delete it, RFC 6887 s15). A state that cannot be written stops us here.
    StoredMapping intent = detail::map_intent(s, p, params,
                                              refresh ? prior->mapping.external_ip : std::nullopt);
    if (auto st = record_intent(s, intent, view.store); !st) return st.error();
    detail::test_pause_at("open-intent");
    auto mapped = client->map(params, s.deadline);
    if (!mapped) {
      restore(s, intent, prior);
      Error e = mapped.error();
      // The service answered its probe, so silence now is a timeout, not an absence.
      if (answered_probe && e.code == Errc::no_service) e.code = Errc::timeout;
      errors.push_back(labelled(p, e));
      continue;
    }
    detail::test_pause_at("open-mapped");
    Mapping granted = mapped->mapping;
    if (req.strict_port && granted.external_port != wanted) {
      // (A refresh removed here was the prior mapping itself.)
      if (client->unmap(granted, mapped->nonce, s.deadline))
        restore(s, intent, refresh ? std::nullopt : prior);
      errors.push_back(labelled(
          p, make_error(
                 Errc::refused,
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
                                       protocol_name(prior->mapping.protocol), st.error().message));
    }
    StoredMapping rec;
    rec.mapping = granted;
    rec.gateway = s.gateway.gateway_ip;
    rec.has_nonce = p == Protocol::pcp;
    rec.nonce = mapped->nonce;
    if (auto st = record(s, rec); !st) {
      // The outcome cannot be recorded: take a new mapping back off the router, so the
      // router keeps nothing the state does not show. A refresh stays: the intent
      // already records that mapping (as not confirmed, which `list` checks).
      Error e = st.error();
      if (!refresh && client->unmap(granted, mapped->nonce, s.deadline))
        e.message += "\n  the new mapping was removed from the router again";
      else
        e.message += fmt::format(
            "\n  the router holds the mapping (external port {}); the "
            "state records it as not confirmed",
            granted.external_port);
      return e;
    }
    if (mapped->lease_unconfirmed) {
      read_back_lease(s, *client, rec, warnings);
      granted = rec.mapping;
    }

    OpenResult result;
    // The router may assign another port (RFC 6887 s11.3, AddAnyPortMapping, NAT-PMP):
    // fine, but the user must hear of it.
    if (granted.external_port != base.suggested_external_port)
      warnings.push_back(
          fmt::format("external port {} is not available; the router "
                      "assigned {} instead",
                      base.suggested_external_port, granted.external_port));
    // A reserved external address (miniupnpc's GetValidIGD returns 2 for it) still
    // maps, but the internet may not reach it: say so, whatever the protocol.
    if (granted.external_ip && detail::is_reserved_ipv4(*granted.external_ip))
      warnings.push_back(fmt::format(
          "the router's external address {} is private/reserved: it probably sits behind "
          "another NAT (double NAT or CGNAT), so the internet may not reach this mapping",
          *granted.external_ip));
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
  auto started = start(options, req.port);
  if (!started) return started.error();
  auto& s = started->session;
  const auto& prior = started->view.prior;
  const IpAddress& me = s.gateway.local_ip;
  CloseResult result;
  // --via names the protocol the mapping was made with; another one's mapping stays
  // (its record is what lets us remove it: a PCP nonce, a NAT-PMP lease).
  if (prior && !detail::via_selects(req.via, prior->mapping.protocol))
    return make_error(Errc::usage,
                      fmt::format("{}/{} was mapped via {}, not {}: left alone (close it with "
                                  "--via {} or without --via)",
                                  req.port.port, transport_name(req.port.transport),
                                  protocol_name(prior->mapping.protocol), via_name(req.via),
                                  protocol_name(prior->mapping.protocol)));
  if (!prior && req.via != Via::automatic && req.via != Via::upnp) {
    // Only UPnP has a table to look in for a mapping we have no record of.
    result.warnings.push_back(
        fmt::format("no mapping of this host via {} is recorded for {}/{}: nothing to close",
                    via_name(req.via), req.port.port, transport_name(req.port.transport)));
    return result;
  }

  if (prior && (!req.external_port || prior->mapping.external_port == *req.external_port)) {
    // The intent first: the entry becomes "not confirmed", so a kill after the delete
    // leaves an entry `list` checks against the router, and a state that cannot be
    // written stops us before the router is touched.
    StoredMapping intent = *prior;
    intent.pending = true;
    if (auto st = record_intent(s, intent); !st) return st.error();
    detail::test_pause_at("close-intent");
    Mapping target = prior->mapping;
    auto proto = prior->mapping.protocol;
    // A mapping recorded before its answer came may have got another external port:
    // the router's table says which (it is the key of a UPnP delete).
    if (prior->pending && proto == Protocol::upnp)
      if (auto row = router_row(s, req.port.transport, req.port.port, std::nullopt); row && *row)
        target.external_port = (*row)->external_port;
    auto st = s.client(proto)->unmap(target, prior->nonce, s.deadline);
    if (!st && st.error().code == Errc::refused) {
      // Refused: is it still there at all? (After a router restart, or removed by
      // someone else, miniupnpd answers a PCP delete NOT_AUTHORIZED or NO_RESOURCES.)
      // PCP has no query opcode (RFC 6887 s7), but miniupnpd lists every mapping in
      // its UPnP table.
      auto row = router_row(s, req.port.transport, req.port.port, std::nullopt);
      if (row && !*row) {
        result.warnings.push_back(fmt::format(
            "the router no longer holds the {} mapping {}/{} (it answered: {}); dropped it "
            "from the state",
            protocol_name(proto), req.port.port, transport_name(req.port.transport),
            st.error().message));
        st = ok_status();
      } else if (row && *row) {
        // It forwards to this host but our nonce does not own it (another client took
        // it over): remove it as a close without a record would, through UPnP.
        Mapping m = (*row)->mapping();
        if (auto up = s.upnp->unmap(m, detail::Nonce{}, s.deadline)) {
          result.warnings.push_back(
              fmt::format("{} would not delete {}/{} ({}); removed it through UPnP instead",
                          protocol_name(proto), req.port.port, transport_name(req.port.transport),
                          st.error().message));
          target = m;
          target.protocol = proto;
          st = ok_status();
        }
      } else if (proto == Protocol::pcp && prior->has_nonce) {
        // No UPnP table to ask. A MAP with our nonce and the shortest lifetime settles
        // it: it re-creates the mapping if the router lost it (or renews it if it is
        // ours), after which the delete with the same nonce is accepted (RFC 6887 s15).
        // If the MAP is refused too, the mapping is someone else's: report that.
        if (auto again = reassert_and_delete(s, target, prior->nonce)) {
          result.warnings.push_back(fmt::format(
              "the router would not delete {}/{} ({}), so it no longer held that mapping as "
              "ours: re-asserted it with our nonce for a moment and deleted it",
              req.port.port, transport_name(req.port.transport), st.error().message));
          st = ok_status();
        }
      }
    }
    if (!st) {
      restore(s, intent, prior);
      return labelled(proto, st.error());
    }
    detail::test_pause_at("close-unmapped");
    if (auto saved = update_state(s,
                                  [&](detail::StateStore& store) {
                                    store.remove(s.gateway.gateway_ip, me, req.port.transport,
                                                 req.port.port);
                                  });
        !saved) {
      Error e = saved.error();
      e.message +=
          "\n  the mapping was removed from the router; the state still lists it as "
          "not confirmed, and the next `porthole close` drops it";
      return e;
    }
    result.removed.push_back(target);
    return result;
  }
  // Nothing recorded here (another state dir, or a mapping made by another tool):
  // the UPnP table is the one place that tells who holds what.
  auto table = s.upnp->list(s.deadline);
  if (!table) {
    result.warnings.push_back(fmt::format(
        "no mapping of ours is recorded for {}/{}, and the router's UPnP table cannot be "
        "read ({}): nothing to close",
        req.port.port, transport_name(req.port.transport), table.error().message));
    return result;
  }
  std::uint16_t ext_wanted = req.external_port.value_or(req.port.port);
  std::vector<detail::UpnpEntry> foreign;
  for (const auto& e : table->entries) {
    if (e.transport != req.port.transport) continue;
    bool mine = e.internal_ip == me.to_string() && e.internal_port == req.port.port &&
                (!req.external_port || e.external_port == *req.external_port);
    if (mine) {
      Mapping m = e.mapping();
      auto st = s.upnp->unmap(m, detail::Nonce{}, s.deadline);
      if (!st) return labelled(Protocol::upnp, st.error());
      result.removed.push_back(m);
    } else if (e.external_port == ext_wanted && e.internal_ip != me.to_string()) {
      foreign.push_back(e);
    }
  }
  if (result.removed.empty() && !foreign.empty()) {
    const auto& f = foreign.front();
    return make_error(Errc::refused,
                      fmt::format("external {} port {} is mapped to another host ({}:{}, "
                                  "\"{}\"); porthole only removes this host's mappings, so it "
                                  "was left alone",
                                  transport_name(f.transport), f.external_port, f.internal_ip,
                                  f.internal_port, f.description));
  }
  if (result.removed.empty())
    result.warnings.push_back(fmt::format("no mapping of this host for {}/{}: nothing to close",
                                          req.port.port, transport_name(req.port.transport)));
  return result;
}

}  // namespace porthole
