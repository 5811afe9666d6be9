// libFuzzer target: the QUIC server side (src/tunnel/quic_connection.*, ngtcp2 with the
// pinned-certificate TLS of src/tunnel/tls_pinned.*) as `porthole expose` runs it, fed
// a real client's handshake with the input's changes. Raw bytes alone would never pass
// the Initial packet's protection, so a client connection of this target makes the
// packets and the input decides what reaches the server.
//
// Input: records of [op][arg], two bytes each, the rest of the input after the records'
// count (its first byte) being the bytes op 2 sends.
//   op % 4 == 0: the client's next packet, one byte at arg (mod size) XORed with 0x5a;
//             1: the client's next packet as it is;
//             2: arg bytes of the input's tail as a datagram from the client's address;
//             3: the clock arg * 10 ms on, then both sides' timers.
// The server's packets reach the client unchanged. The first packet the server takes
// makes it (QuicConnection::server); one it refuses is dropped, as expose drops it.
// Properties beyond "no crash, no undefined behaviour": a refusal carries a message; the
// server admits (HandshakeDone) only the client's own ID, after allow_peer was asked
// about exactly that ID; a closed connection sends its close once, then nothing.
#include <array>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <memory>
#include <span>
#include <variant>
#include <vector>

#include "fuzz_check.hpp"
#include "net/clock.hpp"
#include "net/udp_batch.hpp"
#include "porthole/identity.hpp"
#include "tunnel/quic_connection.hpp"

using porthole::Endpoint;
using porthole::Identity;
using porthole::PeerId;
using porthole::detail::DatagramBuffer;
using porthole::detail::QuicConfig;
using porthole::detail::QuicConnection;
using porthole::detail::QuicEvent;
using porthole::detail::TimePoint;

namespace {

const Identity& identity(std::uint8_t fill) {
  static std::array<std::unique_ptr<Identity>, 2> ids;
  auto& slot = ids[fill & 1];
  if (!slot) {
    std::array<std::uint8_t, 32> seed{};
    seed.fill(fill);
    slot = std::make_unique<Identity>(*Identity::from_seed(seed));
  }
  return *slot;
}

using Packets = std::deque<std::vector<std::uint8_t>>;

void take(QuicConnection& c, Packets& to, TimePoint now) {
  DatagramBuffer out;
  c.write_packets(out, now);
  for (std::size_t i = 0; i < out.size(); ++i) to.emplace_back(out[i].begin(), out[i].end());
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  const std::size_t records = std::min<std::size_t>(data[0], (size - 1) / 2);
  std::span<const std::uint8_t> ops(data + 1, 2 * records);
  std::span<const std::uint8_t> tail(data + 1 + 2 * records, size - 1 - 2 * records);

  const Identity& client_id = identity(1);
  const Identity& server_id = identity(2);
  const Endpoint client_at = *Endpoint::parse("192.0.2.10:40000");
  const Endpoint server_at = *Endpoint::parse("192.0.2.20:41040");
  TimePoint now{std::chrono::seconds(1000)};

  QuicConfig cc;
  cc.identity = &client_id;
  cc.expect_peer = server_id.id();
  cc.local = client_at;
  cc.remote = server_at;
  QuicConfig sc;
  sc.server = true;
  sc.identity = &server_id;
  std::vector<PeerId> asked;
  sc.allow_peer = [&asked](const PeerId& p) {
    asked.push_back(p);
    return true;
  };
  sc.local = server_at;
  sc.remote = client_at;

  auto client = QuicConnection::client(cc, now);
  PORTHOLE_FUZZ_CHECK(client.ok());
  std::unique_ptr<QuicConnection> server;
  Packets to_server, to_client;
  bool closed_and_sent = false;
  take(**client, to_server, now);

  auto deliver_to_server = [&](std::span<const std::uint8_t> bytes) {
    if (!server) {
      auto s = QuicConnection::server(sc, bytes, now);
      if (!s) {
        PORTHOLE_FUZZ_CHECK(!s.error().message.empty());
        return;
      }
      server = std::move(*s);
    } else {
      const bool was_closed = server->closed();
      auto st = server->receive(bytes, client_at, now);
      if (was_closed) PORTHOLE_FUZZ_CHECK(!st.ok());
    }
  };
  for (std::size_t r = 0; r + 1 < ops.size(); r += 2) {
    const std::uint8_t op = ops[r] % 4, arg = ops[r + 1];
    if ((op == 0 || op == 1) && !to_server.empty()) {
      auto packet = std::move(to_server.front());
      to_server.pop_front();
      if (op == 0 && !packet.empty()) packet[arg % packet.size()] ^= 0x5a;
      deliver_to_server(packet);
    } else if (op == 2) {
      const std::size_t n = std::min<std::size_t>(arg, tail.size());
      deliver_to_server(tail.first(n));
      tail = tail.subspan(n);
    } else if (op == 3) {
      now += std::chrono::milliseconds(10 * arg);
      if ((*client)->next_timeout() <= now) (*client)->on_timeout(now);
      if (server && server->next_timeout() <= now) server->on_timeout(now);
    }
    if (server) {
      // A connection that closes sends its CONNECTION_CLOSE (RFC 9000 s10.2) in the
      // write after it closed, and nothing after that.
      const std::size_t before = to_client.size();
      take(*server, to_client, now);
      if (closed_and_sent) PORTHOLE_FUZZ_CHECK(to_client.size() == before);
      if (server->closed()) closed_and_sent = true;
      while (auto e = server->next_event())
        if (auto* done = std::get_if<QuicEvent::HandshakeDone>(&e->value)) {
          PORTHOLE_FUZZ_CHECK(done->peer == client_id.id());
          PORTHOLE_FUZZ_CHECK(!asked.empty() && asked.back() == client_id.id());
        }
    }
    while (!to_client.empty()) {
      (void)(*client)->receive(to_client.front(), server_at, now);
      to_client.pop_front();
    }
    take(**client, to_server, now);
    while ((*client)->next_event()) {
    }
  }
  return 0;
}
