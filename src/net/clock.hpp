// The time a state machine sees: an injectable clock, so the reactor's timers and the
// machines they drive (hold's keeper, serve's sessions) can be run from a unit test that
// advances time by hand instead of sleeping.
#pragma once

#include <chrono>

#include "net/deadline.hpp"

namespace porthole::detail {

// Time points are steady_clock's (Clock in net/deadline.hpp), so a reading can also
// serve as the Deadline of a real socket wait.
class ClockSource {
 public:
  virtual ~ClockSource() = default;
  virtual Clock::time_point now() const = 0;
  // True when now() follows the real steady clock: a reactor then sleeps in poll(2)
  // until the next timer; with a test clock it only looks at what is ready.
  virtual bool real() const noexcept { return true; }
};

class SteadyClockSource final : public ClockSource {
 public:
  Clock::time_point now() const override { return Clock::now(); }
};

// The process-wide real clock (stateless).
ClockSource& steady_clock_source() noexcept;

// A clock that moves only when the test says so. It starts well after the steady
// clock's epoch, so "now - a few hours" is still a valid time point.
class TestClock final : public ClockSource {
 public:
  TestClock() = default;
  explicit TestClock(Clock::time_point start) : now_(start) {}
  Clock::time_point now() const override { return now_; }
  bool real() const noexcept override { return false; }
  void advance(Clock::duration d) { now_ += d; }
  void set(Clock::time_point t) { now_ = t; }

 private:
  Clock::time_point now_{std::chrono::hours(24 * 365)};
};

}  // namespace porthole::detail
