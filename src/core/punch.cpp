// porthole::punch() (include/porthole/punch.hpp): one reactor, one UDP socket in a UdpMux,
// and on it the rendezvous exchange (docs/rendezvous.md), the STUN Bindings that find
// server-reflexive candidates, and the ICE agent's checks (core/ice_agent.hpp). A gateway
// mapping of the socket's port is asked for on a worker thread (the mapping code blocks),
// whose answer the reactor picks up from an eventfd, so registration goes on meanwhile.
#include "porthole/punch.hpp"

#include <fcntl.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstring>
#include <memory>
#include <thread>

#include <fmt/format.h>

#include "codec/rendezvous_codec.hpp"
#include "codec/stun_codec.hpp"
#include "core/candidate_gathering.hpp"
#include "core/ice_agent.hpp"
#include "core/port_search.hpp"
#include "core/punch_rules.hpp"
#include "core/relay_loop.hpp"
#include "core/punch_strategy.hpp"
#include "core/punch_session.hpp"
#include "core/stun_gathering.hpp"
#include "net/bound_udp_socket.hpp"
#include "net/reactor.hpp"
#include "net/resolve.hpp"
#include "net/udp_mux.hpp"
#include "proto/rendezvous_client.hpp"
#include "proto/stun_transaction.hpp"
#include "proto/turn_client.hpp"

namespace porthole {
namespace {

namespace rdv = detail::rendezvous;
using detail::Clock;
using detail::fill_random;
using detail::IceAgent;
using detail::random_ice_chars;
using detail::random_transaction_id;
using std::chrono::milliseconds;

// Gathering (the gateway mapping, the --stun servers' answers) gets at most this long
// before the description goes out. A gateway that maps answers well inside it (PCP and
// NAT-PMP in milliseconds, UPnP's discovery, description and SOAP in about 60 ms in the
// lab); one without a mapping service (the case punching is for) costs at most this.
constexpr milliseconds kMappingBudget{500};
PairOutcome public_outcome(detail::PairOutcome o, bool punched) {
  switch (o) {
    case detail::PairOutcome::not_tried: return PairOutcome::not_tried;
    // A check still running when another pair won was cut short, not refused.
    case detail::PairOutcome::checking:
      return punched ? PairOutcome::not_tried : PairOutcome::failed;
    case detail::PairOutcome::succeeded: return PairOutcome::succeeded;
    case detail::PairOutcome::failed: return PairOutcome::failed;
    case detail::PairOutcome::nominated: return PairOutcome::nominated;
  }
  return PairOutcome::not_tried;
}

PathKind public_path(detail::PathKind k) {
  static_assert(static_cast<int>(detail::PathKind::mapped) == static_cast<int>(PathKind::mapped));
  static_assert(static_cast<int>(detail::PathKind::relayed) == static_cast<int>(PathKind::relayed));
  return static_cast<PathKind>(k);
}

// The mapping code's options for the punch socket's gateway.
Options mapping_options(const PunchOptions& options, milliseconds timeout) {
  Options o;
  o.gateway = options.gateway;
  o.timeout = timeout;
  o.state_dir = options.state_dir;
  o.log = options.log;
  o.pcp_port = options.pcp_port;
  o.ssdp_port = options.ssdp_port;
  o.upnp_allow_lan = options.upnp_allow_lan;
  o.upnp_cache = options.upnp_cache;
  return o;
}

// The gateway mapping, asked for on a thread of its own: porthole::open() waits on its
// sockets. The thread writes the eventfd when done; the reactor then reads `result`.
class MappingRequest {
 public:
  MappingRequest(const PunchOptions& options, std::uint16_t port) {
    done_fd_ = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    Options o = mapping_options(options, std::min(kMappingBudget, options.timeout));
    OpenRequest request;
    request.port = PortSpec{port, Transport::udp};
    request.lifetime = 600;  // removed when the punch socket closes; renewals are not ours
    request.description = "porthole punch";
    thread_ = std::thread([this, o, request] {
      auto r = open(o, request);
      if (r)
        result_ = r->mapping;
      else
        error_ = r.error();
      finished_.store(true);
      if (done_fd_ >= 0) detail::notify_fd(done_fd_);
    });
  }
  ~MappingRequest() {
    if (thread_.joinable()) thread_.join();
    if (done_fd_ >= 0) ::close(done_fd_);
  }
  MappingRequest(const MappingRequest&) = delete;
  MappingRequest& operator=(const MappingRequest&) = delete;

  int done_fd() const { return done_fd_; }
  bool finished() const { return finished_.load(); }
  // After finished(): joins the thread.
  void join() {
    if (thread_.joinable()) thread_.join();
  }
  const std::optional<Mapping>& mapping() const { return result_; }
  const std::optional<Error>& error() const { return error_; }

