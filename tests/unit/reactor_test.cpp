// The reactor: timer order and cancellation, the stop fd, descriptor dispatch, and the
// test clock that drives it without sleeping.
#include <catch2/catch.hpp>

#include <sys/eventfd.h>
#include <unistd.h>

#include <string>
#include <thread>
#include <vector>

#include "net/clock.hpp"
#include "net/reactor.hpp"

using namespace porthole::detail;
using std::chrono::milliseconds;
using std::chrono::seconds;

TEST_CASE("reactor timers fire in due order, ties in insertion order", "[reactor]") {
  TestClock clock;
  Reactor r(clock);
  std::string order;
  const auto t0 = clock.now();
  r.add_timer(t0 + seconds(3), [&] { order += 'c'; });
  r.add_timer(t0 + seconds(1), [&] { order += 'a'; });
  r.add_timer(t0 + seconds(2), [&] { order += 'b'; });
  r.add_timer(t0 + seconds(2), [&] { order += 'B'; });  // same time: after 'b'
  CHECK(r.next_due() == t0 + seconds(1));
  REQUIRE(r.run_ready().ok());
  CHECK(order.empty());  // nothing due yet: the test clock has not moved
  clock.advance(seconds(2));
  REQUIRE(r.run_ready().ok());
  CHECK(order == "abB");
  clock.advance(seconds(5));
  REQUIRE(r.run_ready().ok());
  CHECK(order == "abBc");
  CHECK(r.pending_timers() == 0);
  CHECK(r.next_due() == Clock::time_point::max());
}

TEST_CASE("reactor cancels timers, also from inside a callback", "[reactor]") {
  TestClock clock;
  Reactor r(clock);
  std::vector<int> fired;
  Reactor::TimerId second = 0;
  const auto t0 = clock.now();
  const auto gone = r.add_timer(t0 + seconds(1), [&] { fired.push_back(0); });
  r.add_timer(t0 + seconds(2), [&] {
    fired.push_back(1);
    CHECK(r.cancel(second));  // due at the same moment, not yet run
  });
  second = r.add_timer(t0 + seconds(2), [&] { fired.push_back(2); });
  r.add_timer(t0 + seconds(2), [&] { fired.push_back(3); });
  CHECK(r.cancel(gone));
  CHECK_FALSE(r.cancel(gone));  // twice: nothing left to cancel
  clock.advance(seconds(10));
  REQUIRE(r.run_ready().ok());
  CHECK(fired == std::vector<int>{1, 3});
  CHECK_FALSE(r.cancel(second));
}

TEST_CASE("reactor: a timer added by a callback for now runs at the next turn", "[reactor]") {
  TestClock clock;
  Reactor r(clock);
  int runs = 0;
  r.add_timer(clock.now(), [&] {
    ++runs;
    r.add_timer(clock.now(), [&] { ++runs; });
  });
  REQUIRE(r.run_ready().ok());
  CHECK(runs == 1);
  REQUIRE(r.run_ready().ok());
  CHECK(runs == 2);
}

TEST_CASE("reactor: the stop fd ends run()", "[reactor]") {
  Reactor r;
  int late = 0;
  r.add_timer_in(milliseconds(1), [&] { r.stop(); });
  r.add_timer_in(seconds(3600), [&] { ++late; });
  REQUIRE(r.run().ok());
  CHECK(r.stopping());
  CHECK(late == 0);
  CHECK(r.pending_timers() == 1);

  // Written from outside (a signal handler, another thread): the same.
  r.clear_stop();
  CHECK_FALSE(r.stopping());
  std::thread other([&] { notify_fd(r.stop_fd()); });
  REQUIRE(r.run().ok());
  other.join();
  CHECK(r.stopping());
  CHECK(late == 0);
}

TEST_CASE("reactor: run() returns when nothing is left to wait for", "[reactor]") {
  Reactor r;
  int n = 0;
  r.add_timer_in(milliseconds(0), [&] { ++n; });
  REQUIRE(r.run().ok());
  CHECK(n == 1);
  CHECK_FALSE(r.stopping());
}

TEST_CASE("reactor dispatches readable and writable descriptors", "[reactor]") {
  int p[2];
  REQUIRE(::pipe(p) == 0);
  TestClock clock;
  Reactor r(clock);
  int reads = 0, writes = 0;
  r.watch(p[0], true, false, [&](bool readable, bool writable) {
    CHECK(readable);
    CHECK_FALSE(writable);
    char c;
    CHECK(::read(p[0], &c, 1) == 1);
    ++reads;
  });
  r.watch(p[1], false, true, [&](bool readable, bool writable) {
    CHECK_FALSE(readable);
    CHECK(writable);
    ++writes;
    r.set_interest(p[1], false, false);  // written once: no more interest
  });
  REQUIRE(r.run_ready().ok());
  CHECK(reads == 0);  // nothing written yet
  CHECK(writes == 1);
  REQUIRE(::write(p[1], "x", 1) == 1);
  REQUIRE(r.run_ready().ok());
  CHECK(reads == 1);
  CHECK(writes == 1);
  REQUIRE(r.run_ready().ok());
  CHECK(reads == 1);  // drained: not readable again

  // A callback that unwatches another descriptor ready in the same turn: that one's
  // callback does not run.
  int efd = ::eventfd(0, EFD_NONBLOCK);
  REQUIRE(efd >= 0);
  REQUIRE(::write(p[1], "y", 1) == 1);
  notify_fd(efd);
  int first = 0;
  const int a = std::min(p[0], efd), b = std::max(p[0], efd);
  r.watch(a, true, false, [&](bool, bool) {
    ++first;
    r.unwatch(b);
  });
  r.watch(b, true, false, [&](bool, bool) { FAIL("unwatched during the turn, still ran"); });
  REQUIRE(r.run_ready().ok());
  CHECK(first == 1);
  CHECK_FALSE(r.watching(b));
  ::close(efd);
  ::close(p[0]);
  ::close(p[1]);
}

TEST_CASE("reactor run_until waits for one event while timers keep firing", "[reactor]") {
  Reactor r;
  bool done = false;
  int ticks = 0;
  r.add_timer_in(milliseconds(0), [&] { ++ticks; });
  r.add_timer_in(milliseconds(2), [&] { done = true; });
  REQUIRE(r.run_until([&] { return done; }).ok());
  CHECK(done);
  CHECK(ticks == 1);
}

TEST_CASE("test clock moves only when advanced", "[reactor]") {
  TestClock clock;
  const auto t0 = clock.now();
  CHECK_FALSE(clock.real());
  CHECK(clock.now() == t0);
  clock.advance(milliseconds(1500));
  CHECK(clock.now() - t0 == milliseconds(1500));
  CHECK(steady_clock_source().real());
}
