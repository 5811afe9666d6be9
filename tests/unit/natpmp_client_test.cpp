// NatpmpClient against a hostile NAT-PMP server. libnatpmp always talks to port 5351
// of the gateway, so the fake must own 127.0.0.1:5351: each case runs in a forked child
// inside a network namespace of its own (unshare(CLONE_NEWNET), as root, like the lab),
// whose loopback nothing else on the machine uses. No packet leaves that namespace.
#include <catch2/catch.hpp>

#include <arpa/inet.h>
#include <net/if.h>
#include <netinet/in.h>
#include <poll.h>
#include <sched.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <array>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include <fmt/format.h>

#include "forked_child.hpp"
#include "proto/natpmp_client.hpp"
#include "ip_literal.hpp"

using porthole::test::ip;

using namespace porthole;
using namespace porthole::detail;
using namespace std::chrono_literals;

namespace {

using Bytes = std::vector<std::uint8_t>;

int udp_bound(const char* ip, std::uint16_t port) {
  int fd = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_port = htons(port);
  ::inet_pton(AF_INET, ip, &sa.sin_addr);
  if (fd < 0 || ::bind(fd, reinterpret_cast<sockaddr*>(&sa), sizeof(sa)) != 0) return -1;
  return fd;
}

// In the child: a namespace of our own with its loopback up. "" or what failed.
std::string private_loopback() {
  if (::unshare(CLONE_NEWNET) != 0)
    return fmt::format("unshare(CLONE_NEWNET): {} (needs root)", std::strerror(errno));
  int fd = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  ifreq ifr{};
  std::strncpy(ifr.ifr_name, "lo", IFNAMSIZ - 1);
  bool up = fd >= 0 && ::ioctl(fd, SIOCGIFFLAGS, &ifr) == 0;
  ifr.ifr_flags = static_cast<short>(ifr.ifr_flags | IFF_UP);
  up = up && ::ioctl(fd, SIOCSIFFLAGS, &ifr) == 0;
  if (fd >= 0) ::close(fd);
  return up ? "" : fmt::format("cannot bring lo up: {}", std::strerror(errno));
}

// A NAT-PMP reply (RFC 6886 s3.2, s3.3) to the request `req`, big-endian fields.
Bytes reply_to(const Bytes& req, std::uint16_t result, std::array<std::uint8_t, 4> ip) {
  // clang-format off
  Bytes b = {0, static_cast<std::uint8_t>(128 + req[1]), static_cast<std::uint8_t>(result >> 8),
             static_cast<std::uint8_t>(result & 0xff), 0, 0, 0x10, 0};  // epoch 4096
  // clang-format on
  if (req[1] == 0) {
    b.insert(b.end(), ip.begin(), ip.end());
  } else {
    b.insert(b.end(), {req[4], req[5], req[4], req[5]});    // external port = internal
    b.insert(b.end(), {req[8], req[9], req[10], req[11]});  // the lifetime asked for
  }
  return b;
}

struct Script {
  std::array<std::uint8_t, 4> external_ip{203, 0, 113, 5};
  std::uint16_t map_result = 0;
};

// The fake: before each real answer, a 2-byte reply, a reply to another opcode, the
// same reply from the wrong port and from the wrong address (127.0.0.2).
void serve(const Script& script, const std::atomic<bool>& stop, int fd, int wrong_port,
           int wrong_addr) {
  while (!stop) {
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, 20) <= 0) continue;
    std::uint8_t buf[64];
    sockaddr_in from{};
    socklen_t len = sizeof(from);
    ssize_t n = ::recvfrom(fd, buf, sizeof(buf), 0, reinterpret_cast<sockaddr*>(&from), &len);
    if (n < 2) continue;
    Bytes req(buf, buf + n);
    Bytes real = reply_to(req, req[1] == 0 ? 0 : script.map_result, script.external_ip);
    Bytes other_op = real;
    other_op[1] = static_cast<std::uint8_t>(other_op[1] == 128 ? 129 : 128);
    Bytes spoofed = real;
    spoofed[req[1] == 0 ? 8 : 10] = 0x99;  // another address / port, from a stranger
    auto send = [&](int s, const Bytes& b) {
      (void)::sendto(s, b.data(), b.size(), 0, reinterpret_cast<sockaddr*>(&from), len);
    };
    send(fd, Bytes{0, static_cast<std::uint8_t>(128 + req[1])});  // 2 bytes
    send(fd, other_op);
    send(wrong_port, spoofed);
    send(wrong_addr, spoofed);
    send(fd, real);
  }
}

