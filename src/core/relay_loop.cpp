#include "core/relay_loop.hpp"

#include <fcntl.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <cstring>

#include <fmt/format.h>

#include "net/reactor.hpp"

namespace porthole {
namespace {

using std::chrono::milliseconds;

// The deletion waits this long for the server's answer before the thread gives up.
constexpr milliseconds kDeallocateWait{2000};

}  // namespace

Result<std::shared_ptr<RelayLoop>> RelayLoop::start(std::unique_ptr<detail::UdpMux> mux,
                                                    std::unique_ptr<detail::TurnClient> turn,
                                                    const Endpoint& peer, LogFn log,
                                                    OwnedFd& user_side) {
  int pair[2] = {-1, -1};
  if (::socketpair(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0, pair) != 0)
    return make_error(Errc::internal, fmt::format("socketpair: {}", std::strerror(errno)));
  OwnedFd user(pair[0]);
  OwnedFd ours(pair[1]);
  // The user's end blocks like any fresh socket (only ours is non-blocking).
  int flags = ::fcntl(user.get(), F_GETFL);
  if (flags >= 0) (void)::fcntl(user.get(), F_SETFL, flags & ~O_NONBLOCK);
  OwnedFd shutdown(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
  if (!shutdown.valid())
    return make_error(Errc::internal, fmt::format("eventfd: {}", std::strerror(errno)));
  std::shared_ptr<RelayLoop> loop(new RelayLoop());
  loop->mux_ = std::move(mux);
  loop->turn_ = std::move(turn);
  loop->peer_ = peer;
  loop->log_ = std::move(log);
  loop->ours_ = std::move(ours);
  loop->shutdown_ = std::move(shutdown);
  loop->thread_ = std::thread([raw = loop.get()] { raw->run(); });
  user_side = std::move(user);
  return loop;
}

RelayLoop::~RelayLoop() {
  if (shutdown_.valid()) detail::notify_fd(shutdown_.get());
  if (thread_.joinable()) thread_.join();
}

void RelayLoop::run() {
  detail::Reactor reactor;
  detail::Reactor::TimerId timer = 0;
  bool ending = false;
  const Endpoint server = turn_->server();
  auto say = [&](LogLevel level, const std::string& text) {
    if (log_) log_(level, "relay: " + text);
  };
  auto flush = [&] {
    for (const auto& bytes : turn_->take_outgoing())
      if (auto st = mux_->send_to(bytes, server); !st) say(LogLevel::debug, st.error().message);
  };
  std::function<void()> schedule;
  auto end = [&] {
    if (ending) return;
    ending = true;
    turn_->deallocate(reactor.now());
    flush();
    reactor.add_timer_in(kDeallocateWait, [&] { reactor.stop(); });
    schedule();
  };
  auto events = [&] {
    while (auto e = turn_->next_event()) {
      switch (e->type) {
        case detail::TurnEvent::Type::data:
          if (e->peer != peer_) break;  // only the peer's datagrams reach the user
          if (::send(ours_.get(), e->data.data(), e->data.size(), MSG_DONTWAIT | MSG_NOSIGNAL) <
                  0 &&
              errno != EAGAIN && errno != EWOULDBLOCK) {
            say(LogLevel::debug,
                fmt::format("the socket's user is gone ({})", std::strerror(errno)));
            end();
          }
          break;
        case detail::TurnEvent::Type::failed:
          say(LogLevel::warning, e->error.message);
          reactor.unwatch(ours_.get());
          ours_ = OwnedFd();  // the user's sends now fail: the path is gone
          reactor.stop();
          return;
        case detail::TurnEvent::Type::deallocated:
          say(LogLevel::debug, "allocation deleted");
          reactor.stop();
          return;
        case detail::TurnEvent::Type::allocated: break;
      }
    }
  };
  schedule = [&] {
    const auto now = reactor.now();
    turn_->on_timer(now);
    flush();
    events();
    if (timer != 0) reactor.cancel(timer);
    timer = 0;
    if (auto next = turn_->next_wakeup())
      timer = reactor.add_timer(std::max(*next, now), [&] {
        timer = 0;
        schedule();
      });
  };
  mux_->on_stun(nullptr);
  mux_->on_quic(nullptr);
  mux_->on_turn([&](std::span<const std::uint8_t> bytes, const Endpoint&) {
    (void)turn_->on_datagram(bytes, reactor.now());
  });
  reactor.watch(mux_->fd(), true, false, [&](bool, bool) {
    if (auto r = mux_->on_readable(); !r) say(LogLevel::debug, r.error().message);
    events();
    flush();
  });
  reactor.watch(ours_.get(), true, false, [&](bool, bool) {
    std::array<std::uint8_t, 65536> buffer{};
    for (int i = 0; i < 64; ++i) {
      const ssize_t n = ::recv(ours_.get(), buffer.data(), buffer.size(), MSG_DONTWAIT);
      if (n < 0) break;
      if (!ending) (void)turn_->send(peer_, std::span(buffer.data(), static_cast<std::size_t>(n)));
    }
    flush();
  });
  reactor.watch(shutdown_.get(), true, false, [&](bool, bool) {
    detail::drain_fd(shutdown_.get());
    reactor.unwatch(shutdown_.get());
    end();
  });
  schedule();
  (void)reactor.run();
  if (timer != 0) reactor.cancel(timer);
}

}  // namespace porthole
