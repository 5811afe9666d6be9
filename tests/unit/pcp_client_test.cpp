// PcpClient against a tiny in-process PCP server on 127.0.0.1 (a non-default port).
// The fake only plays what a real router (miniupnpd in the lab tests) cannot be made to
// do: stale, foreign, malformed and hostile replies, silence, NAT-PMP-only answers.
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

#include <fmt/format.h>

#include "codec/pcp_codec.hpp"
#include "proto/pcp_client.hpp"
#include "ip_literal.hpp"

using porthole::test::ip;

namespace {

using porthole::Errc;
using porthole::LogLevel;
using porthole::Transport;
using porthole::detail::Clock;
using porthole::detail::GatewayInfo;
using porthole::detail::MapParams;
using porthole::detail::Nonce;
using porthole::detail::PcpClient;
namespace pcp = porthole::detail::pcp;
using Bytes = std::vector<std::uint8_t>;
using std::chrono::milliseconds;

int loopback_socket() {
  int fd = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  REQUIRE(fd >= 0);
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  sa.sin_port = 0;
  REQUIRE(::bind(fd, reinterpret_cast<sockaddr*>(&sa), sizeof(sa)) == 0);
  return fd;
}

std::uint16_t port_of(int fd) {
  sockaddr_in sa{};
  socklen_t len = sizeof(sa);
  REQUIRE(::getsockname(fd, reinterpret_cast<sockaddr*>(&sa), &len) == 0);
  return ntohs(sa.sin_port);
}

struct Reply {
  Bytes bytes;
  bool from_other_port = false;  // spoofed: right IP, wrong source port
};

// Answers each request with whatever the script says, from its own thread.
class FakePcpServer {
 public:
  using Script = std::function<std::vector<Reply>(const Bytes& request, int index)>;

  explicit FakePcpServer(Script script)
      : fd_(loopback_socket()), spoof_fd_(loopback_socket()), script_(std::move(script)) {
    port_ = port_of(fd_);
    thread_ = std::thread([this] { serve(); });
  }
  ~FakePcpServer() {
    stop_ = true;
    thread_.join();
    ::close(fd_);
    ::close(spoof_fd_);
  }
  FakePcpServer(const FakePcpServer&) = delete;
  FakePcpServer& operator=(const FakePcpServer&) = delete;

  std::uint16_t port() const { return port_; }
  std::vector<Bytes> requests() const {
    std::lock_guard lock(mutex_);
    return requests_;
  }

 private:
  void serve() {
    while (!stop_) {
      pollfd p{fd_, POLLIN, 0};
      if (::poll(&p, 1, 20) <= 0) continue;
      Bytes buf(2048);
      sockaddr_in from{};
      socklen_t len = sizeof(from);
      ssize_t n = ::recvfrom(fd_, buf.data(), buf.size(), 0, reinterpret_cast<sockaddr*>(&from),
                             &len);
      if (n < 0) continue;
      buf.resize(static_cast<std::size_t>(n));
      int index = 0;
      {
        std::lock_guard lock(mutex_);
        requests_.push_back(buf);
        index = static_cast<int>(requests_.size()) - 1;
      }
      for (const auto& reply : script_(buf, index)) {
        int out = reply.from_other_port ? spoof_fd_ : fd_;
        (void)::sendto(out, reply.bytes.data(), reply.bytes.size(), 0,
                       reinterpret_cast<const sockaddr*>(&from), sizeof(from));
      }
    }
  }

