// porthole hold: its schedule, announcement parsing, the hook runner, its arguments.
#include <catch2/catch.hpp>

#include <poll.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cstdio>
#include <fstream>
#include <string>
#include <vector>

#include "cli_args.hpp"
#include "core/hold_announce.hpp"
#include "core/hold_hook.hpp"
#include "core/hold_schedule.hpp"
#include "ip_literal.hpp"
#include "parse_command_line.hpp"
#include "porthole/hold.hpp"

using namespace porthole;
using namespace porthole::detail;
using porthole::test::ip;
using std::chrono::milliseconds;

TEST_CASE("hold renews PCP in 1/2..5/8 of the lifetime, later retries after", "[hold]") {
  std::array<double, 3> r{0.0, 0.5, 0.999};
  auto s = hold_renewal_points(Protocol::pcp, 7200, r);
  REQUIRE(s.size() == 3);
  CHECK(s[0] == milliseconds(3600000));           // 1/2 (random 0)
  CHECK(s[1] >= milliseconds(5400000));           // 3/4 ..
  CHECK(s[1] <= milliseconds(5400000 + 450000));  // .. 3/4 + 1/16
  CHECK(s[2] < milliseconds(7200000));
  std::array<double, 1> top{0.999};
  auto hi = hold_renewal_points(Protocol::pcp, 7200, top);
  REQUIRE(hi.size() == 1);
  CHECK(hi[0] > milliseconds(4400000));  // near 5/8 (4500 s)
  CHECK(hi[0] <= milliseconds(4500000));
}

TEST_CASE("hold renews NAT-PMP and UPnP at half the lease, then 3/4, 7/8", "[hold]") {
  std::array<double, 3> r{0.9, 0.9, 0.9};  // randomness is not used for them
  for (Protocol p : {Protocol::natpmp, Protocol::upnp}) {
    auto s = hold_renewal_points(p, 3600, r);
    REQUIRE(s.size() == 3);
    CHECK(s[0] == milliseconds(1800000));
    CHECK(s[1] == milliseconds(2700000));
    CHECK(s[2] == milliseconds(3150000));
  }
}

TEST_CASE("a permanent lease has no renewals, short ones keep 4 s apart", "[hold]") {
  std::array<double, 8> r{};
  CHECK(hold_renewal_points(Protocol::upnp, 0, r).empty());
  auto s = hold_renewal_points(Protocol::natpmp, 10, r);
  REQUIRE(s.size() == 2);
  CHECK(s[0] == milliseconds(5000));
  CHECK(s[1] == milliseconds(9000));  // 7.5 s pushed to 4 s after the first
}

TEST_CASE("back-off doubles from the minimum and stops at the maximum", "[hold]") {
  const milliseconds lo(1000), hi(60000);
  milliseconds b(0);
  std::vector<long> seen;
  for (int i = 0; i < 8; ++i) {
    b = next_backoff(b, lo, hi);
    seen.push_back(static_cast<long>(b.count() / 1000));
  }
  CHECK(seen == std::vector<long>{1, 2, 4, 8, 16, 32, 60, 60});
  CHECK(next_backoff(milliseconds(0), milliseconds(5000), milliseconds(2000)) ==
        milliseconds(2000));
}

TEST_CASE("announcements: PCP ANNOUNCE and NAT-PMP public address are recognised", "[hold]") {
  // PCP ANNOUNCE response (RFC 6887 s7.2, s14.1): version 2, R|opcode 0, result 0.
  std::vector<std::uint8_t> pcp = {
      0x02, 0x80, 0x00, 0x00,                           // version, R + ANNOUNCE, reserved, SUCCESS
      0x00, 0x00, 0x00, 0x00,                           // lifetime 0
      0x00, 0x00, 0x00, 0x07,                           // epoch 7
      0,    0,    0,    0,    0, 0, 0, 0, 0, 0, 0, 0};  // reserved (96 bits)
  auto a = parse_announcement(pcp);
  REQUIRE(a);
  CHECK(a->protocol == Protocol::pcp);
  CHECK(a->epoch == 7);
  CHECK(!a->external_ip.has_value());

  // NAT-PMP public address reply (RFC 6886 s3.2): what a gateway multicasts.
  std::vector<std::uint8_t> nat = {0x00, 0x80, 0x00, 0x00,  // version 0, opcode 128, result SUCCESS
                                   0x00, 0x00, 0x01, 0x00,  // epoch 256
                                   203,  0,    113,  9};    // external address
  auto b = parse_announcement(nat);
  REQUIRE(b);
  CHECK(b->protocol == Protocol::natpmp);
  CHECK(b->epoch == 256);
  CHECK(b->external_ip == ip("203.0.113.9"));

  SECTION("anything else is dropped") {
    auto map_reply = nat;
    map_reply[1] = 0x81;  // a mapping reply is not an announcement (and 12 bytes is wrong)
    CHECK_FALSE(parse_announcement(map_reply));
    auto failed = pcp;
    failed[3] = 0x08;  // NO_RESOURCES
    CHECK_FALSE(parse_announcement(failed));
    auto request = pcp;
    request[1] = 0x00;  // no R bit: a request (maybe another client's)
    CHECK_FALSE(parse_announcement(request));
    CHECK_FALSE(parse_announcement(std::vector<std::uint8_t>{}));
    CHECK_FALSE(parse_announcement(std::vector<std::uint8_t>{0x01, 0x80, 0, 0}));
  }
}

