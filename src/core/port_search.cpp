// Port prediction's probes and the birthday method's extra sockets
// (core/port_search.hpp).
#include "core/port_search.hpp"

#include <algorithm>

#include <fmt/format.h>

#include "net/bound_udp_socket.hpp"

namespace porthole::detail {

PortSearch::PortSearch(Reactor& reactor, LogFn log, std::function<void()> after_read,
                       UdpMux::Handler on_quic)
    : reactor_(reactor),
      log_(std::move(log)),
      after_read_(std::move(after_read)),
      on_quic_(std::move(on_quic)) {}

PortSearch::~PortSearch() {
  close_extra_sockets();
  unwatch(promoted_);
}

void PortSearch::unwatch(const std::unique_ptr<UdpMux>& mux) {
  if (mux && reactor_.watching(mux->fd())) reactor_.unwatch(mux->fd());
}

void PortSearch::start(const StrategyPlan& plan, const NatProfile& peer,
                       std::span<const rendezvous::Candidate> peer_candidates, IceAgent& agent,
                       Clock::time_point now, const RandomFn& random) {
  plan_ = plan;
  agent_ = &agent;
  if (plan_.probe_peer) {
    // Only ever toward the address the peer's signed description names.
    probe_ip_ = probe_address(peer_candidates);
    if (!probe_ip_) {
      log(LogLevel::info, "no server-reflexive candidate of the peer's to probe");
    } else if (plan_.strategy == Strategy::prediction) {
      std::vector<std::uint16_t> observed;
      for (const auto& c : peer_candidates)
        if (c.type == ice::CandidateType::server_reflexive && c.address.ip == *probe_ip_)
          observed.push_back(c.address.port);
      predicted_ = predicted_ports(peer, observed);
      next_probe_ = now;
    } else {
      random_ports_.resize(2 * kMaxProbes);
      random(random_ports_);
      next_probe_ = now;
    }
  }
  if (plan_.open_sockets) {
    for (const auto& c : peer_candidates)
      if (c.type == ice::CandidateType::server_reflexive && c.address.ip.is_v4())
        birthday_targets_.push_back(c.address);
    // The plain checks first: against a NAT that filters by address only, or not at
    // all, they need no extra socket, and extra sockets' checks reaching it would
    // compete with the path they find.
    if (!birthday_targets_.empty()) birthday_at_ = now + kBirthdayDelay;
  }
}

void PortSearch::on_timer(Clock::time_point now, const SendFn& send) {
  if (!agent_) return;
  send_probes(now, send);
  if (birthday_at_ && now >= *birthday_at_) {
    birthday_at_.reset();
    open_sockets();
  }
}

std::optional<Clock::time_point> PortSearch::next_wakeup() const {
  if (next_probe_ && birthday_at_) return std::min(*next_probe_, *birthday_at_);
  return next_probe_ ? next_probe_ : birthday_at_;
}

void PortSearch::send_probes(Clock::time_point now, const SendFn& send) {
  if (!next_probe_ || !probe_ip_) return;
  if (agent_->state() != IceAgent::State::checking || probes_sent_ >= kMaxProbes) {
    if (probes_sent_ >= kMaxProbes)
      log(LogLevel::debug,
          fmt::format("{}: probe cap of {} reached", strategy_name(plan_.strategy), kMaxProbes));
    next_probe_.reset();
    return;
  }
  const bool birthday = plan_.strategy == Strategy::birthday;
  const auto interval = birthday ? kBirthdayProbeInterval : kPredictionProbeInterval;
  if (birthday ? random_ports_.size() < 2 * kMaxProbes : predicted_.empty()) {
    next_probe_.reset();
    return;
  }
  // Every probe that fell due goes now, also after a late wake-up: the pace bounds the
  // probes per elapsed time (never more than one per interval since the start), and
  // kMaxProbes bounds them all.
  while (*next_probe_ <= now && probes_sent_ < kMaxProbes) {
    std::uint16_t port = birthday ? probe_port(random_ports_[2 * probes_sent_],
                                               random_ports_[2 * probes_sent_ + 1])
                                  : predicted_[probes_sent_ % predicted_.size()];
    const Endpoint to{*probe_ip_, port};
    // One signed check serves every probe: it proves the peer's key, not where it is
    // from, and only one probe is meant to arrive.
    if (probe_bytes_.empty()) {
      auto bytes = agent_->probe_check(to);
      if (!bytes) {
        next_probe_.reset();
        return;
      }
      probe_bytes_ = std::move(*bytes);
    }
    send(probe_bytes_, to);
    ++probes_sent_;
    *next_probe_ += interval;
  }
}

void PortSearch::open_sockets() {
  const std::vector<Endpoint>& targets = birthday_targets_;
  if (targets.empty() || agent_->state() != IceAgent::State::checking) return;
  auto bytes = agent_->probe_check(targets.front());
  if (!bytes) return;
  for (std::size_t i = 0; i < kBirthdaySockets; ++i) {
    auto sock = open_bound_udp_socket("0.0.0.0", 0);
    if (!sock) {
      log(LogLevel::debug, "birthday: no more sockets: " + sock.error().message);
      break;
    }
    auto mux = std::make_unique<UdpMux>(std::move(*sock));
    mux->on_stun([this, i](std::span<const std::uint8_t> b, const Endpoint& from) {
      on_extra_datagram(i, b, from);
    });
    if (on_quic_) mux->on_quic(on_quic_);
    for (const auto& to : targets) {
      // Each send makes a new mapping on this side's NAT, open to the peer's endpoint.
      if (mux->send_to(*bytes, to)) ++extra_packets_;
    }
    UdpMux* raw = mux.get();
    reactor_.watch(raw->fd(), true, false, [this, raw](bool, bool) {
      auto r = raw->on_readable();
      if (!r) log(LogLevel::debug, "birthday socket: " + r.error().message);
      // A copy: what the caller runs may end this object.
      const auto after = after_read_;
      if (after) after();
    });
    extra_.push_back(std::move(mux));
    ++sockets_opened_;
  }
  log(LogLevel::debug, fmt::format("birthday: {} extra sockets, {} checks toward {}",
                                   sockets_opened_, extra_packets_, targets.front().to_string()));
}

void PortSearch::on_extra_datagram(std::size_t index, std::span<const std::uint8_t> bytes,
                                   const Endpoint& from) {
  if (!agent_ || agent_->quiesced()) return;
  if (promoted_) {
    // The others are closed: only the promoted socket still delivers, and what reaches
    // it is the path's.
    agent_->on_datagram(bytes, from, reactor_.now());
    return;
  }
  if (index >= extra_.size() || !extra_[index]) return;
  if (!agent_->on_datagram(bytes, from, reactor_.now())) return;
  // A path the caller's socket already proved stays: moving the traffic to another
  // socket now would leave the peer's nomination on the old one unanswered.
  const auto pairs = agent_->report();
  if (agent_->state() != IceAgent::State::checking ||
      std::any_of(pairs.begin(), pairs.end(), [&](const PairReport& p) {
        return p.remote == from &&
               (p.outcome == PairOutcome::succeeded || p.outcome == PairOutcome::nominated);
      }))
    return;
  // The first socket the peer's own check reached is the way through: it becomes the
  // path's socket, and every other extra socket is closed at once.
  promoted_ = std::move(extra_[index]);
  promoted_to_ = from;
  log(LogLevel::debug, fmt::format("birthday: socket on port {} reached by {} ({} probes of ours)",
                                   promoted_->local_port(), from.to_string(), extra_packets_));
  close_extra_sockets();
}

bool PortSearch::send_promoted(const IceAgent::Outgoing& out) {
  if (!promoted_ || !promoted_to_ || out.relayed || out.to != *promoted_to_) return false;
  if (auto st = promoted_->send_to(out.bytes, out.to); !st)
    log(LogLevel::debug, fmt::format("send to {}: {}", out.to.to_string(), st.error().message));
  return true;
}

bool PortSearch::path_on_promoted() const {
  if (!promoted_ || !promoted_to_ || !agent_) return false;
  const auto selected = agent_->selected();
  return selected && selected->remote == *promoted_to_;
}

void PortSearch::close_extra_sockets() {
  for (auto& m : extra_) unwatch(m);
  extra_.clear();
}

void PortSearch::close_promoted() {
  unwatch(promoted_);
  promoted_.reset();
}

void PortSearch::stop() {
  close_extra_sockets();
  unwatch(promoted_);
  next_probe_.reset();
  birthday_at_.reset();
}

}  // namespace porthole::detail