  int fd_;
  int spoof_fd_;
  std::uint16_t port_ = 0;
  Script script_;
  std::atomic<bool> stop_{false};
  mutable std::mutex mutex_;
  std::vector<Bytes> requests_;
  std::thread thread_;
};

// A response built from the request the way miniupnpd does it: the request buffer with
// the R bit, result, lifetime, epoch, and for MAP the assigned port and address.
Bytes answer(const Bytes& request, std::uint8_t result, std::uint32_t lifetime, std::uint32_t epoch,
             std::uint16_t external_port = 0,
             std::array<std::uint8_t, 4> external_ip = {203, 0, 113, 9}) {
  Bytes b = request;
  b[1] = static_cast<std::uint8_t>(b[1] | 0x80);
  b[2] = 0;
  b[3] = result;
  for (int i = 0; i < 4; ++i) {
    b[4 + i] = static_cast<std::uint8_t>(lifetime >> (24 - 8 * i));
    b[8 + i] = static_cast<std::uint8_t>(epoch >> (24 - 8 * i));
  }
  std::fill(b.begin() + 12, b.begin() + 24, std::uint8_t{0});
  if (b.size() >= 60) {
    b[42] = static_cast<std::uint8_t>(external_port >> 8);
    b[43] = static_cast<std::uint8_t>(external_port & 0xff);
    std::fill(b.begin() + 44, b.begin() + 54, std::uint8_t{0});
    b[54] = 0xff;
    b[55] = 0xff;
    std::copy(external_ip.begin(), external_ip.end(), b.begin() + 56);
  }
  return b;
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
  bool contains(std::string_view needle) {
    std::lock_guard lock(mutex);
    for (const auto& l : lines)
      if (l.find(needle) != std::string::npos) return true;
    return false;
  }
};

GatewayInfo gateway(std::uint16_t port, LogCapture* log = nullptr) {
  GatewayInfo info;
  info.gateway_ip = ip("127.0.0.1");
  info.local_ip = ip("127.0.0.1");
  info.pcp_port = port;
  if (log) info.log = log->fn();
  return info;
}

MapParams params_8080() {
  MapParams p;
  p.transport = Transport::tcp;
  p.internal_ip = ip("127.0.0.1");
  p.internal_port = 8080;
  p.suggested_external_port = 8080;
  p.lifetime = 7200;
  p.description = "porthole test";
  return p;
}

Nonce nonce_of(const Bytes& request) {
  Nonce n{};
  std::copy(request.begin() + 24, request.begin() + 36, n.begin());
  return n;
}

std::int64_t ms_since(Clock::time_point t) {
  return std::chrono::duration_cast<milliseconds>(Clock::now() - t).count();
}

}  // namespace

TEST_CASE("PcpClient map: drops spoofed, stale and malformed replies, takes the real one",
          "[pcp][client]") {
  FakePcpServer server([](const Bytes& req, int) {
    std::vector<Reply> out;
    out.push_back({answer(req, 0, 7200, 100, 9999), true});  // right IP, wrong port
    Bytes stale = answer(req, 0, 7200, 100, 9998);
    stale[30] ^= 0xff;  // someone else's (or an old) nonce
    out.push_back({stale, false});
    Bytes other_port = answer(req, 0, 7200, 100, 9997);
    other_port[41] ^= 0x01;  // internal port 8081
    out.push_back({other_port, false});
    Bytes udp = answer(req, 0, 7200, 100, 9996);
    udp[36] = 17;
    out.push_back({udp, false});
    Bytes announce = answer(Bytes(req.begin(), req.begin() + 24), 0, 0, 100);
    announce[1] = 0x80;  // an ANNOUNCE answer
    out.push_back({announce, false});
    out.push_back({Bytes{0x02, 0x81, 0x00}, false});  // runt
    out.push_back({req, false});                      // R bit clear: our own request
    Bytes long_one = answer(req, 0, 7200, 100, 9995);
    long_one.resize(1200, 0);
    out.push_back({long_one, false});
    out.push_back({answer(req, 0, 7200, 100, 8081), false});  // the real answer
    return out;
  });
  LogCapture log;
  PcpClient client(gateway(server.port(), &log));
  auto outcome = client.map(params_8080(), Clock::now() + milliseconds(2000));
  REQUIRE(outcome.ok());
  const auto& m = outcome->mapping;
  CHECK(m.protocol == porthole::Protocol::pcp);
  CHECK(m.transport == Transport::tcp);
  CHECK(m.internal_ip == ip("127.0.0.1"));
  CHECK(m.internal_port == 8080);
  CHECK(m.external_ip == ip("203.0.113.9"));
  CHECK(m.external_port == 8081);
  CHECK(m.lifetime == 7200);
  CHECK(m.description == "porthole test");
  const auto now = std::chrono::duration_cast<std::chrono::seconds>(
                       std::chrono::system_clock::now().time_since_epoch())
                       .count();
  CHECK(m.expires_at >= now + 7190);
  CHECK(m.expires_at <= now + 7200);
  // Another port than suggested is accepted silently here; the mapping core (which
  // knows what the user asked for) warns about it.
  CHECK(outcome->warnings.empty());

  auto requests = server.requests();
  REQUIRE(requests.size() == 1);
  const Bytes& req = requests[0];
  REQUIRE(req.size() == 60);
  CHECK(outcome->nonce == nonce_of(req));
  CHECK(outcome->nonce != Nonce{});  // 96 fresh random bits
  CHECK(Bytes(req.begin() + 4, req.begin() + 8) == Bytes{0x00, 0x00, 0x1c, 0x20});
  CHECK(Bytes(req.begin() + 8, req.begin() + 24) ==
        Bytes{0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 127, 0, 0, 1});
  CHECK(log.contains(fmt::format("pcp -> 127.0.0.1:{} MAP tcp 8080", server.port())));
  CHECK(log.contains("wrong nonce"));
  CHECK(log.contains("wrong internal port"));
  CHECK(log.contains("wrong protocol"));
  CHECK(log.contains("wrong opcode"));
  CHECK(log.contains("R bit"));
  CHECK(log.contains("longer than"));
  CHECK(log.contains("pcp <- 127.0.0.1"));
}

