// StunClient against a tiny in-process STUN server on 127.0.0.1 / 127.0.0.2 (Linux
// routes all of 127.0.0.0/8 to lo). The fake plays what a real server (porthole serve or
// stund in the lab tests) cannot be made to do: garbage, truncated and forged answers,
// wrong transaction IDs, wrong source addresses, silence.
// Loopback only: nothing here sends a packet anywhere else.
#include <catch2/catch.hpp>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "codec/stun_codec.hpp"
#include "net/bound_udp_socket.hpp"
#include "net/udp_socket.hpp"
#include "proto/stun_client.hpp"
#include "ip_literal.hpp"

using porthole::test::ip;

namespace {

using porthole::Errc;
using porthole::LogLevel;
using porthole::detail::Clock;
using porthole::detail::StunBindingQuery;
using porthole::detail::StunClient;
using porthole::detail::StunClientOptions;
using porthole::detail::UdpSocket;
namespace stun = porthole::detail::stun;
using Bytes = std::vector<std::uint8_t>;
using std::chrono::milliseconds;

int bound_socket(const char* ip, std::uint16_t port) {
  int fd = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  REQUIRE(fd >= 0);
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  ::inet_pton(AF_INET, ip, &sa.sin_addr);
  sa.sin_port = htons(port);
  if (::bind(fd, reinterpret_cast<sockaddr*>(&sa), sizeof(sa)) != 0) {
    ::close(fd);
    return -1;
  }
  return fd;
}

std::uint16_t port_of(int fd) {
  sockaddr_in sa{};
  socklen_t len = sizeof(sa);
  REQUIRE(::getsockname(fd, reinterpret_cast<sockaddr*>(&sa), &len) == 0);
  return ntohs(sa.sin_port);
}

// The four addresses of an RFC 5780 server: index = (other IP ? 2 : 0) + (other port ? 1 : 0).
enum Role : int { primary = 0, other_port = 1, other_ip = 2, other_both = 3 };

struct Reply {
  Bytes bytes;
  Role from = primary;
};

struct Request {
  Bytes bytes;
  stun::Endpoint from;
};

// Answers each request with whatever the script says, from its own thread. Receives on
// the primary address only.
class FakeStunServer {
 public:
  // Runs on the server's thread: no Catch assertions in there (Catch is not
  // thread-safe); the test checks what came back instead.
  using Script = std::function<std::vector<Reply>(const FakeStunServer& server,
                                                  const Request& request, int index)>;

  explicit FakeStunServer(Script script) : script_(std::move(script)) {
    // Ports chosen by the kernel on 127.0.0.1, then the same ports on 127.0.0.2.
    for (int attempt = 0; attempt < 20 && fds_[0] < 0; ++attempt) {
      int a1 = bound_socket("127.0.0.1", 0);
      int a2 = bound_socket("127.0.0.1", 0);
      int b1 = bound_socket("127.0.0.2", port_of(a1));
      int b2 = bound_socket("127.0.0.2", port_of(a2));
      if (b1 >= 0 && b2 >= 0) {
        fds_ = {a1, a2, b1, b2};
      } else {
        for (int fd : {a1, a2, b1, b2})
          if (fd >= 0) ::close(fd);
      }
    }
    REQUIRE(fds_[0] >= 0);
    for (int role = 0; role < 4; ++role)
      addresses_[role] = {role >= other_ip ? ip("127.0.0.2") : ip("127.0.0.1"),
                          port_of(fds_[role])};
    thread_ = std::thread([this] { serve(); });
  }
  ~FakeStunServer() {
    stop_ = true;
    thread_.join();
    for (int fd : fds_) ::close(fd);
  }
  FakeStunServer(const FakeStunServer&) = delete;
  FakeStunServer& operator=(const FakeStunServer&) = delete;

  stun::Endpoint address(Role role) const { return addresses_[role]; }
  std::vector<Request> requests() const {
    std::lock_guard lock(mutex_);
    return requests_;
  }

