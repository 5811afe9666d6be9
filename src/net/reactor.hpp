// One reactor per process: a single poll(2) loop over file descriptors (read and write
// interest, a callback each), a timer heap, and a stop fd. run() sleeps exactly until
// the next timer is due or a descriptor is ready: no periodic polling. Time comes from
// an injectable ClockSource (net/clock.hpp), so the state machines on the loop can be
// driven from a unit test with a TestClock and run_ready().
//
// Single-threaded: everything but stop() and stop_fd() must be called from the thread
// that runs the loop. Callbacks may add and cancel timers and watch or unwatch
// descriptors (their own included) freely.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <queue>
#include <unordered_map>
#include <vector>

#include "net/clock.hpp"
#include "porthole/error.hpp"

namespace porthole::detail {

class Reactor {
 public:
  using TimerId = std::uint64_t;  // never 0
  using TimerFn = std::function<void()>;
  // `readable` / `writable`: what poll(2) reported (errors and hang-ups count as both,
  // so the callback's read or connect result tells which).
  using FdFn = std::function<void(bool readable, bool writable)>;

  explicit Reactor(ClockSource& clock = steady_clock_source());
  ~Reactor();
  Reactor(const Reactor&) = delete;
  Reactor& operator=(const Reactor&) = delete;

  ClockSource& clock() const noexcept { return clock_; }
  Clock::time_point now() const { return clock_.now(); }

  // Timers fire in order of due time, timers due at the same time in the order they
  // were added. A timer due now or earlier fires at the next turn of the loop.
  TimerId add_timer(Clock::time_point due, TimerFn fn);
  TimerId add_timer_in(Clock::duration delay, TimerFn fn) {
    return add_timer(now() + delay, std::move(fn));
  }
  // False when it already fired or was cancelled (then nothing happens).
  bool cancel(TimerId id);
  std::size_t pending_timers() const noexcept { return timers_.size(); }
  // The due time of the earliest pending timer, Clock::time_point::max() when none.
  Clock::time_point next_due();

  // Watches `fd` (one watch per fd: watching it again replaces the callback).
  void watch(int fd, bool read, bool write, FdFn fn);
  // Changes the interest of a watched fd; false when it is not watched.
  bool set_interest(int fd, bool read, bool write);
  void unwatch(int fd);
  bool watching(int fd) const { return watches_.count(fd) != 0; }

  // Writes to the stop eventfd: async-signal-safe and thread-safe (a signal handler or
  // a worker thread may call it). run() returns at its next turn.
  void stop() noexcept;
  // The eventfd stop() writes to; a signal handler may write an 8-byte 1 to it.
  int stop_fd() const noexcept { return stop_fd_; }
  // Stops the loop when `fd` becomes readable (a caller's eventfd or signalfd, not
  // read here).
  void stop_on(int fd) {
    watch(fd, true, false, [this](bool, bool) { stop(); });
  }
  // True once a stop was seen by the loop, until clear_stop().
  bool stopping() const noexcept { return stopped_; }
  // Forgets a seen stop (and drains the eventfd), so the loop can run again: hold
  // uses this to run its release phase after the stop.
  void clear_stop();

  // Runs until a stop (stop(), the stop fd, or a watched fd's callback calling stop()),
  // or until nothing is left to wait for (no timers, no watches). Errors: Errc::internal
  // when poll(2) fails or the stop eventfd could not be created.
  Status run();
  // Runs until `done()` is true after a turn, or a stop; same errors. Re-entrant: a
  // callback may call it to wait for one event while the loop keeps serving the rest.
  Status run_until(const std::function<bool()>& done);
  // One turn without sleeping: the timers due by now() and the descriptors ready at
  // once. What a test calls after TestClock::advance(). Returns callbacks run.
  Result<std::size_t> run_ready();

 private:
  struct Timer {
    Clock::time_point due;
    TimerId id;
    bool operator>(const Timer& o) const { return due != o.due ? due > o.due : id > o.id; }
  };
  struct Watch {
    bool read = false;
    bool write = false;
    FdFn fn;
    std::uint64_t serial = 0;  // tells a replaced watch from the one poll saw
  };
  // One turn: waits at most `max_wait_ms` (-1: until the next timer or forever).
  Result<std::size_t> turn(bool may_sleep);
  std::size_t fire_due_timers();

  ClockSource& clock_;
  int stop_fd_ = -1;
  bool stopped_ = false;
  TimerId next_id_ = 1;
  std::priority_queue<Timer, std::vector<Timer>, std::greater<Timer>> heap_;
  std::unordered_map<TimerId, TimerFn> timers_;  // pending; heap entries not here are stale
  std::map<int, Watch> watches_;
  std::uint64_t next_serial_ = 1;
};

// Writes to an eventfd (or pipe) from a signal handler: async-signal-safe.
void notify_fd(int fd) noexcept;
// Reads what an eventfd holds (or a pipe's pending bytes), non-blocking.
void drain_fd(int fd) noexcept;

}  // namespace porthole::detail
