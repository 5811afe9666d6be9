// The rendezvous responder's cost (proto/rendezvous_server.hpp): time per signed
// Register (an Ed25519 verification through GnuTLS) and per challenge, and the memory
// of 10000 peers online. Not part of the build; after scripts/build.sh:
//   g++ -std=c++20 -O2 -Iinclude -Isrc bench/rendezvous_bench.cpp build/libporthole.a \
//       -lgnutls -lnettle -lfmt -o /tmp/rendezvous_bench && /tmp/rendezvous_bench
#include <chrono>
#include <cstdio>
#include <fstream>
#include <string>
#include "codec/rendezvous_codec.hpp"
#include "proto/rendezvous_server.hpp"
using namespace porthole;
using namespace porthole::detail;
namespace rv = porthole::detail::rendezvous;
static long rss() {
  std::ifstream f("/proc/self/status");
  std::string l;
  while (std::getline(f, l))
    if (l.rfind("VmRSS:", 0) == 0) return std::stol(l.substr(6));
  return -1;
}
int main() {
  const int n = 10000;
  RendezvousConfig c;
  c.secret.assign(32, 1);
  c.per_source_burst = 1e9;
  c.total_burst = 1e9;
  c.verify_burst = 1e9;
  RendezvousResponder r(c);
  auto now = Clock::time_point{} + std::chrono::hours{1};
  std::vector<std::vector<std::uint8_t>> reqs;
  std::vector<Endpoint> srcs;
  for (int i = 0; i < n; ++i) {
    std::array<std::uint8_t, 32> seed{};
    seed[0] = i & 0xff;
    seed[1] = i >> 8;
    seed[2] = 7;
    auto id = *Identity::from_seed(seed);
    Endpoint at{IpAddress::v4({10, static_cast<std::uint8_t>(i >> 8),
                               static_cast<std::uint8_t>(i & 0xff), 1}),
                40000};
    rv::Message m;
    m.method = rv::method::register_peer;
    m.peer_id = id.id();
    m.challenge = r.challenge_for(at, now);
    m.signature = *id.sign(rv::registration_signing_input(id.id(), *m.challenge, at));
    reqs.push_back(*rv::encode(m));
    srcs.push_back(at);
  }
  long before = rss();
  auto t = std::chrono::steady_clock::now();
  for (int i = 0; i < n; ++i)
    if (r.handle(reqs[i], srcs[i], now).size() != 1) return 1;
  double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t).count();
  long after = rss();
  std::printf(
      "%zu online; %.1f us per signed Register; VmRSS +%ld KiB (%.0f B/peer incl. rate limiter)\n",
      r.online(), s * 1e6 / n, after - before, (after - before) * 1024.0 / n);
  // hellos
  rv::Message h;
  h.method = rv::method::register_peer;
  h.peer_id = PeerId{};
  auto hb = *rv::encode(h);
  t = std::chrono::steady_clock::now();
  for (int i = 0; i < 100000; ++i) r.handle(hb, srcs[i % n], now);
  s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t).count();
  std::printf("%.2f us per Register hello (401 with challenge)\n", s * 1e6 / 100000);
}
