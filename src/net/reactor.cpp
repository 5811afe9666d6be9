// The reactor: timers in a min-heap keyed by (due, insertion number), descriptors in a
// map rebuilt into a pollfd array each turn (tens of descriptors: cheaper than epoll's
// bookkeeping), a stop eventfd polled with them.
#include "net/reactor.hpp"

#include <poll.h>
#include <time.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <utility>

#include <fmt/format.h>

namespace porthole::detail {

ClockSource& steady_clock_source() noexcept {
  static SteadyClockSource clock;
  return clock;
}

void notify_fd(int fd) noexcept {
  if (fd < 0) return;
  const std::uint64_t one = 1;
  // An eventfd takes the 8 bytes whole; a pipe takes them too (the reader drains it).
  ssize_t n = ::write(fd, &one, sizeof(one));
  (void)n;
}

void drain_fd(int fd) noexcept {
  if (fd < 0) return;
  char buf[64];
  for (int i = 0; i < 16; ++i) {
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, 0) <= 0 || (p.revents & POLLIN) == 0) return;
    if (::read(fd, buf, sizeof(buf)) <= 0) return;
  }
}

Reactor::Reactor(ClockSource& clock)
    : clock_(clock), stop_fd_(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)) {}

Reactor::~Reactor() {
  if (stop_fd_ >= 0) ::close(stop_fd_);
}

Reactor::TimerId Reactor::add_timer(Clock::time_point due, TimerFn fn) {
  const TimerId id = next_id_++;
  timers_.emplace(id, std::move(fn));
  heap_.push({due, id});
  return id;
}

bool Reactor::cancel(TimerId id) { return timers_.erase(id) != 0; }

Clock::time_point Reactor::next_due() {
  while (!heap_.empty() && timers_.count(heap_.top().id) == 0) heap_.pop();  // cancelled
  return heap_.empty() ? Clock::time_point::max() : heap_.top().due;
}

void Reactor::watch(int fd, bool read, bool write, FdFn fn) {
  watches_[fd] = Watch{read, write, std::move(fn), next_serial_++};
}

bool Reactor::set_interest(int fd, bool read, bool write) {
  auto it = watches_.find(fd);
  if (it == watches_.end()) return false;
  it->second.read = read;
  it->second.write = write;
  return true;
}

void Reactor::unwatch(int fd) { watches_.erase(fd); }

// Not const although it only writes to an fd: it ends run(), a change of the reactor.
// NOLINTNEXTLINE(readability-make-member-function-const)
void Reactor::stop() noexcept { notify_fd(stop_fd_); }

void Reactor::clear_stop() {
  drain_fd(stop_fd_);
  stopped_ = false;
}

std::size_t Reactor::fire_due_timers() {
  std::size_t fired = 0;
  const auto now = clock_.now();
  // Only timers due by `now` as read once: one that a callback adds for "now" runs in
  // the next turn, after the descriptors had theirs.
  const TimerId added_before = next_id_;
  while (!stopped_ && next_due() <= now && heap_.top().id < added_before) {
    const TimerId id = heap_.top().id;
    heap_.pop();
    auto it = timers_.find(id);
    TimerFn fn = std::move(it->second);
    timers_.erase(it);
    fn();
    ++fired;
  }
  return fired;
}

Result<std::size_t> Reactor::turn(bool may_sleep) {
  if (stop_fd_ < 0)
    return make_error(Errc::internal, fmt::format("eventfd: {}", std::strerror(errno)));
  std::size_t ran = fire_due_timers();
  if (stopped_) return ran;

  // ppoll(2) rather than poll(2): a timer due in 200 us (QUIC's pacing, RFC 9002 s7.7)
  // must not wait a whole millisecond, or a tunnel sends one burst per millisecond.
  timespec wait{0, 0};
  timespec* timeout = &wait;
  if (may_sleep && ran == 0) {
    const auto due = next_due();
    if (due == Clock::time_point::max()) {
      timeout = nullptr;
    } else if (!clock_.real()) {
      // A test clock moves only when the test says: a future timer is not worth a wait.
      if (due > clock_.now()) timeout = nullptr;
    } else {
      const auto left = std::clamp<long long>(
          std::chrono::ceil<std::chrono::nanoseconds>(due - clock_.now()).count(), 0,
          24LL * 3600 * 1000000000);
      wait.tv_sec = static_cast<time_t>(left / 1000000000);
      wait.tv_nsec = static_cast<long>(left % 1000000000);
    }
  }

  std::vector<pollfd> fds;
  std::vector<std::uint64_t> serials;
  fds.reserve(watches_.size() + 1);
  serials.reserve(watches_.size() + 1);
  fds.push_back({stop_fd_, POLLIN, 0});
  serials.push_back(0);
  for (const auto& [fd, w] : watches_) {
    short events = 0;
    if (w.read) events |= POLLIN;
    if (w.write) events |= POLLOUT;
    if (events == 0) continue;
    fds.push_back({fd, events, 0});
    serials.push_back(w.serial);
  }
  const int n = ::ppoll(fds.data(), fds.size(), timeout, nullptr);
  if (n < 0) {
    if (errno == EINTR) return ran;
    return make_error(Errc::internal, fmt::format("poll: {}", std::strerror(errno)));
  }
  if (n == 0) return ran;
  if (fds[0].revents & POLLIN) {
    drain_fd(stop_fd_);
    stopped_ = true;
    return ran;
  }
  for (std::size_t i = 1; i < fds.size() && !stopped_; ++i) {
    const short r = fds[i].revents;
    if (r == 0) continue;
    // A callback earlier in this turn may have unwatched or replaced this one.
    auto it = watches_.find(fds[i].fd);
    if (it == watches_.end() || it->second.serial != serials[i]) continue;
    const bool failed = (r & (POLLERR | POLLHUP | POLLNVAL)) != 0;
    const bool readable = (r & POLLIN) != 0 || failed;
    const bool writable = (r & POLLOUT) != 0 || failed;
    FdFn fn = it->second.fn;  // a copy: the callback may unwatch itself
    fn(readable && it->second.read, writable && it->second.write);
    ++ran;
  }
  return ran;
}

Status Reactor::run() {
  while (!stopped_) {
    if (timers_.empty() && watches_.empty()) return ok_status();
    auto t = turn(true);
    if (!t) return t.error();
  }
  return ok_status();
}

Status Reactor::run_until(const std::function<bool()>& done) {
  while (!stopped_ && !done()) {
    auto t = turn(true);
    if (!t) return t.error();
  }
  return ok_status();
}

Result<std::size_t> Reactor::run_ready() { return turn(false); }

}  // namespace porthole::detail
