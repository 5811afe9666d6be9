// porthole::hold: the keeper (core/hold_keeper.hpp) on a reactor that sleeps until the
// earliest due renewal or check, an announcement, a hook exiting, or the stop fd;
// protocol exchanges on worker threads that post their results back to it.
#include "porthole/hold.hpp"

#include <sys/eventfd.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include <algorithm>
#include <array>
#include <memory>
#include <mutex>
#include <thread>

#include <fmt/format.h>
#include "codec/ip_address_format.hpp"
#include "porthole/text.hpp"

#include "core/hold_announce.hpp"
#include "core/hold_hook.hpp"
#include "core/hold_keeper.hpp"
#include "core/hold_schedule.hpp"
#include "codec/pcp_codec.hpp"
#include "core/session.hpp"
#include "core/state_intent.hpp"
#include "core/stun_servers.hpp"
#include "net/resolve.hpp"
#include "proto/stun_client.hpp"

namespace porthole {

const char* hold_event_name(HoldEventKind kind) noexcept {
  switch (kind) {
    case HoldEventKind::mapped: return "mapped";
    case HoldEventKind::renewed: return "renewed";
    case HoldEventKind::lost: return "lost";
    case HoldEventKind::remapped: return "re-mapped";
    case HoldEventKind::external_address_changed: return "external-address-changed";
    case HoldEventKind::protocol_switched: return "protocol-switched";
    case HoldEventKind::error: return "error";
    case HoldEventKind::released: return "released";
    case HoldEventKind::ready: return "ready";
    case HoldEventKind::stopping: return "stopping";
  }
  return "unknown";
}

namespace detail {
namespace {

using std::chrono::milliseconds;

constexpr Clock::time_point kNever = Clock::time_point::max();
// UPnP permanent leases have no renewal: look at the entry this often instead.
constexpr milliseconds kPermanentCheck{300000};
// RFC 6887 s14.1.3 asks clients to spread their reaction to an ANNOUNCE over a random
// delay; a LAN with a handful of hosts needs little of it.
constexpr milliseconds kAnnounceSpread{500};
// Work due this close together shares one wake-up.
constexpr milliseconds kCoalesce{500};
// How long a STUN address check may take (three transmissions, RFC 8489 s6.2.1).
constexpr milliseconds kStunDeadline{3000};
// UPnP removals at stop: this many in flight at once. A small router accepts few
// connections at a time (miniupnpd listens with a backlog of 5); a connection beyond
// that loses its SYN and waits for TCP's 1 s retransmission. In the lab 40 removals
// took 0.06-0.12 s at 4, 1.07 s at 8, 1.3-2.1 s at 16, 0.16-0.21 s one after the other.
constexpr std::size_t kUpnpRemovers = 4;

}  // namespace

Keeper::~Keeper() {
  if (wake_timer_ != 0) reactor_.cancel(wake_timer_);
  if (hook_fd_watched_ >= 0) reactor_.unwatch(hook_fd_watched_);
  if (announce_) reactor_.unwatch(announce_->fd());
}

void Keeper::event(HoldEventKind kind, const Held* h, std::string message,
                   std::optional<Error> error) {
  if (!emit_) return;
  HoldEvent e;
  e.kind = kind;
  if (h) {
    e.port = h->req.port;
    if (h->mapped || kind == HoldEventKind::released || kind == HoldEventKind::lost)
      e.mapping = h->mapping;
  }
  e.error = std::move(error);
  e.message = std::move(message);
  emit_(e);
}

void Keeper::reset_client(Protocol p) {
  // A fresh client: rediscovers the IGD (miniupnpd's HTTP port can change on restart),
  // or starts PCP's epoch bookkeeping over after a reboot was seen.
  switch (p) {
    case Protocol::pcp: s_.pcp = s_.new_client(p); break;
    case Protocol::natpmp: break;  // keeps no state between calls
    case Protocol::upnp: s_.upnp = s_.new_client(p); break;
  }
}

std::vector<Protocol> Keeper::order_for(const Held& h) const {
  return protocol_order(h.req.via, h.last_protocol);  // as `open` tries them
}

detail::MapParams Keeper::params_for(const Held& h, Protocol p) const {
  detail::MapParams m;
  m.transport = h.req.port.transport;
  m.internal_ip = s_.gateway.local_ip;
  m.internal_port = h.req.port.port;
  m.suggested_external_port = h.req.external_port.value_or(h.req.port.port);
  // Keep the port we had (a reboot must not move the service elsewhere if avoidable).
  if (h.ever_mapped && h.mapping.external_port != 0)
    m.suggested_external_port = h.mapping.external_port;
  m.lifetime = h.req.lifetime;
  m.lifetime = lease_for(p, m.lifetime);  // as `open` asks
  m.description = h.req.description;
  if (p == Protocol::pcp && h.has_nonce) {
    m.have_nonce = true;
    m.nonce = h.nonce;
    if (h.last_protocol == Protocol::pcp) m.suggested_external_ip = h.mapping.external_ip;
  }
  return m;
}

void Keeper::load_prior() {
  auto store = detail::StateStore::open(state_dir_for(s_.options), call_deadline());
  if (!store) return;  // reported by record() when it matters
  for (auto& h : held_) {
    auto prior = store->find(s_.gateway.gateway_ip, s_.gateway.local_ip, h.req.port.transport,
                             h.req.port.port);
    if (!prior) continue;
    // A mapping an earlier run (or `open`) made: refresh it where it lives, with its
    // nonce, instead of adding a second one elsewhere.
    h.last_protocol = prior->mapping.protocol;
    h.has_nonce = prior->has_nonce;
    h.nonce = prior->nonce;
    if (!h.req.external_port) h.mapping.external_port = prior->mapping.external_port;
    h.mapping.external_ip = prior->mapping.external_ip;
    h.ever_mapped = h.mapping.external_port != 0;
  }
}

void Keeper::record(const Held& h, bool remove) {
  // Written once per wake-up (flush_state), not once per mapping: with hundreds of
  // ports, a save per renewal would rewrite the whole file hundreds of times.
  std::size_t idx = static_cast<std::size_t>(&h - held_.data());
  dirty_.emplace_back(idx, remove);
}

void Keeper::flush_state() {
  if (dirty_.empty()) return;
  auto store = detail::StateStore::open(state_dir_for(s_.options), call_deadline());
  Status st = ok_status();
  if (!store) {
    st = store.error();
  } else {
    for (const auto& [idx, remove] : dirty_) {
      const Held& h = held_[idx];
      if (remove) {
        store->remove(s_.gateway.gateway_ip, s_.gateway.local_ip, h.req.port.transport,
                      h.req.port.port);
        continue;
      }
      detail::StoredMapping rec;
      rec.mapping = h.mapping;
      rec.gateway = s_.gateway.gateway_ip;
      rec.has_nonce = h.mapping.protocol == Protocol::pcp;
      rec.nonce = h.nonce;
      store->upsert(rec);
    }
    st = store->save();
  }
  dirty_.clear();
  if (!st)
    event(HoldEventKind::error, nullptr,
          fmt::format("state file not updated: {}", st.error().message), st.error());
}

void Keeper::attempt(Held& h) {
  if (h.mapped && now() < h.expires) {
    renew(h);
  } else {
    if (h.mapped)
      mark_lost(h, make_error(Errc::timeout,
                              "its lease ran out before a renewal "
                              "succeeded"));
    create(h);
  }
}

void Keeper::mark_lost(Held& h, const Error& why) {
  h.mapped = false;
  event(HoldEventKind::lost, &h,
        fmt::format("{}/{} via {}: {}", h.req.port.port, transport_name(h.req.port.transport),
                    protocol_name(h.mapping.protocol), why.message),
        why);
}

void Keeper::create(Held& h) {
  std::vector<Error> errors;
  for (Protocol p : order_for(h)) {
    auto idx = static_cast<std::size_t>(p);
    if (silent_in_round_[idx] == round_) {
      errors.push_back(make_error(Errc::no_service,
                                  fmt::format("{}: did not answer just now", protocol_name(p))));
      continue;
    }
    if (p == Protocol::pcp && !h.has_nonce) {
      // Our own nonce, chosen before the MAP, so the state has it before the router
      // does (RFC 6887 s11.1): a mapping only its creating nonce deletes (RFC 6887 s15)
      // is never left on the router without it.
      auto nonce = StateStore::new_nonce();
      if (!nonce) {
        errors.push_back(nonce.error());
        continue;
      }
      h.nonce = *nonce;
      h.has_nonce = true;
    }
    const MapParams params = params_for(h, p);
    // The intent, before anything is asked (as `open` writes it): killed at any later
    // point, the state still says what may be on the router. A state that cannot be
    // written stops us here, with nothing sent.
    const StoredMapping intent = map_intent(s_, p, params,
                                            h.last_protocol == p ? h.mapping.external_ip
                                                                 : std::nullopt);
    std::optional<StoredMapping> prior;
    if (auto st = update_state(s_, call_deadline(),
                               [&](StateStore& store) {
                                 prior = store.find(intent.gateway, intent.mapping.internal_ip,
                                                    intent.mapping.transport,
                                                    intent.mapping.internal_port);
                                 store.upsert(intent);
                               });
        !st) {
      Error e = st.error();
      e.message = fmt::format("state file not updated: {}; nothing was sent", e.message);
      errors.push_back(std::move(e));
      continue;
    }
    test_pause_at("hold-intent");
    if (p == Protocol::upnp) s_.upnp->refresh_external_ip();
    auto client = s_.client(p);
    auto done = off_loop<Result<MapOutcome>>(
        [client, params, d = call_deadline()] { return client->map(params, d); });
    if (!done) return;  // stopping: the intent stays, for `list` and `close`
    auto& mapped = *done;
    if (mapped) {
      test_pause_at("hold-mapped");  // answered, outcome not yet recorded
      if (h.has_nonce && p == Protocol::pcp && mapped->nonce != h.nonce) h.has_nonce = false;
      granted(h, std::move(*mapped), p);
      return;
    }
    Error e = mapped.error();
    e.message = fmt::format("{}: {}", protocol_name(p), e.message);
    if (e.code == Errc::no_service || e.code == Errc::timeout) {
      silent_in_round_[idx] = round_;
      reset_client(p);
      // The request may have arrived and its answer got lost: the intent stays.
    } else {
      restore_prior(s_, call_deadline(), intent, prior);  // refused: nothing was made
    }
    errors.push_back(std::move(e));
  }
  failed(h,
         make_error(detail::combined_errc(errors),
                    [&] {
                      std::string m;
                      for (const auto& e : errors) m += (m.empty() ? "" : "; ") + e.message;
                      return m;
                    }()),
         false);
}

void Keeper::renew(Held& h) {
  Protocol p = h.mapping.protocol;
  if (p == Protocol::upnp) s_.upnp->refresh_external_ip();
  auto client = s_.client(p);
  auto done = off_loop<Result<MapOutcome>>(
      [client, params = params_for(h, p), d = call_deadline()] { return client->map(params, d); });
  if (!done) return;  // stopping
  auto& mapped = *done;
  if (!mapped) {
    if (mapped.error().code == Errc::no_service || mapped.error().code == Errc::timeout)
      reset_client(p);
    failed(h, mapped.error(), true);
    return;
  }
  granted(h, std::move(*mapped), p);
}

void Keeper::granted(Held& h, detail::MapOutcome outcome, Protocol p) {
  // RFC 6887 s8.5, RFC 6886 s3.6, on every reply: an epoch that did not advance with our
  // clock since the last grant means the server lost its state (rebooted). This reply
  // made our mapping again; every other one through that server has to be made again.
  const bool state_lost = h.mapped && p != Protocol::upnp && h.mapping.protocol == p &&
                          !detail::pcp::epoch_is_valid(h.grant_epoch, outcome.epoch, h.granted_at,
                                                       now());
  const bool was_mapped = h.mapped && !state_lost;
  const bool was_ever = h.ever_mapped;
  const std::optional<Protocol> before = h.last_protocol;
  const std::optional<IpAddress> old_ip = h.mapping.external_ip;
  const std::uint16_t old_port = h.mapping.external_port;

  h.mapping = outcome.mapping;
  const std::optional<IpAddress> reported = h.mapping.external_ip;
  if (h.reported_ip && reported != h.reported_ip) stun_ip_.reset();
  h.reported_ip = reported;
  if (stun_ip_ && reported) h.mapping.external_ip = *stun_ip_;
  if (p == Protocol::pcp) {
    h.nonce = outcome.nonce;
    h.has_nonce = true;
  }
  h.mapped = h.ever_mapped = true;
  h.last_protocol = p;
  h.backoff = milliseconds(0);
  h.granted_at = now();
  h.grant_epoch = outcome.epoch;
  const std::uint32_t life = h.mapping.lifetime;
  h.expires = life == 0 ? kNever : h.granted_at + std::chrono::seconds(life);
  std::vector<double> r(8);
  for (auto& x : r) x = random01();
  h.renewals = detail::hold_renewal_points(p, life, r);
  h.next_renewal = 0;
  h.due = h.renewals.empty() ? kNever : h.granted_at + h.renewals[0];
  h.check_due = kNever;
  if (p == Protocol::upnp) {
    milliseconds every = req_.check_every;
    if (every.count() <= 0 && life == 0) every = kPermanentCheck;
    if (every.count() > 0) h.check_due = h.granted_at + every;
  }
  record(h, false);

  std::string what = fmt::format("{}/{} -> {}:{} via {}, lifetime {}", h.req.port.port,
                                 transport_name(h.req.port.transport),
                                 h.mapping.external_ip ? h.mapping.external_ip->to_string() : "?",
                                 h.mapping.external_port, protocol_name(p),
                                 life == 0 ? std::string("permanent") : fmt::format("{} s", life));
  if (was_mapped && before == p) {
    event(HoldEventKind::renewed, &h, what);
  } else if (!was_ever) {
    event(HoldEventKind::mapped, &h, what);
  } else if (before && *before != p) {
    HoldEvent e;
    e.kind = HoldEventKind::protocol_switched;
    e.port = h.req.port;
    e.mapping = h.mapping;
    e.previous_protocol = before;
    e.message = fmt::format("{} no longer answers: now {}", protocol_name(*before), what);
    if (emit_) emit_(e);
  } else {
    event(HoldEventKind::remapped, &h, what);
  }
  for (const auto& w : outcome.warnings) event(HoldEventKind::error, &h, "warning: " + w);

  if (state_lost || (p == Protocol::pcp && s_.pcp->server_lost_state())) {
    s_.log(LogLevel::info, fmt::format("{} server epoch went back to {}: it lost its "
                                       "mappings; making every one again",
                                       protocol_name(p), outcome.epoch));
    if (p == Protocol::pcp) reset_client(Protocol::pcp);
    for (auto& other : held_)
      if (&other != &h && other.mapped && other.mapping.protocol != Protocol::upnp)
        other.due = now();
  }
  if (was_ever && old_ip && h.mapping.external_ip &&
      (old_ip != h.mapping.external_ip || old_port != h.mapping.external_port))
    address_changed(h, *old_ip, old_port);
}

void Keeper::failed(Held& h, const Error& e, bool was_mapped) {
  const auto t = now();
  if (was_mapped) {
    // RFC 6887 s11.2.1: the later retries of the schedule, while the lease lasts.
    while (++h.next_renewal < h.renewals.size() && h.granted_at + h.renewals[h.next_renewal] <= t) {
    }
    if (h.next_renewal < h.renewals.size()) {
      h.due = h.granted_at + h.renewals[h.next_renewal];
      HoldEvent ev;
      ev.kind = HoldEventKind::error;
      ev.port = h.req.port;
      ev.mapping = h.mapping;
      ev.error = e;
      ev.retry_in = std::chrono::duration_cast<milliseconds>(h.due - t);
      ev.message = fmt::format("renewing {}/{} via {} failed: {}; next try in {} s",
                               h.req.port.port, transport_name(h.req.port.transport),
                               protocol_name(h.mapping.protocol), e.message,
                               ev.retry_in->count() / 1000);
      if (emit_) emit_(ev);
      return;
    }
    // No retry left before expiry: it is as good as gone; look for it elsewhere.
    mark_lost(h, e);
    create(h);
    return;
  }
  h.backoff = detail::next_backoff(h.backoff, req_.retry_min, req_.retry_max);
  h.due = t + h.backoff;
  HoldEvent ev;
  ev.kind = HoldEventKind::error;
  ev.port = h.req.port;
  ev.error = e;
  ev.retry_in = h.backoff;
  ev.message = fmt::format("could not map {}/{} ({}); trying again in {} s", h.req.port.port,
                           transport_name(h.req.port.transport), e.message,
                           static_cast<double>(h.backoff.count()) / 1000.0);
  if (emit_) emit_(ev);
}

void Keeper::check_upnp(Held& h) {
  auto every = req_.check_every.count() > 0 ? req_.check_every : kPermanentCheck;
  h.check_due = now() + every;
  auto upnp = s_.upnp;
  auto found = off_loop<Result<std::optional<UpnpEntry>>>(
      [upnp, t = h.req.port.transport, port = h.mapping.external_port, d = call_deadline()] {
        return upnp->find(t, port, d);
      });
  if (!found) return;  // stopping
  auto& entry = *found;
  if (!entry) {
    // The IGD may have moved (new HTTP port after a restart): discover it again.
    reset_client(Protocol::upnp);
    return;
  }
  const bool ours = entry->has_value() &&
                    (*entry)->internal_ip == s_.gateway.local_ip.to_string() &&
                    (*entry)->internal_port == h.req.port.port;
  if (!ours) {
    mark_lost(h, make_error(Errc::no_service, entry->has_value()
                                                  ? "the router's entry points elsewhere now"
                                                  : "the router has no such entry any more"));
    create(h);
    return;
  }
  // GetExternalIPAddress on every check: the address may change under a permanent lease.
  s_.upnp->refresh_external_ip();
  auto probed = off_loop<Result<ProbeInfo>>([upnp, d = call_deadline()] { return upnp->probe(d); });
  if (!probed) return;  // stopping
  auto& info = *probed;
  if (info && info->external_ip && info->external_ip != h.reported_ip) {
    stun_ip_.reset();
    const std::optional<IpAddress> old_ip = h.mapping.external_ip;
    h.mapping.external_ip = h.reported_ip = info->external_ip;
    record(h, false);
    if (old_ip && old_ip != h.mapping.external_ip)
      address_changed(h, *old_ip, h.mapping.external_port);
  }
}

void Keeper::address_changed(Held& h, const IpAddress& old_ip, std::uint16_t old_port) {
  HoldEvent e;
  e.kind = HoldEventKind::external_address_changed;
  e.port = h.req.port;
  e.mapping = h.mapping;
  e.previous_external_ip = old_ip;
  e.previous_external_port = old_port;
  e.message = fmt::format("{}/{}: external address {}:{} -> {}:{}", h.req.port.port,
                          transport_name(h.req.port.transport), old_ip, old_port,
                          text_of(h.mapping.external_ip), h.mapping.external_port);
  if (emit_) emit_(e);
  if (hook_)
    hook_->enqueue({{"PORTHOLE_EXTERNAL_IP", text_of(h.mapping.external_ip)},
                    {"PORTHOLE_EXTERNAL_PORT", std::to_string(h.mapping.external_port)},
                    {"PORTHOLE_INTERNAL_PORT", std::to_string(h.req.port.port)},
                    {"PORTHOLE_TRANSPORT", transport_name(h.req.port.transport)},
                    {"PORTHOLE_PROTOCOL", protocol_name(h.mapping.protocol)}});
  report_hooks();  // a hook that could not even start is reported now
}

void Keeper::report_hooks() {
  if (!hook_) return;
  for (const auto& o : hook_->finish()) {
    if (o.ok) {
      s_.log(LogLevel::info, "--on-change hook finished");
      continue;
    }
    event(HoldEventKind::error, nullptr, "--on-change hook " + o.message,
          make_error(Errc::internal, "--on-change hook " + o.message));
  }
}

void Keeper::on_announcement() {
  while (true) {
    // Drains what is queued: an already-passed deadline would not even look.
    auto d = announce_->receive(Clock::now() + milliseconds(1));  // a socket wait: real time
    if (!d) return;
    if (d->from.ip != s_.gateway.gateway_ip) continue;  // only our gateway speaks for it
    auto a = detail::parse_announcement(d->bytes);
    if (!a) continue;
    s_.log(LogLevel::info, fmt::format("{} announcement from {} (epoch {}): renewing every mapping",
                                       protocol_name(a->protocol), d->from.ip, a->epoch));
    // A restart or an address change: every mapping may be gone or changed. RFC 6887
    // s14.1.3: renew them (after a small random delay); PCP epochs start over.
    if (a->protocol == Protocol::pcp) reset_client(Protocol::pcp);
    const auto t = now();
    for (auto& h : held_) {
      // RFC 6887 s8.5 / RFC 6886 s3.6: an epoch that did not advance with our clock
      // since the grant means the server lost its state (restart, or a new external
      // address, after which PCP servers reset their epoch). PCP and NAT-PMP share one
      // server here: either announcement speaks for both.
      if (h.mapped && h.mapping.protocol != Protocol::upnp &&
          !detail::pcp::epoch_is_valid(h.grant_epoch, a->epoch, h.granted_at, t))
        mark_lost(h, make_error(Errc::no_service,
                                fmt::format("the router restarted or changed its external "
                                            "address (epoch {} after {} when mapped)",
                                            a->epoch, h.grant_epoch)));
      auto at = t + milliseconds(static_cast<long>(random01() * kAnnounceSpread.count()));
      if (h.mapped && h.mapping.protocol == Protocol::upnp) {
        h.check_due = std::min(h.check_due, at);
      } else {
        h.due = std::min(h.due, at);
        h.backoff = milliseconds(0);
      }
    }
  }
}

void Keeper::verify_external() {
  verify_due_ = now() + req_.verify_every;
  auto servers = detail::configured_stun_servers(s_.options);
  if (!servers) {
    event(HoldEventKind::error, nullptr, "--verify-every: " + servers.error().message,
          servers.error());
    return;
  }
  for (const auto& entry : *servers) {
    const std::string& text = entry.name;
    auto ip = detail::resolve_ipv4(entry.where.host);
    if (!ip) continue;
    detail::StunClientOptions so;
    so.log = s_.options.log;
    detail::StunBindingQuery q;
    q.server = {*ip, entry.where.port};
    auto asked = off_loop<Result<StunBinding>>([so, q, d = now() + kStunDeadline] {
      detail::StunClient client(so);
      return client.binding(q, d);
    });
    if (!asked) return;  // stopping
    auto& b = *asked;
    if (!b) continue;
    const IpAddress& seen = b->mapped.ip;
    bool router_agrees = true;
    for (const auto& h : held_)
      if (h.mapped && h.reported_ip && h.reported_ip != seen) router_agrees = false;
    stun_ip_.reset();
    if (!router_agrees) {
      stun_ip_ = seen;
      s_.log(LogLevel::info, fmt::format("STUN {} sees external address {}, the router "
                                         "reports another",
                                         text, seen));
    }
    // A mapping whose address is not the one STUN sees: ask the router again. The
    // renewal reports the router's new address, or (when it still disagrees) STUN's.
    for (auto& h : held_)
      if (h.mapped && h.mapping.external_ip && h.mapping.external_ip != seen) renew(h);
    return;
  }
  event(HoldEventKind::error, nullptr, "--verify-every: no STUN server answered",
        make_error(Errc::no_service, "no STUN server answered"));
}

template <class T>
std::optional<T> Keeper::off_loop(std::function<T()> job) {
  // The result and the eventfd that says it is there, shared with the worker: a
  // worker left behind at a stop still has somewhere to put its answer.
  struct Slot {
    std::mutex mu;
    std::optional<T> value;
    int fd = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    ~Slot() {
      if (fd >= 0) ::close(fd);
    }
  };
  if (reactor_.stopping()) return std::nullopt;  // nothing new once stopping
  auto slot = std::make_shared<Slot>();
  if (slot->fd < 0) return job();  // no eventfd: on the loop, as before
  std::thread([slot, job = std::move(job)] {
    T v = job();
    {
      std::lock_guard lock(slot->mu);
      slot->value.emplace(std::move(v));
    }
    notify_fd(slot->fd);
  }).detach();
  bool done = false;
  reactor_.watch(slot->fd, true, false, [&done](bool, bool) { done = true; });
  Status st = reactor_.run_until([&done] { return done; });
  reactor_.unwatch(slot->fd);
  if (!done) {
    if (!st) reactor_.stop();  // poll failed: end the loop, hold reports nothing more
    return std::nullopt;
  }
  std::lock_guard lock(slot->mu);
  return std::move(slot->value);
}

Status Keeper::release() {
  event(HoldEventKind::stopping, nullptr, "removing every mapping");
  // Every removal at once, each on its own worker, all bounded by one deadline: a
  // silent router costs one --timeout, not one per mapping. PCP and NAT-PMP removals
  // each get a client of their own (a client keeps per-server state); UPnP ones share
  // the IGD found while holding, at most kUpnpRemovers at a time.
  const Deadline deadline = call_deadline();
  struct Removal {
    std::size_t index;
    std::optional<Status> result;
  };
  struct Shared {
    std::mutex mu;
    std::vector<Removal> removals;
    std::size_t finished = 0;
    int fd = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    ~Shared() {
      if (fd >= 0) ::close(fd);
    }
  };
  auto shared = std::make_shared<Shared>();
  std::vector<std::size_t> upnp_removals;
  for (std::size_t i = 0; i < held_.size(); ++i) {
    if (!held_[i].mapped) continue;
    if (held_[i].mapping.protocol == Protocol::upnp)
      upnp_removals.push_back(shared->removals.size());
    shared->removals.push_back({i, std::nullopt});
  }
  auto finish = [shared](std::size_t k, Status st) {
    {
      std::lock_guard lock(shared->mu);
      shared->removals[k].result.emplace(std::move(st));
      ++shared->finished;
    }
    notify_fd(shared->fd);
  };
  for (std::size_t k = 0; k < shared->removals.size(); ++k) {
    const Held& h = held_[shared->removals[k].index];
    if (h.mapping.protocol == Protocol::upnp) continue;
    std::shared_ptr<PortMapper> client = s_.new_client(h.mapping.protocol);
    std::thread([finish, k, client, m = h.mapping, nonce = h.nonce, deadline] {
      finish(k, client->unmap(m, nonce, deadline));
    }).detach();
  }
  if (!upnp_removals.empty()) {
    struct Queue {
      std::mutex mu;
      std::vector<std::pair<std::size_t, Mapping>> work;
      std::size_t next = 0;
    };
    auto queue = std::make_shared<Queue>();
    for (std::size_t k : upnp_removals)
      queue->work.emplace_back(k, held_[shared->removals[k].index].mapping);
    // Takes the next removal off the queue and sends it, until none is left.
    auto drain = [finish, queue, client = s_.upnp, deadline](bool until_one_succeeds) {
      for (;;) {
        std::pair<std::size_t, Mapping> item;
        {
          std::lock_guard lock(queue->mu);
          if (queue->next == queue->work.size()) return;
          item = queue->work[queue->next++];
        }
        Status st = client->unmap(item.second, Nonce{}, deadline);
        const bool done = st.ok();
        finish(item.first, std::move(st));
        if (until_one_succeeds && done) return;
      }
    };
    std::thread([drain] {
      // One removal alone first: it finds the IGD should this client not know it yet
      // (after a reset); from then on the client's device is only read, and each
      // removal's SOAP exchanges go over connections of their own, so up to
      // kUpnpRemovers of them run at once.
      drain(true);
      std::vector<std::thread> more;
      for (std::size_t i = 1; i < kUpnpRemovers; ++i) more.emplace_back(drain, false);
      drain(false);
      for (auto& t : more) t.join();
    }).detach();
  }
  // Wait for them all, or the deadline (and a little: the workers' own waits end by it).
  bool late = false;
  const auto limit = reactor_.add_timer(deadline + milliseconds(500), [&late] { late = true; });
  reactor_.watch(shared->fd, true, false, [fd = shared->fd](bool, bool) { drain_fd(fd); });
  const std::size_t total = shared->removals.size();
  Status loop = reactor_.run_until([&] {
    std::lock_guard lock(shared->mu);
    return late || shared->finished == total;
  });
  reactor_.unwatch(shared->fd);
  reactor_.cancel(limit);

  std::vector<Error> errors;
  std::vector<Removal> outcome;
  {
    std::lock_guard lock(shared->mu);
    outcome = shared->removals;
  }
  for (const Removal& r : outcome) {
    Held& h = held_[r.index];
    std::optional<Error> err;
    if (!r.result)
      err = make_error(Errc::timeout,
                       fmt::format("no answer within {} ms", s_.options.timeout.count()));
    else if (!*r.result)
      err = r.result->error();
    // The router granted this mapping, so silence now is a timeout after an answer
    // (exit 5), even though the removal's own client had not heard from it yet.
    if (err && err->code == Errc::no_service && err->protocol_code == 0) err->code = Errc::timeout;
    if (err) {
      Error e = *err;
      e.message = fmt::format("could not remove {}/{} via {}: {}", h.req.port.port,
                              transport_name(h.req.port.transport),
                              protocol_name(h.mapping.protocol), e.message);
      event(HoldEventKind::error, &h, e.message, e);
      errors.push_back(std::move(e));
      continue;
    }
    h.mapped = false;
    record(h, true);
    event(HoldEventKind::released, &h,
          fmt::format("{}/{} (external {} via {})", h.req.port.port,
                      transport_name(h.req.port.transport), h.mapping.external_port,
                      protocol_name(h.mapping.protocol)));
  }
  flush_state();
  if (!loop) return loop;
  if (errors.empty()) return ok_status();
  if (errors.size() == 1) return errors.front();
  // One exit status for them all (as `open` joins its protocols' failures), and the
  // count: the rest stay in the state file for `porthole close`.
  return make_error(combined_errc(errors),
                    fmt::format("{} of {} mappings not removed (kept in the state file: "
                                "`porthole close` retries them); first: {}",
                                errors.size(), total, errors.front().message));
}

void Keeper::start() {
  for (const auto& r : req_.mappings) {
    Held h;
    h.req = r;
    h.due = now();
    held_.push_back(std::move(h));
  }
  load_prior();
  if (!req_.on_change.empty()) hook_.emplace(req_.on_change, req_.hook_timeout);
  if (req_.announce_port != 0) {
    auto sock = detail::open_announce_listener(s_.gateway.local_ip, req_.announce_port);
    if (sock)
      announce_.emplace(std::move(*sock));
    else
      event(HoldEventKind::error, nullptr,
            "not listening for router announcements (reboots are noticed at the next "
            "renewal): " +
                sock.error().message,
            sock.error());
  }
  if (announce_)
    reactor_.watch(announce_->fd(), true, false, [this](bool, bool) {
      // Handled in step(), never in the middle of one (an exchange in flight turns the
      // loop too): the keeper's state changes in one place at a time. Until then the
      // datagram waits unread, so nobody listens to the fd (arm() listens again).
      reactor_.set_interest(announce_->fd(), false, false);
      announce_ready_ = true;
      if (!in_step_) arm();
    });
  if (req_.verify_every.count() > 0) verify_due_ = now() + req_.verify_every;
  arm();
}

void Keeper::step() {
  in_step_ = true;
  if (announce_ready_) {
    announce_ready_ = false;
    on_announcement();
    flush_state();
  }
  ++round_;
  // What falls due within kCoalesce is done in this wake-up too (a little early, still
  // inside every renewal window): hundreds of ports need tens of wake-ups, not hundreds.
  const auto horizon = now() + kCoalesce;
  for (auto& h : held_) {
    if (reactor_.stopping()) break;
    if (h.due <= horizon || (h.mapped && h.expires <= now())) attempt(h);
    if (reactor_.stopping()) break;
    if (h.mapped && h.mapping.protocol == Protocol::upnp && h.check_due <= horizon) check_upnp(h);
  }
  if (!ready_sent_ && !reactor_.stopping()) {
    ready_sent_ = true;
    event(HoldEventKind::ready, nullptr,
          fmt::format("every port had its first try ({} ports)", held_.size()));
  }
  if (!reactor_.stopping() && verify_due_ <= now()) verify_external();
  flush_state();
  report_hooks();
  in_step_ = false;
  if (!reactor_.stopping()) arm();
}

void Keeper::arm() {
  // Sleep until the earliest due moment: one reactor timer, no polling loop.
  Clock::time_point wake = verify_due_;
  for (const auto& h : held_) {
    wake = std::min(wake, h.due);
    if (h.mapped) wake = std::min(wake, std::min(h.check_due, h.expires));
  }
  if (hook_ && hook_->wake_at()) wake = std::min(wake, *hook_->wake_at());
  if (announce_ready_) wake = now();
  if (wake_timer_ != 0) reactor_.cancel(wake_timer_);
  wake_timer_ = 0;
  if (wake != kNever)
    wake_timer_ = reactor_.add_timer(wake, [this] {
      wake_timer_ = 0;
      step();
    });
  // The running hook's pidfd (a new one per run): its exit is reported at once.
  const int hook_fd = hook_ ? hook_->fd() : -1;
  if (hook_fd != hook_fd_watched_) {
    if (hook_fd_watched_ >= 0) reactor_.unwatch(hook_fd_watched_);
    hook_fd_watched_ = hook_fd;
    if (hook_fd >= 0)
      reactor_.watch(hook_fd, true, false, [this, hook_fd](bool, bool) {
        reactor_.set_interest(hook_fd, false, false);  // step() or this reaps it
        if (in_step_) return;                          // step() reports it at its end
        report_hooks();
        arm();
      });
  }
  if (hook_fd_watched_ >= 0) reactor_.set_interest(hook_fd_watched_, true, false);
  if (announce_ && !announce_ready_) reactor_.set_interest(announce_->fd(), true, false);
}

Status Keeper::run(int stop_fd) {
  start();
  reactor_.stop_on(stop_fd);
  Status st = reactor_.run();
  reactor_.unwatch(stop_fd);
  if (wake_timer_ != 0) reactor_.cancel(wake_timer_);
  wake_timer_ = 0;
  if (announce_) reactor_.unwatch(announce_->fd());
  if (hook_fd_watched_ >= 0) reactor_.unwatch(hook_fd_watched_);
  hook_fd_watched_ = -1;
  hook_.reset();  // a hook still running is killed with its process group
  if (!st) return st;
  reactor_.clear_stop();  // the release phase turns the loop once more
  return release();
}

}  // namespace detail

Status hold(const Options& options, const HoldRequest& request, const HoldEventFn& on_event,
            int stop_fd) {
  if (request.mappings.empty()) return make_error(Errc::usage, "hold needs at least one port");
  for (const auto& m : request.mappings) {
    if (auto st = check_description(m.description); !st) return st;
    if (auto st = detail::check_ports(m.port, m.external_port); !st) return st.error();
  }
  for (std::size_t i = 0; i < request.mappings.size(); ++i)
    for (std::size_t j = i + 1; j < request.mappings.size(); ++j)
      if (request.mappings[i].port.port == request.mappings[j].port.port &&
          request.mappings[i].port.transport == request.mappings[j].port.transport)
        return make_error(Errc::usage,
                          fmt::format("{}/{} is given twice", request.mappings[i].port.port,
                                      transport_name(request.mappings[i].port.transport)));
  if (request.retry_min.count() <= 0 || request.retry_max < request.retry_min)
    return make_error(Errc::usage, "the retry back-off must be positive, minimum <= maximum");
  if (stop_fd < 0) return make_error(Errc::usage, "hold needs a stop file descriptor");
  auto session = detail::open_session(options);
  if (!session) return session.error();
  detail::Reactor reactor;
  detail::Keeper keeper(*session, request, on_event, reactor);
  return keeper.run(stop_fd);
}

}  // namespace porthole
