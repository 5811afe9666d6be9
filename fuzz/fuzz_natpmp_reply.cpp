// libFuzzer target: natpmp::decode_reply, the check a datagram passes before libnatpmp
// may read it (RFC 6886 s3.2, s3.3, s3.5). Properties: an accepted reply has a length
// its opcode allows and its fields at their offsets; a success always carries its
// fields; encode_reply gives it back (byte for byte when the input was canonical); it
// answers only the request whose opcode and internal port it carries.
#include <cstddef>
#include <cstdint>
#include <span>

#include "codec/natpmp_codec.hpp"
#include "fuzz_check.hpp"

namespace natpmp = porthole::detail::natpmp;

namespace {

std::uint16_t be16(const std::uint8_t* p) { return static_cast<std::uint16_t>((p[0] << 8) | p[1]); }
std::uint32_t be32(const std::uint8_t* p) {
  return (std::uint32_t{p[0]} << 24) | (std::uint32_t{p[1]} << 16) | (std::uint32_t{p[2]} << 8) |
         std::uint32_t{p[3]};
}

bool same(const natpmp::Reply& a, const natpmp::Reply& b) {
  return a.version == b.version && a.opcode == b.opcode && a.result_code == b.result_code &&
         a.epoch == b.epoch && a.has_body == b.has_body &&
         a.external_address == b.external_address && a.internal_port == b.internal_port &&
         a.external_port == b.external_port && a.lifetime == b.lifetime;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  auto decoded = natpmp::decode_reply(std::span<const std::uint8_t>(data, size));
  if (!decoded) {
    PORTHOLE_FUZZ_CHECK(decoded.error().code == porthole::Errc::internal);
    return 0;
  }
  const natpmp::Reply& r = *decoded;
  (void)natpmp::describe(r);
  (void)natpmp::describe_result(r.result_code);
  PORTHOLE_FUZZ_CHECK(size >= natpmp::kHeaderSize);
  PORTHOLE_FUZZ_CHECK(r.version == data[0]);
  PORTHOLE_FUZZ_CHECK(r.opcode == (data[1] & 0x7f));
  PORTHOLE_FUZZ_CHECK(r.result_code == be16(data + 2));

  if (r.version != natpmp::kVersion) {
    // Another protocol's "unsupported version": nothing else is taken from it.
    PORTHOLE_FUZZ_CHECK(r.unsupported_version() && !r.has_body && r.epoch == 0);
  } else {
    PORTHOLE_FUZZ_CHECK(size <= natpmp::kMaxReplySize);
    PORTHOLE_FUZZ_CHECK(r.epoch == be32(data + 4));
    if (!r.unsupported_version()) PORTHOLE_FUZZ_CHECK((data[1] & natpmp::kReplyBit) != 0);
    if (r.result_code == natpmp::result::success) {
      PORTHOLE_FUZZ_CHECK(r.has_body);
      PORTHOLE_FUZZ_CHECK(r.opcode <= natpmp::opcode::map_tcp);
    }
    if (r.has_body) {
      if (r.opcode == natpmp::opcode::public_address) {
        PORTHOLE_FUZZ_CHECK(size == natpmp::kPublicAddressReplySize);
        for (std::size_t i = 0; i < 4; ++i)
          PORTHOLE_FUZZ_CHECK(r.external_address[i] == data[8 + i]);
      } else {
        PORTHOLE_FUZZ_CHECK(r.is_mapping() && size == natpmp::kMappingReplySize);
        PORTHOLE_FUZZ_CHECK(r.internal_port == be16(data + 8));
        PORTHOLE_FUZZ_CHECK(r.external_port == be16(data + 10));
        PORTHOLE_FUZZ_CHECK(r.lifetime == be32(data + 12));
      }
    }
  }

  // The encoder gives the same reply back, and the same bytes for canonical input.
  const auto bytes = natpmp::encode_reply(r);
  auto again = natpmp::decode_reply(bytes);
  PORTHOLE_FUZZ_CHECK(again.ok() && same(r, *again));
  if (r.version == natpmp::kVersion && (data[1] & natpmp::kReplyBit) != 0 &&
      (r.has_body || size == natpmp::kHeaderSize)) {
    PORTHOLE_FUZZ_CHECK(bytes.size() == size);
    for (std::size_t i = 0; i < size; ++i) PORTHOLE_FUZZ_CHECK(bytes[i] == data[i]);
  }

  // Matching: only the request this reply carries.
  if (r.unsupported_version()) {
    PORTHOLE_FUZZ_CHECK(!natpmp::answers(r, natpmp::public_address_key()));
    return 0;
  }
  natpmp::RequestKey key{r.opcode, r.internal_port};
  PORTHOLE_FUZZ_CHECK(natpmp::answers(r, key));
  natpmp::RequestKey other_op{static_cast<std::uint8_t>(r.opcode ^ 1), r.internal_port};
  PORTHOLE_FUZZ_CHECK(!natpmp::answers(r, other_op));
  if (r.is_mapping() && r.has_body) {
    natpmp::RequestKey other_port{r.opcode, static_cast<std::uint16_t>(r.internal_port + 1)};
    PORTHOLE_FUZZ_CHECK(!natpmp::answers(r, other_port));
  }
  return 0;
}
