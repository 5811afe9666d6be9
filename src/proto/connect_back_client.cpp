// connect_back_check: a control connection to the server, and (when the port is free)
// our own listener on the internal port, in one poll loop under the caller's deadline.
#include "proto/connect_back_client.hpp"

#include <poll.h>
#include <sys/random.h>
#include <sys/socket.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstring>
#include <vector>

#include <fmt/format.h>

#include "net/tcp_socket.hpp"
#include "net/tcp_table.hpp"

namespace porthole::detail {
namespace cb = connect_back;
namespace {

// 128 bits from the kernel CSPRNG: nobody else can send the line we wait for.
Result<std::string> fresh_token() {
  std::array<std::uint8_t, 16> raw{};
  std::size_t got = 0;
  while (got < raw.size()) {
    const ssize_t n = ::getrandom(raw.data() + got, raw.size() - got, 0);
    if (n < 0) {
      if (errno == EINTR) continue;
      return make_error(Errc::internal, fmt::format("getrandom: {}", std::strerror(errno)));
    }
    got += static_cast<std::size_t>(n);
  }
  std::string out;
  for (std::uint8_t b : raw) out += fmt::format("{:02x}", b);
  return out;
}

int wait_ms(Deadline deadline) {
  const auto left = std::chrono::ceil<std::chrono::milliseconds>(deadline - Clock::now());
  return static_cast<int>(std::clamp<long long>(left.count(), 0, 100));
}

// "ip:port" -> parts; false when it is not that.
bool split_endpoint(const std::string& text, std::string& ip, std::uint16_t& port) {
  const auto colon = text.rfind(':');
  if (colon == std::string::npos) return false;
  ip = text.substr(0, colon);
  const std::string p = text.substr(colon + 1);
  if (p.empty() || p.size() > 5 || p.find_first_not_of("0123456789") != std::string::npos)
    return false;
  const unsigned long v = std::stoul(p);
  if (v == 0 || v > 65535) return false;
  port = static_cast<std::uint16_t>(v);
  return true;
}

}  // namespace

Result<ConnectBackResult> connect_back_check(const ConnectBackQuery& q, Deadline deadline) {
  auto debug = [&](std::string_view text) {
    if (q.log) q.log(LogLevel::debug, text);
  };
  const std::string server = Endpoint{q.server_ip, q.server_port}.to_string();
  auto token = fresh_token();
  if (!token) return token.error();
  const cb::Request request{q.target_ip, q.target_port, *token};
  auto line = cb::encode_request(request);
  if (!line) return line.error();

  ConnectBackResult result;
  // Our own listener when the port is free; a busy port is the user's service.
  TcpSocket listener;
  if (auto l = tcp_listen("0.0.0.0", q.internal_port); l) {
    listener = std::move(*l);
    result.own_listener = true;
    debug(fmt::format("verify: listening on TCP {} for the connect-back", q.internal_port));
  } else {
    // EADDRINUSE: the user's service listens there. (EACCES, a low port without the
    // privilege, ends the same way: only the TCP table can tell.)
    debug(
        fmt::format("verify: cannot listen on TCP {} ({}); the connect-back will be "
                    "looked for in the TCP table",
                    q.internal_port, l.error().message));
  }

  auto control = tcp_connect_start(q.server_ip.to_string(), q.server_port);
  if (!control)
    return make_error(Errc::no_service,
                      fmt::format("connect-back server {}: {}", server, control.error().message));
  bool control_up = false;
  std::string reply_buffer;
  std::optional<cb::Reply> reply;
  std::vector<TcpSocket> accepted;
  std::vector<std::string> accepted_buffers;
  const std::string want = cb::token_line(request);

  for (;;) {
    if (reply &&
        (reply->outcome != cb::Outcome::connected || !result.own_listener || result.token_received))
      break;
    if (expired(deadline)) {
      if (reply) break;  // connected, but our token never came: the verdict says so
      return make_error(Errc::timeout, fmt::format("no connect-back reply from {} before the "
                                                   "deadline",
                                                   server));
    }
    std::vector<pollfd> fds;
    fds.push_back({control->fd(), static_cast<short>(control_up ? POLLIN : POLLOUT), 0});
    fds.push_back({listener.valid() ? listener.fd() : -1, POLLIN, 0});
    for (const auto& a : accepted) fds.push_back({a.fd(), POLLIN, 0});
    if (::poll(fds.data(), fds.size(), wait_ms(deadline)) < 0 && errno != EINTR)
      return make_error(Errc::internal, fmt::format("poll: {}", std::strerror(errno)));

    if (fds[0].revents != 0 && !control_up) {
      if (const int err = tcp_connect_error(*control); err != 0)
        return make_error(Errc::no_service,
                          fmt::format("connect-back server {}: {} (is it a `porthole serve`?)",
                                      server, std::strerror(err)));
      control_up = true;
      if (::send(control->fd(), line->data(), line->size(), MSG_NOSIGNAL) !=
          static_cast<ssize_t>(line->size()))
        return make_error(Errc::no_service, fmt::format("connect-back server {}: send: {}", server,
                                                        std::strerror(errno)));
      debug(fmt::format("verify -> {} {}", server, line->substr(0, line->size() - 1)));
    } else if (fds[0].revents != 0 && !reply) {
      char buf[cb::kMaxLine];
      const ssize_t n = ::recv(control->fd(), buf, sizeof(buf), MSG_DONTWAIT);
      if (n <= 0 && !(n < 0 && (errno == EAGAIN || errno == EINTR)))
        return make_error(Errc::no_service, fmt::format("connect-back server {} closed the "
                                                        "connection without a reply",
                                                        server));
      if (n > 0) reply_buffer.append(buf, static_cast<std::size_t>(n));
      if (auto end = cb::line_end(reply_buffer)) {
        auto r = cb::decode_reply(std::string_view(reply_buffer).substr(0, *end + 1));
        if (!r)
          return make_error(Errc::internal, fmt::format("connect-back server {}: malformed "
                                                        "reply: {}",
                                                        server, r.error().message));
        debug(fmt::format("verify <- {} {}", server, reply_buffer.substr(0, *end)));
        reply = *r;
        // The token was sent before this reply: it is here within a round trip or two,
        // or it went somewhere else.
        deadline = std::min(deadline, Clock::now() + std::chrono::milliseconds{1000});
      } else if (reply_buffer.size() >= cb::kMaxLine) {
        return make_error(Errc::internal, fmt::format("connect-back server {}: reply longer "
                                                      "than {} bytes",
                                                      server, cb::kMaxLine));
      }
    }
    if (listener.valid() && (fds[1].revents & POLLIN) && accepted.size() < 8) {
      TcpSocket a = tcp_accept(listener);
      if (a.valid()) {
        debug(fmt::format("verify: accepted a connection from {}:{}", a.peer_ip(), a.peer_port()));
        accepted.push_back(std::move(a));
        accepted_buffers.emplace_back();
      }
    }
    for (std::size_t i = 0; i < accepted.size(); ++i) {
      if (fds.size() <= 2 + i || fds[2 + i].revents == 0) continue;
      char buf[128];
      const ssize_t n = ::recv(accepted[i].fd(), buf, sizeof(buf), MSG_DONTWAIT);
      if (n > 0 && accepted_buffers[i].size() < 128)
        accepted_buffers[i].append(buf, static_cast<std::size_t>(n));
      if (accepted_buffers[i].rfind(want, 0) == 0) {
        result.token_received = true;
        result.accepted_from = fmt::format("{}:{}", accepted[i].peer_ip(), accepted[i].peer_port());
      }
    }
  }

  result.reply = *reply;
  if (reply->outcome == cb::Outcome::connected && !result.own_listener) {
    // The server's connection is still open (it holds it for a moment): if it reached
    // this host, the kernel lists it with the server's source endpoint as remote end.
    std::string ip;
    std::uint16_t port = 0;
    if (split_endpoint(reply->detail, ip, port)) {
      for (int i = 0; i < 20 && !result.seen_in_tcp_table; ++i) {
        result.seen_in_tcp_table = tcp_connection_listed(q.internal_port, ip, port);
        if (!result.seen_in_tcp_table) ::poll(nullptr, 0, 5);
      }
    }
  }
  return result;
}

}  // namespace porthole::detail
