// DatagramBuffer and UdpBatch (src/net/udp_batch.hpp): datagrams laid end to end, sent
// as UDP GSO runs or per datagram, arrive one by one and whole, on loopback sockets of
// this test.
#include <catch2/catch.hpp>

#include <cstdint>
#include <string>
#include <vector>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include "net/udp_batch.hpp"
#include "net/udp_socket.hpp"

using namespace porthole;
using namespace porthole::detail;

namespace {

std::vector<std::uint8_t> filled(std::size_t n, std::uint8_t b) {
  return std::vector<std::uint8_t>(n, b);
}

// Every datagram waiting on rx's socket (a few tries: loopback delivers at once).
std::vector<std::vector<std::uint8_t>> drain(UdpBatch& rx, std::size_t want) {
  std::vector<std::vector<std::uint8_t>> got;
  for (int tries = 0; tries < 200 && got.size() < want; ++tries) {
    auto n = rx.receive_each([&](std::span<const std::uint8_t> d, const Endpoint&) {
      got.emplace_back(d.begin(), d.end());
    });
    REQUIRE(n);
    if (*n == 0) ::usleep(1000);
  }
  return got;
}

}  // namespace

TEST_CASE("DatagramBuffer: datagrams end to end, read back by index and as runs", "[udp]") {
  DatagramBuffer b;
  CHECK(b.empty());
  auto room = b.room(1500);
  REQUIRE(room.size() == 1500);
  room[0] = 1;
  room[1] = 2;
  b.commit(2);
  b.push(filled(3, 7));
  // Growing keeps what was committed.
  auto big = b.room(100000);
  big[0] = 9;
  b.commit(1);
  REQUIRE(b.size() == 3);
  CHECK(b[0].size() == 2);
  CHECK(b[0][1] == 2);
  CHECK(b[1].size() == 3);
  CHECK(b[1][2] == 7);
  CHECK(b[2].size() == 1);
  CHECK(b[2][0] == 9);
  CHECK(b.run(0, 3).size() == 6);
  CHECK(b.run(1, 2).data() == b[1].data());
  b.clear();
  CHECK(b.empty());
  b.push(filled(0, 0));  // an empty datagram is one too
  CHECK(b.size() == 1);
  CHECK(b[0].empty());
}

TEST_CASE("UdpBatch: a run of equal datagrams and a shorter last one arrive as sent", "[udp]") {
  // The receiver: bound on loopback, a port the kernel picks.
  const int rx_fd = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  REQUIRE(rx_fd >= 0);
  sockaddr_in at{};
  at.sin_family = AF_INET;
  at.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  REQUIRE(::bind(rx_fd, reinterpret_cast<sockaddr*>(&at), sizeof at) == 0);
  socklen_t at_len = sizeof at;
  REQUIRE(::getsockname(rx_fd, reinterpret_cast<sockaddr*>(&at), &at_len) == 0);
  const Endpoint to{IpAddress::v4({127, 0, 0, 1}), ntohs(at.sin_port)};
  auto tx_sock = UdpSocket::open_unconnected();
  REQUIRE(tx_sock);
  for (auto mode : {UdpBatch::Mode::gso, UdpBatch::Mode::sendmmsg, UdpBatch::Mode::single}) {
    UdpBatch tx(tx_sock->fd(), mode);
    UdpBatch rx(rx_fd);
    DatagramBuffer out;
    for (std::uint8_t i = 0; i < 10; ++i) out.push(filled(1200, i));
    out.push(filled(300, 10));        // the run's shorter last one
    out.push(filled(1200, 11));       // a new run
    auto sent = tx.send(out, to, 1);  // from the second on
    REQUIRE(sent);
    CHECK(*sent == 11);
    auto got = drain(rx, 11);
    REQUIRE(got.size() == 11);
    for (std::size_t i = 0; i < got.size(); ++i) {
      INFO("mode " << static_cast<int>(mode) << " datagram " << i);
      const std::size_t k = i + 1;
      CHECK(got[i] == filled(k == 10 ? 300 : 1200, static_cast<std::uint8_t>(k)));
    }
  }
  ::close(rx_fd);
}