 private:
  int done_fd_ = -1;
  std::atomic<bool> finished_{false};
  std::optional<Mapping> result_;
  std::optional<Error> error_;
  std::thread thread_;
};

class Punch {
 public:
  Punch(const PunchOptions& options, const PeerId& peer, Identity identity, int stop_fd,
        PunchReport& report)
      : options_(options),
        peer_(peer),
        identity_(std::move(identity)),
        stop_fd_(stop_fd),
        report_(report) {}

  Result<PunchResult> run();

 private:
  void log(LogLevel level, const std::string& text) const {
    if (options_.log) options_.log(level, text);
  }
  Status open_socket();
  void gather_host();
  void start_stun(const std::vector<Endpoint>& servers);
  void on_datagram(std::span<const std::uint8_t> bytes, const Endpoint& from);
  bool on_stun_answer(std::span<const std::uint8_t> bytes, const Endpoint& from);
  void on_rendezvous_event(const detail::RendezvousEvent& e);
  void on_offer(const rdv::SignedDescription& sd);
  void on_answer(const rdv::SignedDescription& sd);
  void flush_rendezvous();
  void maybe_send_offer();
  void answer_offer(const rdv::Description& offer);
  bool gathering_done() const;
  void start_agent(bool controlling);
  Result<rdv::SignedDescription> sign(const rdv::Description& d);
  rdv::Description own_description(rdv::Kind kind,
                                   const std::array<std::uint8_t, rdv::kSessionIdSize>& session);
  void send(std::span<const std::uint8_t> bytes, const Endpoint& to);
  void flush_agent();
  // TURN (options_.turn): the allocation from the punch socket, its events, and what
  // it sends; permissions for the peer's candidates; the relayed path's end.
  Status start_turn();
  void drain_turn();
  void permit_peer(const std::vector<rdv::Candidate>& candidates);
  void on_connected(Clock::time_point now);
  std::string relay_failure() const;
  // The strategy (core/punch_strategy.hpp), once the peer's description is in.
  detail::NatProfile local_profile() const;
  void start_strategy(const rdv::Description& peer);
  void schedule();
  void finish(Error e) {
    if (!outcome_) outcome_ = std::move(e);
    reactor_.stop();
  }
  void fill_report(bool punched);

  const PunchOptions& options_;
  PeerId peer_;
  Identity identity_;
  int stop_fd_;
  PunchReport& report_;

  detail::Reactor reactor_;
  std::unique_ptr<detail::UdpMux> mux_;
  Clock::time_point start_{};
  Clock::time_point deadline_{};
  std::string rendezvous_text_;
  Endpoint rendezvous_;
  std::vector<IpAddress> host_ips_;
  detail::CandidateList candidates_;
  std::vector<detail::ReflexiveObservation> observations_;
  std::vector<detail::StunProbe> stun_;
  std::unique_ptr<MappingRequest> mapping_;
  bool mapping_settled_ = true;
  std::unique_ptr<detail::RendezvousClient> rendezvous_client_;
  Clock::time_point gather_until_{};

  bool registered_ = false;
  std::optional<Endpoint> registered_as_;
  // Our offer: its session ID, and whether the server relayed it (success) or said the
  // peer is not online (404), and when to send it again.
  std::array<std::uint8_t, rdv::kSessionIdSize> offer_session_{};
  bool offer_sent_ = false;
  bool offer_delivered_ = false;
  std::optional<Clock::time_point> not_online_until_;
  // The peer's offer waiting for our gathering (or for our own offer's fate, in glare).
  std::optional<rdv::Description> pending_offer_;
  std::optional<std::array<std::uint8_t, rdv::kSessionIdSize>> answered_session_;
  std::optional<rdv::SignedDescription> our_answer_;
  std::string ufrag_ = random_ice_chars(8);
  std::string password_ = random_ice_chars(24);
  std::unique_ptr<IceAgent> agent_;
  std::optional<Endpoint> turn_server_;
  std::unique_ptr<detail::TurnClient> turn_;
  bool turn_settled_ = true;  // allocated, failed, or the gathering budget spent
  bool relayed_candidate_ = false;
  std::optional<Error> turn_error_;
  std::optional<rdv::NatMapping> peer_nat_;
  std::optional<Error> outcome_;
  bool punched_ = false;
  bool stopped_ = false;  // by the stop fd: no hint about NATs then
  std::optional<Clock::time_point> linger_until_;
  // When the checks proved the path: the punch's elapsed time ends here, not after the
  // linger that only answers the peer's retransmissions.
  std::optional<Clock::time_point> connected_at_;
  detail::Reactor::TimerId timer_ = 0;