 private:
  void serve() {
    while (!stop_) {
      pollfd p{fds_[0], POLLIN, 0};
      if (::poll(&p, 1, 10) <= 0) continue;
      Bytes buf(2048);
      sockaddr_in from{};
      socklen_t len = sizeof(from);
      ssize_t n = ::recvfrom(fds_[0], buf.data(), buf.size(), 0, reinterpret_cast<sockaddr*>(&from),
                             &len);
      if (n < 0) continue;
      buf.resize(static_cast<std::size_t>(n));
      auto source = porthole::Endpoint::from_sockaddr(reinterpret_cast<const sockaddr*>(&from),
                                                      len);
      if (!source) continue;
      Request request{buf, *source};
      int index = 0;
      {
        std::lock_guard lock(mutex_);
        requests_.push_back(request);
        index = static_cast<int>(requests_.size()) - 1;
      }
      for (const auto& reply : script_(*this, request, index))
        (void)::sendto(fds_[reply.from], reply.bytes.data(), reply.bytes.size(), 0,
                       reinterpret_cast<const sockaddr*>(&from), sizeof(from));
    }
  }

  std::array<int, 4> fds_{-1, -1, -1, -1};
  std::array<stun::Endpoint, 4> addresses_;
  Script script_;
  std::atomic<bool> stop_{false};
  mutable std::mutex mutex_;
  std::vector<Request> requests_;
  std::thread thread_;
};

// All zeros when the request does not decode (then no answer will match it).
stun::TransactionId id_of(const Request& request) {
  auto m = stun::decode(request.bytes);
  return m.ok() ? m->transaction_id : stun::TransactionId{};
}

// The answer a correct RFC 5780 server sends from `role`.
Bytes answer(const FakeStunServer& server, const Request& request, Role role,
             bool fingerprint = true) {
  stun::BindingSuccess s;
  s.transaction_id = id_of(request);
  s.mapped = request.from;
  s.response_origin = server.address(role);
  s.other_address = server.address(Role(role ^ other_both));
  s.software = "fake";
  s.fingerprint = fingerprint;
  auto bytes = stun::encode_binding_success(s);
  return bytes.ok() ? *bytes : Bytes{};
}

struct LogCapture {
  std::mutex mutex;
  std::vector<std::string> lines;
  porthole::LogFn fn() {
    return [this](LogLevel, std::string_view text) {
      std::lock_guard lock(mutex);
      lines.emplace_back(text);
    };
  }
  int count(const std::string& needle) {
    std::lock_guard lock(mutex);
    int n = 0;
    for (const auto& l : lines)
      if (l.find(needle) != std::string::npos) ++n;
    return n;
  }
};

Clock::time_point in(milliseconds ms) { return Clock::now() + ms; }

std::vector<Reply> silent(const FakeStunServer&, const Request&, int) { return {}; }

}  // namespace

TEST_CASE("STUN schedule: RFC 8489 s6.2.1 defaults", "[stun_client]") {
  const auto at = porthole::detail::stun_schedule({});
  const std::vector<milliseconds> expected = {milliseconds{0},     milliseconds{500},
                                              milliseconds{1500},  milliseconds{3500},
                                              milliseconds{7500},  milliseconds{15500},
                                              milliseconds{31500}, milliseconds{39500}};
  CHECK(at == expected);
}