TEST_CASE("PcpClient map: two maps use two different nonces", "[pcp][client]") {
  FakePcpServer server([](const Bytes& req, int) {
    return std::vector<Reply>{{answer(req, 0, 7200, 1, 8080), false}};
  });
  PcpClient client(gateway(server.port()));
  auto a = client.map(params_8080(), Clock::now() + milliseconds(2000));
  auto b = client.map(params_8080(), Clock::now() + milliseconds(2000));
  REQUIRE(a.ok());
  REQUIRE(b.ok());
  CHECK(a->nonce != b->nonce);
  CHECK(a->warnings.empty());
}

TEST_CASE("PcpClient map: a renewal carries the given nonce and address", "[pcp][client]") {
  FakePcpServer server([](const Bytes& req, int) {
    return std::vector<Reply>{{answer(req, 0, 3600, 1, 8081), false}};
  });
  PcpClient client(gateway(server.port()));
  MapParams p = params_8080();
  p.have_nonce = true;
  p.nonce = {9, 8, 7, 6, 5, 4, 3, 2, 1, 0, 0xaa, 0xbb};
  p.suggested_external_port = 8081;
  p.suggested_external_ip = ip("203.0.113.9");
  p.transport = Transport::udp;
  auto outcome = client.map(p, Clock::now() + milliseconds(2000));
  REQUIRE(outcome.ok());
  CHECK(outcome->nonce == p.nonce);
  CHECK(outcome->mapping.transport == Transport::udp);
  CHECK(outcome->mapping.lifetime == 3600);
  REQUIRE(outcome->warnings.size() == 1);
  CHECK_THAT(outcome->warnings[0], Catch::Contains("3600 s instead of 7200 s"));
  auto requests = server.requests();
  REQUIRE(requests.size() == 1);
  CHECK(nonce_of(requests[0]) == p.nonce);
  CHECK(requests[0][36] == 17);
  CHECK(Bytes(requests[0].begin() + 42, requests[0].begin() + 44) == Bytes{0x1f, 0x91});
  CHECK(Bytes(requests[0].begin() + 56, requests[0].end()) == Bytes{203, 0, 113, 9});
}

TEST_CASE("PcpClient map: retransmits the same datagram, same nonce", "[pcp][client]") {
  // Ignores the first request; answers the retransmission (~3 s later, s8.1.1).
  FakePcpServer server([](const Bytes& req, int index) {
    std::vector<Reply> out;
    if (index >= 1) out.push_back({answer(req, 0, 7200, 5, 8080), false});
    return out;
  });
  PcpClient client(gateway(server.port()));
  const auto start = Clock::now();
  auto outcome = client.map(params_8080(), Clock::now() + milliseconds(5000));
  REQUIRE(outcome.ok());
  CHECK(ms_since(start) >= 2600);
  auto requests = server.requests();
  REQUIRE(requests.size() == 2);
  CHECK(requests[0] == requests[1]);
  CHECK(outcome->nonce == nonce_of(requests[1]));
}

