// The connect-back half of `porthole serve`: a TCP control port where a host asks
// "connect to my address at port P and send this token", so it can prove that
// unsolicited inbound TCP reaches it (`porthole open --verify`). Protocol:
// codec/connect_back_codec.hpp.
//
// Built to sit on the public internet without becoming a weapon:
//  - the request arrives over TCP, so the handshake proves the requester's address,
//    and the server connects only to that address (a request naming any other IP gets
//    a "denied" reply and nothing else happens);
//  - what it sends on the connection it makes is the token line, shorter than the
//    request that asked for it: no amplification, and only towards the requester;
//  - a token bucket per source IP (bounded table), at most max_per_source checks of one
//    source and max_sessions in all at once: bounded sockets and memory;
//  - short deadlines: request_timeout to send the request line, connect_timeout for
//    the connect, hold for keeping a completed check connection open;
//  - malformed requests get a "bad-request" reply and the connection is closed.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <string>
#include <map>
#include <memory>
#include <unordered_map>

#include "codec/connect_back_codec.hpp"
#include "net/deadline.hpp"
#include "net/tcp_socket.hpp"
#include "net/rate_limiter.hpp"
#include "net/reactor.hpp"
#include "porthole/log.hpp"
#include "porthole/types.hpp"
#include "proto/refusal_log.hpp"

namespace porthole::detail {

struct ConnectBackConfig {
  IpAddress listen_ip;        // TCP control port address (0.0.0.0: any)
  std::uint16_t port = 3478;  // 0: the kernel chooses
  // The connections the server makes leave from this address (nullopt: the kernel's
  // choice). `porthole serve` uses its listen address, the one clients know.
  std::optional<IpAddress> source_ip;
  std::chrono::milliseconds request_timeout{3000};
  std::chrono::milliseconds connect_timeout{2000};
  // How long a completed check connection stays open after the token (or until the
  // requester closes the control connection): the requester may look for it in its
  // own TCP table when its service, not porthole, accepted it.
  std::chrono::milliseconds hold{1500};
  double per_source_rate = 2.0;    // checks per second for one source IP...
  double per_source_burst = 20.0;  // ...after a burst of this many
  std::size_t max_sources = 4096;  // sources the rate limiter remembers
  std::size_t max_sessions = 64;   // control connections at once, all sources
  std::size_t max_per_source = 4;  // control connections at once from one IP
  // Refusals in the log: the first of a source as it happens (for this many sources
  // per interval), the rest in one summary line per kind per interval.
  std::chrono::milliseconds refusal_log_interval{10000};
  std::size_t refusal_log_first_lines = 8;
  LogFn log;  // info: one line per check; debug: every connection
};

class ConnectBackServer {
 public:
  // Errc::usage for a bad address, Errc::internal when the port cannot be bound.
  static Result<ConnectBackServer> open(const ConnectBackConfig& config);

  std::uint16_t port() const { return listener_.local_port(); }
  const IpAddress& listen_ip() const { return config_.listen_ip; }

  // Puts the listener on `reactor`: each control connection becomes a state machine
  // driven by its readiness and a reactor timer for its deadline. The server must stay
  // where it is (not moved) while attached; detach() closes every session.
  void attach(Reactor& reactor);
  void detach();

  // A reactor of its own, until `stop_fd` becomes readable (not read).
  Status serve(int stop_fd);

  struct Counters {
    std::uint64_t accepted = 0;
    std::uint64_t connected = 0;  // checks whose connection completed
    std::uint64_t failed = 0;     // refused, timeout, unreachable
    std::uint64_t denied = 0;     // asked for another address
    std::uint64_t busy = 0;       // rate limited or too many at once
    std::uint64_t bad_requests = 0;
  };
  const Counters& counters() const noexcept { return counters_; }

 private:
  enum class State { reading, connecting, holding };
  struct Session {
    std::uint64_t id = 0;
    TcpSocket control;
    TcpSocket check;
    std::string source;  // the requester's IP (from the handshake)
    std::string buffer;
    connect_back::Request request;
    State state = State::reading;
    Reactor::TimerId timer = 0;  // the deadline of the current state
  };

  ConnectBackServer(ConnectBackConfig config, TcpSocket listener);
  void accept_all();
  // false with `why` when `source` gets no session; `victim`: a session to end first.
  bool admit(const std::string& source, const char*& why, std::uint64_t& victim);
  void start_timer(Session& s, std::chrono::milliseconds limit);
  void on_control(std::uint64_t id);
  void on_check(std::uint64_t id);
  void on_timer(std::uint64_t id);
  // false: the session is over (finish() closes it).
  bool on_readable(Session& s);
  bool on_connect_done(Session& s);
  bool on_deadline(Session& s);
  void finish(std::uint64_t id);
  void reply(Session& s, connect_back::Outcome outcome, const std::string& detail);
  void refused(const std::string& kind, const std::string& source, const std::string& line,
               LogLevel level = LogLevel::info);
  void log(LogLevel level, std::string_view text) const;

  ConnectBackConfig config_;
  TcpSocket listener_;
  SourceRateLimiter limiter_;
  RefusalLog refusals_;
  Reactor* reactor_ = nullptr;
  Reactor::TimerId refusal_timer_ = 0;
  std::uint64_t next_id_ = 1;
  std::map<std::uint64_t, std::unique_ptr<Session>> sessions_;  // oldest first
  std::unordered_map<std::string, std::size_t> per_source_;
  Counters counters_;
};

}  // namespace porthole::detail
