// libFuzzer target: the general STUN layer on any datagram. Beyond "no crash, no
// undefined behaviour":
//  - decode()'s raw attribute list is the message: in order, inside it, each value the
//    bytes at its offset;
//  - a message decode() accepts is one the UDP mux classifies as STUN;
//  - check_integrity() with short-term and long-term keys never reads past the input,
//    and a message re-written from the raw attributes with MESSAGE-INTEGRITY,
//    MESSAGE-INTEGRITY-SHA256 and FINGERPRINT decodes and checks with the same key, and
//    fails with another one.
#include <cstddef>
#include <cstdint>
#include <span>

#include "codec/stun_codec.hpp"
#include "fuzz_check.hpp"
#include "net/udp_mux.hpp"

namespace stun = porthole::detail::stun;

namespace {

const stun::IntegrityKey& key() {
  static const stun::IntegrityKey k = *stun::IntegrityKey::short_term("VOkJxbRl1RmTxUk/WvJxBt");
  return k;
}

const stun::IntegrityKey& other_key() {
  static const stun::IntegrityKey k = *stun::IntegrityKey::long_term("user", "example.org",
                                                                     "TheMatrIX");
  return k;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::span<const std::uint8_t> in(data, size);
  const porthole::Endpoint from{porthole::IpAddress::v4({198, 51, 100, 20}), 40000};
  const auto kind = porthole::detail::classify_datagram(in, from, {});
  auto decoded = stun::decode(in);
  if (!decoded) return 0;
  const stun::Message& m = *decoded;
  PORTHOLE_FUZZ_CHECK(kind == porthole::detail::DatagramKind::stun);

  std::size_t expect_at = stun::kHeaderSize;
  for (const stun::Attribute& a : m.attributes) {
    PORTHOLE_FUZZ_CHECK(a.offset == expect_at);
    PORTHOLE_FUZZ_CHECK(a.offset + 4 + a.value.size() <= in.size());
    PORTHOLE_FUZZ_CHECK(std::equal(a.value.begin(), a.value.end(), in.begin() + a.offset + 4));
    expect_at = a.offset + 4 + ((a.value.size() + 3) & ~std::size_t{3});
  }
  PORTHOLE_FUZZ_CHECK(expect_at == in.size());
  (void)stun::describe(m);
  (void)m.unknown_required_except({});

  auto checked = stun::check_integrity(in, m, key());
  if (!m.has_message_integrity) PORTHOLE_FUZZ_CHECK(!checked.ok());
  (void)stun::check_integrity(in, m, other_key());

  // Re-write: the attributes before any integrity or FINGERPRINT, then ours.
  stun::MessageWriter w(m.method, m.message_class, m.transaction_id);
  for (const stun::Attribute& a : m.attributes) {
    if (a.type == stun::attr::message_integrity || a.type == stun::attr::message_integrity_sha256 ||
        a.type == stun::attr::fingerprint)
      break;
    w.add(a.type, a.value);
  }
  const bool sha256 = (size & 1) != 0;
  w.add_message_integrity(key());
  if (sha256) w.add_message_integrity_sha256(key());
  auto rewritten = w.finish(true);
  if (!rewritten) {  // only when the original was within 68 bytes of the size limit
    PORTHOLE_FUZZ_CHECK(in.size() + 68 > 20 + 0xfffc);
    return 0;
  }
  auto again = stun::decode(*rewritten);
  PORTHOLE_FUZZ_CHECK(again.ok());
  PORTHOLE_FUZZ_CHECK(again->transaction_id == m.transaction_id);
  PORTHOLE_FUZZ_CHECK(again->has_fingerprint);
  auto ok = stun::check_integrity(*rewritten, *again, key());
  PORTHOLE_FUZZ_CHECK(ok.ok());
  PORTHOLE_FUZZ_CHECK(*ok == (sha256 ? stun::IntegrityAlgorithm::hmac_sha256
                                     : stun::IntegrityAlgorithm::hmac_sha1));
  PORTHOLE_FUZZ_CHECK(!stun::check_integrity(*rewritten, *again, other_key()).ok());
  return 0;
}
