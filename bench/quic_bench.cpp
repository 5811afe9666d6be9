// QUIC throughput (src/tunnel/quic_connection.hpp over net/udp_batch.hpp): a client and
// a server, one process each, on two loopback UDP sockets; the client sends N MiB on one
// stream, the server consumes it and answers "done" once the FIN is in. Prints the
// handshake time, MB/s and each side's CPU seconds, for one way of sending datagrams:
//   gso       UDP_SEGMENT batches (falls back to sendmmsg where refused), GRO on receive
//   sendmmsg  one sendmmsg(2) per batch of packets, recvmmsg(2)
//   single    one sendmmsg(2) call per packet (as sendto would), recvmmsg(2)
// Loopback only. Not part of the build; after scripts/build.sh:
//   g++ -std=c++20 -O2 -Iinclude -Isrc bench/quic_bench.cpp build/libporthole.a \
//       -lngtcp2_crypto_gnutls -lngtcp2 -lgnutls -lnettle -o /tmp/quic_bench
//   /tmp/quic_bench [MiB (100)] [gso|sendmmsg|single]
#include <netinet/in.h>
#include <poll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <memory>
#include <string>
#include <variant>
#include <vector>

#include "net/udp_batch.hpp"
#include "net/udp_socket.hpp"
#include "porthole/identity.hpp"
#include "tunnel/quic_connection.hpp"

using namespace porthole;
using namespace porthole::detail;

namespace {

Identity identity(std::uint8_t fill) {
  std::array<std::uint8_t, 32> seed{};
  seed.fill(fill);
  return *Identity::from_seed(seed);
}

double cpu_seconds() {
  rusage u{};
  ::getrusage(RUSAGE_SELF, &u);
  return static_cast<double>(u.ru_utime.tv_sec + u.ru_stime.tv_sec) +
         static_cast<double>(u.ru_utime.tv_usec + u.ru_stime.tv_usec) / 1e6;
}

long peak_rss_kb() {
  std::ifstream f("/proc/self/status");
  std::string l;
  while (std::getline(f, l))
    if (l.rfind("VmHWM:", 0) == 0) return std::stol(l.substr(6));
  return -1;
}

struct Endpoint_ {
  int fd;
  Endpoint local;
};

// Drives one connection on one socket until `finished` says so.
struct Driver {
  int fd;
  UdpBatch batch;
  std::unique_ptr<QuicConnection> conn;
  DatagramBuffer pending;  // packets the socket did not take yet
  std::size_t pending_sent = 0;
  std::vector<Datagram> in;

  Driver(int f, UdpBatch::Mode mode) : fd(f), batch(f, mode) {
    if (mode == UdpBatch::Mode::gso) batch.enable_gro();
  }

  void flush() {
    if (!conn) return;
    if (pending_sent == pending.size()) {
      pending.clear();
      pending_sent = 0;
      conn->write_packets(pending, Clock::now());
    }
    while (pending_sent < pending.size()) {
      auto n = batch.send(pending, conn->remote(), pending_sent);
      if (!n) {
        std::fprintf(stderr, "send: %s\n", n.error().message.c_str());
        std::exit(1);
      }
      pending_sent += *n;
      if (pending_sent < pending.size()) return;  // would block: wait for POLLOUT
      pending.clear();
      pending_sent = 0;
      conn->write_packets(pending, Clock::now());
    }
  }