TEST_CASE("PcpClient: silence is no_service, and it comes by the deadline", "[pcp][client]") {
  FakePcpServer server([](const Bytes&, int) { return std::vector<Reply>{}; });
  PcpClient client(gateway(server.port()));
  auto start = Clock::now();
  auto outcome = client.map(params_8080(), Clock::now() + milliseconds(400));
  REQUIRE_FALSE(outcome.ok());
  CHECK(outcome.error().code == Errc::no_service);
  CHECK_THAT(outcome.error().message,
             Catch::Contains(fmt::format("no PCP answer from 127.0.0.1:{} within", server.port())));
  CHECK(ms_since(start) >= 380);
  CHECK(ms_since(start) < 1000);

  start = Clock::now();
  auto probed = client.probe(Clock::now() + milliseconds(300));
  REQUIRE_FALSE(probed.ok());
  CHECK(probed.error().code == Errc::no_service);
  CHECK(ms_since(start) < 900);
}

TEST_CASE("PcpClient: ICMP port unreachable is no_service at once", "[pcp][client]") {
  int fd = loopback_socket();
  const std::uint16_t closed_port = port_of(fd);
  ::close(fd);  // nothing listens there now: the kernel answers with ICMP
  PcpClient client(gateway(closed_port));
  auto start = Clock::now();
  auto probed = client.probe(Clock::now() + milliseconds(5000));
  REQUIRE_FALSE(probed.ok());
  CHECK(probed.error().code == Errc::no_service);
  CHECK_THAT(probed.error().message, Catch::Contains("unreachable"));
  CHECK(ms_since(start) < 1000);
}

TEST_CASE("PcpClient: UNSUPP_VERSION means no PCP here (fall back to NAT-PMP)", "[pcp][client]") {
  SECTION("a NAT-PMP-only router's version-0 reply") {
    FakePcpServer server([](const Bytes&, int) {
      return std::vector<Reply>{{Bytes{0x00, 0x80, 0x00, 0x01, 0x00, 0x00, 0x10, 0x00}, false}};
    });
    LogCapture log;
    PcpClient client(gateway(server.port(), &log));
    auto start = Clock::now();
    auto probed = client.probe(Clock::now() + milliseconds(3000));
    REQUIRE_FALSE(probed.ok());
    CHECK(probed.error().code == Errc::no_service);
    CHECK(probed.error().protocol_code == 1);
    CHECK_THAT(probed.error().message, Catch::Contains("speaks only NAT-PMP"));
    CHECK(ms_since(start) < 1000);
    CHECK(log.contains("UNSUPP_VERSION"));

    auto mapped = client.map(params_8080(), Clock::now() + milliseconds(3000));
    REQUIRE_FALSE(mapped.ok());
    CHECK(mapped.error().code == Errc::no_service);
    CHECK(mapped.error().protocol_code == 1);
  }
  SECTION("a PCP version-1 server") {
    FakePcpServer server([](const Bytes& req, int) {
      Bytes b = answer(req, 1, 0, 1);
      b[0] = 1;
      return std::vector<Reply>{{b, false}};
    });
    PcpClient client(gateway(server.port()));
    auto mapped = client.map(params_8080(), Clock::now() + milliseconds(3000));
    REQUIRE_FALSE(mapped.ok());
    CHECK(mapped.error().code == Errc::no_service);
    CHECK(mapped.error().protocol_code == 1);
    CHECK_THAT(mapped.error().message, Catch::Contains("version 1"));
  }
}

TEST_CASE("PcpClient probe: ANNOUNCE answer gives the epoch", "[pcp][client]") {
  FakePcpServer server([](const Bytes& req, int index) {
    // Second probe: the epoch went back from 100000 to 3: the router rebooted.
    return std::vector<Reply>{{answer(req, 0, 0, index == 0 ? 100000 : 3), false}};
  });
  PcpClient client(gateway(server.port()));
  auto probed = client.probe(Clock::now() + milliseconds(2000));
  REQUIRE(probed.ok());
  CHECK(probed->epoch == 100000);
  CHECK(!probed->external_ip.has_value());
  CHECK_FALSE(client.server_lost_state());
  auto requests = server.requests();
  REQUIRE(requests.size() == 1);
  CHECK(requests[0].size() == 24);
  CHECK(requests[0][0] == 2);
  CHECK(requests[0][1] == 0);  // ANNOUNCE, R bit clear

  auto again = client.probe(Clock::now() + milliseconds(2000));
  REQUIRE(again.ok());
  CHECK(again->epoch == 3);
  CHECK(client.server_lost_state());
}