TEST_CASE("STUN client: a plain answer gives our mapped address", "[stun_client]") {
  FakeStunServer server([&](const FakeStunServer& self, const Request& r, int) {
    return std::vector<Reply>{{answer(self, r, primary), primary}};
  });

  auto socket = porthole::detail::open_bound_udp_socket("127.0.0.1", 0);
  REQUIRE(socket.ok());
  const std::uint16_t local = socket->local_port();
  StunClient client;
  auto b = client.binding(*socket, {server.address(primary), {}, {}, {}}, in(milliseconds{2000}));
  INFO((b.ok() ? "" : b.error().message));
  REQUIRE(b.ok());
  CHECK(b->mapped == stun::Endpoint{ip("127.0.0.1"), local});
  CHECK(b->mapped_is_xor);
  CHECK(b->local_port == local);
  CHECK(b->responder == server.address(primary));
  CHECK(b->response_origin == server.address(primary));
  CHECK(b->other_address == server.address(other_both));
  CHECK(b->software == "fake");
  CHECK(b->transmissions == 1);
  REQUIRE(b->rtt);
  CHECK(*b->rtt < milliseconds{500});

  // What went out: a Binding request with FINGERPRINT and a fresh ID, nothing else.
  auto requests = server.requests();
  REQUIRE(requests.size() == 1);
  auto m = stun::decode(requests[0].bytes);
  REQUIRE(m.ok());
  CHECK(m->message_class == stun::MessageClass::request);
  CHECK(m->method == stun::method::binding);
  CHECK(m->has_fingerprint);
  CHECK_FALSE(m->change_request);
  CHECK(requests[0].bytes.size() == 28);

  // A fresh socket each time: another ID (96 random bits) and the kernel's port.
  auto again = client.binding({server.address(primary), {}, {}, {}}, in(milliseconds{2000}));
  REQUIRE(again.ok());
  CHECK(again->mapped.port == again->local_port);
  requests = server.requests();
  REQUIRE(requests.size() == 2);
  CHECK(id_of(requests[0]) != id_of(requests[1]));
}

TEST_CASE("STUN client: hostile datagrams are dropped, the real answer accepted", "[stun_client]") {
  FakeStunServer server([&](const FakeStunServer& self, const Request& r, int) {
    const Bytes good = answer(self, r, primary);
    std::vector<Reply> replies;
    replies.push_back({Bytes{0xde, 0xad, 0xbe, 0xef, 1, 2, 3}, primary});  // garbage
    replies.push_back({Bytes(good.begin(), good.end() - 8), primary});     // truncated
    Bytes wrong_id = good;
    wrong_id[19] ^= 0x01;  // (and so a stale FINGERPRINT: build it properly instead)
    stun::BindingSuccess s;
    s.transaction_id = id_of(r);
    s.transaction_id[11] ^= 0x01;
    s.mapped = {ip("203.0.113.66"), 4444};
    s.fingerprint = true;
    replies.push_back({*stun::encode_binding_success(s), primary});  // wrong transaction ID
    Bytes bad_fp = good;
    bad_fp.back() ^= 0x01;
    replies.push_back({bad_fp, primary});  // FINGERPRINT does not match
    Bytes bad_cookie = good;
    bad_cookie[4] = 0x00;
    replies.push_back({bad_cookie, primary});
    replies.push_back({good, other_port});  // right ID, wrong source port
    replies.push_back({good, other_ip});    // right ID, wrong source address
    Bytes as_request = stun::encode_binding_request({id_of(r), {}, "", true});
    replies.push_back({as_request, primary});  // our ID, but a request
    replies.push_back({good, primary});        // finally the answer
    return replies;
  });

  LogCapture log;
  StunClientOptions options;
  options.log = log.fn();
  StunClient client(options);
  auto socket = UdpSocket::open_unconnected();
  REQUIRE(socket.ok());
  auto b = client.binding(*socket, {server.address(primary), {}, {}, {}}, in(milliseconds{2000}));
  INFO((b.ok() ? "" : b.error().message));
  REQUIRE(b.ok());
  CHECK(b->mapped.ip == ip("127.0.0.1"));
  CHECK(b->mapped.port == b->local_port);
  CHECK(b->transmissions == 1);
  CHECK(server.requests().size() == 1);
  CHECK(log.count("dropped") == 8);
  CHECK(log.count("is not in flight") == 1);
  CHECK(log.count("does not match") == 1);
  CHECK(log.count("magic cookie") == 1);
  CHECK(log.count("not from a server we are waiting for") == 2);
  CHECK(log.count("not a Binding response") == 1);
}

