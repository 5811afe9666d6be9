// libFuzzer target: the tunnel's framing (src/codec/tunnel_codec.hpp), all of it read
// from the QUIC peer, and the -L / exposed-port specs read from the command line. The
// first byte picks the decoder, the rest is its input. Beyond "no crash, no undefined
// behaviour": whatever is accepted encodes back to the bytes it came from (the stream
// header, a datagram, a complete port list) or to an equivalent spec, and a refusal
// carries a message.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>

#include "codec/tunnel_codec.hpp"
#include "fuzz_check.hpp"
#include "porthole/tunnel.hpp"

namespace tunnel = porthole::detail::tunnel;

namespace {

void stream_header(std::span<const std::uint8_t> in) {
  auto header = tunnel::decode_stream_header(in);
  if (!header) {
    PORTHOLE_FUZZ_CHECK(!header.error().message.empty());
    return;
  }
  if (!*header) {
    PORTHOLE_FUZZ_CHECK(in.size() < tunnel::kStreamHeaderSize);
    return;
  }
  PORTHOLE_FUZZ_CHECK(**header != 0);
  auto again = tunnel::encode_stream_header(**header);
  PORTHOLE_FUZZ_CHECK(std::equal(again.begin(), again.end(), in.begin()));
}

void datagram(std::span<const std::uint8_t> in) {
  auto d = tunnel::decode_datagram(in);
  if (!d) {
    PORTHOLE_FUZZ_CHECK(!d.error().message.empty());
    return;
  }
  PORTHOLE_FUZZ_CHECK(d->port != 0);
  PORTHOLE_FUZZ_CHECK(d->payload.data() == in.data() + tunnel::kDatagramHeaderSize);
  auto again = tunnel::encode_datagram(d->port, d->flow, d->payload);
  PORTHOLE_FUZZ_CHECK(std::equal(in.begin(), in.end(), again.begin(), again.end()));
}

void port_list(std::span<const std::uint8_t> in) {
  auto list = tunnel::decode_port_list(in);
  if (!list) {
    PORTHOLE_FUZZ_CHECK(!list.error().message.empty());
    return;
  }
  if (!*list) return;  // more bytes needed
  PORTHOLE_FUZZ_CHECK((*list)->size() <= tunnel::kMaxExposedPorts);
  auto again = tunnel::encode_port_list(**list);
  PORTHOLE_FUZZ_CHECK(std::equal(in.begin(), in.end(), again.begin(), again.end()));
}

void specs(std::span<const std::uint8_t> in) {
  const std::string_view text(reinterpret_cast<const char*>(in.data()), in.size());
  if (auto port = porthole::parse_exposed_port(text)) {
    PORTHOLE_FUZZ_CHECK(port->port != 0);
    auto again = porthole::parse_exposed_port(porthole::to_string(*port));
    PORTHOLE_FUZZ_CHECK(again && *again == *port);
  } else {
    PORTHOLE_FUZZ_CHECK(!port.error().message.empty());
  }
  if (auto forward = porthole::parse_forward(text)) {
    PORTHOLE_FUZZ_CHECK(forward->local != 0 && forward->remote != 0);
    PORTHOLE_FUZZ_CHECK(forward->bind.is_v4());
  } else {
    PORTHOLE_FUZZ_CHECK(!forward.error().message.empty());
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  std::span<const std::uint8_t> in(data + 1, size - 1);
  switch (data[0] % 4) {
    case 0: stream_header(in); break;
    case 1: datagram(in); break;
    case 2: port_list(in); break;
    default: specs(in); break;
  }
  return 0;
}