  // Port prediction and the birthday method (core/port_search.hpp). The birthday
  // side's extra socket the peer's check reaches becomes the punch socket.
  detail::PortSearch search_{reactor_, options_.log, [this] { schedule(); }};
};

Status Punch::open_socket() {
  auto sock = detail::open_bound_udp_socket("0.0.0.0", options_.port);
  if (!sock) {
    Error e = sock.error();
    if (options_.port != 0)
      e = make_error(Errc::usage, fmt::format("--port {}: {}", options_.port, e.message));
    return e;
  }
  mux_ = std::make_unique<detail::UdpMux>(std::move(*sock));
  mux_->on_stun(
      [this](std::span<const std::uint8_t> b, const Endpoint& from) { on_datagram(b, from); });
  reactor_.watch(mux_->fd(), true, false, [this](bool, bool) {
    auto r = mux_->on_readable();
    if (!r) finish(r.error());
    schedule();
  });
  return ok_status();
}

void Punch::gather_host() {
  auto interfaces = detail::list_interfaces();
  if (interfaces)
    host_ips_ = detail::host_addresses(*interfaces);
  else
    log(LogLevel::warning, interfaces.error().message);
  candidates_.add_host(host_ips_, mux_->local_port());
}

void Punch::start_stun(const std::vector<Endpoint>& servers) {
  stun_ = detail::start_stun_probes(servers, std::min(gather_until_, deadline_));
}

bool Punch::gathering_done() const {
  if (!registered_) return false;
  if (!mapping_settled_ || !turn_settled_) return false;
  for (const auto& s : stun_)
    if (!s.transaction.settled()) return false;
  return true;
}

void Punch::send(std::span<const std::uint8_t> bytes, const Endpoint& to) {
  if (auto st = mux_->send_to(bytes, to); !st)
    log(LogLevel::debug, fmt::format("send to {}: {}", to.to_string(), st.error().message));
}

rdv::Description Punch::own_description(
    rdv::Kind kind, const std::array<std::uint8_t, rdv::kSessionIdSize>& session) {
  rdv::Description d;
  d.kind = kind;
  d.sender = identity_.id();
  d.receiver = peer_;
  d.session_id = session;
  const detail::NatProfile profile = local_profile();
  d.nat_mapping = profile.mapping;
  d.allocation = profile.allocation;
  d.port_step = static_cast<std::int8_t>(profile.port_step);
  d.ufrag = ufrag_;
  d.password = password_;
  d.candidates = candidates_.candidates();
  return d;
}

Result<rdv::SignedDescription> Punch::sign(const rdv::Description& d) {
  return detail::sign_description(identity_, d);
}

void Punch::start_agent(bool controlling) {
  if (agent_) return;
  auto config = detail::punch_agent_config(identity_, peer_, controlling, ufrag_, password_,
                                           deadline_, options_.log);
  agent_ = std::make_unique<IceAgent>(config, candidates_.candidates(),
                                      [](std::span<std::uint8_t> out) { fill_random(out); });
  report_.local_nat = detail::nat_mapping_name(detail::nat_mapping_from(observations_, host_ips_));
}

void Punch::maybe_send_offer() {
  if (offer_sent_ || answered_session_ || !gathering_done()) return;
  if (pending_offer_) {
    // The peer's offer came first and ours has not gone out: answer it (no glare).
    answer_offer(*pending_offer_);
    pending_offer_.reset();
    return;
  }
  fill_random(offer_session_);
  auto signed_offer = sign(own_description(rdv::Kind::offer, offer_session_));
  if (!signed_offer) {
    finish(signed_offer.error());
    return;
  }
  offer_sent_ = true;
  // The agent exists from now, so the peer's checks (which may overtake its answer) are
  // answered at once; the role is settled when the answer comes (we offered: controlling).
  start_agent(true);
  log(LogLevel::info, fmt::format("offer to {} with {} candidates", peer_.to_string(),
                                  candidates_.candidates().size()));
  rendezvous_client_->connect(peer_, std::move(*signed_offer), reactor_.now());
}

void Punch::answer_offer(const rdv::Description& offer) {
  answered_session_ = offer.session_id;
  peer_nat_ = offer.nat_mapping;
  auto signed_answer = sign(own_description(rdv::Kind::answer, offer.session_id));
  if (!signed_answer) {
    finish(signed_answer.error());
    return;
  }
  our_answer_ = *signed_answer;
  // We answer: the offerer controls (design: the answered offerer is controlling).
  if (agent_ && agent_->controlling()) agent_.reset();  // our own offer lost the glare
  start_agent(false);
  auto now = reactor_.now();
  if (auto st = agent_->set_remote(offer.ufrag, offer.password, now); !st) {
    finish(make_error(Errc::refused, "the peer's offer: " + st.error().message));
    return;
  }
  for (const auto& c : offer.candidates) agent_->add_remote_candidate(c, now);
  permit_peer(offer.candidates);
  log(LogLevel::info, fmt::format("answering {}'s offer ({} candidates)", peer_.to_string(),
                                  offer.candidates.size()));
  start_strategy(offer);
  rendezvous_client_->answer(peer_, *our_answer_, now);
}

void Punch::on_offer(const rdv::SignedDescription& sd) {
  auto offer = rdv::open_description(sd, peer_, identity_.id(), rdv::Kind::offer);
  if (!offer) {
    log(LogLevel::warning, "dropped an offer: " + offer.error().message);
    return;
  }
  if (answered_session_) {
    // The same session again: our answer was lost on the way, send it once more. Any
    // other session is a replay or a stale retry, and the checks already run.
    if (*answered_session_ == offer->session_id && our_answer_)
      rendezvous_client_->answer(peer_, *our_answer_, reactor_.now());
    return;
  }
  if (offer_sent_ && agent_ && agent_->state() != IceAgent::State::waiting) return;
  if (offer_sent_ && !not_online_until_ && detail::own_offer_wins(identity_.id(), peer_)) {
    // Glare: ours wins; the peer answers ours and drops its own. Keep theirs in case
    // ours turns out not to have reached the peer (a 404 still to come).
    log(LogLevel::debug, "glare: both offered; ours wins (smaller ID)");
    pending_offer_ = *offer;
    return;
  }
  if (!gathering_done()) {
    pending_offer_ = *offer;
    return;
  }
  answer_offer(*offer);
}

void Punch::on_answer(const rdv::SignedDescription& sd) {
  if (!offer_sent_ || answered_session_) return;
  auto answer = rdv::open_description(sd, peer_, identity_.id(), rdv::Kind::answer);
  if (!answer) {
    log(LogLevel::warning, "dropped an answer: " + answer.error().message);
    return;
  }
  if (answer->session_id != offer_session_) {
    log(LogLevel::debug, "dropped an answer for another session (a replay?)");
    return;
  }
  if (!agent_ || agent_->state() != IceAgent::State::waiting) return;  // a repeat
  if (answer->candidates.empty()) {
    // docs/rendezvous.md: a signed answer without a single candidate is a refusal (a
    // peer always has its host candidate); `expose` answers an ID it does not allow so.
    finish(make_error(Errc::peer_refused,
                      fmt::format("{} refused us: our ID {} is not allowed (its signed answer "
                                  "offers no path)",
                                  peer_.to_string(), identity_.id().to_string())));
    return;
  }
  peer_nat_ = answer->nat_mapping;
  pending_offer_.reset();
  auto now = reactor_.now();
  if (auto st = agent_->set_remote(answer->ufrag, answer->password, now); !st) {
    finish(make_error(Errc::refused, "the peer's answer: " + st.error().message));
    return;
  }
  for (const auto& c : answer->candidates) agent_->add_remote_candidate(c, now);
  permit_peer(answer->candidates);
  log(LogLevel::info, fmt::format("answer from {} ({} candidates): checking", peer_.to_string(),
                                  answer->candidates.size()));
  start_strategy(*answer);
}

void Punch::on_rendezvous_event(const detail::RendezvousEvent& e) {
  using Type = detail::RendezvousEvent::Type;
  switch (e.type) {
    case Type::registered:
      if (!registered_) {
        registered_ = true;
        candidates_.add_server_reflexive(e.observed);
        observations_.push_back({rendezvous_, e.observed});
        log(LogLevel::info,
            fmt::format("registered at {} as {}", rendezvous_text_, e.observed.to_string()));
      }
      return;
    case Type::not_online:
      if (e.peer != peer_) return;
      if (answered_session_) {
        finish(make_error(Errc::punch_failed, fmt::format("{} went offline before our answer "
                                                          "reached it",
                                                          peer_.to_string())));
        return;
      }
      if (!not_online_until_) {
        not_online_until_ = reactor_.now() + options_.wait_for_peer;
        log(LogLevel::info, fmt::format("{} is not online yet: waiting up to {} ms for it",
                                        peer_.to_string(), options_.wait_for_peer.count()));
      }
      offer_delivered_ = false;
      // Our offer did not reach the peer: an offer of its own that glare set aside is
      // the one to answer now.
      if (pending_offer_ && gathering_done()) {
        auto offer = *pending_offer_;
        pending_offer_.reset();
        answer_offer(offer);
      }
      return;
    case Type::connect_accepted:
      offer_delivered_ = true;
      not_online_until_.reset();
      return;
    case Type::offer_received: on_offer(e.description); return;
    case Type::answer_received: on_answer(e.description); return;
    case Type::failed: finish(e.error); return;
  }
}

void Punch::flush_rendezvous() {
  for (const auto& bytes : rendezvous_client_->take_outgoing()) send(bytes, rendezvous_);
}

bool Punch::on_stun_answer(std::span<const std::uint8_t> bytes, const Endpoint& from) {
  const std::size_t before = observations_.size();
  if (!detail::take_stun_answer(stun_, bytes, from, reactor_.now(), candidates_, observations_))
    return false;
  if (observations_.size() > before)
    log(LogLevel::debug, fmt::format("STUN {}: we are {}", from.to_string(),
                                     observations_.back().mapped.to_string()));
  return true;
}

void Punch::on_datagram(std::span<const std::uint8_t> bytes, const Endpoint& from) {
  if (rendezvous_client_->on_datagram(bytes, from, reactor_.now())) {
    while (auto e = rendezvous_client_->next_event()) on_rendezvous_event(*e);
    return;
  }
  if (on_stun_answer(bytes, from)) return;
  if (agent_) agent_->on_datagram(bytes, from, reactor_.now());
}

void Punch::flush_agent() {
  if (!agent_) return;
  for (auto& out : agent_->take_outgoing()) {
    if (out.relayed) {
      if (turn_ && turn_->send(out.to, out.bytes)) drain_turn();
      continue;
    }
    if (search_.send_promoted(out)) continue;
    send(out.bytes, out.to);
  }
}

Status Punch::start_turn() {
  detail::TurnClientConfig config;
  config.server = *turn_server_;
  config.username = options_.turn->user;
  config.password = options_.turn->password;
  config.log = options_.log;
  turn_ = std::make_unique<detail::TurnClient>(config, [](std::span<std::uint8_t> out) {
    fill_random(out);
  });
  if (auto st = turn_->start(reactor_.now()); !st) return st;
  turn_settled_ = false;
  // TURN traffic is told apart by its source, the server (net/udp_mux.hpp).
  mux_->add_turn_server(*turn_server_);
  mux_->on_turn([this](std::span<const std::uint8_t> b, const Endpoint&) {
    if (turn_) turn_->on_datagram(b, reactor_.now());
    drain_turn();
  });
  drain_turn();
  return ok_status();
}

void Punch::drain_turn() {
  if (!turn_) return;
  while (auto e = turn_->next_event()) {
    switch (e->type) {
      case detail::TurnEvent::Type::allocated:
        // RFC 8445 s5.1.1.2: the relayed address is a candidate; the server's view of
        // our socket is one more server-reflexive observation.
        candidates_.add_relayed(e->relayed);
        relayed_candidate_ = true;
        if (e->mapped.port != 0) {
          candidates_.add_server_reflexive(e->mapped);
          observations_.push_back({*turn_server_, e->mapped});
        }
        turn_settled_ = true;
        log(LogLevel::info,
            fmt::format("TURN allocation at {}: relayed {}, {} s", options_.turn->server,
                        e->relayed.to_string(), e->lifetime));
        break;
      case detail::TurnEvent::Type::failed:
        turn_settled_ = true;
        turn_error_ = e->error;
        log(LogLevel::warning, "TURN: " + e->error.message);
        break;
      case detail::TurnEvent::Type::data:
        if (agent_) agent_->on_datagram(e->data, e->peer, reactor_.now(), true);
        break;
      case detail::TurnEvent::Type::deallocated:
        log(LogLevel::debug, "TURN allocation deleted (not needed)");
        break;
    }
  }
  for (const auto& bytes : turn_->take_outgoing()) send(bytes, *turn_server_);
  flush_agent();
}

void Punch::permit_peer(const std::vector<rdv::Candidate>& candidates) {
  if (!turn_) return;
  // RFC 8656 s9: datagrams from a peer pass the relay only with a permission for its IP.
  // The address the peer's checks come from (its NAT's mapping towards the relay) has
  // the IP of its server-reflexive candidates; a private one is refused by the server
  // and forgotten.
  for (const auto& c : candidates)
    if (c.address.ip.is_v4()) turn_->permit(c.address.ip, reactor_.now());
  drain_turn();
}

void Punch::on_connected(Clock::time_point now) {
  auto selected = agent_->selected();
  if (!turn_ || !selected) return;
  if (selected->via_relay) {
    // ChannelData from now: 4 bytes of overhead instead of a Send indication's 36.
    turn_->bind_channel(selected->remote, now);
  } else if (turn_->state() == detail::TurnClient::State::allocated ||
             turn_->state() == detail::TurnClient::State::allocating) {
    // A direct pair (or the peer's relay) won: ours is not needed. The answer comes
    // within the linger, while the reactor still reads the socket.
    turn_->deallocate(now);
  }
  drain_turn();
}

std::string Punch::relay_failure() const {
  if (!options_.turn) return {};
  if (relayed_candidate_) return {};
  if (turn_error_)
    return fmt::format("; a relay was needed, but TURN {}: {}", options_.turn->server,
                       turn_error_->message);
  return fmt::format("; a relay was needed, but TURN {} gave no allocation in time",
                     options_.turn->server);
}

detail::NatProfile Punch::local_profile() const {
  // The mappings were made in the order the first requests left: the rendezvous's,
  // then the --stun servers' in their order (schedule() sends them so).
  std::vector<Endpoint> servers{rendezvous_};
  for (const auto& st : stun_) servers.push_back(st.server);
  return detail::nat_profile_from(observations_, host_ips_, servers, mux_->local_port());
}

void Punch::start_strategy(const rdv::Description& peer) {
  const detail::NatProfile local = local_profile();
  const detail::NatProfile remote{peer.nat_mapping, peer.allocation, peer.port_step};
  const detail::StrategyPlan plan = detail::choose_strategy(local, remote);
  report_.strategy = detail::strategy_name(plan.strategy);
  agent_->set_keep_checking(plan.keep_checking);
  log(LogLevel::info, fmt::format("strategy {} (this side {}, the peer {})", report_.strategy,
                                  detail::nat_mapping_name(local.mapping),
                                  detail::nat_mapping_name(remote.mapping)));
  search_.start(plan, remote, peer.candidates, *agent_, reactor_.now(),
                [](std::span<std::uint8_t> out) { fill_random(out); });
}

void Punch::fill_report(bool punched) {
  report_.peer_id = peer_.to_string();
  report_.pairs.clear();
  if (agent_)
    for (const auto& p : agent_->report())
      report_.pairs.push_back({p.local, p.remote, detail::candidate_type_name(p.remote_type),
                               public_outcome(p.outcome, punched)});
  if (report_.local_nat.empty())
    report_.local_nat = detail::nat_mapping_name(
        detail::nat_mapping_from(observations_, host_ips_));
  report_.peer_nat = peer_nat_ ? detail::nat_mapping_name(*peer_nat_) : "";
  // A hint is about the NATs: only when the checks (or the peer) were the trouble.
  report_.packets_sent = search_.probes_sent() + search_.extra_packets();
  report_.sockets_opened = search_.sockets_opened();
  if (!punched && !stopped_ && outcome_ && outcome_->code == Errc::punch_failed) {
    report_.hint = detail::punch_hint(detail::nat_mapping_from(observations_, host_ips_),
                                      peer_nat_);
    const std::string tried = detail::strategy_hint(search_.plan(),
                                                    search_.probes_sent() + search_.extra_packets(),
                                                    search_.sockets_opened());
    if (!tried.empty()) report_.hint += (report_.hint.empty() ? "" : "; ") + tried;
  }
  report_.relay_error = turn_error_ ? turn_error_->message : "";
  if (punched && agent_ && agent_->selected() &&
      agent_->selected()->kind == detail::PathKind::relayed)
    report_.strategy = "relay";
  if (report_.strategy.empty()) report_.strategy = "direct";
  const auto end = punched && connected_at_ ? *connected_at_ : reactor_.now();
  report_.elapsed = std::chrono::duration_cast<milliseconds>(end - start_);
}

// One pass over every state machine at the current time, then the next wake-up.
void Punch::schedule() {
  if (outcome_ || punched_) return;
  auto now = reactor_.now();
  // The rendezvous exchange and the STUN probes: retransmissions and give-ups.
  rendezvous_client_->on_timer(now);
  while (auto e = rendezvous_client_->next_event()) {
    on_rendezvous_event(*e);
    if (outcome_) return;
  }
  flush_rendezvous();
  for (auto& s : stun_)
    if (auto bytes = s.transaction.due(now)) send(*bytes, s.server);
  if (turn_) {
    turn_->on_timer(now);
    drain_turn();
  }
  if (mapping_ && !mapping_settled_ && mapping_->finished()) {
    mapping_->join();
    mapping_settled_ = true;
    if (mapping_->mapping() && mapping_->mapping()->external_ip) {
      const IpAddress& ip = *mapping_->mapping()->external_ip;
      candidates_.add_mapped(Endpoint{ip, mapping_->mapping()->external_port});
      log(LogLevel::info, fmt::format("gateway mapping {}:{} via {}", ip.to_string(),
                                      mapping_->mapping()->external_port,
                                      protocol_name(mapping_->mapping()->protocol)));
    } else if (mapping_->error()) {
      log(LogLevel::debug, "no gateway mapping: " + mapping_->error()->message);
    }
  }
  if (now >= gather_until_) {
    // Budget spent: go on with what there is (the mapping thread is waited for at the end).
    mapping_settled_ = true;
    turn_settled_ = true;  // no relayed candidate, unless it comes before the offer goes
    for (auto& s : stun_)
      if (!s.transaction.settled()) s.transaction.abandon();
  }
  maybe_send_offer();
  // The offer (or an answer to an offer that waited for gathering) goes out now, not
  // with the client's next retransmission.
  flush_rendezvous();
  if (not_online_until_ && now >= *not_online_until_ && !answered_session_ &&
      (!agent_ || agent_->state() == IceAgent::State::waiting)) {
    finish(make_error(Errc::punch_failed,
                      fmt::format("peer {} is not online at rendezvous {} (waited {} ms)",
                                  peer_.to_string(), rendezvous_text_,
                                  options_.wait_for_peer.count())));
    return;
  }
  if (agent_) {
    agent_->on_timer(now);
    flush_agent();
    search_.on_timer(now,
                     [this](std::span<const std::uint8_t> b, const Endpoint& to) { send(b, to); });
    flush_agent();
    if (agent_->state() == IceAgent::State::connected) {
      if (!linger_until_) {
        linger_until_ = agent_->linger_until().value_or(now);
        connected_at_ = now;
        on_connected(now);
      }
      if (now >= *linger_until_) {
        punched_ = true;
        reactor_.stop();
        return;
      }
    } else if (agent_->state() == IceAgent::State::failed) {
      finish(make_error(Errc::punch_failed, fmt::format("no path to {}: {}{}", peer_.to_string(),
                                                        agent_->failure(), relay_failure())));
      return;
    }
  }
  if (now >= deadline_ && not_online_until_ && !answered_session_ &&
      (!agent_ || agent_->state() == IceAgent::State::waiting)) {
    finish(make_error(Errc::punch_failed,
                      fmt::format("peer {} is not online at rendezvous {} (gave up after {} ms)",
                                  peer_.to_string(), rendezvous_text_, options_.timeout.count())));
    return;
  }
  if (now >= deadline_) {
    finish(make_error(Errc::punch_failed,
                      fmt::format("no path to {} within {} ms{}", peer_.to_string(),
                                  options_.timeout.count(), relay_failure())));
    return;
  }
  // The next moment anything is due.
  Clock::time_point next = deadline_;
  auto earlier = [&](std::optional<Clock::time_point> t) {
    if (t && *t < next) next = *t;
  };
  earlier(rendezvous_client_->next_wakeup());
  for (const auto& s : stun_) earlier(s.transaction.next_wakeup());
  if (!gathering_done()) earlier(gather_until_);
  earlier(not_online_until_);
  earlier(linger_until_);
  earlier(search_.next_wakeup());
  if (agent_) earlier(agent_->next_wakeup());
  if (turn_) earlier(turn_->next_wakeup());
  if (timer_ != 0) reactor_.cancel(timer_);
  timer_ = reactor_.add_timer(std::max(next, now), [this] {
    timer_ = 0;
    schedule();
  });
}

Result<PunchResult> Punch::run() {
  start_ = reactor_.now();
  deadline_ = start_ + options_.timeout;
  gather_until_ = start_ + std::min(kMappingBudget, options_.timeout);
  rendezvous_text_ = options_.rendezvous;
  auto hp = parse_host_port(options_.rendezvous, detail::stun::kDefaultPort);
  if (!hp) return make_error(Errc::usage, "--rendezvous " + hp.error().message);
  auto ip = detail::resolve_ipv4(hp->host);
  if (!ip)
    return make_error(Errc::no_service,
                      fmt::format("rendezvous {}: {}", options_.rendezvous, ip.error().message));
  rendezvous_ = Endpoint{*ip, hp->port};
  auto stun_servers = detail::resolve_stun_servers(options_.stun_servers, options_.log);
  if (!stun_servers) return stun_servers.error();
  if (options_.turn) {
    auto thp = parse_host_port(options_.turn->server, detail::stun::kDefaultPort);
    if (!thp) return make_error(Errc::usage, "--turn " + thp.error().message);
    auto tip = detail::resolve_ipv4(thp->host);
    if (tip)
      turn_server_ = Endpoint{*tip, thp->port};
    else
      turn_error_ = make_error(Errc::no_service,
                               fmt::format("{}: {}", options_.turn->server, tip.error().message));
  }
  if (auto st = open_socket(); !st) return st.error();
  if (turn_server_)
    if (auto st = start_turn(); !st) return st.error();
  gather_host();
  start_stun(*stun_servers);
  if (options_.map) {
    mapping_settled_ = false;
    mapping_ = std::make_unique<MappingRequest>(options_, mux_->local_port());
    if (mapping_->done_fd() >= 0)
      reactor_.watch(mapping_->done_fd(), true, false, [this](bool, bool) {
        detail::drain_fd(mapping_->done_fd());
        schedule();
      });
  }
  if (stop_fd_ >= 0)
    reactor_.watch(stop_fd_, true, false, [this](bool, bool) {
      stopped_ = true;
      finish(make_error(Errc::punch_failed, "stopped before a path was found"));
    });
  log(LogLevel::debug, fmt::format("punch socket on UDP port {}", mux_->local_port()));
  rendezvous_client_ = std::make_unique<detail::RendezvousClient>(
      identity_, rendezvous_, deadline_, [](std::span<std::uint8_t> out) { fill_random(out); },
      detail::punch_rendezvous_options());
  rendezvous_client_->start(reactor_.now());
  schedule();
  auto st = reactor_.run();
  if (timer_ != 0) reactor_.cancel(timer_);
  if (!st && !outcome_) outcome_ = st.error();
  if (mapping_) {
    mapping_->join();
    if (mapping_->done_fd() >= 0) reactor_.unwatch(mapping_->done_fd());
  }
  const std::optional<Mapping> made = mapping_ ? mapping_->mapping() : std::nullopt;
  fill_report(punched_);
  if (!punched_ && turn_) {
    // Nothing to relay: the allocation goes (one Refresh LIFETIME 0; its answer is not
    // waited for).
    turn_->deallocate(reactor_.now());
    for (const auto& bytes : turn_->take_outgoing()) send(bytes, *turn_server_);
  }
  search_.close_extra_sockets();  // whatever the outcome, only the punch socket stays
  if (search_.promoted() && (!punched_ || !search_.path_on_promoted())) search_.close_promoted();
  if (!punched_) {
    if (made) {
      if (auto rs = release_punch_mapping(options_, *made); !rs)
        log(LogLevel::warning, "could not remove the gateway mapping: " + rs.error().message);
    }
    return outcome_.value_or(make_error(Errc::punch_failed, "no path"));
  }
  auto selected = agent_->selected();
  // A relayed path that keeps looking for a direct one: the agent goes on in the relay
  // thread (core/relay_loop.hpp), on the punch socket (not an extra birthday one).
  const bool own_relay = selected->via_relay && turn_ &&
                         turn_->state() == detail::TurnClient::State::allocated;
  const bool upgrade = options_.upgrade && selected->kind == detail::PathKind::relayed &&
                       (own_relay || (!selected->via_relay && !search_.promoted()));
  if (upgrade)
    agent_->start_upgrade(reactor_.now());
  else
    agent_->quiesce();
  rendezvous_client_->stop(reactor_.now());  // offline: the peer is found
  flush_rendezvous();
  PunchResult result;
  result.path = public_path(selected->kind);
  result.peer = selected->remote;
  result.local_seen = selected->local_seen.value_or(selected->local);
  result.peer_id = peer_;
  result.elapsed = report_.elapsed;
  result.report = report_;
  result.mapping = made;
  if (own_relay || upgrade) {
    // Through our own allocation (or, upgrading, to the peer's): the relay thread takes
    // the socket, the TURN client when ours carries the path, and the agent when it
    // keeps checking; the user gets a socketpair end (include/porthole/punch.hpp).
    reactor_.unwatch(mux_->fd());
    result.local = selected->local;
    log(LogLevel::info, fmt::format("relayed path to {} through {}{}", result.peer.to_string(),
                                    own_relay ? options_.turn->server : "the peer's relay",
                                    upgrade ? "; checking for a direct path" : ""));
    RelayLoopParts parts;
    parts.mux = std::move(mux_);
    if (own_relay) parts.turn = std::move(turn_);
    if (upgrade) parts.agent = std::move(agent_);
    parts.peer = result.peer;
    parts.log = options_.log;
    parts.on_upgrade = options_.on_upgrade;
    auto loop = RelayLoop::start(std::move(parts), result.socket);
    if (!loop) return loop.error();
    result.relay = std::move(*loop);
    return result;
  }
  // The mux keeps its socket until it is destroyed: hand out a duplicate, connected.
  // The birthday side's path may run from the extra socket the peer's check reached.
  const detail::UdpMux& chosen = search_.promoted() ? *search_.promoted() : *mux_;
  int fd = ::fcntl(chosen.fd(), F_DUPFD_CLOEXEC, 3);
  if (fd < 0) return make_error(Errc::internal, fmt::format("dup: {}", std::strerror(errno)));
  result.socket = OwnedFd(fd);
  sockaddr_storage sa{};
  const std::size_t len = result.peer.to_sockaddr(sa);
  if (::connect(fd, reinterpret_cast<const sockaddr*>(&sa), static_cast<socklen_t>(len)) != 0)
    return make_error(Errc::internal, fmt::format("connect to {}: {}", result.peer.to_string(),
                                                  std::strerror(errno)));
  sockaddr_storage own{};
  socklen_t own_len = sizeof own;
  if (::getsockname(fd, reinterpret_cast<sockaddr*>(&own), &own_len) == 0) {
    if (auto e = Endpoint::from_sockaddr(reinterpret_cast<const sockaddr*>(&own), own_len))
      result.local = *e;
  }
  reactor_.unwatch(mux_->fd());
  search_.stop();
  return result;
}

}  // namespace

Result<PunchResult> punch(const PunchOptions& options, const PeerId& peer, int stop_fd,
                          PunchReport* report) {
  PunchReport scratch;
  PunchReport& r = report != nullptr ? *report : scratch;
  r = PunchReport{};
  r.peer_id = peer.to_string();
  if (options.timeout.count() <= 0)
    return make_error(Errc::usage, "the punch timeout must be above 0");
  auto identity = Identity::load_or_create(options.state_dir);
  if (!identity) return identity.error();
  if (identity->id() == peer)
    return make_error(Errc::usage, "that is this host's own peer ID: name the other peer");
  Punch p(options, peer, std::move(*identity), stop_fd, r);
  return p.run();
}

Status release_punch_mapping(const PunchOptions& options, const Mapping& mapping,
                             std::chrono::milliseconds timeout) {
  Options o = mapping_options(options, timeout);
  CloseRequest request;
  request.port = PortSpec{mapping.internal_port, Transport::udp};
  request.external_port = mapping.external_port;
  auto r = close(o, request);
  if (!r) return r.error();
  return ok_status();
}

}  // namespace porthole
