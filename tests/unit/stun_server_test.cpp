// STUN server core: the responder's decisions with the time passed in (RFC 5780
// address selection, 420s, drops, rate limits, bounded memory, answer sizes), then the
// real sockets on loopback (127.0.0.1 and 127.0.0.2) against our own StunClient.
// Loopback only: nothing here sends a packet anywhere else.
#include <catch2/catch.hpp>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <string>
#include <thread>
#include <vector>

#include <fmt/format.h>

#include "codec/stun_codec.hpp"
#include "net/bound_udp_socket.hpp"
#include "net/udp_socket.hpp"
#include "proto/stun_client.hpp"
#include "proto/stun_server.hpp"
#include "stop_fd.hpp"
#include "ip_literal.hpp"

using porthole::test::ip;

namespace {

using porthole::Errc;
using porthole::detail::Clock;
using porthole::detail::SourceRateLimiter;
using porthole::detail::StunBindingQuery;
using porthole::detail::StunClient;
using porthole::detail::StunResponder;
using porthole::detail::StunServer;
using porthole::detail::StunServerConfig;
using porthole::detail::UdpSocket;
namespace stun = porthole::detail::stun;
using Bytes = std::vector<std::uint8_t>;
using std::chrono::milliseconds;

const stun::TransactionId kId = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12};
const stun::Endpoint kClient{ip("198.51.100.7"), 40000};

// {IP1:P1, IP1:P2, IP2:P1, IP2:P2}
const std::vector<stun::Endpoint> kFour = {{ip("203.0.113.1"), 3478},
                                           {ip("203.0.113.1"), 3479},
                                           {ip("203.0.113.2"), 3478},
                                           {ip("203.0.113.2"), 3479}};

Bytes request(std::optional<stun::ChangeRequest> change = {}, bool fingerprint = true) {
  return stun::encode_binding_request({kId, change, "", fingerprint});
}

stun::Message decoded(const Bytes& b) {
  auto m = stun::decode(b);
  REQUIRE(m.ok());
  return *m;
}

Clock::time_point t0() { return Clock::time_point{} + std::chrono::hours{1}; }

// Appends an attribute and fixes Message Length (no FINGERPRINT in `b`).
Bytes with_attribute(Bytes b, std::uint16_t type, const Bytes& value) {
  b.push_back(static_cast<std::uint8_t>(type >> 8));
  b.push_back(static_cast<std::uint8_t>(type & 0xff));
  b.push_back(0);
  b.push_back(static_cast<std::uint8_t>(value.size()));
  b.insert(b.end(), value.begin(), value.end());
  while (b.size() % 4 != 0) b.push_back(0);
  b[3] = static_cast<std::uint8_t>(b.size() - 20);
  return b;
}

}  // namespace

TEST_CASE("STUN responder, one address: Binding answered to the source", "[stun_server]") {
  StunResponder r({{ip("203.0.113.1"), 3478}}, StunServerConfig{});
  auto reply = r.handle(request({}, false), 0, kClient, t0());
  REQUIRE(reply);
  CHECK(reply->from == 0);
  CHECK(reply->to == kClient);
  auto m = decoded(reply->bytes);
  CHECK(m.message_class == stun::MessageClass::success_response);
  CHECK(m.transaction_id == kId);
  CHECK(*m.xor_mapped_address == kClient);
  CHECK_FALSE(m.mapped_address);  // RFC 8489 clients read XOR-MAPPED-ADDRESS
  CHECK_FALSE(m.other_address);   // no second address: no RFC 5780 attributes
  CHECK_FALSE(m.response_origin);
  CHECK_FALSE(m.software);
  CHECK_FALSE(m.has_fingerprint);  // the request had none
  CHECK(reply->bytes.size() == 32);

  auto with_fp = r.handle(request({}, true), 0, kClient, t0());
  REQUIRE(with_fp);
  CHECK(decoded(with_fp->bytes).has_fingerprint);
  CHECK(with_fp->bytes.size() == 40);

  // A CHANGE-REQUEST without a change is just a Binding (miniupnpd sends one).
  CHECK(r.handle(request(stun::ChangeRequest{}), 0, kClient, t0()));
  // With a change: 420 listing CHANGE-REQUEST, to the source, from where it arrived.
  auto no = r.handle(request(stun::ChangeRequest{true, false}), 0, kClient, t0());
  REQUIRE(no);
  CHECK(no->to == kClient);
  auto e = decoded(no->bytes);
  CHECK(e.message_class == stun::MessageClass::error_response);
  CHECK(e.error_code->code == 420);
  CHECK(e.unknown_attributes == std::vector<std::uint16_t>{stun::attr::change_request});
  CHECK(r.counters().answered == 3);
  CHECK(r.counters().errors_sent == 1);
}

