// What a punch does beyond the plain ICE checks when one side's NAT maps per
// destination (the plan of core/punch_strategy.hpp), on the caller's reactor, for one
// peer and its ICE agent. punch() (core/punch.cpp) and the tunnel's expose side
// (src/tunnel/expose.cpp, one per peer on its one socket) drive the same code:
//
//   probe_peer    (prediction, birthday: the easy side) probes, from the caller's one
//                 socket, the peer's predicted ports or random ones of its address:
//                 send_probes(), one probe every interval, at most kMaxProbes.
//   open_sockets  (birthday: the hard side) opens kBirthdaySockets extra sockets
//                 kBirthdayDelay after the checks began, each sending one check toward
//                 the peer's server-reflexive candidates (a new mapping on this side's
//                 NAT each). The first the peer's check reaches is promoted: every other
//                 one is closed at once, and the agent's packets to the peer leave
//                 through it (send_promoted()); the caller may run its traffic on it.
//
// Everything opened is closed by close_extra_sockets() and the destructor; the
// counts (probes_sent, extra_packets, sockets_opened) are what the caps bound.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <vector>

#include "codec/rendezvous_codec.hpp"
#include "core/ice_agent.hpp"
#include "core/punch_strategy.hpp"
#include "net/reactor.hpp"
#include "net/udp_mux.hpp"
#include "porthole/ip_address.hpp"
#include "porthole/log.hpp"

namespace porthole::detail {

class PortSearch {
 public:
  using SendFn = std::function<void(std::span<const std::uint8_t>, const Endpoint&)>;
  // `after_read`: called after an extra socket's datagrams were handled (the caller runs
  // its state machines then). `on_quic`: what an extra socket receives that is not STUN
  // (the promoted one's tunnel traffic); unset: dropped.
  PortSearch(Reactor& reactor, LogFn log, std::function<void()> after_read,
             UdpMux::Handler on_quic = {});
  ~PortSearch();
  PortSearch(const PortSearch&) = delete;
  PortSearch& operator=(const PortSearch&) = delete;

  // The plan for this peer, from its description (its profile and candidates). `agent`
  // runs the checks with that peer and must outlive this object (or stop()).
  void start(const StrategyPlan& plan, const NatProfile& peer,
             std::span<const rendezvous::Candidate> peer_candidates, IceAgent& agent,
             Clock::time_point now, const RandomFn& random);
  const StrategyPlan& plan() const noexcept { return plan_; }

  // The probes due by `now`, through `send` (the caller's one socket), and the extra
  // sockets when they are due; both only while the agent is checking.
  void on_timer(Clock::time_point now, const SendFn& send);
  std::optional<Clock::time_point> next_wakeup() const;

  // When `out` goes to the peer the promoted socket was reached by: sent through it,
  // true. False: the caller sends it.
  bool send_promoted(const IceAgent::Outgoing& out);
  // The promoted socket, and the peer address that reached it (both empty before).
  UdpMux* promoted() const noexcept { return promoted_.get(); }
  const std::optional<Endpoint>& promoted_to() const noexcept { return promoted_to_; }
  // Whether the agent's selected pair runs over the promoted socket.
  bool path_on_promoted() const;

  // Every extra socket but the promoted one is closed.
  void close_extra_sockets();
  // The promoted one too (it did not become the path).
  void close_promoted();
  // Nothing more is read from the sockets kept (they stay open); no more probes.
  void stop();

  std::size_t probes_sent() const noexcept { return probes_sent_; }
  std::size_t extra_packets() const noexcept { return extra_packets_; }
  std::size_t sockets_opened() const noexcept { return sockets_opened_; }

 private:
  void log(LogLevel level, const std::string& text) const {
    if (log_) log_(level, text);
  }
  void send_probes(Clock::time_point now, const SendFn& send);
  void open_sockets();
  void on_extra_datagram(std::size_t index, std::span<const std::uint8_t> bytes,
                         const Endpoint& from);
  void unwatch(const std::unique_ptr<UdpMux>& mux);

  Reactor& reactor_;
  LogFn log_;
  std::function<void()> after_read_;
  UdpMux::Handler on_quic_;
  IceAgent* agent_ = nullptr;
  StrategyPlan plan_;
  std::optional<IpAddress> probe_ip_;       // the peer's address from its description
  std::vector<std::uint16_t> predicted_;    // prediction: the ports probed, round robin
  std::vector<std::uint8_t> random_ports_;  // birthday: two random bytes per probe
  std::vector<std::uint8_t> probe_bytes_;   // one signed check, sent to every port
  std::optional<Clock::time_point> next_probe_;
  // Birthday, the hard side: when the extra sockets open, and toward what.
  std::optional<Clock::time_point> birthday_at_;
  std::vector<Endpoint> birthday_targets_;
  std::size_t probes_sent_ = 0;
  std::size_t extra_packets_ = 0;
  std::size_t sockets_opened_ = 0;
  std::vector<std::unique_ptr<UdpMux>> extra_;
  std::unique_ptr<UdpMux> promoted_;
  std::optional<Endpoint> promoted_to_;
};

}  // namespace porthole::detail
