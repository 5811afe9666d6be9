#include "core/relay_loop.hpp"

#include <fcntl.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstring>

#include <fmt/format.h>

namespace porthole {
namespace {

using std::chrono::milliseconds;

// The deletion waits this long for the server's answer before the thread gives up.
constexpr milliseconds kDeallocateWait{2000};

PathKind public_kind(detail::PathKind k) { return static_cast<PathKind>(k); }

}  // namespace

Result<std::shared_ptr<RelayLoop>> RelayLoop::start(RelayLoopParts parts, OwnedFd& user_side) {
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
  loop->via_turn_ = parts.turn != nullptr;
  loop->released_ = parts.turn == nullptr;
  loop->relayed_peer_ = parts.peer;
  loop->parts_ = std::move(parts);
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

void RelayLoop::say(LogLevel level, const std::string& text) const {
  if (parts_.log) parts_.log(level, "relay: " + text);
}

void RelayLoop::deliver(std::span<const std::uint8_t> bytes) {
  if (!ours_.valid()) return;
  if (::send(ours_.get(), bytes.data(), bytes.size(), MSG_DONTWAIT | MSG_NOSIGNAL) < 0 &&
      errno != EAGAIN && errno != EWOULDBLOCK) {
    say(LogLevel::debug, fmt::format("the socket's user is gone ({})", std::strerror(errno)));
    end();
  }
}

void RelayLoop::send_to_peer(std::span<const std::uint8_t> bytes) {
  if (ending_) return;
  if (via_turn_) {
    (void)parts_.turn->send(parts_.peer, bytes);
    flush_turn();
  } else if (auto st = parts_.mux->send_to(bytes, parts_.peer); !st) {
    say(LogLevel::debug, st.error().message);
  }
}

void RelayLoop::flush_turn() {
  if (!parts_.turn) return;
  for (const auto& bytes : parts_.turn->take_outgoing())
    if (auto st = parts_.mux->send_to(bytes, parts_.turn->server()); !st)
      say(LogLevel::debug, st.error().message);
}

void RelayLoop::drain_turn_events() {
  if (!parts_.turn) return;
  while (auto e = parts_.turn->next_event()) {
    switch (e->type) {
      case detail::TurnEvent::Type::data: {
        // The peer's STUN (consent and upgrade checks, their answers) is the agent's;
        // the rest is the user's, from the relayed peer only.
        const bool stun = detail::classify_datagram(e->data, e->peer, {}) ==
                          detail::DatagramKind::stun;
        if (stun) {
          if (parts_.agent) {
            parts_.agent->on_datagram(e->data, e->peer, reactor_->now(), true);
            after_agent();
          }
        } else if (e->peer == relayed_peer_) {
          deliver(e->data);
        }
        break;
      }
      case detail::TurnEvent::Type::failed:
        if (upgraded_) {  // the direct path carries the traffic: nothing is lost
          say(LogLevel::debug, e->error.message);
          released_ = true;
          break;
        }
        say(LogLevel::warning, e->error.message);
        reactor_->unwatch(ours_.get());
        ours_ = OwnedFd();  // the user's sends now fail: the path is gone
        reactor_->stop();
        return;
      case detail::TurnEvent::Type::deallocated:
        say(LogLevel::debug, "allocation deleted");
        if (ending_) {
          reactor_->stop();
          return;
        }
        break;
      case detail::TurnEvent::Type::allocated: break;
    }
  }
}

void RelayLoop::after_agent() {
  detail::IceAgent* agent = parts_.agent.get();
  if (!agent) return;
  for (auto& out : agent->take_outgoing()) {
    if (out.relayed) {
      if (parts_.turn && !released_) (void)parts_.turn->send(out.to, out.bytes);
    } else if (auto st = parts_.mux->send_to(out.bytes, out.to); !st) {
      say(LogLevel::debug, st.error().message);
    }
  }
  flush_turn();
  if (agent->take_upgraded()) {
    const auto selected = agent->selected();
    parts_.peer = selected->remote;
    via_turn_ = false;
    upgraded_ = true;
    if (!released_) release_at_ = reactor_->now() + kReleaseWait;
    say(LogLevel::info,
        fmt::format("upgraded: a direct path to {} ({}), the relay is left",
                    parts_.peer.to_string(), detail::path_kind_name(selected->kind)));
    if (parts_.on_upgrade)
      parts_.on_upgrade(PathUpgrade{public_kind(selected->kind), selected->remote,
                                    selected->local_seen.value_or(selected->local)});
  }
  if (agent->state() == detail::IceAgent::State::disconnected) {
    if (upgraded_) {
      // RFC 7675 s5.1: the peer stopped answering on the direct path: stop sending.
      say(LogLevel::warning, agent->failure());
      reactor_->unwatch(ours_.get());
      ours_ = OwnedFd();
      end();
      return;
    }
    // Relayed, the TURN client's refreshes tell whether the path lives; without the
    // peer's answers there is only no upgrade.
    say(LogLevel::debug, "no consent answers over the relay: no upgrade");
    agent->quiesce();
  }
}

void RelayLoop::release_allocation() {
  release_at_.reset();
  if (released_ || !parts_.turn) return;
  released_ = true;
  say(LogLevel::info, "the peer's datagrams arrive direct: deleting the TURN allocation");
  parts_.turn->deallocate(reactor_->now());
  flush_turn();
}

void RelayLoop::end() {
  if (ending_) return;
  ending_ = true;
  if (parts_.agent) parts_.agent->quiesce();
  if (released_ || !parts_.turn || parts_.turn->state() != detail::TurnClient::State::allocated) {
    reactor_->stop();
    return;
  }
  released_ = true;
  parts_.turn->deallocate(reactor_->now());
  flush_turn();
  reactor_->add_timer_in(kDeallocateWait, [this] { reactor_->stop(); });
  schedule();
}

void RelayLoop::schedule() {
  const auto now = reactor_->now();
  if (parts_.turn) {
    parts_.turn->on_timer(now);
    flush_turn();
    drain_turn_events();
  }
  if (parts_.agent) {
    parts_.agent->on_timer(now);
    after_agent();
  }
  if (release_at_ && now >= *release_at_) release_allocation();
  if (timer_ != 0) reactor_->cancel(timer_);
  timer_ = 0;
  std::optional<detail::Clock::time_point> next = release_at_;
  auto earlier = [&](std::optional<detail::Clock::time_point> t) {
    if (t && (!next || *t < *next)) next = t;
  };
  if (parts_.turn) earlier(parts_.turn->next_wakeup());
  if (parts_.agent) earlier(parts_.agent->next_wakeup());
  if (next)
    timer_ = reactor_->add_timer(std::max(*next, now), [this] {
      timer_ = 0;
      schedule();
    });
}

void RelayLoop::run() {
  detail::Reactor reactor;
  reactor_ = &reactor;
  detail::UdpMux& mux = *parts_.mux;
  mux.on_stun([this](std::span<const std::uint8_t> bytes, const Endpoint& from) {
    if (!parts_.agent) return;
    parts_.agent->on_datagram(bytes, from, reactor_->now());
    after_agent();
  });
  // The peer's datagrams straight to the socket: from its relayed candidate, or after
  // the move from the direct path (and those still on the way from the relayed one).
  mux.on_quic([this](std::span<const std::uint8_t> bytes, const Endpoint& from) {
    if (from == parts_.peer && (upgraded_ || !via_turn_)) {
      deliver(bytes);
      if (upgraded_ && !released_) release_allocation();
    } else if (upgraded_ && from == relayed_peer_) {
      deliver(bytes);
    } else if (!upgraded_ && parts_.agent && parts_.agent->proven_direct(from)) {
      deliver(bytes);  // the peer moved first; our move follows its nomination
    }
  });
  mux.on_turn([this](std::span<const std::uint8_t> bytes, const Endpoint&) {
    if (parts_.turn) (void)parts_.turn->on_datagram(bytes, reactor_->now());
  });
  reactor.watch(mux.fd(), true, false, [this](bool, bool) {
    if (auto r = parts_.mux->on_readable(); !r) say(LogLevel::debug, r.error().message);
    drain_turn_events();
    flush_turn();
    schedule();  // the agent's next check may now be due sooner
  });
  reactor.watch(ours_.get(), true, false, [this](bool, bool) {
    std::array<std::uint8_t, 65536> buffer{};
    for (int i = 0; i < 64 && ours_.valid(); ++i) {
      const ssize_t n = ::recv(ours_.get(), buffer.data(), buffer.size(), MSG_DONTWAIT);
      if (n < 0) break;
      send_to_peer(std::span(buffer.data(), static_cast<std::size_t>(n)));
    }
  });
  reactor.watch(shutdown_.get(), true, false, [this](bool, bool) {
    detail::drain_fd(shutdown_.get());
    reactor_->unwatch(shutdown_.get());
    end();
  });
  schedule();
  (void)reactor.run();
  if (timer_ != 0) reactor.cancel(timer_);
  timer_ = 0;
  reactor_ = nullptr;
}

}  // namespace porthole