TEST_CASE("STUN responder, four addresses: RFC 5780 CHANGE-REQUEST and OTHER-ADDRESS",
          "[stun_server]") {
  StunServerConfig config;
  config.software = "porthole";
  StunResponder r(kFour, config);
  for (std::size_t arrived = 0; arrived < 4; ++arrived) {
    for (int flags = 0; flags < 4; ++flags) {
      const bool ip = (flags & 2) != 0;
      const bool port = (flags & 1) != 0;
      auto reply = r.handle(request(stun::ChangeRequest{ip, port}), arrived, kClient, t0());
      REQUIRE(reply);
      const std::size_t expected_from = arrived ^ static_cast<std::size_t>(flags);
      INFO("arrived on " << arrived << " change ip " << ip << " port " << port);
      CHECK(reply->from == expected_from);
      CHECK(reply->to == kClient);
      auto m = decoded(reply->bytes);
      CHECK(*m.xor_mapped_address == kClient);
      CHECK(*m.response_origin == kFour[expected_from]);
      CHECK(*m.other_address == kFour[arrived ^ 3]);  // differs in IP and port
      CHECK(*m.software == "porthole");
      CHECK(reply->bytes.size() <= porthole::detail::kMaxReplySize);
    }
  }
}

TEST_CASE("STUN responder: nothing is ever sent anywhere but the source", "[stun_server]") {
  StunResponder r(kFour, StunServerConfig{});
  // RESPONSE-ADDRESS (RFC 3489) aims the answer at a third party; RESPONSE-PORT at
  // another port. Neither is honoured: a 420 goes back to the source.
  const Bytes redirect = with_attribute(request({}, false), stun::attr::response_address,
                                        {0, 1, 0x00, 0x35, 192, 0, 2, 53});
  auto reply = r.handle(redirect, 0, kClient, t0());
  REQUIRE(reply);
  CHECK(reply->to == kClient);
  CHECK(reply->from == 0);
  auto e = decoded(reply->bytes);
  CHECK(e.error_code->code == 420);
  CHECK(e.unknown_attributes == std::vector<std::uint16_t>{stun::attr::response_address});

  const Bytes port = with_attribute(request({}, false), stun::attr::response_port, {0, 53, 0, 0});
  auto p = r.handle(port, 0, kClient, t0());
  REQUIRE(p);
  CHECK(p->to == kClient);
  CHECK(decoded(p->bytes).unknown_attributes ==
        std::vector<std::uint16_t>{stun::attr::response_port});

  // A 420 lists at most kMaxUnknownListed types: its size stays bounded.
  Bytes many = request({}, false);
  for (std::uint16_t t = 0x7000; t < 0x7020; ++t) many = with_attribute(many, t, {});
  auto bounded = r.handle(many, 0, kClient, t0());
  REQUIRE(bounded);
  CHECK(decoded(bounded->bytes).unknown_attributes.size() == porthole::detail::kMaxUnknownListed);
  CHECK(bounded->bytes.size() <= porthole::detail::kMaxReplySize);

  // Source port 0 cannot be answered.
  CHECK_FALSE(r.handle(request(), 0, {ip("198.51.100.7"), 0}, t0()));
}

TEST_CASE("STUN responder: malformed and non-request datagrams are dropped", "[stun_server]") {
  StunResponder r(kFour, StunServerConfig{});
  const Bytes good = request();
  std::vector<Bytes> junk;
  junk.push_back({});
  junk.push_back({0xde, 0xad, 0xbe, 0xef});
  junk.push_back(Bytes(good.begin(), good.end() - 4));  // truncated
  Bytes bad_fp = good;
  bad_fp.back() ^= 1;
  junk.push_back(bad_fp);
  Bytes cookie = good;
  cookie[5] = 0;
  junk.push_back(cookie);
  Bytes top = good;
  top[0] |= 0x80;
  junk.push_back(top);
  Bytes longer = good;
  longer.insert(longer.end(), {0, 0, 0, 0});
  junk.push_back(longer);
  for (const auto& b : junk) CHECK_FALSE(r.handle(b, 0, kClient, t0()));
  CHECK(r.counters().malformed == junk.size());

  // Responses (a reflection loop between two servers), indications, other methods.
  auto response = stun::encode_binding_success({kId, kClient, false, {}, {}, "", false});
  CHECK_FALSE(r.handle(*response, 0, kClient, t0()));
  Bytes indication = request({}, false);
  indication[1] = 0x11;
  CHECK_FALSE(r.handle(indication, 0, kClient, t0()));
  Bytes allocate = request({}, false);
  allocate[1] = 0x03;  // TURN Allocate
  CHECK_FALSE(r.handle(allocate, 0, kClient, t0()));
  CHECK(r.counters().not_requests == 3);
  CHECK(r.counters().answered == 0);

  // And the next good request is answered.
  CHECK(r.handle(good, 0, kClient, t0()));
}

