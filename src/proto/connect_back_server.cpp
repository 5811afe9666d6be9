// The connect-back server on the reactor: one state machine per control connection
// (reading the request, connecting back, holding the check connection), each with a
// reactor timer for the deadline of its state.
#include "proto/connect_back_server.hpp"

#include <sys/socket.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <utility>

#include <fmt/format.h>

#include "codec/ip_address_format.hpp"
#include "porthole/types.hpp"

namespace porthole::detail {
namespace cb = connect_back;

ConnectBackServer::ConnectBackServer(ConnectBackConfig config, TcpSocket listener)
    : config_(std::move(config)),
      listener_(std::move(listener)),
      limiter_(config_.per_source_rate, config_.per_source_burst, config_.max_sources),
      refusals_("connect-back", config_.refusal_log_interval, config_.refusal_log_first_lines,
                config_.log) {}

Result<ConnectBackServer> ConnectBackServer::open(const ConnectBackConfig& config) {
  if (!config.listen_ip.is_v4())
    return make_error(Errc::usage, fmt::format("connect-back listen address '{}' is not IPv4",
                                               config.listen_ip));
  if (config.source_ip && !config.source_ip->is_v4())
    return make_error(Errc::usage, fmt::format("connect-back source address '{}' is not IPv4",
                                               *config.source_ip));
  auto listener = tcp_listen(config.listen_ip.to_string(), config.port, 64);
  if (!listener) return listener.error();
  ConnectBackServer server(config, std::move(*listener));
  server.log(LogLevel::info,
             fmt::format("connect-back checks on TCP {}:{}", config.listen_ip, server.port()));
  return server;
}

void ConnectBackServer::log(LogLevel level, std::string_view text) const {
  if (config_.log) config_.log(level, text);
}

void ConnectBackServer::refused(const std::string& kind, const std::string& source,
                                const std::string& line, LogLevel level) {
  refusals_.refused(kind, source, line, reactor_->now(), level);
  if (refusal_timer_ != 0) return;
  if (auto due = refusals_.flush_due())
    refusal_timer_ = reactor_->add_timer(*due, [this] {
      refusal_timer_ = 0;
      refusals_.flush();
    });
}

void ConnectBackServer::reply(Session& s, cb::Outcome outcome, const std::string& detail) {
  // The source is the kernel's text for the peer (tcp_socket.hpp): IPv4, so it parses.
  auto source = IpAddress::parse(s.source);
  const std::string line = cb::encode_reply({outcome, source ? *source : IpAddress(), detail});
  // A few dozen bytes into an empty send buffer: a short write would mean the peer
  // is gone, and then nobody is left to tell.
  (void)::send(s.control.fd(), line.data(), line.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
}

void ConnectBackServer::attach(Reactor& reactor) {
  reactor_ = &reactor;
  reactor.watch(listener_.fd(), true, false, [this](bool, bool) { accept_all(); });
}

void ConnectBackServer::detach() {
  if (reactor_ == nullptr) return;
  while (!sessions_.empty()) finish(sessions_.begin()->first);
  reactor_->unwatch(listener_.fd());
  if (refusal_timer_ != 0) {
    reactor_->cancel(refusal_timer_);
    refusal_timer_ = 0;
  }
  refusals_.flush();
  reactor_ = nullptr;
}

Status ConnectBackServer::serve(int stop_fd) {
  Reactor reactor;
  attach(reactor);
  reactor.stop_on(stop_fd);
  Status st = reactor.run();
  detach();
  return st;
}

// Room for `source`: false with `why` when it gets none. With every session taken, a
// source that holds none takes the newest session of the source holding the most (a
// flooder's), so a newcomer is never locked out by a handful of busy addresses.
bool ConnectBackServer::admit(const std::string& source, const char*& why, std::uint64_t& victim) {
  const auto mine_it = per_source_.find(source);
  const std::size_t mine = mine_it == per_source_.end() ? 0 : mine_it->second;
  if (mine >= config_.max_per_source) {
    why = "too many checks from your address at once";
    return false;
  }
  if (sessions_.size() < config_.max_sessions) return true;
  // Fair share: the slots divided among the sources holding them.
  const std::size_t share = std::max<std::size_t>(1,
                                                  config_.max_sessions / (per_source_.size() + 1));
  if (mine >= share) {
    why = "too many checks at once";
    return false;
  }
  auto hog = std::max_element(per_source_.begin(), per_source_.end(),
                              [](const auto& a, const auto& b) { return a.second < b.second; });
  if (hog == per_source_.end() || hog->second <= share) {
    why = "too many checks at once";
    return false;
  }
  for (auto it = sessions_.rbegin(); it != sessions_.rend(); ++it) {
    if (it->second->source != hog->first) continue;
    victim = it->first;
    return true;
  }
  why = "too many checks at once";
  return false;
}

void ConnectBackServer::accept_all() {
  for (int i = 0; i < 64; ++i) {
    TcpSocket c = tcp_accept(listener_);
    if (!c.valid()) return;
    ++counters_.accepted;
    auto s = std::make_unique<Session>();
    s->source = c.peer_ip();
    s->control = std::move(c);
    const char* why = nullptr;
    std::uint64_t victim = 0;
    if (admit(s->source, why, victim) && !limiter_.allow(s->source, reactor_->now()))
      why = "rate limit: try again in a few seconds";
    if (why != nullptr) {
      ++counters_.busy;
      reply(*s, cb::Outcome::busy, why);
      refused("busy", s->source, fmt::format("connect-back from {}: busy ({})", s->source, why));
      continue;
    }
    if (victim != 0) {
      Session& v = *sessions_.at(victim);
      ++counters_.busy;
      reply(v, cb::Outcome::busy, "too many checks at once: yours made room for another address");
      refused("busy", v.source,
              fmt::format("connect-back from {}: busy (a check cut to make room for {})", v.source,
                          s->source));
      finish(victim);
    }
    ++per_source_[s->source];
    const std::uint64_t id = next_id_++;
    s->id = id;
    reactor_->watch(s->control.fd(), true, false, [this, id](bool, bool) { on_control(id); });
    start_timer(*s, config_.request_timeout);
    sessions_.emplace(id, std::move(s));
  }
}

void ConnectBackServer::start_timer(Session& s, std::chrono::milliseconds limit) {
  if (s.timer != 0) reactor_->cancel(s.timer);
  const std::uint64_t id = s.id;
  s.timer = reactor_->add_timer_in(limit, [this, id] { on_timer(id); });
}

void ConnectBackServer::on_control(std::uint64_t id) {
  auto it = sessions_.find(id);
  if (it == sessions_.end()) return;
  if (!on_readable(*it->second)) finish(id);
}

void ConnectBackServer::on_check(std::uint64_t id) {
  auto it = sessions_.find(id);
  if (it == sessions_.end() || it->second->state != State::connecting) return;
  if (!on_connect_done(*it->second)) finish(id);
}

void ConnectBackServer::on_timer(std::uint64_t id) {
  auto it = sessions_.find(id);
  if (it == sessions_.end()) return;
  it->second->timer = 0;
  if (!on_deadline(*it->second)) finish(id);
}

void ConnectBackServer::finish(std::uint64_t id) {
  auto it = sessions_.find(id);
  if (it == sessions_.end()) return;
  Session& s = *it->second;
  if (s.timer != 0) reactor_->cancel(s.timer);
  reactor_->unwatch(s.control.fd());
  if (s.check.valid()) reactor_->unwatch(s.check.fd());
  // Unread input makes close() send a RST, which can destroy the reply before the
  // requester reads it: read what is there first (bounded).
  char sink[512];
  for (int k = 0; k < 8; ++k)
    if (::recv(s.control.fd(), sink, sizeof(sink), MSG_DONTWAIT) <= 0) break;
  auto src = per_source_.find(s.source);
  if (src != per_source_.end() && --src->second == 0) per_source_.erase(src);
  sessions_.erase(it);
}

bool ConnectBackServer::on_readable(Session& s) {
  char buf[cb::kMaxLine];
  const ssize_t n = ::recv(s.control.fd(), buf, sizeof(buf), MSG_DONTWAIT);
  if (n < 0) return errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR;
  if (n == 0) {
    // Counted with the refusals, not a line each: a flood of idle connections is
    // one summary line (-v), not two lines per connection.
    if (s.state == State::reading)
      refused("closed-before-request", s.source,
              fmt::format("connect-back from {}: closed before a request", s.source),
              LogLevel::debug);
    return false;  // closed: also ends a hold
  }
  if (s.state != State::reading) return s.state == State::connecting;  // extra bytes: ignored
  s.buffer.append(buf, static_cast<std::size_t>(n));
  const auto end = cb::line_end(s.buffer);
  if (!end) {
    if (s.buffer.size() < cb::kMaxLine) return true;
    ++counters_.bad_requests;
    reply(s, cb::Outcome::bad_request, "no line end within 200 bytes");
    refused("bad-request", s.source,
            fmt::format("connect-back from {}: bad request (too long)", s.source));
    return false;
  }
  auto request = cb::decode_request(std::string_view(s.buffer).substr(0, *end + 1));
  if (!request) {
    ++counters_.bad_requests;
    reply(s, cb::Outcome::bad_request, request.error().message);
    refused("bad-request", s.source,
            fmt::format("connect-back from {}: bad request: {}", s.source,
                        request.error().message));
    return false;
  }
  s.request = std::move(*request);
  log(LogLevel::debug, fmt::format("connect-back from {}:{}: asks for {}:{}", s.source,
                                   s.control.peer_port(), s.request.ip, s.request.port));
  // The one rule that keeps this from being aimed at anyone else.
  if (s.request.ip.to_string() != s.source) {
    ++counters_.denied;
    reply(s, cb::Outcome::denied,
          fmt::format("connect-back goes only to your own address {}, not {}", s.source,
                      s.request.ip));
    refused("denied", s.source,
            fmt::format("connect-back from {}: denied (asked for {})", s.source, s.request.ip));
    return false;
  }
  auto check = tcp_connect_start(s.request.ip.to_string(), s.request.port,
                                 config_.source_ip ? config_.source_ip->to_string() : "");
  if (!check) {
    ++counters_.failed;
    reply(s, cb::Outcome::unreachable, check.error().message);
    log(LogLevel::info, fmt::format("connect-back to {}:{}: {}", s.request.ip, s.request.port,
                                    check.error().message));
    return false;
  }
  s.check = std::move(*check);
  s.state = State::connecting;
  const std::uint64_t id = s.id;
  reactor_->watch(s.check.fd(), false, true, [this, id](bool, bool) { on_check(id); });
  start_timer(s, config_.connect_timeout);
  return true;
}

bool ConnectBackServer::on_connect_done(Session& s) {
  const std::string target = fmt::format("{}:{}", s.request.ip, s.request.port);
  reactor_->set_interest(s.check.fd(), false, false);  // connected or failed: done with it
  const int err = tcp_connect_error(s.check);
  if (err != 0) {
    ++counters_.failed;
    const auto outcome = err == ECONNREFUSED ? cb::Outcome::refused : cb::Outcome::unreachable;
    reply(s, outcome, std::strerror(err));
    log(LogLevel::info, fmt::format("connect-back to {}: {} ({})", target,
                                    cb::outcome_name(outcome), std::strerror(err)));
    return false;
  }
  const std::string token = cb::token_line(s.request);
  (void)::send(s.check.fd(), token.data(), token.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
  ++counters_.connected;
  const std::string from = fmt::format("{}:{}", s.check.local_ip(), s.check.local_port());
  reply(s, cb::Outcome::connected, from);
  log(LogLevel::info,
      fmt::format("connect-back to {}: connected from {}, token sent", target, from));
  s.state = State::holding;
  start_timer(s, config_.hold);
  return true;
}

bool ConnectBackServer::on_deadline(Session& s) {
  switch (s.state) {
    case State::reading:
      ++counters_.bad_requests;
      reply(s, cb::Outcome::bad_request, "no request line in time");
      refused("bad-request", s.source,
              fmt::format("connect-back from {}: no request in time", s.source));
      return false;
    case State::connecting:
      ++counters_.failed;
      reply(s, cb::Outcome::timeout,
            fmt::format("no answer within {} ms", config_.connect_timeout.count()));
      log(LogLevel::info,
          fmt::format("connect-back to {}:{}: timeout", s.request.ip, s.request.port));
      return false;
    case State::holding: return false;
  }
  return false;
}

}  // namespace porthole::detail
