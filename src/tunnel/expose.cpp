// porthole::expose() (include/porthole/tunnel.hpp): one reactor, one UDP socket in a
// UdpMux. On it: the rendezvous registration (docs/rendezvous.md), one ICE agent per
// peer that offers (the agent answers that peer's checks, by the USERNAME's ufrag, and
// proves the path), and one QUIC server connection per peer on the proven path. STUN
// goes to the rendezvous client and the agents; everything else is QUIC, handed to the
// connection of its source address (a new one for an Initial from a proven path).
//
// When one NAT maps per destination, each peer's plan (core/punch_strategy.hpp, from
// both sides' profiles, which the signed descriptions carry) is carried out as punch()
// does, by the same code (core/port_search.hpp): as the easy side, probes from the one
// socket; as the hard side, extra sockets, the one the peer's check reaches carrying
// that peer's QUIC connection, the rest closed.
//
// A peer that is not allowed is refused at the rendezvous: its offer (signed, so its
// sender is proven) is answered with a signed answer of no candidates, which tells it
// it was refused without telling it where we are; and again in TLS
// (QuicConfig::allow_peer) should it reach our socket anyway.
#include <sys/socket.h>

#include <algorithm>
#include <array>
#include <map>
#include <memory>
#include <vector>

#include <fmt/format.h>

#include "codec/rendezvous_codec.hpp"
#include "codec/stun_codec.hpp"
#include "core/candidate_gathering.hpp"
#include "core/ice_agent.hpp"
#include "core/port_search.hpp"
#include "core/punch_session.hpp"
#include "core/punch_strategy.hpp"
#include "core/stun_gathering.hpp"
#include "core/verify_from.hpp"
#include "net/bound_udp_socket.hpp"
#include "net/reactor.hpp"
#include "net/resolve.hpp"
#include "net/udp_batch.hpp"
#include "net/udp_mux.hpp"
#include "porthole/tunnel.hpp"
#include "proto/rendezvous_client.hpp"
#include "tunnel/gateway_keeper.hpp"
#include "tunnel/quic_connection.hpp"
#include "tunnel/tunnel_link.hpp"

namespace porthole {
namespace {

namespace rdv = detail::rendezvous;
using detail::Clock;
using detail::IceAgent;
using std::chrono::milliseconds;

// A rendezvous that stopped answering is registered with again after this.
constexpr milliseconds kRendezvousRetry{5000};
// The --stun servers' answers (this side's NAT profile) get at most this long; "ready"
// waits for them.
constexpr milliseconds kStunBudget{500};

struct PeerSession {
  PeerId peer;
  std::array<std::uint8_t, rdv::kSessionIdSize> session{};
  std::optional<rdv::SignedDescription> answer;
  std::string ufrag = detail::random_ice_chars(8);
  std::string password = detail::random_ice_chars(24);
  std::unique_ptr<IceAgent> agent;
  detail::Strategy strategy = detail::Strategy::direct;
  // Prediction probes or birthday sockets for this peer; it uses the agent.
  std::unique_ptr<detail::PortSearch> search;
  std::optional<detail::SelectedPath> path;
  // The link's packets go out on this socket's batch: the birthday socket the peer
  // reached, or (null) the tunnel's socket. Declared before the link, which uses it.
  std::unique_ptr<detail::UdpBatch> batch;
  std::unique_ptr<detail::TunnelLink> link;
  bool reported_connected = false;
  bool gone = false;  // to be removed at the next turn
  std::string gone_reason;
};

class Exposer {
 public:
  Exposer(const ExposeOptions& options, Identity identity, int stop_fd,
          const TunnelEventFn& on_event)
      : options_(options), identity_(std::move(identity)), stop_fd_(stop_fd), on_event_(on_event) {}

  Status run();