TEST_CASE("STUN responder: a flooding source is limited, the others still answered",
          "[stun_server]") {
  StunServerConfig config;
  config.per_source_rate = 10;
  config.per_source_burst = 20;
  StunResponder r(kFour, config);
  const stun::Endpoint other{ip("198.51.100.99"), 5000};
  int flood_answered = 0;
  int other_answered = 0;
  auto now = t0();
  for (int i = 0; i < 1000; ++i) {
    if (r.handle(request(), 0, {kClient.ip, static_cast<std::uint16_t>(1000 + i % 50)}, now))
      ++flood_answered;
    if (i % 100 == 0 && r.handle(request(), 0, other, now)) ++other_answered;
  }
  CHECK(flood_answered == 20);  // the burst, whatever the source port
  CHECK(other_answered == 10);
  CHECK(r.counters().rate_limited == 980);

  // A second later the bucket has 10 more tokens.
  now += std::chrono::seconds{1};
  int later = 0;
  for (int i = 0; i < 100; ++i)
    if (r.handle(request(), 0, kClient, now)) ++later;
  CHECK(later == 10);
}

TEST_CASE("STUN responder: the total rate caps many sources together", "[stun_server]") {
  StunServerConfig config;
  config.total_rate = 100;
  config.total_burst = 50;
  StunResponder r(kFour, config);
  int answered = 0;
  for (int i = 0; i < 500; ++i) {
    const stun::Endpoint src{ip(fmt::format("198.51.{}.{}", i / 250, i % 250 + 1)), 4000};
    if (r.handle(request(), 0, src, t0())) ++answered;
  }
  CHECK(answered == 50);
}

TEST_CASE("STUN rate limiter: memory bounded, least recently seen forgotten", "[stun_server]") {
  SourceRateLimiter limiter(1.0, 2.0, 64);
  for (int i = 0; i < 10000; ++i)
    limiter.allow(fmt::format("10.{}.{}.{}", i >> 16, (i >> 8) & 0xff, i & 0xff), t0());
  CHECK(limiter.tracked() == 64);

  // A source kept busy stays tracked (and limited) while others churn through.
  SourceRateLimiter busy(0.0, 2.0, 4);
  CHECK(busy.allow("192.0.2.1", t0()));
  CHECK(busy.allow("192.0.2.1", t0()));
  for (int i = 0; i < 100; ++i) {
    busy.allow(fmt::format("10.0.0.{}", i), t0());
    CHECK_FALSE(busy.allow("192.0.2.1", t0()));  // still remembered: still empty
  }

  StunResponder r(kFour, [] {
    StunServerConfig c;
    c.max_sources = 16;
    return c;
  }());
  for (int i = 0; i < 1000; ++i)
    (void)r.handle(request(), 0, {ip(fmt::format("10.0.{}.{}", i / 250, i % 250 + 1)), 1}, t0());
  CHECK(r.tracked_sources() == 16);
}

TEST_CASE("STUN server: bad configurations are usage errors", "[stun_server]") {
  StunServerConfig c;
  c.listen = {ip("::1"), 0};  // not IPv4
  CHECK(StunServer::open(c).error().code == Errc::usage);
  c.listen = {ip("127.0.0.1"), 0};
  c.alt_listen = stun::Endpoint{ip("127.0.0.1"), 0};
  CHECK(StunServer::open(c).error().code == Errc::usage);  // same IP twice
  c.alt_listen = stun::Endpoint{ip("0.0.0.0"), 0};
  CHECK(StunServer::open(c).error().code == Errc::usage);
  c.listen = {ip("127.0.0.1"), 34780};
  c.alt_listen = stun::Endpoint{ip("127.0.0.2"), 34780};
  CHECK(StunServer::open(c).error().code == Errc::usage);  // same port twice
  c.alt_listen.reset();
  c.software = std::string(64, 'x');
  CHECK(StunServer::open(c).error().code == Errc::usage);
}

