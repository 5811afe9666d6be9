// libFuzzer target: one datagram from a TURN server (RFC 8656), as the TURN client takes
// it: the STUN decoder, the Data indication reader, and a TurnClient in the middle of an
// allocation fed the bytes. Beyond "no crash, no undefined behaviour": a Data
// indication that reads has a peer and the DATA the decoder saw, and whatever the client
// sends afterwards is a well-formed STUN message or ChannelData of bounded size.
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <span>

#include "codec/stun_codec.hpp"
#include "codec/turn_codec.hpp"
#include "fuzz_check.hpp"
#include "proto/turn_client.hpp"

namespace stun = porthole::detail::stun;
namespace turn = porthole::detail::turn;

namespace {

void counter(std::span<std::uint8_t> out) {
  static std::uint8_t next = 0;
  for (auto& b : out) b = next++;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::span<const std::uint8_t> in(data, size);
  auto m = stun::decode(in);
  if (m) {
    auto d = turn::read_data_indication(*m);
    if (d) {
      PORTHOLE_FUZZ_CHECK(m->data && *m->data == d->data);
      PORTHOLE_FUZZ_CHECK(d->data.size() < size);
      (void)d->peer.to_string();
    }
  }
  // A fresh client per input, asked for a permission and a channel before the server's
  // answer (the input) arrives: every branch of on_datagram sees it.
  porthole::detail::TurnClientConfig config;
  config.server = porthole::Endpoint{*porthole::IpAddress::parse("198.51.100.14"), 3478};
  config.username = "lab";
  config.password = "labpass";
  porthole::detail::TurnClient client(config, counter);
  auto now = std::chrono::steady_clock::time_point{} + std::chrono::hours(1);
  PORTHOLE_FUZZ_CHECK(client.start(now).ok());
  const porthole::Endpoint peer{*porthole::IpAddress::parse("203.0.113.7"), 4000};
  client.bind_channel(peer, now);
  (void)client.on_datagram(in, now);
  (void)client.send(peer, in.subspan(0, std::min<std::size_t>(size, 1200)));
  client.on_timer(now + std::chrono::seconds(1));
  for (const auto& out : client.take_outgoing()) {
    PORTHOLE_FUZZ_CHECK(out.size() <= 1400);
    PORTHOLE_FUZZ_CHECK(stun::decode(out).ok() || turn::decode_channel_data(out).ok());
  }
  while (auto e = client.next_event())
    if (e->type == porthole::detail::TurnEvent::Type::failed)
      PORTHOLE_FUZZ_CHECK(!e->error.message.empty());
  client.deallocate(now);
  return 0;
}