 private:
  void log(LogLevel level, const std::string& text) const {
    if (options_.punch.log) options_.punch.log(level, text);
  }
  void emit(const TunnelEvent& e) const {
    if (on_event_) on_event_(e);
  }
  void start_rendezvous();
  void on_stun(std::span<const std::uint8_t> bytes, const Endpoint& from);
  void on_quic(std::span<const std::uint8_t> bytes, const Endpoint& from);
  // QUIC on a birthday socket of that peer's.
  void on_session_quic(PeerSession& s, std::span<const std::uint8_t> bytes, const Endpoint& from);
  bool on_stun_answer(std::span<const std::uint8_t> bytes, const Endpoint& from);
  detail::NatProfile local_profile() const;
  void maybe_ready();
  void on_rendezvous_event(const detail::RendezvousEvent& e);
  void on_offer(const detail::RendezvousEvent& e);
  void refuse(const std::string& peer_id, const std::string& reason);
  void start_link(PeerSession& s, std::span<const std::uint8_t> first, const Endpoint& from);
  void send(std::span<const std::uint8_t> bytes, const Endpoint& to);
  void send_batch(detail::UdpBatch& batch, const detail::DatagramBuffer& packets,
                  const Endpoint& to);
  void schedule();
  void reap();
  void on_mapping_event(const detail::GatewayKeeperEvent& e);
  // --verify: proves the first mapping from outside on the tunnel's socket (before the
  // mux takes it) and advertises the mapping only when that proof holds.
  void verify_mapping(detail::UdpSocket& socket);

  const ExposeOptions& options_;
  Identity identity_;
  int stop_fd_;
  const TunnelEventFn& on_event_;