namespace {

// Waits (bounded) for the hook to end, the way hold's loop does: poll on its pidfd or
// wake at its deadline.
std::vector<HookOutcome> wait_for(HookRunner& h) {
  std::vector<HookOutcome> all;
  const auto give_up = Clock::now() + std::chrono::seconds(20);
  while (Clock::now() < give_up && (h.running() || all.empty())) {
    if (h.running()) {
      int ms = 50;
      if (auto at = h.wake_at())
        ms = static_cast<int>(
            std::clamp<long>(std::chrono::ceil<milliseconds>(*at - Clock::now()).count(), 0, 50));
      pollfd p{h.fd(), POLLIN, 0};
      ::poll(&p, h.fd() >= 0 ? 1 : 0, ms);
    }
    for (auto& o : h.finish()) all.push_back(o);
  }
  return all;
}

}  // namespace

TEST_CASE("the hook gets the variables, and its failures are reported, not fatal", "[hold]") {
  char dir_template[] = "/tmp/porthole-hook-XXXXXX";
  REQUIRE(::mkdtemp(dir_template));
  const std::string out = std::string(dir_template) + "/env";

  HookRunner ok("echo \"$PORTHOLE_EXTERNAL_IP $PORTHOLE_EXTERNAL_PORT $PORTHOLE_PROTOCOL\" > " +
                    out,
                milliseconds(5000));
  ok.enqueue({{"PORTHOLE_EXTERNAL_IP", "203.0.113.7"},
              {"PORTHOLE_EXTERNAL_PORT", "8081"},
              {"PORTHOLE_PROTOCOL", "pcp"}});
  auto r = wait_for(ok);
  REQUIRE(r.size() == 1);
  CHECK(r[0].ok);
  std::ifstream f(out);
  std::string line;
  std::getline(f, line);
  CHECK(line == "203.0.113.7 8081 pcp");

  HookRunner bad("exit 3", milliseconds(5000));
  bad.enqueue({});
  r = wait_for(bad);
  REQUIRE(r.size() == 1);
  CHECK_FALSE(r[0].ok);
  CHECK(r[0].message == "exited with status 3");

  HookRunner missing("/nonexistent/porthole-hook", milliseconds(5000));
  missing.enqueue({});
  r = wait_for(missing);
  REQUIRE(r.size() == 1);
  CHECK(r[0].message.find("127") != std::string::npos);

  // A hook that hangs (and its child) is killed at its timeout.
  HookRunner hang("sleep 30 & sleep 30", milliseconds(300));
  hang.enqueue({});
  auto t0 = Clock::now();
  r = wait_for(hang);
  REQUIRE(r.size() == 1);
  CHECK(r[0].message.find("killed") != std::string::npos);
  CHECK(Clock::now() - t0 < std::chrono::seconds(10));  // bounded, generous margin
  CHECK_FALSE(hang.running());

  std::remove(out.c_str());
  ::rmdir(dir_template);
}

TEST_CASE("hook runs queue: one at a time, in order", "[hold]") {
  char dir_template[] = "/tmp/porthole-hook-XXXXXX";
  REQUIRE(::mkdtemp(dir_template));
  const std::string out = std::string(dir_template) + "/log";
  HookRunner h("echo $PORTHOLE_INTERNAL_PORT >> " + out, milliseconds(5000));
  h.enqueue({{"PORTHOLE_INTERNAL_PORT", "1"}});
  h.enqueue({{"PORTHOLE_INTERNAL_PORT", "2"}});
  std::vector<HookOutcome> all;
  for (int i = 0; i < 3 && all.size() < 2; ++i)
    for (auto& o : wait_for(h)) all.push_back(o);
  CHECK(all.size() == 2);
  std::ifstream f(out);
  std::string a, b;
  f >> a >> b;
  CHECK(a == "1");
  CHECK(b == "2");
  std::remove(out.c_str());
  ::rmdir(dir_template);
}

