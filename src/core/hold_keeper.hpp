// hold's keeper: the per-mapping state machine behind porthole::hold. It lives on a
// reactor (net/reactor.hpp) and reads time only from the reactor's clock; protocol
// exchanges run on worker threads that post their results back to the loop, so a stop
// never waits behind a silent router. The keeper's own state is touched only from the
// loop's thread. Declared here so a unit test can drive it with fake PortMappers in
// the Session and a TestClock.
#pragma once

#include <array>
#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "core/hold_hook.hpp"
#include "core/session.hpp"
#include "net/reactor.hpp"
#include "net/udp_socket.hpp"
#include "porthole/hold.hpp"

namespace porthole::detail {

// One requested port and what hold knows of it.
struct Held {
  OpenRequest req;
  bool mapped = false;  // believed to be on the router now
  bool ever_mapped = false;
  Mapping mapping;  // the last grant
  Nonce nonce{};    // PCP: the creating nonce, kept for renewals and delete
  bool has_nonce = false;
  std::optional<Protocol> last_protocol;
  Clock::time_point granted_at{};
  std::uint32_t grant_epoch = 0;         // PCP / NAT-PMP server epoch in the grant
  std::optional<IpAddress> reported_ip;  // the external address the router last reported
  Clock::time_point expires = Clock::time_point::max();
  std::vector<std::chrono::milliseconds> renewals;  // offsets from granted_at
  std::size_t next_renewal = 0;
  Clock::time_point due{};                                 // next create / renew
  Clock::time_point check_due = Clock::time_point::max();  // next UPnP entry check
  std::chrono::milliseconds backoff{0};
};

class Keeper {
 public:
  Keeper(Session& s, const HoldRequest& req, const HoldEventFn& emit, Reactor& reactor)
      : s_(s), req_(req), emit_(emit), reactor_(reactor), rng_(std::random_device{}()) {}
  ~Keeper();
  Keeper(const Keeper&) = delete;
  Keeper& operator=(const Keeper&) = delete;

  // The whole of porthole::hold: start(), the reactor until `stop_fd` is readable, then
  // release().
  Status run(int stop_fd);

  // Reads the prior state, opens the announcement listener and the hook, and puts the
  // first attempt of every port on the reactor (due now).
  void start();
  // Removes every mapping held, all at once, bounded by one Options::timeout in all;
  // what could not be removed stays in the state file and is in the error.
  Status release();

  const std::vector<Held>& held() const noexcept { return held_; }

 private:
  void load_prior();
  void step();  // one wake-up: whatever is due
  void arm();   // the reactor timer for the next due moment, and the fds to watch
  void attempt(Held& h);
  void create(Held& h);
  void renew(Held& h);
  void check_upnp(Held& h);
  void granted(Held& h, MapOutcome outcome, Protocol p);
  void failed(Held& h, const Error& e, bool was_mapped);
  void mark_lost(Held& h, const Error& why);
  void on_announcement();
  void verify_external();
  void address_changed(Held& h, const IpAddress& old_ip, std::uint16_t old_port);
  void report_hooks();
  void record(const Held& h, bool remove);
  void flush_state();

  // Runs `job` on a worker thread while the reactor keeps turning; nullopt when the
  // loop was stopped first (the worker then finishes by its deadline, unwaited).
  template <class T>
  std::optional<T> off_loop(std::function<T()> job);

  std::vector<Protocol> order_for(const Held& h) const;
  MapParams params_for(const Held& h, Protocol p) const;
  Clock::time_point now() const { return reactor_.now(); }
  Deadline call_deadline() const { return now() + s_.options.timeout; }
  void event(HoldEventKind kind, const Held* h, std::string message,
             std::optional<Error> error = std::nullopt);
  void reset_client(Protocol p);
  double random01() { return std::uniform_real_distribution<double>(0.0, 1.0)(rng_); }

  Session& s_;
  const HoldRequest& req_;
  const HoldEventFn& emit_;
  Reactor& reactor_;
  std::mt19937_64 rng_;
  std::vector<Held> held_;
  std::optional<UdpSocket> announce_;
  std::optional<HookRunner> hook_;
  int hook_fd_watched_ = -1;
  Reactor::TimerId wake_timer_ = 0;
  bool in_step_ = false;
  bool announce_ready_ = false;
  bool ready_sent_ = false;
  Clock::time_point verify_due_ = Clock::time_point::max();
  // The external address STUN saw when it differed from the router's report (a router
  // behind another NAT, or one that missed its own address change): it stands for
  // every mapping until the router reports another address.
  std::optional<IpAddress> stun_ip_;
  std::vector<std::pair<std::size_t, bool>> dirty_;  // held_ index, removed
  // A protocol that failed for lack of an answer in this round is not asked again for
  // the other ports of the same round (200 ports must not wait 200 deadlines).
  std::uint64_t round_ = 0;
  std::array<std::uint64_t, 3> silent_in_round_{};
};

}  // namespace porthole::detail