TEST_CASE("PcpClient map: result codes become refused errors", "[pcp][client]") {
  SECTION("NO_RESOURCES, with the upstream-NAT hint") {
    FakePcpServer server([](const Bytes& req, int) {
      return std::vector<Reply>{{answer(req, 8, 30, 1), false}};
    });
    PcpClient client(gateway(server.port()));
    auto mapped = client.map(params_8080(), Clock::now() + milliseconds(2000));
    REQUIRE_FALSE(mapped.ok());
    CHECK(mapped.error().code == Errc::refused);
    CHECK(mapped.error().protocol_code == 8);
    CHECK_THAT(mapped.error().message, Catch::Contains("NO_RESOURCES") &&
                                           Catch::Contains("CGNAT") && Catch::Contains("30 s"));
  }
  SECTION("NOT_AUTHORIZED") {
    FakePcpServer server([](const Bytes& req, int) {
      return std::vector<Reply>{{answer(req, 2, 0, 1), false}};
    });
    PcpClient client(gateway(server.port()));
    auto mapped = client.map(params_8080(), Clock::now() + milliseconds(2000));
    REQUIRE_FALSE(mapped.ok());
    CHECK(mapped.error().code == Errc::refused);
    CHECK(mapped.error().protocol_code == 2);
    CHECK_THAT(mapped.error().message, Catch::Contains("NOT_AUTHORIZED"));
  }
  SECTION("an unknown code") {
    FakePcpServer server([](const Bytes& req, int) {
      return std::vector<Reply>{{answer(req, 77, 0, 1), false}};
    });
    PcpClient client(gateway(server.port()));
    auto mapped = client.map(params_8080(), Clock::now() + milliseconds(2000));
    REQUIRE_FALSE(mapped.ok());
    CHECK(mapped.error().code == Errc::refused);
    CHECK(mapped.error().protocol_code == 77);
    CHECK_THAT(mapped.error().message, Catch::Contains("unknown PCP result code 77"));
  }
  SECTION("SUCCESS that makes no sense: lifetime 0") {
    FakePcpServer server([](const Bytes& req, int) {
      return std::vector<Reply>{{answer(req, 0, 0, 1, 8080), false}};
    });
    PcpClient client(gateway(server.port()));
    auto mapped = client.map(params_8080(), Clock::now() + milliseconds(2000));
    REQUIRE_FALSE(mapped.ok());
    CHECK(mapped.error().code == Errc::internal);
  }
}

TEST_CASE("PcpClient map: an answer then silence is a timeout", "[pcp][client]") {
  // The server answers, but never with our nonce.
  FakePcpServer server([](const Bytes& req, int) {
    Bytes b = answer(req, 0, 7200, 1, 8080);
    b[24] ^= 0x01;
    return std::vector<Reply>{{b, false}};
  });
  PcpClient client(gateway(server.port()));
  auto mapped = client.map(params_8080(), Clock::now() + milliseconds(300));
  REQUIRE_FALSE(mapped.ok());
  CHECK(mapped.error().code == Errc::timeout);
  CHECK_THAT(mapped.error().message, Catch::Contains("wrong nonce"));
}