  // One turn: write what is due, wait for the socket or the connection's timer (to the
  // nanosecond: pacing gaps are microseconds), then read and write.
  template <class OnPacket>
  void turn(OnPacket&& on_first_packet) {
    flush();
    auto now = Clock::now();
    auto wait = std::chrono::nanoseconds(std::chrono::milliseconds(100));
    if (conn) {
      auto next = conn->next_timeout();
      if (next <= now)
        wait = std::chrono::nanoseconds(0);
      else if (next != TimePoint::max())
        wait = std::min(wait, std::chrono::duration_cast<std::chrono::nanoseconds>(next - now));
    }
    timespec ts{static_cast<time_t>(wait.count() / 1000000000),
                static_cast<long>(wait.count() % 1000000000)};
    pollfd p{fd, static_cast<short>(POLLIN | (pending_sent == pending.size() ? 0 : POLLOUT)), 0};
    ::ppoll(&p, 1, &ts, nullptr);
    in.clear();
    for (int round = 0; round < 16; ++round) {
      auto n = batch.receive(in, 64);
      if (!n || *n == 0) break;
    }
    for (auto& d : in) {
      if (!conn) {
        on_first_packet(d);
        continue;
      }
      (void)conn->receive(d.bytes, d.from, Clock::now());
    }
    if (conn && conn->next_timeout() <= Clock::now()) conn->on_timeout(Clock::now());
    flush();
  }
};

int run_server(int fd, Endpoint local, UdpBatch::Mode mode) {
  Identity me = identity(2), client = identity(1);
  Driver d(fd, mode);
  std::uint64_t received = 0;
  bool done = false;
  double cpu0 = cpu_seconds();
  while (!done || (d.conn && !d.conn->closed())) {
    d.turn([&](const Datagram& first) {
      QuicConfig c;
      c.server = true;
      c.identity = &me;
      c.allow_peer = [&](const PeerId& p) { return p == client.id(); };
      c.local = local;
      c.remote = first.from;
      auto s = QuicConnection::server(c, first.bytes, Clock::now());
      if (s) d.conn = std::move(*s);
    });
    if (!d.conn) continue;
    while (auto e = d.conn->next_event()) {
      if (auto* s = std::get_if<QuicEvent::StreamData>(&e->value)) {
        received += s->bytes.size();
        d.conn->consume_stream(s->id, s->bytes.size());
        if (s->fin) {
          static const std::uint8_t kDone[] = {'d', 'o', 'n', 'e'};
          d.conn->write_stream(s->id, kDone, true);
          done = true;
        }
      } else if (std::holds_alternative<QuicEvent::Closed>(e->value)) {
        done = true;
      }
    }
  }
  std::printf("server: received %llu bytes, cpu %.3f s, peak rss %ld kB, %llu syscalls\n",
              static_cast<unsigned long long>(received), cpu_seconds() - cpu0, peak_rss_kb(),
              static_cast<unsigned long long>(d.batch.syscalls()));
  return 0;
}

int run_client(int fd, Endpoint local, Endpoint server, std::uint64_t total, UdpBatch::Mode mode) {
  Identity me = identity(1), peer = identity(2);
  Driver d(fd, mode);
  QuicConfig c;
  c.identity = &me;
  c.expect_peer = peer.id();
  c.local = local;
  c.remote = server;
  auto start = Clock::now();
  double cpu0 = cpu_seconds();
  auto made = QuicConnection::client(c, start);
  if (!made) {
    std::fprintf(stderr, "client: %s\n", made.error().message.c_str());
    return 1;
  }
  d.conn = std::move(*made);
  std::vector<std::uint8_t> chunk(256 * 1024);
  for (std::size_t i = 0; i < chunk.size(); ++i) chunk[i] = static_cast<std::uint8_t>(i * 31);
  std::int64_t stream = -1;
  std::uint64_t sent = 0;
  bool answered = false;
  Clock::time_point established{}, transfer_start{};
  while (!answered && !d.conn->closed()) {
    d.turn([](const Datagram&) {});
    while (auto e = d.conn->next_event()) {
      if (std::holds_alternative<QuicEvent::HandshakeDone>(e->value)) {
        established = Clock::now();
        stream = *d.conn->open_stream();
        transfer_start = Clock::now();
      } else if (auto* s = std::get_if<QuicEvent::StreamData>(&e->value)) {
        d.conn->consume_stream(s->id, s->bytes.size());
        if (s->fin) answered = true;
      } else if (auto* cl = std::get_if<QuicEvent::Closed>(&e->value)) {
        std::fprintf(stderr, "client: closed: %s\n", cl->error.message.c_str());
        return 1;
      }
    }
    while (stream >= 0 && sent < total) {
      std::size_t n = static_cast<std::size_t>(std::min<std::uint64_t>(chunk.size(), total - sent));
      std::size_t took = d.conn->write_stream(stream, std::span(chunk.data(), n),
                                              sent + n == total);
      sent += took;
      if (took < n) break;
    }
    d.flush();
  }
  auto end = Clock::now();
  double secs = std::chrono::duration<double>(end - transfer_start).count();
  std::printf(
      "client: handshake %.3f ms; %llu MiB in %.3f s = %.1f MB/s; cpu %.3f s, peak rss "
      "%ld kB, %llu syscalls\n",
      std::chrono::duration<double, std::milli>(established - start).count(),
      static_cast<unsigned long long>(total >> 20), secs, static_cast<double>(total) / secs / 1e6,
      cpu_seconds() - cpu0, peak_rss_kb(), static_cast<unsigned long long>(d.batch.syscalls()));
  d.conn->close(kQuicCloseNormal, "done");
  d.flush();
  return 0;
}

Endpoint_ open_loopback() {
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  int fd = ::socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0 || ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) std::exit(1);
  int size = 8 << 20;
  ::setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &size, sizeof size);
  ::setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &size, sizeof size);
  sockaddr_storage ss{};
  socklen_t len = sizeof ss;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&ss), &len);
  return Endpoint_{fd, *Endpoint::from_sockaddr(reinterpret_cast<sockaddr*>(&ss), len)};
}

}  // namespace

int main(int argc, char** argv) {
  std::uint64_t mib = argc > 1 ? std::strtoull(argv[1], nullptr, 10) : 100;
  std::string how = argc > 2 ? argv[2] : "gso";
  UdpBatch::Mode mode = how == "single"     ? UdpBatch::Mode::single
                        : how == "sendmmsg" ? UdpBatch::Mode::sendmmsg
                                            : UdpBatch::Mode::gso;
  Endpoint_ server = open_loopback(), client = open_loopback();
  std::fflush(stdout);
  pid_t child = ::fork();
  if (child == 0) {
    ::close(client.fd);
    std::exit(run_server(server.fd, server.local, mode));
  }
  ::close(server.fd);
  std::printf("mode %s, %llu MiB, %s -> %s\n", how.c_str(), static_cast<unsigned long long>(mib),
              client.local.to_string().c_str(), server.local.to_string().c_str());
  int rc = run_client(client.fd, client.local, server.local, mib << 20, mode);
  std::fflush(stdout);
  int status = 0;
  ::waitpid(child, &status, 0);
  return rc != 0 ? rc : (WIFEXITED(status) ? WEXITSTATUS(status) : 1);
}