namespace {

// A StunServer serving from its own thread for the duration of a test.
class RunningServer {
 public:
  explicit RunningServer(StunServerConfig config) {
    auto s = StunServer::open(config);
    INFO((s.ok() ? "" : s.error().message));
    REQUIRE(s.ok());
    server_.emplace(std::move(*s));
    thread_ = std::thread([this] { status_ok_ = server_->serve(stop_.fd).ok(); });
  }
  ~RunningServer() { stop(); }
  void stop() {
    stop_.notify();
    if (thread_.joinable()) thread_.join();
  }
  RunningServer(const RunningServer&) = delete;
  RunningServer& operator=(const RunningServer&) = delete;
  const std::vector<stun::Endpoint>& addresses() const { return server_->addresses(); }
  const StunServer& server() const { return *server_; }

 private:
  std::optional<StunServer> server_;
  StopFd stop_;  // serve() runs until it is written
  std::atomic<bool> status_ok_{true};
  std::thread thread_;
};

Clock::time_point in(milliseconds ms) { return Clock::now() + ms; }

}  // namespace

TEST_CASE("STUN server on loopback: RFC 5780 with 127.0.0.1 and 127.0.0.2", "[stun_server]") {
  StunServerConfig config;
  config.listen = {ip("127.0.0.1"), 0};
  config.alt_listen = stun::Endpoint{ip("127.0.0.2"), 0};
  config.software = "porthole";
  RunningServer server(config);
  const auto& a = server.addresses();
  REQUIRE(a.size() == 4);
  CHECK(server.server().rfc5780());
  CHECK(a[0].port == a[2].port);
  CHECK(a[1].port == a[3].port);
  CHECK(a[0].port != a[1].port);

  auto socket = porthole::detail::open_bound_udp_socket("127.0.0.1", 0);
  REQUIRE(socket.ok());
  StunClient client;
  // Test I: the mapped address (no NAT on loopback: our own), and the other address.
  auto first = client.binding(*socket, {a[0], {}, {}, {}}, in(milliseconds{2000}));
  INFO((first.ok() ? "" : first.error().message));
  REQUIRE(first.ok());
  CHECK(first->mapped == stun::Endpoint{ip("127.0.0.1"), socket->local_port()});
  CHECK(first->responder == a[0]);
  CHECK(first->response_origin == a[0]);
  CHECK(first->other_address == a[3]);
  CHECK(first->software == "porthole");

  // The filtering tests, concurrently on the same socket; and a Binding to the other
  // address (the mapping test), which names the primary as its other address.
  const std::vector<StunBindingQuery> queries = {
      {a[0], stun::ChangeRequest{true, true}, a[3], {}},
      {a[0], stun::ChangeRequest{false, true}, a[3], {}},
      {a[0], stun::ChangeRequest{true, false}, a[3], {}},
      {a[3], {}, {}, {}},
  };
  auto results = client.bindings(*socket, queries, in(milliseconds{2000}));
  REQUIRE(results.size() == 4);
  for (const auto& r : results) {
    INFO((r.ok() ? "" : r.error().message));
    REQUIRE(r.ok());
    CHECK(r->mapped == first->mapped);
  }
  CHECK(results[0]->responder == a[3]);
  CHECK(results[1]->responder == a[1]);
  CHECK(results[2]->responder == a[2]);
  CHECK(results[3]->responder == a[3]);
  CHECK(results[3]->other_address == a[0]);
}

TEST_CASE("STUN server on loopback: one address refuses CHANGE-REQUEST with 420", "[stun_server]") {
  StunServerConfig config;
  config.listen = {ip("127.0.0.1"), 0};
  RunningServer server(config);
  REQUIRE(server.addresses().size() == 1);
  const auto primary = server.addresses()[0];
  StunClient client;
  auto plain = client.binding({primary, {}, {}, {}}, in(milliseconds{2000}));
  REQUIRE(plain.ok());
  CHECK_FALSE(plain->other_address);
  auto change = client.binding(
      {primary, stun::ChangeRequest{true, true}, stun::Endpoint{ip("127.0.0.2"), 1}, {}},
      in(milliseconds{2000}));
  REQUIRE_FALSE(change.ok());
  CHECK(change.error().code == Errc::refused);
  CHECK(change.error().protocol_code == 420);
}