  detail::Reactor reactor_;
  std::unique_ptr<detail::UdpMux> mux_;
  std::unique_ptr<detail::UdpBatch> batch_;  // the tunnels' packets, on mux_'s socket
  Endpoint rendezvous_;
  std::vector<IpAddress> host_ips_;
  detail::CandidateList candidates_;
  std::vector<detail::ReflexiveObservation> observations_;
  std::unique_ptr<detail::RendezvousClient> rendezvous_client_;
  std::optional<Clock::time_point> rendezvous_retry_at_;
  bool ever_registered_ = false;
  bool ready_sent_ = false;
  std::vector<detail::StunProbe> stun_;
  Clock::time_point stun_until_{};
  std::optional<Error> fatal_;
  std::vector<std::unique_ptr<PeerSession>> sessions_;
  std::unique_ptr<detail::GatewayKeeper> keeper_;
  std::optional<Endpoint> mapped_;
  // Whether mapped_ is a candidate: always without --verify; with it once verified.
  bool advertise_mapping_ = true;
  detail::Reactor::TimerId timer_ = 0;
  bool stopping_ = false;
  struct RefusalSeen {
    Clock::time_point reported{};
    std::size_t unreported = 0;
  };
  static constexpr auto kRefusalReportEvery = std::chrono::seconds(60);
  static constexpr std::size_t kMaxRefusalsKept = 1024;
  std::map<std::string, RefusalSeen> refusals_;  // key: peer ID, newline, reason
};

void Exposer::send(std::span<const std::uint8_t> bytes, const Endpoint& to) {
  if (auto st = mux_->send_to(bytes, to); !st)
    log(LogLevel::debug, fmt::format("send to {}: {}", to.to_string(), st.error().message));
}

// QUIC's packets as UDP GSO batches (net/udp_batch.hpp); what the socket would not take
// now is lost like any datagram, and QUIC sends it again.
void Exposer::send_batch(detail::UdpBatch& batch, const detail::DatagramBuffer& packets,
                         const Endpoint& to) {
  auto sent = batch.send(packets, to);
  if (!sent)
    log(LogLevel::debug, fmt::format("send to {}: {}", to.to_string(), sent.error().message));
}

// One peer-refused event per peer and reason a minute (docs/tunnel.md): a peer that keeps
// offering must not fill the log. The next report counts the offers in between.
void Exposer::refuse(const std::string& peer_id, const std::string& reason) {
  const auto now = reactor_.now();
  const std::string key = peer_id + '\n' + reason;
  auto it = refusals_.find(key);
  if (it != refusals_.end() && now - it->second.reported < kRefusalReportEvery) {
    ++it->second.unreported;
    return;
  }
  if (it == refusals_.end()) {
    if (refusals_.size() >= kMaxRefusalsKept) refusals_.clear();  // a bound, not a cache
    it = refusals_.emplace(key, RefusalSeen{}).first;
  }
  TunnelEvent e;
  e.type = TunnelEventType::peer_refused;
  e.peer_id = peer_id;
  e.reason = reason;
  if (it->second.unreported > 0)
    e.reason += fmt::format(" ({} more refused since the last report)", it->second.unreported);
  it->second = RefusalSeen{now, 0};
  emit(e);
}

void Exposer::start_rendezvous() {
  rendezvous_client_ = std::make_unique<detail::RendezvousClient>(
      identity_, rendezvous_, Clock::time_point::max(),
      [](std::span<std::uint8_t> out) { detail::fill_random(out); },
      detail::punch_rendezvous_options());
  rendezvous_client_->start(reactor_.now());
}

void Exposer::on_offer(const detail::RendezvousEvent& e) {
  auto claimed = rdv::decode_description(e.description.bytes);
  if (!claimed) {
    log(LogLevel::warning, "dropped an offer: " + claimed.error().message);
    return;
  }
  const PeerId sender = claimed->sender;
  const bool allowed = expose_allows(options_, sender);
  auto offer = rdv::open_description(e.description, sender, identity_.id(), rdv::Kind::offer);
  if (!offer) {
    log(LogLevel::warning, "dropped an offer: " + offer.error().message);
    return;
  }
  if (!allowed) {
    // The offer's signature proves its sender. Refused here, with a signed answer that
    // offers no candidate (docs/rendezvous.md): the peer learns it was refused (exit 9)
    // and not one of our addresses; TLS (start_link's allow_peer) refuses it again
    // should it reach us anyway.
    log(LogLevel::info, fmt::format("offer from {}: not allowed", sender.to_string()));
    rdv::Description d;
    d.kind = rdv::Kind::answer;
    d.sender = identity_.id();
    d.receiver = sender;
    d.session_id = offer->session_id;
    d.ufrag = detail::random_ice_chars(8);  // the codec's bounds; no check will use them
    d.password = detail::random_ice_chars(24);
    auto refusal = detail::sign_description(identity_, d);
    if (refusal)
      rendezvous_client_->answer(sender, *refusal, reactor_.now());
    else
      log(LogLevel::warning, "cannot sign a refusal: " + refusal.error().message);
    refuse(sender.to_string(), "not allowed");
    return;
  }
  for (auto& s : sessions_) {
    if (s->peer != sender || s->gone) continue;
    if (s->session == offer->session_id) {
      // Our answer was lost: the same again.
      if (s->answer) rendezvous_client_->answer(sender, *s->answer, reactor_.now());
      return;
    }
    // A new session from a peer we know: it lost its path and punches again.
    if (s->link) s->link->close(detail::kQuicCloseNormal, "a new session");
    s->gone = true;
    s->gone_reason = "replaced by a new session";
  }
  auto s = std::make_unique<PeerSession>();
  s->peer = sender;
  s->session = offer->session_id;
  const auto now = reactor_.now();
  auto config = detail::punch_agent_config(identity_, sender, false, s->ufrag, s->password,
                                           now + options_.punch.timeout, options_.punch.log);
  const detail::NatProfile local = local_profile();
  const detail::NatProfile remote{offer->nat_mapping, offer->allocation, offer->port_step};
  const detail::StrategyPlan plan = detail::choose_strategy(local, remote);
  config.keep_checking = plan.keep_checking;
  s->agent = std::make_unique<IceAgent>(config, candidates_.candidates(),
                                        [](std::span<std::uint8_t> out) {
                                          detail::fill_random(out);
                                        });
  if (auto st = s->agent->set_remote(offer->ufrag, offer->password, offer->candidates, now); !st) {
    log(LogLevel::warning, "dropped an offer: " + st.error().message);
    return;
  }
  rdv::Description d;
  d.kind = rdv::Kind::answer;
  d.sender = identity_.id();
  d.receiver = sender;
  d.session_id = offer->session_id;
  d.nat_mapping = local.mapping;
  d.allocation = local.allocation;
  d.port_step = static_cast<std::int8_t>(local.port_step);
  d.ufrag = s->ufrag;
  d.password = s->password;
  d.candidates = candidates_.candidates();
  auto signed_answer = detail::sign_description(identity_, d);
  if (!signed_answer) {
    log(LogLevel::warning, "cannot sign an answer: " + signed_answer.error().message);
    return;
  }
  s->answer = *signed_answer;
  log(LogLevel::info, fmt::format("answering {}'s offer ({} candidates)", sender.to_string(),
                                  offer->candidates.size()));
  rendezvous_client_->answer(sender, *s->answer, now);
  s->strategy = plan.strategy;
  log(LogLevel::info, fmt::format("strategy {} with {} (this side {}, the peer {})",
                                  detail::strategy_name(plan.strategy), sender.to_string(),
                                  detail::nat_mapping_name(local.mapping),
                                  detail::nat_mapping_name(remote.mapping)));
  if (plan.probe_peer || plan.open_sockets) {
    PeerSession* session = s.get();
    s->search = std::make_unique<detail::PortSearch>(
        reactor_, options_.punch.log, [this] { schedule(); },
        [this, session](std::span<const std::uint8_t> b, const Endpoint& from) {
          on_session_quic(*session, b, from);
        });
    s->search->start(plan, remote, offer->candidates, *s->agent, now,
                     [](std::span<std::uint8_t> out) { detail::fill_random(out); });
  }
  sessions_.push_back(std::move(s));
}

void Exposer::on_rendezvous_event(const detail::RendezvousEvent& e) {
  using Type = detail::RendezvousEvent::Type;
  switch (e.type) {
    case Type::registered:
      candidates_.add_server_reflexive(e.observed);
      if (!ever_registered_) {
        ever_registered_ = true;
        observations_.push_back({rendezvous_, e.observed});
        log(LogLevel::info, fmt::format("registered at {} as {}", options_.punch.rendezvous,
                                        e.observed.to_string()));
        maybe_ready();
      }
      return;
    case Type::offer_received: on_offer(e); return;
    case Type::failed:
      if (!ever_registered_) {
        fatal_ = e.error;
        reactor_.stop();
        return;
      }
      log(LogLevel::warning, "rendezvous: " + e.error.message + " (trying again)");
      rendezvous_retry_at_ = reactor_.now() + kRendezvousRetry;
      return;
    default: return;
  }
}

// "ready" once registered and the --stun servers answered (or their budget is spent):
// a peer's offer from then on is answered with this side's NAT profile.
void Exposer::maybe_ready() {
  if (ready_sent_ || !ever_registered_) return;
  for (const auto& s : stun_)
    if (!s.transaction.settled()) return;
  ready_sent_ = true;
  TunnelEvent r;
  r.type = TunnelEventType::ready;
  r.peer_id = identity_.id().to_string();
  r.ports = options_.ports;
  r.local = Endpoint{IpAddress::v4({0, 0, 0, 0}), mux_->local_port()};
  if (!host_ips_.empty()) r.local = Endpoint{host_ips_.front(), mux_->local_port()};
  if (advertise_mapping_) r.mapping = mapped_;
  emit(r);
}

bool Exposer::on_stun_answer(std::span<const std::uint8_t> bytes, const Endpoint& from) {
  if (!detail::take_stun_answer(stun_, bytes, from, reactor_.now(), candidates_, observations_))
    return false;
  maybe_ready();
  return true;
}

detail::NatProfile Exposer::local_profile() const {
  // The rendezvous's mapping was made first (start_rendezvous() before the STUN
  // requests leave in schedule()), then the --stun servers' in their order.
  std::vector<Endpoint> servers{rendezvous_};
  for (const auto& st : stun_) servers.push_back(st.server);
  return detail::nat_profile_from(observations_, host_ips_, servers, mux_->local_port());
}

void Exposer::on_stun(std::span<const std::uint8_t> bytes, const Endpoint& from) {
  if (rendezvous_client_ && rendezvous_client_->on_datagram(bytes, from, reactor_.now())) {
    while (auto e = rendezvous_client_->next_event()) on_rendezvous_event(*e);
    schedule();
    return;
  }
  if (on_stun_answer(bytes, from)) {
    schedule();
    return;
  }
  auto m = detail::stun::decode(bytes);
  if (!m) return;
  const auto now = reactor_.now();
  if (m->message_class == detail::stun::MessageClass::request) {
    // USERNAME "our-ufrag:their-ufrag" (RFC 8445 s7.2.2) names the session.
    if (!m->username) return;
    const std::string ours = m->username->substr(0, m->username->find(':'));
    for (auto& s : sessions_)
      if (s->ufrag == ours && s->agent && !s->agent->quiesced()) {
        s->agent->on_datagram(bytes, from, now);
        break;
      }
  } else {
    // An answer to one of our checks: the agent whose transaction it is takes it.
    for (auto& s : sessions_)
      if (s->agent && !s->agent->quiesced()) s->agent->on_datagram(bytes, from, now);
  }
  schedule();
}

void Exposer::start_link(PeerSession& s, std::span<const std::uint8_t> first,
                         const Endpoint& from) {
  detail::QuicConfig config;
  config.server = true;
  config.identity = &identity_;
  const PeerId expected = s.peer;
  PeerSession* session = &s;
  config.allow_peer = [this, expected, session](const PeerId& id) {
    if (!expose_allows(options_, id)) {
      refuse(id.to_string(), "not allowed");
      return false;
    }
    if (id != expected) {
      // The TLS key is not the one that signed the offer and the checks.
      refuse(id.to_string(), "identity mismatch");
      session->gone_reason = "identity mismatch";
      return false;
    }
    return true;
  };
  // The birthday socket the peer reached carries its connection; the others close.
  const bool on_promoted = s.search && s.search->path_on_promoted();
  if (s.search) {
    s.search->close_extra_sockets();
    if (!on_promoted) s.search->close_promoted();
  }
  if (on_promoted) {
    s.batch = std::make_unique<detail::UdpBatch>(s.search->promoted()->fd());
    s.batch->request_buffers(detail::kTunnelSocketBuffer);
  }
  const std::uint16_t local_port = on_promoted ? s.search->promoted()->local_port()
                                               : mux_->local_port();
  // The socket is bound to every address: one fixed local address for every packet.
  config.local = Endpoint{host_ips_.empty() ? IpAddress::v4({0, 0, 0, 0}) : host_ips_.front(),
                          local_port};
  config.remote = from;
  config.idle_timeout = detail::kTunnelIdle;
  config.keepalive = detail::kTunnelKeepalive;
  auto conn = detail::QuicConnection::server(config, first, reactor_.now());
  if (!conn) {
    log(LogLevel::debug, "QUIC: not an Initial we accept: " + conn.error().message);
    return;
  }
  detail::TunnelLinkConfig lc;
  lc.server = true;
  lc.ports = options_.ports;
  lc.to = IpAddress::parse(options_.to).value();
  lc.log = options_.punch.log;
  detail::TunnelLink::Callbacks cb;
  cb.established = [this, session] {
    session->reported_connected = true;
    TunnelEvent e;
    e.type = TunnelEventType::peer_connected;
    e.peer_id = session->peer.to_string();
    e.path = session->path ? detail::path_kind_name(session->path->kind) : "peer-reflexive";
    e.peer = session->link ? std::optional<Endpoint>(session->link->remote()) : std::nullopt;
    e.strategy = detail::strategy_name(session->strategy);
    emit(e);
  };
  cb.closed = [this, session](const Error& error, bool by_peer, std::uint64_t) {
    session->gone = true;
    if (!session->reported_connected) return;  // refused (reported) or never made
    TunnelEvent e;
    e.type = TunnelEventType::peer_gone;
    e.peer_id = session->peer.to_string();
    if (!session->gone_reason.empty())
      e.reason = session->gone_reason;
    else if (error.code == Errc::timeout)
      e.reason = "idle timeout";
    else if (by_peer)
      e.reason = "closed by the peer";
    else
      e.reason = error.message.empty() ? "closed" : error.message;
    emit(e);
  };
  s.link = std::make_unique<detail::TunnelLink>(
      reactor_, std::move(*conn),
      // On the socket the peer reached, to where the connection is now: the peer's
      // address can change (RFC 9000 s9.3).
      [this, session, from](const detail::DatagramBuffer& packets) {
        send_batch(session->batch ? *session->batch : *batch_, packets,
                   session->link ? session->link->remote() : from);
      },
      lc, cb);
  // The QUIC connection keeps the path alive now (its PINGs), and the connecting side's
  // agent has stopped answering: consent checks would only fail.
  s.agent->quiesce();
  s.link->pump();
}

void Exposer::on_quic(std::span<const std::uint8_t> bytes, const Endpoint& from) {
  for (auto& s : sessions_)
    if (s->link && !s->gone && s->link->remote() == from) {
      s->link->on_datagram(bytes, from);
      reap();
      return;
    }
  // A peer whose NAT gave it a new address (RFC 9000 s9.3): its packets still name one
  // of our connection IDs. ngtcp2 validates the new path and moves the connection there;
  // what it cannot decrypt it drops.
  for (auto& s : sessions_)
    if (s->link && !s->gone && s->link->addressed_to_us(bytes)) {
      const Endpoint before = s->link->remote();
      s->link->on_datagram(bytes, from);
      if (s->link && !(s->link->remote() == before))
        log(LogLevel::info,
            fmt::format("{} moved from {} to {} (QUIC migration)", s->peer.to_string(),
                        before.to_string(), s->link->remote().to_string()));
      reap();
      return;
    }
  // A new connection: only from where a peer's checks proved the path.
  for (auto& s : sessions_) {
    if (s->link || s->gone || !s->agent || s->agent->state() != IceAgent::State::connected)
      continue;
    auto path = s->agent->selected();
    if (!path || path->remote != from) continue;
    if (s->search && s->search->path_on_promoted()) continue;  // on_session_quic's
    s->path = path;
    start_link(*s, bytes, from);
    reap();
    return;
  }
  log(LogLevel::debug, fmt::format("dropped a datagram from {}: no tunnel", from.to_string()));
}

// Called while the birthday socket is being read: nothing here may end the session
// (schedule() reaps afterwards).
void Exposer::on_session_quic(PeerSession& s, std::span<const std::uint8_t> bytes,
                              const Endpoint& from) {
  if (s.gone) return;
  if (s.link) {
    if (s.link->remote() == from) s.link->on_datagram(bytes, from);
    return;
  }
  if (!s.agent || s.agent->state() != IceAgent::State::connected || !s.search ||
      !s.search->path_on_promoted())
    return;
  auto path = s.agent->selected();
  if (!path || path->remote != from) return;
  s.path = path;
  start_link(s, bytes, from);
}

void Exposer::on_mapping_event(const detail::GatewayKeeperEvent& e) {
  if (e.external) {
    if (advertise_mapping_ && (!mapped_ || *mapped_ != *e.external))
      candidates_.add_mapped(*e.external);
    mapped_ = e.external;
  } else if (e.what == "lost" || e.what == "removed") {
    mapped_.reset();
  }
  if (!ever_registered_) return;  // the ready event carries it
  TunnelEvent t;
  t.type = TunnelEventType::mapping;
  t.what = e.what;
  t.mapping = e.external;
  t.reason = e.message;
  emit(t);
}

void Exposer::verify_mapping(detail::UdpSocket& socket) {
  TunnelEvent t;
  t.type = TunnelEventType::mapping;
  t.mapping = mapped_;
  if (!mapped_) {
    // Nothing to prove (no mapping came within the budget): a later one cannot be
    // proven on the socket the tunnel then uses, so it is not advertised.
    t.what = "unverified";
    t.reason = "no gateway mapping to verify yet: a later one is not advertised";
    emit(t);
    return;
  }
  Options o;
  o.gateway = options_.punch.gateway;
  o.stun_servers = options_.punch.stun_servers;
  o.log = options_.punch.log;
  o.timeout = std::chrono::milliseconds(3000);
  Mapping m;
  m.transport = Transport::udp;
  m.internal_port = socket.local_port();
  m.external_ip = mapped_->ip;
  m.external_port = mapped_->port;
  auto v = detail::verify_udp_from(socket, o, m);
  if (v && v->verified) {
    advertise_mapping_ = true;
    candidates_.add_mapped(*mapped_);
    t.what = "verified";
    t.reason = v->proof;
  } else {
    // Behind CGNAT or a router that lies, the mapping leads nowhere: peers punch.
    t.what = "unverified";
    t.reason = v ? v->explanation : v.error().message;
    log(LogLevel::warning, "the gateway mapping is not reachable from outside (" + t.reason +
                               "): not advertised, peers punch");
  }
  emit(t);
}

void Exposer::reap() {
  sessions_.erase(std::remove_if(sessions_.begin(), sessions_.end(),
                                 [](const std::unique_ptr<PeerSession>& s) {
                                   if (!s->gone) return false;
                                   return !s->link || s->link->closed();
                                 }),
                  sessions_.end());
}

void Exposer::schedule() {
  if (stopping_) return;
  const auto now = reactor_.now();
  if (rendezvous_retry_at_ && now >= *rendezvous_retry_at_) {
    rendezvous_retry_at_.reset();
    start_rendezvous();
  }
  if (rendezvous_client_) {
    rendezvous_client_->on_timer(now);
    while (auto e = rendezvous_client_->next_event()) on_rendezvous_event(*e);
    for (const auto& b : rendezvous_client_->take_outgoing()) send(b, rendezvous_);
  }
  // After the rendezvous's first request: the order the mappings are made in.
  for (auto& st : stun_)
    if (auto bytes = st.transaction.due(now)) send(*bytes, st.server);
  if (now >= stun_until_) {
    for (auto& st : stun_)
      if (!st.transaction.settled()) st.transaction.abandon();
  }
  maybe_ready();
  const auto send_fn = [this](std::span<const std::uint8_t> b, const Endpoint& to) { send(b, to); };
  for (auto& s : sessions_) {
    if (!s->agent || s->agent->quiesced()) continue;
    s->agent->on_timer(now);
    if (s->search) s->search->on_timer(now, send_fn);
    for (auto& out : s->agent->take_outgoing())
      if (!s->search || !s->search->send_promoted(out)) send(out.bytes, out.to);
    if (s->agent->state() == IceAgent::State::failed && !s->link && !s->gone) {
      log(LogLevel::info,
          fmt::format("no path to {}: {}", s->peer.to_string(), s->agent->failure()));
      s->gone = true;
    }
  }
  // A peer whose path was proven but whose QUIC connection never came is dropped too.
  reap();
  if (fatal_) return;
  Clock::time_point next = Clock::time_point::max();
  auto earlier = [&](std::optional<Clock::time_point> t) {
    if (t && *t < next) next = *t;
  };
  if (rendezvous_client_) earlier(rendezvous_client_->next_wakeup());
  earlier(rendezvous_retry_at_);
  for (const auto& st : stun_) earlier(st.transaction.next_wakeup());
  for (auto& s : sessions_) {
    if (!s->agent || s->agent->quiesced()) continue;
    earlier(s->agent->next_wakeup());
    if (s->search) earlier(s->search->next_wakeup());
  }
  if (timer_ != 0) {
    reactor_.cancel(timer_);
    timer_ = 0;
  }
  if (next != Clock::time_point::max())
    timer_ = reactor_.add_timer(std::max(next, now), [this] {
      timer_ = 0;
      schedule();
    });
}

Status Exposer::run() {
  auto hp = parse_host_port(options_.punch.rendezvous, detail::stun::kDefaultPort);
  if (!hp) return make_error(Errc::usage, "--rendezvous " + hp.error().message);
  auto ip = detail::resolve_ipv4(hp->host);
  if (!ip)
    return make_error(Errc::no_service, fmt::format("rendezvous {}: {}", options_.punch.rendezvous,
                                                    ip.error().message));
  rendezvous_ = Endpoint{*ip, hp->port};
  auto stun_servers = detail::resolve_stun_servers(options_.punch.stun_servers, options_.punch.log);
  if (!stun_servers) return stun_servers.error();
  auto sock = detail::open_bound_udp_socket("0.0.0.0", options_.punch.port);
  if (!sock) {
    if (options_.punch.port != 0)
      return make_error(Errc::usage,
                        fmt::format("--port {}: {}", options_.punch.port, sock.error().message));
    return sock.error();
  }
  const std::uint16_t port = sock->local_port();
  auto interfaces = detail::list_interfaces();
  if (interfaces)
    host_ips_ = detail::host_addresses(*interfaces);
  else
    log(LogLevel::warning, interfaces.error().message);
  candidates_.add_host(host_ips_, port);
  if (options_.punch.map) {
    // Mapping first: the gateway's mapping of the tunnel's port, kept as hold keeps it,
    // is advertised before the first registration when it comes within the budget.
    advertise_mapping_ = !options_.verify;
    keeper_ = std::make_unique<detail::GatewayKeeper>(reactor_, options_, port,
                                                      [this](const detail::GatewayKeeperEvent& e) {
                                                        on_mapping_event(e);
                                                      });
    keeper_->wait_first(std::chrono::milliseconds(1500));
    if (options_.verify) verify_mapping(*sock);
  }
  mux_ = std::make_unique<detail::UdpMux>(std::move(*sock));
  batch_ = std::make_unique<detail::UdpBatch>(mux_->fd());
  batch_->request_buffers(detail::kTunnelSocketBuffer);
  mux_->enable_gro();  // a peer's GSO bursts may arrive whole (net/udp_batch.hpp)
  mux_->on_stun([this](std::span<const std::uint8_t> b, const Endpoint& f) { on_stun(b, f); });
  mux_->on_quic([this](std::span<const std::uint8_t> b, const Endpoint& f) { on_quic(b, f); });
  reactor_.watch(mux_->fd(), true, false, [this](bool, bool) {
    auto r = mux_->on_readable();
    if (!r) log(LogLevel::warning, r.error().message);
  });
  if (stop_fd_ >= 0) reactor_.stop_on(stop_fd_);
  start_rendezvous();
  stun_until_ = reactor_.now() + kStunBudget;
  stun_ = detail::start_stun_probes(*stun_servers, stun_until_);
  schedule();
  auto st = reactor_.run();
  if (timer_ != 0) reactor_.cancel(timer_);
  // Stop: close every tunnel (CONNECTION_CLOSE goes out now), go offline, remove the
  // mapping.
  stopping_ = true;
  for (auto& s : sessions_)
    if (s->link) s->link->close(detail::kQuicCloseNormal, "expose stopped");
  if (rendezvous_client_) {
    rendezvous_client_->stop(reactor_.now());
    for (const auto& b : rendezvous_client_->take_outgoing()) send(b, rendezvous_);
  }
  sessions_.clear();
  if (keeper_) keeper_->stop();
  if (fatal_) return *fatal_;
  if (!st) return st.error();
  return ok_status();
}

}  // namespace

Status expose(const ExposeOptions& options, int stop_fd, const TunnelEventFn& on_event) {
  if (auto st = check_expose_options(options); !st) return st;
  if (options.punch.timeout.count() <= 0)
    return make_error(Errc::usage, "the punch timeout must be above 0");
  auto identity = Identity::load_or_create(options.punch.state_dir);
  if (!identity) return identity.error();
  Exposer e(options, std::move(*identity), stop_fd, on_event);
  return e.run();
}

}  // namespace porthole
