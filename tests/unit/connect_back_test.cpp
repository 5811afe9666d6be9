// The connect-back server and client on loopback (127.0.0.1 and 127.0.0.2 only): the
// token proof, the handshake proof when another program holds the port, the refusal
// of any address but the requester's, garbage, and the per-source rate limit.
#include <catch2/catch.hpp>

#include <poll.h>
#include <sys/socket.h>

#include <atomic>
#include <string>
#include <thread>
#include <vector>

#include "net/tcp_socket.hpp"
#include "proto/connect_back_client.hpp"
#include "proto/connect_back_server.hpp"
#include "proto/refusal_log.hpp"
#include "stop_fd.hpp"
#include "ip_literal.hpp"

using porthole::test::ip;

namespace {

using namespace porthole::detail;
namespace cb = porthole::detail::connect_back;
using std::chrono::milliseconds;

class RunningServer {
 public:
  explicit RunningServer(ConnectBackConfig config) {
    config.listen_ip = ip("127.0.0.1");
    config.port = 0;
    auto s = ConnectBackServer::open(config);
    REQUIRE(s.ok());
    server_.emplace(std::move(*s));
    port_ = server_->port();
    thread_ = std::thread([this] { (void)server_->serve(stop_.fd); });
  }
  ~RunningServer() {
    stop_.notify();
    thread_.join();
  }
  std::uint16_t port() const { return port_; }
  const ConnectBackServer::Counters& counters() const { return server_->counters(); }

 private:
  std::optional<ConnectBackServer> server_;
  StopFd stop_;  // serve() runs until it is written
  std::uint16_t port_ = 0;
  std::thread thread_;
};

// A free TCP port on loopback (bound, read back, released).
std::uint16_t free_port() {
  auto l = tcp_listen("127.0.0.1", 0);
  REQUIRE(l.ok());
  return l->local_port();
}

// Sends raw bytes on a fresh control connection and returns the reply line.
std::string raw_exchange(std::uint16_t port, const std::string& bytes) {
  auto s = tcp_connect_start("127.0.0.1", port);
  REQUIRE(s.ok());
  pollfd p{s->fd(), POLLOUT, 0};
  REQUIRE(::poll(&p, 1, 2000) == 1);
  (void)::send(s->fd(), bytes.data(), bytes.size(), MSG_NOSIGNAL);
  std::string got;
  for (int i = 0; i < 50 && got.find('\n') == std::string::npos; ++i) {
    pollfd r{s->fd(), POLLIN, 0};
    if (::poll(&r, 1, 100) != 1) continue;
    char buf[256];
    const ssize_t n = ::recv(s->fd(), buf, sizeof(buf), 0);
    if (n <= 0) break;
    got.append(buf, static_cast<std::size_t>(n));
  }
  return got;
}

Deadline soon() { return Clock::now() + milliseconds{4000}; }

}  // namespace

TEST_CASE("connect-back: token arrives at our listener on a free port", "[connect_back]") {
  RunningServer server(ConnectBackConfig{});
  const std::uint16_t port = free_port();
  auto r = connect_back_check({ip("127.0.0.1"), server.port(), ip("127.0.0.1"), port, port, {}},
                              soon());
  REQUIRE(r.ok());
  CHECK(r->reply.outcome == cb::Outcome::connected);
  CHECK(r->reply.observed_ip == "127.0.0.1");
  CHECK(r->own_listener);
  CHECK(r->token_received);
  CHECK(r->accepted_from.rfind("127.0.0.1:", 0) == 0);
}

TEST_CASE("connect-back: a busy port is proven through the TCP table", "[connect_back]") {
  RunningServer server(ConnectBackConfig{});
  auto users_service = tcp_listen("0.0.0.0", 0);  // the user's service holds the port
  REQUIRE(users_service.ok());
  const std::uint16_t port = users_service->local_port();
  auto r = connect_back_check({ip("127.0.0.1"), server.port(), ip("127.0.0.1"), port, port, {}},
                              soon());
  REQUIRE(r.ok());
  CHECK(r->reply.outcome == cb::Outcome::connected);
  CHECK_FALSE(r->own_listener);
  CHECK_FALSE(r->token_received);
  CHECK(r->seen_in_tcp_table);
}

TEST_CASE("connect-back: nothing listening is reported as refused", "[connect_back]") {
  RunningServer server(ConnectBackConfig{});
  const std::uint16_t target = free_port();
  const std::uint16_t internal = free_port();
  auto r = connect_back_check(
      {ip("127.0.0.1"), server.port(), ip("127.0.0.1"), target, internal, {}}, soon());
  REQUIRE(r.ok());
  CHECK(r->reply.outcome == cb::Outcome::refused);
  CHECK_FALSE(r->token_received);
}

TEST_CASE("connect-back: any address but the requester's is denied", "[connect_back]") {
  RunningServer server(ConnectBackConfig{});
  const std::uint16_t port = free_port();
  auto r = connect_back_check({ip("127.0.0.1"), server.port(), ip("127.0.0.2"), port, port, {}},
                              soon());
  REQUIRE(r.ok());
  CHECK(r->reply.outcome == cb::Outcome::denied);
  CHECK(r->reply.observed_ip == "127.0.0.1");
  CHECK(r->reply.detail.find("127.0.0.2") != std::string::npos);
  CHECK_FALSE(r->token_received);
  CHECK(server.counters().denied == 1);
  CHECK(server.counters().connected == 0);
}