TEST_CASE("STUN client: only junk from the server is a timeout with the reason", "[stun_client]") {
  FakeStunServer server([&](const FakeStunServer&, const Request&, int) {
    return std::vector<Reply>{{Bytes(24, 0x41), primary}};
  });
  StunClientOptions options;
  options.initial_rto = milliseconds{20};
  StunClient client(options);
  auto b = client.binding({server.address(primary), {}, {}, {}}, in(milliseconds{200}));
  REQUIRE_FALSE(b.ok());
  CHECK(b.error().code == Errc::timeout);
  CHECK(b.error().message.find("top two bits") != std::string::npos);
}

TEST_CASE(
    "STUN client: silence ends at the caller's deadline, retransmissions repeat "
    "the request",
    "[stun_client]") {
  FakeStunServer server(silent);
  StunClientOptions options;
  options.initial_rto = milliseconds{50};  // sends at 0, 50, 150, 350 ms
  StunClient client(options);
  const auto start = Clock::now();
  auto b = client.binding({server.address(primary), {}, {}, {}}, start + milliseconds{400});
  const auto took = std::chrono::duration_cast<milliseconds>(Clock::now() - start);
  REQUIRE_FALSE(b.ok());
  CHECK(b.error().code == Errc::no_service);
  CHECK(b.error().message.find("no STUN answer") != std::string::npos);
  CHECK(took >= milliseconds{395});
  CHECK(took < milliseconds{550});

  std::this_thread::sleep_for(milliseconds{30});  // let the fake read the last one
  auto requests = server.requests();
  REQUIRE(requests.size() >= 3);
  CHECK(requests.size() <= 4);
  for (const auto& r : requests) CHECK(r.bytes == requests[0].bytes);  // same ID, same bytes
}

TEST_CASE("STUN client: the full schedule, Rc = 7 then Rm * RTO, before the deadline",
          "[stun_client]") {
  FakeStunServer server(silent);
  StunClientOptions options;
  options.initial_rto = milliseconds{10};  // sends at 0..630 ms, failure at 790 ms
  StunClient client(options);
  const auto start = Clock::now();
  auto b = client.binding({server.address(primary), {}, {}, {}}, start + milliseconds{5000});
  const auto took = std::chrono::duration_cast<milliseconds>(Clock::now() - start);
  REQUIRE_FALSE(b.ok());
  CHECK(b.error().code == Errc::no_service);
  CHECK(b.error().message.find("(7 requests)") != std::string::npos);
  CHECK(took >= milliseconds{790});
  CHECK(took < milliseconds{1500});
  std::this_thread::sleep_for(milliseconds{30});
  auto requests = server.requests();
  CHECK(requests.size() == 7);
  for (const auto& r : requests) CHECK(r.bytes == requests[0].bytes);
}

TEST_CASE("STUN client: a late answer to a retransmitted request is accepted", "[stun_client]") {
  FakeStunServer server([&](const FakeStunServer& self, const Request& r, int index) {
    if (index < 2) return std::vector<Reply>{};  // the first two are "lost"
    return std::vector<Reply>{{answer(self, r, primary), primary}};
  });
  StunClientOptions options;
  options.initial_rto = milliseconds{20};
  StunClient client(options);
  auto b = client.binding({server.address(primary), {}, {}, {}}, in(milliseconds{2000}));
  REQUIRE(b.ok());
  CHECK(b->transmissions == 3);
  CHECK_FALSE(b->rtt);  // Karn: ambiguous
  CHECK(b->elapsed >= milliseconds{60});
}