// Runs probe and map against the fake in a child; their outcome as text, or the failure.
std::string run_case(const Script& script) {
  auto child = porthole::test::run_forked(
      [&] {
        std::string out = private_loopback();
        if (!out.empty()) return out;
        int fd = udp_bound("127.0.0.1", 5351);
        int wrong_port = udp_bound("127.0.0.1", 5352);
        int wrong_addr = udp_bound("127.0.0.2", 5351);
        std::atomic<bool> stop{false};
        std::thread server([&] { serve(script, stop, fd, wrong_port, wrong_addr); });
        GatewayInfo gw;
        gw.gateway_ip = ip("127.0.0.1");
        gw.local_ip = ip("127.0.0.1");
        NatpmpClient client(gw);
        auto start = Clock::now();
        auto probed = client.probe(Clock::now() + 2s);
        MapParams p;
        p.transport = Transport::udp;
        p.internal_ip = ip("127.0.0.1");
        p.internal_port = 5000;
        p.lifetime = 3600;
        auto mapped = client.map(p, Clock::now() + 2s);
        auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - start);
        stop = true;
        server.join();
        return fmt::format(
            "probe {} [{}]; map {} [{}] port {} lifetime {}; {} ms",
            probed ? "ok" : fmt::format("error {}", probed.error().message),
            probed && probed->external_ip ? probed->external_ip->to_string() : "",
            mapped ? "ok"
                   : fmt::format("error {} code {}", static_cast<int>(mapped.error().code),
                                 mapped.error().protocol_code),
            mapped ? (mapped->mapping.external_ip ? mapped->mapping.external_ip->to_string() : "")
                   : mapped.error().message,
            mapped ? mapped->mapping.external_port : 0, mapped ? mapped->mapping.lifetime : 0,
            ms.count() < 1000 ? "under 1000" : std::to_string(ms.count()));
      },
      15s);
  REQUIRE(child.finished);
  return child.text;
}

}  // namespace

TEST_CASE("NatpmpClient: short, foreign and spoofed replies are dropped, the real one taken",
          "[natpmp][client][hostile]") {
  Script s;
  CHECK(run_case(s) ==
        "probe ok [203.0.113.5]; map ok [203.0.113.5] port 5000 lifetime 3600; under 1000 ms");
}

TEST_CASE("NatpmpClient: an unusable public address is reported as none",
          "[natpmp][client][hostile]") {
  using Ip = std::array<std::uint8_t, 4>;
  Script s;
  s.external_ip = GENERATE(Ip{0, 0, 0, 0}, Ip{127, 0, 0, 1}, Ip{239, 255, 255, 250});
  INFO(static_cast<int>(s.external_ip[0]));
  CHECK(run_case(s) == "probe ok []; map ok [] port 5000 lifetime 3600; under 1000 ms");
}

TEST_CASE("NatpmpClient: an unknown result code is an error showing the code",
          "[natpmp][client][hostile]") {
  Script s;
  s.map_result = 99;
  auto out = run_case(s);
  CHECK_THAT(out, Catch::StartsWith("probe ok [203.0.113.5]; map error 4 code 99 [") &&
                      Catch::Contains("unknown NAT-PMP result code 99"));
}