TEST_CASE("connect-back: garbage gets bad-request and the server carries on", "[connect_back]") {
  ConnectBackConfig config;
  config.request_timeout = milliseconds{300};
  RunningServer server(config);
  CHECK(raw_exchange(server.port(), "GET / HTTP/1.1\r\n\r\n")
            .rfind("PORTHOLE/1 bad-request 127.0.0.1 ", 0) == 0);
  CHECK(raw_exchange(server.port(), std::string(300, 'x')).rfind("PORTHOLE/1 bad-request", 0) == 0);
  // Truncated: half a request, then silence until the request deadline.
  CHECK(raw_exchange(server.port(), "PORTHOLE/1 CONNECT 127.0.0.1")
            .rfind("PORTHOLE/1 bad-request", 0) == 0);
  CHECK(server.counters().bad_requests == 3);
  const std::uint16_t port = free_port();
  auto r = connect_back_check({ip("127.0.0.1"), server.port(), ip("127.0.0.1"), port, port, {}},
                              soon());
  REQUIRE(r.ok());
  CHECK(r->token_received);
}

TEST_CASE("connect-back: the per-source rate limit answers busy", "[connect_back]") {
  ConnectBackConfig config;
  config.per_source_rate = 0.001;
  config.per_source_burst = 2;
  RunningServer server(config);
  int connected = 0;
  int busy = 0;
  for (int i = 0; i < 4; ++i) {
    const std::uint16_t port = free_port();
    auto r = connect_back_check({ip("127.0.0.1"), server.port(), ip("127.0.0.1"), port, port, {}},
                                soon());
    REQUIRE(r.ok());
    if (r->reply.outcome == cb::Outcome::connected) ++connected;
    if (r->reply.outcome == cb::Outcome::busy) ++busy;
  }
  CHECK(connected == 2);
  CHECK(busy == 2);
}

TEST_CASE("connect-back: checks at once from one source are bounded", "[connect_back]") {
  ConnectBackConfig config;
  config.max_per_source = 1;
  RunningServer server(config);
  // A control connection that says nothing holds the one slot of 127.0.0.1...
  auto idle = tcp_connect_start("127.0.0.1", server.port());
  REQUIRE(idle.ok());
  pollfd p{idle->fd(), POLLOUT, 0};
  REQUIRE(::poll(&p, 1, 2000) == 1);
  ::poll(nullptr, 0, 100);  // let the server accept it
  // ...so the next one is told to come back later, and no connection is made for it.
  const std::uint16_t port = free_port();
  auto r = connect_back_check({ip("127.0.0.1"), server.port(), ip("127.0.0.1"), port, port, {}},
                              soon());
  REQUIRE(r.ok());
  CHECK(r->reply.outcome == cb::Outcome::busy);
  CHECK_FALSE(r->token_received);
  CHECK(server.counters().connected == 0);
}

TEST_CASE("connect-back: a new source gets a slot while another holds them all", "[connect_back]") {
  ConnectBackConfig config;
  config.max_sessions = 2;
  config.max_per_source = 2;
  RunningServer server(config);
  // 127.0.0.2 takes both slots with control connections that say nothing...
  std::vector<TcpSocket> idle;
  for (int i = 0; i < 2; ++i) {
    auto s = tcp_connect_start("127.0.0.1", server.port(), "127.0.0.2");
    REQUIRE(s.ok());
    pollfd p{s->fd(), POLLOUT, 0};
    REQUIRE(::poll(&p, 1, 2000) == 1);
    idle.push_back(std::move(*s));
  }
  ::poll(nullptr, 0, 100);  // let the server accept them
  // ...and 127.0.0.1, holding none, still gets its check: the newest of 127.0.0.2's
  // sessions makes room (and is told so).
  const std::uint16_t port = free_port();
  auto r = connect_back_check({ip("127.0.0.1"), server.port(), ip("127.0.0.1"), port, port, {}},
                              soon());
  REQUIRE(r.ok());
  CHECK(r->reply.outcome == cb::Outcome::connected);
  std::string told;
  for (auto& s : idle) {
    pollfd p{s.fd(), POLLIN, 0};
    if (::poll(&p, 1, 1000) != 1) continue;
    char buf[256];
    const ssize_t n = ::recv(s.fd(), buf, sizeof(buf), 0);
    if (n > 0) told.append(buf, static_cast<std::size_t>(n));
  }
  CHECK(told.rfind("PORTHOLE/1 busy 127.0.0.2 ", 0) == 0);
}

TEST_CASE("refusal log: first of a source on its own, the rest summed per interval",
          "[connect_back]") {
  std::vector<std::string> lines;
  RefusalLog log("connect-back", milliseconds(10000), 2,
                 [&](porthole::LogLevel, std::string_view t) { lines.emplace_back(t); });
  const auto t0 = Clock::now();
  CHECK_FALSE(log.flush_due());
  for (int i = 0; i < 100; ++i)
    log.refused("busy", "198.51.100." + std::to_string(20 + i % 5), "busy line", t0);
  log.refused("denied", "198.51.100.20", "denied line", t0);
  CHECK(lines == std::vector<std::string>{"busy line", "busy line"});  // 2 sources, once each
  REQUIRE(log.flush_due());
  CHECK(*log.flush_due() == t0 + milliseconds(10000));
  log.flush();
  REQUIRE(lines.size() == 4);
  CHECK(lines[2] ==
        "connect-back: refused 100 (busy) from 5 source(s) in the last 10 s, 98 not logged "
        "one by one");
  CHECK(lines[3].find("refused 1 (denied) from 1 source(s)") != std::string::npos);
  CHECK_FALSE(log.flush_due());
  // A new interval: a source is logged on its own again.
  log.refused("busy", "198.51.100.20", "busy again", t0 + milliseconds(20000));
  CHECK(lines.back() == "busy again");
  CHECK(log.lines_written() == 5);
}
