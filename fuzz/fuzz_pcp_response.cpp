// libFuzzer target: pcp::decode_response on any datagram (RFC 6887 s8.3, s11.4).
// Beyond "no crash, no undefined behaviour", an accepted response is checked again
// against its raw bytes, independently of the decoder: the fields sit at their offsets,
// the options tile the rest of the message exactly, the response answers the request
// it echoes and no other, and a MAP request built from its fields carries the same
// bytes. The router-controlled numbers then go through the timing rules.
#include <algorithm>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <span>

#include "codec/pcp_codec.hpp"
#include "fuzz_check.hpp"

namespace pcp = porthole::detail::pcp;

namespace {

std::uint16_t be16(const std::uint8_t* p) { return static_cast<std::uint16_t>((p[0] << 8) | p[1]); }
std::uint32_t be32(const std::uint8_t* p) {
  return (std::uint32_t{p[0]} << 24) | (std::uint32_t{p[1]} << 16) | (std::uint32_t{p[2]} << 8) |
         std::uint32_t{p[3]};
}

void check_map(const pcp::Response& r, const std::uint8_t* data) {
  const pcp::MapResponseData& m = *r.map;
  PORTHOLE_FUZZ_CHECK(std::equal(m.nonce.begin(), m.nonce.end(), data + 24));
  PORTHOLE_FUZZ_CHECK(m.protocol == data[36]);
  PORTHOLE_FUZZ_CHECK(m.internal_port == be16(data + 40));
  PORTHOLE_FUZZ_CHECK(m.external_port == be16(data + 42));
  PORTHOLE_FUZZ_CHECK(std::equal(m.external_address.begin(), m.external_address.end(), data + 44));
  // external_ip is set exactly for an IPv4-mapped address (::ffff:a.b.c.d), and is it.
  const bool mapped = std::all_of(data + 44, data + 54, [](std::uint8_t b) { return b == 0; }) &&
                      data[54] == 0xff && data[55] == 0xff;
  PORTHOLE_FUZZ_CHECK(m.external_ip.has_value() == mapped);
  if (mapped) {
    PORTHOLE_FUZZ_CHECK(pcp::to_address(*m.external_ip) == m.external_address);
  }

  // s11.4: it answers the request whose protocol, internal port and nonce it echoes...
  pcp::RequestKey key{pcp::opcode::map, m.protocol, m.internal_port, m.nonce};
  PORTHOLE_FUZZ_CHECK(pcp::answers(r, key));
  // ...and no request that differs in any of them.
  pcp::RequestKey other = key;
  other.nonce[11] = static_cast<std::uint8_t>(other.nonce[11] ^ 1);
  PORTHOLE_FUZZ_CHECK(!pcp::answers(r, other));
  other = key;
  other.internal_port = static_cast<std::uint16_t>(other.internal_port + 1);
  PORTHOLE_FUZZ_CHECK(!pcp::answers(r, other));
  other = key;
  other.protocol = static_cast<std::uint8_t>(other.protocol + 1);
  PORTHOLE_FUZZ_CHECK(!pcp::answers(r, other));
  PORTHOLE_FUZZ_CHECK(!pcp::answers(r, pcp::announce_key()));

  // Encoder and decoder agree on the layout: the request with these fields has the
  // response's bytes at 24..59 (MAP data) and its lifetime at 4.
  if (!mapped || m.internal_port == 0) return;
  pcp::MapRequest req;
  req.client_ip = *porthole::IpAddress::parse("192.168.1.100");
  req.lifetime = r.lifetime;
  req.nonce = m.nonce;
  req.protocol = m.protocol;
  req.internal_port = m.internal_port;
  req.suggested_external_port = m.external_port;
  req.suggested_external_ip = m.external_ip;
  auto bytes = pcp::encode_map_request(req);
  PORTHOLE_FUZZ_CHECK(bytes.ok() && bytes->size() == pcp::kMapMessageSize);
  const std::uint8_t* q = bytes->data();
  PORTHOLE_FUZZ_CHECK(q[0] == pcp::kVersion && q[1] == pcp::opcode::map);
  PORTHOLE_FUZZ_CHECK(be32(q + 4) == r.lifetime);
  PORTHOLE_FUZZ_CHECK(std::equal(q + 24, q + 37, data + 24));  // nonce, protocol
  PORTHOLE_FUZZ_CHECK(std::equal(q + 40, q + 60, data + 40));  // ports, address
  PORTHOLE_FUZZ_CHECK(pcp::answers(r, pcp::key_of(req)));
}

void check_timing(const pcp::Response& r) {
  using std::chrono::milliseconds;
  // Renewal times for the lifetime the router granted: inside the lifetime, at least
  // kMinRenewalInterval apart (s11.2.1).
  const double randoms[] = {0.0, 0.5, 0.999999, static_cast<double>(r.epoch % 1000) / 1000.0,
                            1.0, -1.0};
  auto schedule = pcp::renewal_schedule(r.lifetime, randoms);
  milliseconds previous{0};
  for (auto at : schedule) {
    PORTHOLE_FUZZ_CHECK(at >= previous + pcp::kMinRenewalInterval);
    PORTHOLE_FUZZ_CHECK(at < milliseconds(std::int64_t{r.lifetime} * 1000));
    previous = at;
  }
  // The epoch rule on the router's epoch against any earlier one (s8.5): an epoch that
  // went back by more than a second is never valid.
  const auto t0 = std::chrono::steady_clock::time_point{} + std::chrono::hours(1);
  const std::uint32_t previous_epoch = r.lifetime;
  const bool valid = pcp::epoch_is_valid(previous_epoch, r.epoch, t0,
                                         t0 + std::chrono::seconds(r.epoch % 100000));
  if (std::uint64_t{r.epoch} + 1 < previous_epoch) PORTHOLE_FUZZ_CHECK(!valid);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  auto decoded = pcp::decode_response(std::span<const std::uint8_t>(data, size));
  if (!decoded) {
    PORTHOLE_FUZZ_CHECK(decoded.error().code == porthole::Errc::internal);
    PORTHOLE_FUZZ_CHECK(!decoded.error().message.empty());
    return 0;
  }
  const pcp::Response& r = *decoded;
  (void)pcp::describe(r);
  (void)pcp::describe_result(r.result_code);
  PORTHOLE_FUZZ_CHECK(size <= pcp::kMaxMessageSize);

  if (r.unsupported_version()) {
    // Nothing past the header is read from a server of another version.
    PORTHOLE_FUZZ_CHECK(size >= 8);
    PORTHOLE_FUZZ_CHECK(!r.map && r.options.empty());
    PORTHOLE_FUZZ_CHECK(!pcp::answers(r, pcp::announce_key()));
    return 0;
  }

  // s8.3: length, R bit, version; the header fields at their offsets.
  PORTHOLE_FUZZ_CHECK(size >= pcp::kHeaderSize && size % 4 == 0);
  PORTHOLE_FUZZ_CHECK(data[0] == pcp::kVersion && r.version == pcp::kVersion);
  PORTHOLE_FUZZ_CHECK((data[1] & 0x80) != 0 && r.opcode == (data[1] & 0x7f));
  PORTHOLE_FUZZ_CHECK(r.result_code == data[3]);
  PORTHOLE_FUZZ_CHECK(r.lifetime == be32(data + 4) && r.epoch == be32(data + 8));
  PORTHOLE_FUZZ_CHECK(r.opcode == pcp::opcode::map || r.opcode == pcp::opcode::announce);
  PORTHOLE_FUZZ_CHECK(r.map.has_value() == (r.opcode == pcp::opcode::map));

  std::size_t used = pcp::kHeaderSize;
  if (r.map) {
    PORTHOLE_FUZZ_CHECK(size >= pcp::kMapMessageSize);
    check_map(r, data);
    used += pcp::kMapBodySize;
  } else {
    PORTHOLE_FUZZ_CHECK(pcp::answers(r, pcp::announce_key()));
  }
  // s7.3: the options tile the rest exactly: 4-byte header, data, zero to 3 bytes of
  // padding to a multiple of 4.
  for (const auto& opt : r.options) {
    PORTHOLE_FUZZ_CHECK(used + 4 <= size);
    PORTHOLE_FUZZ_CHECK(opt.code == data[used]);
    PORTHOLE_FUZZ_CHECK(opt.data.size() == be16(data + used + 2));
    PORTHOLE_FUZZ_CHECK(used + 4 + opt.data.size() <= size);
    PORTHOLE_FUZZ_CHECK(std::equal(opt.data.begin(), opt.data.end(), data + used + 4));
    used += 4 + ((opt.data.size() + 3) & ~std::size_t{3});
  }
  PORTHOLE_FUZZ_CHECK(used == size);
  check_timing(r);
  return 0;
}
