// expose's gateway mapping of its tunnel port, kept alive exactly as `porthole hold`
// keeps one (porthole::hold(): renewals, reboot recovery, removal at the end) on a worker
// thread of its own, since hold's protocol exchanges block. What hold reports comes back
// to the caller's reactor through an eventfd, as GatewayKeeperEvents on its thread.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <thread>

#include "net/reactor.hpp"
#include "porthole/hold.hpp"
#include "porthole/tunnel.hpp"

namespace porthole::detail {

struct GatewayKeeperEvent {
  std::string what;                  // "mapped", "renewed", "lost", "removed"
  std::optional<Endpoint> external;  // the mapping's external address, when there is one
  std::string message;
};

class GatewayKeeper {
 public:
  using EventFn = std::function<void(const GatewayKeeperEvent&)>;
  GatewayKeeper(Reactor& reactor, const ExposeOptions& options, std::uint16_t port, EventFn fn);
  ~GatewayKeeper();
  GatewayKeeper(const GatewayKeeper&) = delete;
  GatewayKeeper& operator=(const GatewayKeeper&) = delete;

  // Waits (blocking, before the reactor runs) until hold made its first attempt or
  // `budget` passed, and hands out what came so far.
  void wait_first(std::chrono::milliseconds budget);
  // Tells hold to stop, waits for its removals (bounded by hold's own timeout), and
  // hands out the last events.
  void stop();

 private:
  void deliver();

  Reactor& reactor_;
  EventFn fn_;
  int notify_fd_ = -1;
  int stop_fd_ = -1;
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<GatewayKeeperEvent> queue_;
  bool first_done_ = false;
  std::thread thread_;
};

}  // namespace porthole::detail
