// libFuzzer target: rendezvous::decode on any datagram and decode_description on any
// bytes (codec/rendezvous_codec.hpp). Beyond "no crash, no undefined behaviour": an
// accepted message encodes again and decodes to the same fields; an accepted
// description is canonical (encoding it gives back the very bytes), so what a signature
// covers is exactly what was read; and nothing accepted breaks the bounds.
#include <cstddef>
#include <cstdint>
#include <span>

#include "codec/rendezvous_codec.hpp"
#include "fuzz_check.hpp"

namespace rv = porthole::detail::rendezvous;

namespace {

void check_description(std::span<const std::uint8_t> bytes) {
  auto d = rv::decode_description(bytes);
  if (!d) return;
  PORTHOLE_FUZZ_CHECK(d->candidates.size() <= rv::kMaxCandidates);
  PORTHOLE_FUZZ_CHECK(d->ufrag.size() >= rv::kUfragMin && d->ufrag.size() <= rv::kUfragMax);
  PORTHOLE_FUZZ_CHECK(d->password.size() >= rv::kPasswordMin &&
                      d->password.size() <= rv::kPasswordMax);
  for (const auto& c : d->candidates) {
    PORTHOLE_FUZZ_CHECK(c.address.port != 0 && !c.address.ip.is_unspecified());
    PORTHOLE_FUZZ_CHECK(c.priority >= 1 && c.priority <= 0x7FFFFFFFu);
  }
  auto again = rv::encode_description(*d);
  PORTHOLE_FUZZ_CHECK(again.ok());
  PORTHOLE_FUZZ_CHECK(std::equal(again->begin(), again->end(), bytes.begin(), bytes.end()));
}

void check_message(std::span<const std::uint8_t> bytes) {
  auto m = rv::decode(bytes);
  if (!m) return;
  PORTHOLE_FUZZ_CHECK(rv::is_rendezvous_method(m->method));
  if (m->description) check_description(*m->description);
  if (!m->unknown_required.empty()) {
    PORTHOLE_FUZZ_CHECK(m->message_class == porthole::detail::stun::MessageClass::request);
    return;
  }
  auto encoded = rv::encode(*m);
  PORTHOLE_FUZZ_CHECK(encoded.ok());
  auto back = rv::decode(*encoded);
  PORTHOLE_FUZZ_CHECK(back.ok());
  PORTHOLE_FUZZ_CHECK(back->method == m->method && back->message_class == m->message_class &&
                      back->transaction_id == m->transaction_id);
  PORTHOLE_FUZZ_CHECK(back->peer_id == m->peer_id && back->target_peer_id == m->target_peer_id);
  PORTHOLE_FUZZ_CHECK(back->challenge == m->challenge && back->signature == m->signature);
  PORTHOLE_FUZZ_CHECK(back->description == m->description);
  PORTHOLE_FUZZ_CHECK(back->xor_mapped_address == m->xor_mapped_address &&
                      back->xor_peer_address == m->xor_peer_address);
  PORTHOLE_FUZZ_CHECK(back->lifetime == m->lifetime);
  PORTHOLE_FUZZ_CHECK(back->error_code.has_value() == m->error_code.has_value());
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::span<const std::uint8_t> in(data, size);
  check_message(in);
  check_description(in);
  return 0;
}
