// The connect-back server's poll loop: one state machine per control connection.
#include "proto/connect_back_server.hpp"

#include <poll.h>
#include <sys/socket.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <utility>

#include <fmt/format.h>

#include "porthole/types.hpp"

namespace porthole::detail {
namespace cb = connect_back;

ConnectBackServer::ConnectBackServer(ConnectBackConfig config, TcpSocket listener)
    : config_(std::move(config)),
      listener_(std::move(listener)),
      limiter_(config_.per_source_rate, config_.per_source_burst, config_.max_sources) {}

Result<ConnectBackServer> ConnectBackServer::open(const ConnectBackConfig& config) {
  if (!is_ipv4_literal(config.listen_ip))
    return make_error(Errc::usage, fmt::format("connect-back listen address '{}' is not IPv4",
                                               config.listen_ip));
  if (!config.source_ip.empty() && !is_ipv4_literal(config.source_ip))
    return make_error(Errc::usage, fmt::format("connect-back source address '{}' is not IPv4",
                                               config.source_ip));
  auto listener = tcp_listen(config.listen_ip, config.port, 64);
  if (!listener) return listener.error();
  ConnectBackServer server(config, std::move(*listener));
  server.log(LogLevel::info, fmt::format("connect-back checks on TCP {}:{}", config.listen_ip,
                                         server.port()));
  return server;
}

void ConnectBackServer::log(LogLevel level, std::string_view text) const {
  if (config_.log) config_.log(level, text);
}

void ConnectBackServer::reply(Session& s, cb::Outcome outcome, const std::string& detail) {
  const std::string line = cb::encode_reply({outcome, s.source, detail});
  // A few dozen bytes into an empty send buffer: a short write would mean the peer
  // is gone, and then nobody is left to tell.
  (void)::send(s.control.fd(), line.data(), line.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
}

void ConnectBackServer::accept_all(Clock::time_point now) {
  for (int i = 0; i < 64; ++i) {
    TcpSocket c = tcp_accept(listener_);
    if (!c.valid()) return;
    ++counters_.accepted;
    Session s;
    s.source = c.peer_ip();
    s.control = std::move(c);
    s.deadline = now + config_.request_timeout;
    log(LogLevel::debug, fmt::format("connect-back: control connection from {}:{}", s.source,
                                     s.control.peer_port()));
    std::size_t& mine = per_source_[s.source];
    const char* why = nullptr;
    if (sessions_.size() >= config_.max_sessions) why = "too many checks at once";
    else if (mine >= config_.max_per_source) why = "too many checks from your address at once";
    else if (!limiter_.allow(s.source, now)) why = "rate limit: try again in a few seconds";
    if (why != nullptr) {
      ++counters_.busy;
      reply(s, cb::Outcome::busy, why);
      log(LogLevel::info, fmt::format("connect-back from {}: busy ({})", s.source, why));
      if (mine == 0) per_source_.erase(s.source);
      continue;
    }
    ++mine;
    sessions_.push_back(std::move(s));
  }
}

bool ConnectBackServer::on_readable(Session& s, Clock::time_point now) {
  char buf[cb::kMaxLine];
  const ssize_t n = ::recv(s.control.fd(), buf, sizeof(buf), MSG_DONTWAIT);
  if (n < 0) return errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR;
  if (n == 0) {
    if (s.state == State::reading)
      log(LogLevel::debug, fmt::format("connect-back from {}: closed before a request",
                                       s.source));
    return false;  // closed: also ends a hold
  }
  if (s.state != State::reading) return s.state == State::connecting;  // extra bytes: ignored
  s.buffer.append(buf, static_cast<std::size_t>(n));
  const auto end = cb::line_end(s.buffer);
  if (!end) {
    if (s.buffer.size() < cb::kMaxLine) return true;
    ++counters_.bad_requests;
    reply(s, cb::Outcome::bad_request, "no line end within 200 bytes");
    log(LogLevel::info, fmt::format("connect-back from {}: bad request (too long)", s.source));
    return false;
  }
  auto request = cb::decode_request(std::string_view(s.buffer).substr(0, *end + 1));
  if (!request) {
    ++counters_.bad_requests;
    reply(s, cb::Outcome::bad_request, request.error().message);
    log(LogLevel::info, fmt::format("connect-back from {}: bad request: {}", s.source,
                                    request.error().message));
    return false;
  }
  s.request = std::move(*request);
  log(LogLevel::debug, fmt::format("connect-back from {}: asks for {}:{}", s.source,
                                   s.request.ip, s.request.port));
  // The one rule that keeps this from being aimed at anyone else.
  if (s.request.ip != s.source) {
    ++counters_.denied;
    reply(s, cb::Outcome::denied,
          fmt::format("connect-back goes only to your own address {}, not {}", s.source,
                      s.request.ip));
    log(LogLevel::info, fmt::format("connect-back from {}: denied (asked for {})", s.source,
                                    s.request.ip));
    return false;
  }
  auto check = tcp_connect_start(s.request.ip, s.request.port, config_.source_ip);
  if (!check) {
    ++counters_.failed;
    reply(s, cb::Outcome::unreachable, check.error().message);
    log(LogLevel::info, fmt::format("connect-back to {}:{}: {}", s.request.ip, s.request.port,
                                    check.error().message));
    return false;
  }
  s.check = std::move(*check);
  s.state = State::connecting;
  s.deadline = now + config_.connect_timeout;
  return true;
}

bool ConnectBackServer::on_connect_done(Session& s) {
  const std::string target = fmt::format("{}:{}", s.request.ip, s.request.port);
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
  log(LogLevel::info, fmt::format("connect-back to {}: connected from {}, token sent", target,
                                  from));
  s.state = State::holding;
  s.deadline = Clock::now() + config_.hold;
  return true;
}

bool ConnectBackServer::on_deadline(Session& s) {
  switch (s.state) {
    case State::reading:
      ++counters_.bad_requests;
      reply(s, cb::Outcome::bad_request, "no request line in time");
      log(LogLevel::info, fmt::format("connect-back from {}: no request in time", s.source));
      return false;
    case State::connecting:
      ++counters_.failed;
      reply(s, cb::Outcome::timeout,
            fmt::format("no answer within {} ms", config_.connect_timeout.count()));
      log(LogLevel::info, fmt::format("connect-back to {}:{}: timeout", s.request.ip,
                                      s.request.port));
      return false;
    case State::holding:
      return false;
  }
  return false;
}

Status ConnectBackServer::serve(const std::atomic<bool>& stop) {
  std::vector<pollfd> fds;
  while (!stop.load()) {
    fds.clear();
    fds.push_back({listener_.fd(), POLLIN, 0});
    auto now = Clock::now();
    Deadline wake = now + std::chrono::milliseconds{100};
    for (const Session& s : sessions_) {
      fds.push_back({s.control.fd(), POLLIN, 0});
      fds.push_back({s.state == State::connecting ? s.check.fd() : -1, POLLOUT, 0});
      wake = std::min(wake, s.deadline);
    }
    const auto wait = std::chrono::ceil<std::chrono::milliseconds>(wake - now);
    const int n = ::poll(fds.data(), fds.size(), static_cast<int>(std::max<long long>(0, wait.count())));
    if (n < 0) {
      if (errno == EINTR) continue;
      return make_error(Errc::internal, fmt::format("poll: {}", std::strerror(errno)));
    }
    now = Clock::now();
    std::vector<bool> keep(sessions_.size(), true);
    for (std::size_t i = 0; i < sessions_.size(); ++i) {
      Session& s = sessions_[i];
      const pollfd& control = fds[1 + 2 * i];
      const pollfd& check = fds[2 + 2 * i];
      if (control.revents != 0) keep[i] = on_readable(s, now);
      if (keep[i] && s.state == State::connecting && check.revents != 0)
        keep[i] = on_connect_done(s);
      if (keep[i] && now >= s.deadline) keep[i] = on_deadline(s);
    }
    for (std::size_t i = sessions_.size(); i-- > 0;) {
      if (keep[i]) continue;
      // Unread input makes close() send a RST, which can destroy the reply before the
      // requester reads it: read what is there first (bounded).
      char sink[512];
      for (int k = 0; k < 8; ++k)
        if (::recv(sessions_[i].control.fd(), sink, sizeof(sink), MSG_DONTWAIT) <= 0) break;
      auto it = per_source_.find(sessions_[i].source);
      if (it != per_source_.end() && --it->second == 0) per_source_.erase(it);
      sessions_.erase(sessions_.begin() + static_cast<std::ptrdiff_t>(i));
    }
    if (fds[0].revents & POLLIN) accept_all(now);
  }
  return ok_status();
}

}  // namespace porthole::detail