TEST_CASE("STUN client: error responses and answers that make no sense", "[stun_client]") {
  SECTION("420 to a CHANGE-REQUEST: refused, the server does not do RFC 5780") {
    FakeStunServer server([](const FakeStunServer&, const Request& r, int) {
      auto e = stun::encode_binding_error(
          {id_of(r), 420, "Unknown Attribute", {stun::attr::change_request}, "", false});
      return std::vector<Reply>{{*e, primary}};
    });
    StunClient client;
    // The error comes from the address asked, not the other one: accepted all the same.
    StunBindingQuery q{server.address(primary),
                       stun::ChangeRequest{true, true},
                       server.address(other_both),
                       {}};
    auto b = client.binding(q, in(milliseconds{2000}));
    REQUIRE_FALSE(b.ok());
    CHECK(b.error().code == Errc::refused);
    CHECK(b.error().protocol_code == 420);
    CHECK(b.error().message.find("Unknown Attribute") != std::string::npos);
  }
  SECTION("an unknown comprehension-required attribute fails the transaction") {
    FakeStunServer server([&](const FakeStunServer& self, const Request& r, int) {
      Bytes b = answer(self, r, primary, false);
      b.insert(b.end(), {0x7f, 0x01, 0x00, 0x00});  // type 0x7f01, empty value
      b[3] = static_cast<std::uint8_t>(b[3] + 4);
      return std::vector<Reply>{{b, primary}};
    });
    StunClient client;
    auto b = client.binding({server.address(primary), {}, {}, {}}, in(milliseconds{2000}));
    REQUIRE_FALSE(b.ok());
    CHECK(b.error().code == Errc::internal);
    CHECK(b.error().message.find("0x7f01") != std::string::npos);
  }
  SECTION("no mapped address") {
    FakeStunServer server([](const FakeStunServer&, const Request& r, int) {
      // A success response with only SOFTWARE: built by hand.
      Bytes b = stun::encode_binding_request({id_of(r), {}, "x", false});
      b[0] = 0x01;
      return std::vector<Reply>{{b, primary}};
    });
    StunClient client;
    auto b = client.binding({server.address(primary), {}, {}, {}}, in(milliseconds{2000}));
    REQUIRE_FALSE(b.ok());
    CHECK(b.error().code == Errc::internal);
    CHECK(b.error().message.find("without XOR-MAPPED-ADDRESS") != std::string::npos);
  }
  SECTION("an RFC 3489 server: MAPPED-ADDRESS and CHANGED-ADDRESS only") {
    FakeStunServer server([&](const FakeStunServer& self, const Request& r, int) {
      Bytes b = stun::encode_binding_request({id_of(r), {}, "", false});
      b[0] = 0x01;  // success response
      const auto p = r.from.port;
      const auto q = self.address(other_both).port;
      // clang-format off
      const Bytes attributes = {
          0x00, 0x01, 0x00, 0x08,  // MAPPED-ADDRESS, length 8
          0x00, 0x01, static_cast<std::uint8_t>(p >> 8), static_cast<std::uint8_t>(p & 0xff),
          127, 0, 0, 1,            //   127.0.0.1
          0x00, 0x05, 0x00, 0x08,  // CHANGED-ADDRESS, length 8
          0x00, 0x01, static_cast<std::uint8_t>(q >> 8), static_cast<std::uint8_t>(q & 0xff),
          127, 0, 0, 2,            //   127.0.0.2
      };
      // clang-format on
      b.insert(b.end(), attributes.begin(), attributes.end());
      b[3] = 24;
      return std::vector<Reply>{{b, primary}};
    });
    StunClient client;
    auto b = client.binding({server.address(primary), {}, {}, {}}, in(milliseconds{2000}));
    INFO((b.ok() ? "" : b.error().message));
    REQUIRE(b.ok());
    CHECK_FALSE(b->mapped_is_xor);
    CHECK(b->mapped.port == b->local_port);
    CHECK(b->other_address == server.address(other_both));
    CHECK_FALSE(b->response_origin);
  }
}

