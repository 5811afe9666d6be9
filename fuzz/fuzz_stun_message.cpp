// libFuzzer target: stun::decode on any datagram (RFC 8489 s6.3, RFC 5780), and the
// server's answer to it. Beyond "no crash, no undefined behaviour": an accepted message
// has the header the checks demand at its offsets, and the server core answers only the
// datagram's own source, from one of its own addresses, never with more bytes than
// kMaxReplySize (no amplification toward anyone); RFC 3489 requests (no magic cookie)
// in RFC 3489 form, and nothing else that fails the checks.
#include <algorithm>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <span>

#include "codec/byte_order.hpp"
#include "codec/stun_codec.hpp"
#include "fuzz_check.hpp"
#include "proto/stun_server.hpp"

namespace stun = porthole::detail::stun;
using porthole::detail::get_u16;
using porthole::detail::get_u32;

namespace {

void check_header(const stun::Message& m, std::span<const std::uint8_t> in) {
  PORTHOLE_FUZZ_CHECK(in.size() >= stun::kHeaderSize && in.size() % 4 == 0);
  PORTHOLE_FUZZ_CHECK((in[0] & 0xc0) == 0);                              // top two bits zero
  PORTHOLE_FUZZ_CHECK(get_u16(in, 2) == in.size() - stun::kHeaderSize);  // length
  PORTHOLE_FUZZ_CHECK(get_u32(in, 4) == stun::kMagicCookie);
  PORTHOLE_FUZZ_CHECK(std::equal(m.transaction_id.begin(), m.transaction_id.end(), in.begin() + 8));
  (void)stun::describe(m);
  for (const auto* ep :
       {&m.xor_mapped_address, &m.mapped_address, &m.response_origin, &m.other_address})
    if (*ep) (void)(*ep)->to_string();
}

// One server with four addresses (RFC 5780), shared across inputs like a long-running
// one: its rate limiter and memory bounds see the whole fuzzing run.
stun::Endpoint kSource{*porthole::IpAddress::parse("198.51.100.20"), 40000};

porthole::detail::StunResponder& responder() {
  static porthole::detail::StunServerConfig config = [] {
    porthole::detail::StunServerConfig c;
    c.software = "porthole fuzz";
    c.per_source_rate = 1e9;  // answer everything: the property is about what is sent
    c.per_source_burst = 1e9;
    c.total_rate = 1e9;
    c.total_burst = 1e9;
    return c;
  }();
  auto at = [](const char* ip, std::uint16_t port) {
    return stun::Endpoint{*porthole::IpAddress::parse(ip), port};
  };
  static porthole::detail::StunResponder r({at("198.51.100.10", 3478), at("198.51.100.10", 3479),
                                            at("198.51.100.11", 3478), at("198.51.100.11", 3479)},
                                           config);
  return r;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::span<const std::uint8_t> in(data, size);
  auto decoded = stun::decode(in);
  if (decoded) {
    check_header(*decoded, in);
  } else {
    PORTHOLE_FUZZ_CHECK(!decoded.error().message.empty());
  }
  auto now = std::chrono::steady_clock::time_point{} + std::chrono::hours(1);
  auto reply = responder().handle(in, size % 4, kSource, now);
  if (reply) {
    PORTHOLE_FUZZ_CHECK(reply->to.ip == kSource.ip && reply->to.port == kSource.port);
    PORTHOLE_FUZZ_CHECK(reply->from < 4);
    PORTHOLE_FUZZ_CHECK(reply->bytes.size() <= porthole::detail::kMaxReplySize);
    if (decoded) {
      auto answer = stun::decode(reply->bytes);
      PORTHOLE_FUZZ_CHECK(answer.ok());
      PORTHOLE_FUZZ_CHECK(answer->transaction_id == decoded->transaction_id);
    } else {
      // Nothing malformed is answered: only a well-formed RFC 3489 request (no magic
      // cookie), with an RFC 3489 answer carrying its whole 128-bit transaction ID.
      auto classic = stun::decode_rfc3489(in);
      PORTHOLE_FUZZ_CHECK(classic.ok());
      auto answer = stun::decode_rfc3489(reply->bytes);
      PORTHOLE_FUZZ_CHECK(answer.ok() && !answer->message.xor_mapped_address);
      PORTHOLE_FUZZ_CHECK(answer->transaction_id == classic->transaction_id);
    }
  }
  return 0;
}
