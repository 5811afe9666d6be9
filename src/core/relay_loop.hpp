// The relay thread behind a relayed punch (PunchResult::relay, include/porthole/punch.hpp):
// it owns the punch socket (its UdpMux) and, when the path runs through our allocation,
// the TURN client, and moves datagrams between one end of an AF_UNIX SOCK_DGRAM
// socketpair and the peer: as ChannelData through the TURN server (RFC 8656 s12), or
// straight from the punch socket (to the peer's relayed candidate, or after an upgrade
// to the peer itself). The user holds the other end, a connected datagram socket like
// every other punch result, so --exec and the tunnel need no TURN knowledge. Its own
// reactor keeps the allocation, the permission and the channel alive (the TURN client's
// renewals) until the handle is destroyed or the user's end is gone; then it deletes the
// allocation (Refresh LIFETIME 0) and ends.
//
// With the punch's ICE agent (PunchOptions::upgrade) the thread also feeds it the STUN
// datagrams of the socket and of the relay: consent freshness (RFC 7675) on the path,
// and the rounds of direct checks of IceAgent::start_upgrade(). When the agent moves to
// a direct pair, the user's datagrams go there from then on, the peer's are taken from
// either path while it switches too, and the allocation is deleted once the peer's
// datagrams arrive direct (or kReleaseWait after the move).
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <thread>

#include "core/ice_agent.hpp"
#include "net/reactor.hpp"
#include "net/udp_mux.hpp"
#include "porthole/ip_address.hpp"
#include "porthole/log.hpp"
#include "porthole/punch.hpp"
#include "proto/turn_client.hpp"

namespace porthole {

struct RelayLoopParts {
  std::unique_ptr<detail::UdpMux> mux;
  // Our allocation, with a channel to `peer` asked for, when the path runs through it;
  // null when the path goes to the peer's relayed candidate.
  std::unique_ptr<detail::TurnClient> turn;
  // Connected on the relayed pair, upgrading (start_upgrade() called); null: relay only.
  std::unique_ptr<detail::IceAgent> agent;
  Endpoint peer;
  LogFn log;
  std::function<void(const PathUpgrade&)> on_upgrade;
};

class RelayLoop {
 public:
  // After a move the allocation stays this long at most for the peer's datagrams still
  // on their way through it.
  static constexpr std::chrono::milliseconds kReleaseWait{3000};

  // Starts the thread. `user_side` is returned as the socket the user gets (the other
  // end stays here). Errc::internal when the socketpair or eventfd cannot be made.
  static Result<std::shared_ptr<RelayLoop>> start(RelayLoopParts parts, OwnedFd& user_side);
  ~RelayLoop();  // deletes the allocation (bounded: 2 s) and joins the thread
  RelayLoop(const RelayLoop&) = delete;
  RelayLoop& operator=(const RelayLoop&) = delete;

 private:
  RelayLoop() = default;
  void run();
  void say(LogLevel level, const std::string& text) const;
  void deliver(std::span<const std::uint8_t> bytes);  // to the user's end
  void send_to_peer(std::span<const std::uint8_t> bytes);
  void flush_turn();
  void drain_turn_events();
  void after_agent();  // its packets out, then a move or a lost consent acted on
  void release_allocation();
  void end();
  void schedule();

  RelayLoopParts parts_;
  detail::Reactor* reactor_ = nullptr;  // run()'s, while it runs
  detail::Reactor::TimerId timer_ = 0;
  OwnedFd ours_;           // our end of the socketpair
  OwnedFd shutdown_;       // eventfd: the destructor asks the loop to end
  Endpoint relayed_peer_;  // the peer on the relayed path (its datagrams still count)
  bool via_turn_ = false;  // the user's datagrams go through our allocation
  bool upgraded_ = false;
  bool released_ = false;  // our allocation deleted (or none)
  bool ending_ = false;
  std::optional<detail::Clock::time_point> release_at_;
  std::thread thread_;
};

}  // namespace porthole