TEST_CASE("STUN client: CHANGE-REQUEST answers must come from the other address", "[stun_client]") {
  std::atomic<bool> honour{true};
  FakeStunServer server([&](const FakeStunServer& self, const Request& r, int) {
    auto m = stun::decode(r.bytes);
    int role = primary;
    if (honour && m->change_request)
      role = (m->change_request->change_ip ? other_ip : 0) |
             (m->change_request->change_port ? other_port : 0);
    return std::vector<Reply>{{answer(self, r, Role(role)), Role(role)}};
  });
  StunClient client;
  const auto other = server.address(other_both);

  struct Case {
    bool ip, port;
    Role from;
  };
  for (Case c :
       {Case{true, true, other_both}, Case{true, false, other_ip}, Case{false, true, other_port}}) {
    StunBindingQuery q{server.address(primary), stun::ChangeRequest{c.ip, c.port}, other, {}};
    auto b = client.binding(q, in(milliseconds{2000}));
    INFO((b.ok() ? "" : b.error().message));
    REQUIRE(b.ok());
    CHECK(b->responder == server.address(c.from));
    CHECK(b->response_origin == server.address(c.from));
  }

  // A server that ignores CHANGE-REQUEST answers from its primary address: that is not
  // the answer a filtering test asked for.
  honour = false;
  StunBindingQuery q{server.address(primary), stun::ChangeRequest{true, true}, other,
                     in(milliseconds{300})};
  auto b = client.binding(q, in(milliseconds{2000}));
  REQUIRE_FALSE(b.ok());
  CHECK(b.error().code == Errc::no_service);
  CHECK(b.error().message.find("ignored CHANGE-REQUEST") != std::string::npos);

  // A change without knowing where the answer should come from is a usage error.
  StunBindingQuery blind{server.address(primary), stun::ChangeRequest{true, false}, {}, {}};
  auto u = client.binding(blind, in(milliseconds{2000}));
  REQUIRE_FALSE(u.ok());
  CHECK(u.error().code == Errc::usage);
}

TEST_CASE("STUN client: concurrent transactions on one socket are told apart by ID",
          "[stun_client]") {
  std::mutex held_mutex;
  std::vector<Request> held;
  FakeStunServer server([&](const FakeStunServer& self, const Request& r, int) {
    std::lock_guard lock(held_mutex);
    held.push_back(r);
    if (held.size() != 2) return std::vector<Reply>{};
    // Answer the second request first, then the first; the port-change one from the
    // other port.
    std::vector<Reply> replies;
    for (int i = 1; i >= 0; --i) {
      auto m = stun::decode(held[static_cast<std::size_t>(i)].bytes);
      const Role role = m->change_request ? other_port : primary;
      replies.push_back({answer(self, held[static_cast<std::size_t>(i)], role), role});
    }
    return replies;
  });

  auto socket = UdpSocket::open_unconnected();
  REQUIRE(socket.ok());
  StunClient client;
  const std::vector<StunBindingQuery> queries = {
      {server.address(primary), {}, {}, {}},
      {server.address(primary), stun::ChangeRequest{false, true}, server.address(other_both), {}},
  };
  auto results = client.bindings(*socket, queries, in(milliseconds{2000}));
  REQUIRE(results.size() == 2);
  REQUIRE(results[0].ok());
  REQUIRE(results[1].ok());
  CHECK(results[0]->responder == server.address(primary));
  CHECK(results[1]->responder == server.address(other_port));
  CHECK(results[0]->mapped == results[1]->mapped);  // one socket, one mapping
  auto requests = server.requests();
  REQUIRE(requests.size() == 2);
  CHECK(id_of(requests[0]) != id_of(requests[1]));
}

TEST_CASE("STUN client: bad parameters fail at once", "[stun_client]") {
  StunClient client;
  const auto start = Clock::now();
  auto v6 = client.binding({{ip("2001:db8::1"), 3478}, {}, {}, {}}, in(milliseconds{2000}));
  REQUIRE_FALSE(v6.ok());  // the client's sockets are IPv4
  CHECK(v6.error().code == Errc::usage);
  auto port0 = client.binding({{ip("127.0.0.1"), 0}, {}, {}, {}}, in(milliseconds{2000}));
  REQUIRE_FALSE(port0.ok());
  CHECK(port0.error().code == Errc::usage);
  CHECK(Clock::now() - start < milliseconds{100});
}
