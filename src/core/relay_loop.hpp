// The relay thread behind a relayed punch (PunchResult::relay, include/porthole/punch.hpp):
// it owns the punch socket (its UdpMux) and the TURN client of the allocation, and moves
// datagrams between one end of an AF_UNIX SOCK_DGRAM socketpair and the peer, as
// ChannelData through the TURN server (RFC 8656 s12). The user holds the other end, a
// connected datagram socket like every other punch result, so --exec and the tunnel
// need no TURN knowledge. Its own reactor keeps the allocation, the permission and the
// channel alive (the TURN client's renewals) until the handle is destroyed or the user's
// end is gone; then it deletes the allocation (Refresh LIFETIME 0) and ends.
#pragma once

#include <memory>
#include <thread>

#include "net/udp_mux.hpp"
#include "porthole/ip_address.hpp"
#include "porthole/log.hpp"
#include "porthole/punch.hpp"
#include "proto/turn_client.hpp"

namespace porthole {

class RelayLoop {
 public:
  // Starts the thread. `user_side` is returned as the socket the user gets (the other
  // end stays here); the TURN client must be allocated with a channel to `peer` asked
  // for. Errc::internal when the socketpair or eventfd cannot be made.
  static Result<std::shared_ptr<RelayLoop>> start(std::unique_ptr<detail::UdpMux> mux,
                                                  std::unique_ptr<detail::TurnClient> turn,
                                                  const Endpoint& peer, LogFn log,
                                                  OwnedFd& user_side);
  ~RelayLoop();  // deletes the allocation (bounded: 2 s) and joins the thread
  RelayLoop(const RelayLoop&) = delete;
  RelayLoop& operator=(const RelayLoop&) = delete;

 private:
  RelayLoop() = default;
  void run();

  std::unique_ptr<detail::UdpMux> mux_;
  std::unique_ptr<detail::TurnClient> turn_;
  Endpoint peer_;
  LogFn log_;
  OwnedFd ours_;      // our end of the socketpair
  OwnedFd shutdown_;  // eventfd: the destructor asks the loop to end
  std::thread thread_;
};

}  // namespace porthole