TEST_CASE("STUN server on loopback: survives garbage and a flood, others still answered",
          "[stun_server]") {
  StunServerConfig config;
  config.listen = {ip("127.0.0.1"), 0};
  config.per_source_rate = 5;
  config.per_source_burst = 10;
  RunningServer server(config);
  const auto primary = server.addresses()[0];

  // One source (127.0.0.1) sends garbage, truncated requests, then a flood of good ones.
  auto flooder = porthole::detail::open_bound_udp_socket("127.0.0.1", 0);
  REQUIRE(flooder.ok());
  const Bytes good = request();
  CHECK(flooder->send_to(Bytes{0xff, 0x00, 0x13}, primary).ok());
  CHECK(flooder->send_to(Bytes(good.begin(), good.begin() + 24), primary).ok());
  CHECK(flooder->send_to(Bytes(3000, 0x00), primary).ok());
  for (int i = 0; i < 300; ++i) CHECK(flooder->send_to(good, primary).ok());
  int answers = 0;
  for (;;) {
    auto got = flooder->receive(in(milliseconds{300}));
    if (!got) break;
    ++answers;
  }
  // The burst of 10 minus the three junk datagrams that used tokens, plus a refill of a
  // few per second while the flood lasted.
  CHECK(answers >= 5);
  CHECK(answers <= 15);

  // Another source (127.0.0.3) is answered during and after the flood.
  auto other = porthole::detail::open_bound_udp_socket("127.0.0.3", 0);
  REQUIRE(other.ok());
  StunClient client;
  auto b = client.binding(*other, {primary, {}, {}, {}}, in(milliseconds{2000}));
  INFO((b.ok() ? "" : b.error().message));
  REQUIRE(b.ok());
  CHECK(b->mapped == stun::Endpoint{ip("127.0.0.3"), other->local_port()});
  server.stop();  // the counters belong to the server thread until then
  const auto& counters = server.server().counters();
  CHECK(counters.malformed == 3);
  // Some of the flood may have been lost in the socket buffer; most was limited.
  CHECK(counters.rate_limited >= 200);
  CHECK(counters.answered == static_cast<std::uint64_t>(answers) + 1);
}

TEST_CASE("STUN responder: RFC 3489 clients (no magic cookie) get an RFC 3489 answer",
          "[stun_server]") {
  StunResponder r(kFour, StunServerConfig{});
  // A classic Binding request as Debian's `stun` sends it: 128-bit transaction ID,
  // CHANGE-REQUEST (change IP and port), no FINGERPRINT.
  Bytes classic = {0x00, 0x01, 0x00, 0x08,  // Binding, length 8
                   0xa1, 0xb2, 0xc3, 0xd4, 1,    2,
                   3,    4,    5,    6,    7,    8,  // transaction ID
                   9,    10,   11,   12,   0x00, 0x03,
                   0x00, 0x04, 0x00, 0x00, 0x00, 0x06};  // CHANGE-REQUEST ip port
  auto reply = r.handle(classic, 0, kClient, t0());
  REQUIRE(reply);
  CHECK(reply->from == 3);  // the other IP and the other port
  CHECK(reply->to == kClient);
  // The whole 16-byte ID comes back where the cookie would be.
  CHECK(Bytes(reply->bytes.begin() + 4, reply->bytes.begin() + 20) ==
        Bytes(classic.begin() + 4, classic.begin() + 20));
  auto back = stun::decode_rfc3489(reply->bytes);
  REQUIRE(back.ok());
  const stun::Message& m = back->message;
  CHECK(m.message_class == stun::MessageClass::success_response);
  CHECK_FALSE(m.xor_mapped_address);  // unknown to RFC 3489 clients: they would drop it
  REQUIRE(m.mapped_address);
  CHECK(*m.mapped_address == kClient);
  REQUIRE(m.source_address);
  CHECK(*m.source_address == kFour[3]);
  REQUIRE(m.changed_address);
  CHECK(*m.changed_address == kFour[3]);
  CHECK(r.counters().rfc3489_answered == 1);

  // RESPONSE-ADDRESS would aim the answer at someone else: silence.
  Bytes redirect = classic;
  redirect[3] = 0x14;
  redirect.insert(redirect.end(),
                  {0x00, 0x02, 0x00, 0x08, 0x00, 0x01, 0x0d, 0x96, 198, 51, 100, 99});
  CHECK_FALSE(r.handle(redirect, 0, kClient, t0()));
  // One address only: a classic CHANGE-REQUEST cannot be honoured, and is not answered.
  StunResponder single({{ip("203.0.113.1"), 3478}}, StunServerConfig{});
  CHECK_FALSE(single.handle(classic, 0, kClient, t0()));
  classic[27] = 0;  // no change
  auto plain = single.handle(classic, 0, kClient, t0());
  REQUIRE(plain);
  CHECK(plain->bytes.size() == 44);  // header, MAPPED-ADDRESS, SOURCE-ADDRESS
}
