#include "core/punch_session.hpp"

#include <unistd.h>

#include <algorithm>
#include <vector>

#include "codec/ed25519.hpp"

namespace porthole::detail {

void fill_random(std::span<std::uint8_t> out) {
  if (ed25519::random_bytes(out)) return;
  // GnuTLS' generator failing is not expected; predictable bytes must not follow, so
  // the kernel's generator fills in (getentropy: at most 256 bytes a call).
  for (std::size_t done = 0; done < out.size(); done += 256)
    if (::getentropy(out.data() + done, std::min<std::size_t>(256, out.size() - done)) != 0)
      std::fill(out.begin(), out.end(), std::uint8_t{0});
}

// RFC 8445 s5.3: ice-chars are ALPHA / DIGIT / "+" / "/": exactly 64, so one random byte
// gives one character without bias.
std::string random_ice_chars(std::size_t n) {
  static constexpr char kIceChars[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::vector<std::uint8_t> bytes(n);
  fill_random(bytes);
  std::string out;
  for (auto b : bytes) out += kIceChars[b & 63];
  return out;
}

stun::TransactionId random_transaction_id() {
  stun::TransactionId id{};
  fill_random(id);
  return id;
}

RendezvousClientOptions punch_rendezvous_options() {
  RendezvousClientOptions o;
  o.retransmission = {std::chrono::milliseconds(200), 5, 4};
  o.reconnect_interval = std::chrono::milliseconds(1500);
  return o;
}

Result<rendezvous::SignedDescription> sign_description(const Identity& identity,
                                                       const rendezvous::Description& d) {
  auto bytes = rendezvous::encode_description(d);
  if (!bytes) return bytes.error();
  auto sig = identity.sign(rendezvous::description_signing_input(*bytes));
  if (!sig) return sig.error();
  return rendezvous::SignedDescription{std::move(*bytes), std::move(*sig)};
}

IceAgentConfig punch_agent_config(const Identity& identity, const PeerId& peer, bool controlling,
                                  const std::string& ufrag, const std::string& password,
                                  Clock::time_point deadline, const LogFn& log) {
  IceAgentConfig config;
  config.controlling = controlling;
  fill_random(std::span<std::uint8_t>(reinterpret_cast<std::uint8_t*>(&config.tie_breaker),
                                      sizeof config.tie_breaker));
  config.local_ufrag = ufrag;
  config.local_password = password;
  config.deadline = deadline;
  config.log = log;  // -v: checks sent, answered, dropped
  // Signed checks (docs/rendezvous.md): the ICE password is in the descriptions, which
  // the rendezvous reads, so only the named peer's Ed25519 signature proves a check or
  // an answer is its.
  config.sign = [identity](std::span<const std::uint8_t> bytes) { return identity.sign(bytes); };
  config.verify_peer = [peer](std::span<const std::uint8_t> bytes,
                              std::span<const std::uint8_t> signature) {
    return verify_signature(peer, bytes, signature);
  };
  return config;
}

}  // namespace porthole::detail
