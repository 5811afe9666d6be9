// porthole::verify against a real porthole::serve on loopback (127.0.0.1, and 127.0.0.2
// as the RFC 5780 second address): the decisions of the verifier with real sockets.
// Loopback has no NAT, so a "mapping" here is internal port = external port on
// 127.0.0.1, and what breaks it is named on purpose (another external address or port).
#include <catch2/catch.hpp>

#include <atomic>
#include <chrono>
#include <optional>
#include <string>
#include <thread>

#include "net/bound_udp_socket.hpp"
#include "net/tcp_socket.hpp"
#include "porthole/verify.hpp"
#include "stop_fd.hpp"
#include "ip_literal.hpp"

using porthole::test::ip;

namespace {

using namespace porthole;

// A port free for UDP and TCP on 127.0.0.1 and 127.0.0.2 (checked, then released).
std::uint16_t free_port() {
  for (int i = 0; i < 50; ++i) {
    auto u = detail::open_bound_udp_socket("127.0.0.1", 0);
    REQUIRE(u.ok());
    const std::uint16_t p = u->local_port();
    auto u2 = detail::open_bound_udp_socket("127.0.0.2", p);
    auto t = detail::tcp_listen("127.0.0.1", p);
    if (u2.ok() && t.ok()) return p;
  }
  FAIL("no free port");
  return 0;
}

class LoopbackServe {
 public:
  explicit LoopbackServe(bool rfc5780) {
    port_ = free_port();
    ServeOptions o;
    o.listen_ip = ip("127.0.0.1");
    o.listen_port = port_;
    if (rfc5780) {
      o.alt_ip = ip("127.0.0.2");
      o.alt_port = free_port();
    }
    thread_ = std::thread([this, o] { status_ = serve(o, stop_.fd); });
    // Ready when its TCP port is taken.
    for (int i = 0; i < 200 && detail::tcp_listen("127.0.0.1", port_).ok(); ++i)
      std::this_thread::sleep_for(std::chrono::milliseconds{5});
  }
  ~LoopbackServe() {
    stop_.notify();
    thread_.join();
  }
  Options options() const {
    Options o;
    o.stun_servers = {"127.0.0.1:" + std::to_string(port_)};
    o.timeout = std::chrono::milliseconds{4000};
    return o;
  }

 private:
  std::uint16_t port_ = 0;
  StopFd stop_;  // serve() runs until it is written
  Status status_ = ok_status();
  std::thread thread_;
};

Mapping mapping(Transport t, std::uint16_t port,
                std::optional<IpAddress> external_ip = ip("127.0.0.1")) {
  return {Protocol::pcp, t, ip("127.0.0.1"), port, external_ip, port, 7200, 0, ""};
}

}  // namespace

TEST_CASE("verify UDP: the mapped endpoint and an answer from the other address", "[verify]") {
  LoopbackServe server(true);
  const std::uint16_t port = free_port();
  auto v = verify(server.options(), mapping(Transport::udp, port));
  REQUIRE(v.ok());
  CHECK(v->verified);
  CHECK(v->method == "stun-change-request");
  CHECK(v->observed == "127.0.0.1:" + std::to_string(port));
  CHECK(v->proof.find("127.0.0.2") != std::string::npos);
}

TEST_CASE("verify UDP: another external address is the double-NAT verdict", "[verify]") {
  LoopbackServe server(true);
  auto v = verify(server.options(), mapping(Transport::udp, free_port(), ip("192.168.1.2")));
  REQUIRE(v.ok());
  CHECK_FALSE(v->verified);
  CHECK(v->explanation.find("inner router") != std::string::npos);
}

TEST_CASE("verify UDP: a server with one address cannot prove inbound traffic", "[verify]") {
  LoopbackServe server(false);
  auto v = verify(server.options(), mapping(Transport::udp, free_port()));
  REQUIRE(v.ok());
  CHECK_FALSE(v->verified);
  CHECK(v->explanation.find("OTHER-ADDRESS") != std::string::npos);
}

TEST_CASE("verify TCP: the token arrives, another address is denied", "[verify]") {
  LoopbackServe server(true);
  const std::uint16_t port = free_port();
  auto v = verify(server.options(), mapping(Transport::tcp, port));
  REQUIRE(v.ok());
  CHECK(v->verified);
  CHECK(v->method == "connect-back-token");
  CHECK(v->observed == "127.0.0.1");

  auto inner = verify(server.options(), mapping(Transport::tcp, port, ip("127.0.0.3")));
  REQUIRE(inner.ok());
  CHECK_FALSE(inner->verified);
  CHECK(inner->explanation.find("inner router") != std::string::npos);
}

TEST_CASE("verify TCP: a server that is not a porthole serve", "[verify]") {
  Options o;
  o.stun_servers = {"127.0.0.1:" + std::to_string(free_port())};  // nothing there
  o.timeout = std::chrono::milliseconds{2000};
  auto v = verify(o, mapping(Transport::tcp, free_port()));
  REQUIRE(v.ok());
  CHECK_FALSE(v->verified);
  CHECK(v->explanation.find("porthole serve") != std::string::npos);
}

TEST_CASE("verify: servers that cannot do the check are passed over for the next one", "[verify]") {
  LoopbackServe one(false);
  LoopbackServe two(true);
  Options o = two.options();
  const std::string second = o.stun_servers.front();
  // UDP: a server without a second address first.
  o.stun_servers = {one.options().stun_servers.front(), second};
  auto v = verify(o, mapping(Transport::udp, free_port()));
  REQUIRE(v.ok());
  CHECK(v->verified);
  CHECK(v->server == second);
  // TCP: a port where nothing takes the control connection first.
  o.stun_servers = {"127.0.0.1:" + std::to_string(free_port()), second};
  v = verify(o, mapping(Transport::tcp, free_port()));
  REQUIRE(v.ok());
  CHECK(v->verified);
  CHECK(v->server == second);
}