TEST_CASE("PcpClient map: lifetime rules", "[pcp][client]") {
  SECTION("0 is a usage error and sends nothing") {
    FakePcpServer server([](const Bytes&, int) { return std::vector<Reply>{}; });
    PcpClient client(gateway(server.port()));
    MapParams p = params_8080();
    p.lifetime = 0;
    auto mapped = client.map(p, Clock::now() + milliseconds(1000));
    REQUIRE_FALSE(mapped.ok());
    CHECK(mapped.error().code == Errc::usage);
    std::this_thread::sleep_for(milliseconds(50));
    CHECK(server.requests().empty());
  }
  SECTION("absurd lifetimes are capped at 24 h") {
    FakePcpServer server([](const Bytes& req, int) {
      return std::vector<Reply>{{answer(req, 0, 86400, 1, 8080), false}};
    });
    PcpClient client(gateway(server.port()));
    MapParams p = params_8080();
    p.lifetime = 30 * 86400;
    auto mapped = client.map(p, Clock::now() + milliseconds(2000));
    REQUIRE(mapped.ok());
    auto requests = server.requests();
    REQUIRE(requests.size() == 1);
    CHECK(Bytes(requests[0].begin() + 4, requests[0].begin() + 8) ==
          Bytes{0x00, 0x01, 0x51, 0x80});  // 86400
    REQUIRE(mapped->warnings.size() == 1);
    CHECK_THAT(mapped->warnings[0], Catch::Contains("86400"));
  }
}

TEST_CASE("PcpClient unmap: lifetime 0 with the creating nonce", "[pcp][client]") {
  porthole::Mapping m;
  m.protocol = porthole::Protocol::pcp;
  m.transport = Transport::tcp;
  m.internal_ip = ip("127.0.0.1");
  m.internal_port = 8080;
  m.external_ip = ip("203.0.113.9");
  m.external_port = 8081;
  const Nonce nonce = {1, 1, 2, 3, 5, 8, 13, 21, 34, 55, 89, 144};

  SECTION("SUCCESS") {
    FakePcpServer server([](const Bytes& req, int) {
      return std::vector<Reply>{{answer(req, 0, 0, 1, 8081), false}};
    });
    PcpClient client(gateway(server.port()));
    auto st = client.unmap(m, nonce, Clock::now() + milliseconds(2000));
    REQUIRE(st.ok());
    auto requests = server.requests();
    REQUIRE(requests.size() == 1);
    const Bytes& req = requests[0];
    CHECK(Bytes(req.begin() + 4, req.begin() + 8) == Bytes{0, 0, 0, 0});
    CHECK(nonce_of(req) == nonce);
    CHECK(Bytes(req.begin() + 40, req.begin() + 44) == Bytes{0x1f, 0x90, 0x1f, 0x91});
    CHECK(Bytes(req.begin() + 56, req.end()) == Bytes{203, 0, 113, 9});
  }
  SECTION("NOT_AUTHORIZED: the nonce does not match") {
    FakePcpServer server([](const Bytes& req, int) {
      return std::vector<Reply>{{answer(req, 2, 0, 1), false}};
    });
    PcpClient client(gateway(server.port()));
    auto st = client.unmap(m, nonce, Clock::now() + milliseconds(2000));
    REQUIRE_FALSE(st.ok());
    CHECK(st.error().code == Errc::refused);
    CHECK(st.error().protocol_code == 2);
    CHECK_THAT(st.error().message, Catch::Contains("nonce does not match"));
  }
}

TEST_CASE("PcpClient map: an unusable external address is reported as none",
          "[pcp][client][hostile]") {
  using Ip = std::array<std::uint8_t, 4>;
  const Ip ip = GENERATE(Ip{0, 0, 0, 0}, Ip{127, 0, 0, 1}, Ip{224, 0, 0, 1},
                         Ip{255, 255, 255, 255});
  const std::string text = fmt::format("{}.{}.{}.{}", ip[0], ip[1], ip[2], ip[3]);
  INFO(text);
  FakePcpServer server([&](const Bytes& req, int) {
    return std::vector<Reply>{{answer(req, 0, 7200, 100, 8080, ip), false}};
  });
  PcpClient client(gateway(server.port()));
  auto outcome = client.map(params_8080(), Clock::now() + milliseconds(2000));
  REQUIRE(outcome.ok());  // the mapping exists; only its address is unknown
  CHECK(!outcome->mapping.external_ip.has_value());
  CHECK(outcome->mapping.external_port == 8080);
  REQUIRE(outcome->warnings.size() == 1);
  CHECK_THAT(outcome->warnings[0],
             Catch::Contains("external address " + text) && Catch::Contains("no usable"));
}