using porthole::cli::test::parse;

TEST_CASE("hold arguments", "[hold][cli]") {
  auto r = parse({"hold", "8080", "51820/udp", "--lifetime", "600", "--on-change", "true",
                  "--verify-every", "60", "--check-every", "2.5", "--retry-max", "10", "--via",
                  "upnp", "--json"});
  REQUIRE(r.invocation);
  const auto& h = r.invocation->hold;
  CHECK(r.invocation->command == porthole::cli::Command::hold);
  REQUIRE(h.mappings.size() == 2);
  CHECK(h.mappings[0].port.port == 8080);
  CHECK(h.mappings[1].port.transport == Transport::udp);
  CHECK(h.mappings[1].lifetime == 600);
  CHECK(h.mappings[1].via == Via::upnp);
  CHECK(h.on_change == "true");
  CHECK(h.verify_every == milliseconds(60000));
  CHECK(h.check_every == milliseconds(2500));
  CHECK(h.retry_max == milliseconds(10000));
  CHECK(r.invocation->json);

  SECTION("bad input is a usage error") {
    for (auto args :
         std::vector<std::vector<std::string>>{{"hold"},
                                               {"hold", "8080", "9090", "--external-port", "80"},
                                               {"hold", "8080", "--lifetime", "-1"},
                                               {"hold", "99999"},
                                               {"hold", "8080", "--check-every", "-1"},
                                               {"hold", "8080", "--retry-max", "0"},
                                               {"hold", "8080", "--hook-timeout", "nan"},
                                               {"hold", "8080", "--via", "carrier-pigeon"},
                                               {"hold", "8080", "--bogus"}}) {
      auto bad = parse(args);
      INFO(args.size());
      CHECK_FALSE(bad.invocation);
      CHECK(bad.exit_code == 2);
      CHECK_FALSE(bad.err.empty());
    }
  }
}

TEST_CASE("hold refuses a bad request before sending anything", "[hold]") {
  Options o;
  o.gateway = ip("127.0.0.1");
  HoldRequest req;
  int fds[2];
  REQUIRE(::pipe(fds) == 0);
  CHECK(hold(o, req, {}, fds[0]).error().code == Errc::usage);  // no ports
  OpenRequest a;
  a.port.port = 8080;
  req.mappings = {a, a};
  auto st = hold(o, req, {}, fds[0]);
  REQUIRE_FALSE(st);
  CHECK(st.error().code == Errc::usage);
  CHECK(st.error().message.find("twice") != std::string::npos);
  req.mappings = {a};
  CHECK(hold(o, req, {}, -1).error().code == Errc::usage);
  ::close(fds[0]);
  ::close(fds[1]);
}

#include <sys/socket.h>
#include <sys/un.h>

#include "sd_notify.hpp"

TEST_CASE("sd_notify: one datagram to $NOTIFY_SOCKET, nothing without it", "[hold][cli]") {
  char dir_template[] = "/tmp/porthole-notify-XXXXXX";
  REQUIRE(::mkdtemp(dir_template));
  const std::string path = std::string(dir_template) + "/notify";
  int fd = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  REQUIRE(fd >= 0);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::snprintf(addr.sun_path, sizeof addr.sun_path, "%s", path.c_str());
  REQUIRE(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);

  ::setenv("NOTIFY_SOCKET", path.c_str(), 1);
  porthole::cli::sd_notify_state("READY=1\nSTATUS=holding 2 port(s)");
  char buf[256] = {};
  auto n = ::recv(fd, buf, sizeof buf, 0);
  CHECK(std::string(buf, n > 0 ? static_cast<std::size_t>(n) : 0) ==
        "READY=1\nSTATUS=holding 2 port(s)");

  ::unsetenv("NOTIFY_SOCKET");
  porthole::cli::sd_notify_state("STOPPING=1");
  CHECK(::recv(fd, buf, sizeof buf, 0) < 0);      // nothing was sent
  ::setenv("NOTIFY_SOCKET", "relative/path", 1);  // not a socket address systemd gives
  porthole::cli::sd_notify_state("STOPPING=1");
  CHECK(::recv(fd, buf, sizeof buf, 0) < 0);
  ::unsetenv("NOTIFY_SOCKET");
  ::close(fd);
  std::remove(path.c_str());
  ::rmdir(dir_template);
}
