// The rendezvous server (proto/rendezvous_server.hpp, docs/rendezvous.md).
#include "proto/rendezvous_server.hpp"

#include <algorithm>
#include <string_view>
#include <utility>

#include <fmt/format.h>

#include "codec/byte_order.hpp"
#include "codec/ed25519.hpp"
#include "codec/hmac.hpp"
#include "proto/stun_server.hpp"

namespace porthole::detail {
namespace {

namespace rv = rendezvous;
using stun::MessageClass;

constexpr std::string_view kChallengeLabel = "porthole rendezvous challenge v1";
constexpr auto kSweepInterval = std::chrono::seconds{1};

const char* method_name(std::uint16_t m) {
  switch (m) {
    case rv::method::register_peer: return "Register";
    case rv::method::connect: return "Connect";
    default: return "Answer";
  }
}

const char* reason(int code) {
  switch (code) {
    case rv::kBadRequest: return "Bad Request";
    case rv::kUnauthenticated: return "Unauthenticated";
    case kRendezvousForbidden: return "Forbidden";
    case rv::kPeerNotOnline: return "Peer Not Online";
    case rv::kUnknownAttribute: return "Unknown Attribute";
    case kRendezvousFull: return "Insufficient Capacity";
    default: return "Error";
  }
}

// Offerer key, answerer key, session ID: the pending session an answer is routed by.
std::string session_key(const PeerId& offerer, const PeerId& answerer,
                        const std::array<std::uint8_t, rv::kSessionIdSize>& session) {
  std::string k;
  k.append(offerer.key.begin(), offerer.key.end());
  k.append(answerer.key.begin(), answerer.key.end());
  k.append(session.begin(), session.end());
  return k;
}

std::string short_id(const PeerId& id) { return id.to_string().substr(0, 8); }

}  // namespace

RendezvousResponder::RendezvousResponder(const RendezvousConfig& config)
    : config_(config),
      secret_(config.secret),
      per_source_(config.per_source_rate, config.per_source_burst, config.max_sources),
      total_(config.total_rate, config.total_burst),
      verifications_(config.verify_rate, config.verify_burst) {
  config_.min_lifetime = std::max<std::uint32_t>(1, config_.min_lifetime);
  config_.max_lifetime = std::max(config_.min_lifetime, config_.max_lifetime);
  config_.default_lifetime = std::clamp(config_.default_lifetime, config_.min_lifetime,
                                        config_.max_lifetime);
  config_.challenge_window = std::max(config_.challenge_window, std::chrono::seconds{1});
  config_.max_peers = std::max<std::size_t>(1, config_.max_peers);
  config_.max_sessions = std::max<std::size_t>(1, config_.max_sessions);
  if (secret_.empty()) {
    secret_.resize(32);
    // Without the generator the secret stays zero: the challenges are then predictable
    // but still bound to the address, and signatures are what proves an ID.
    if (auto st = ed25519::random_bytes(secret_); !st)
      debug("rendezvous: no random secret for challenges: " + st.error().message);
  }
}

void RendezvousResponder::debug(std::string_view text) const {
  if (config_.log) config_.log(LogLevel::debug, text);
}

std::int64_t RendezvousResponder::window_of(Clock::time_point now) const {
  return static_cast<std::int64_t>(now.time_since_epoch() / config_.challenge_window);
}

std::vector<std::uint8_t> RendezvousResponder::challenge_at(const Endpoint& source,
                                                            std::int64_t window) const {
  std::vector<std::uint8_t> input(kChallengeLabel.begin(), kChallengeLabel.end());
  input.push_back(0);
  append_u32(input, static_cast<std::uint32_t>(static_cast<std::uint64_t>(window) >> 32));
  append_u32(input, static_cast<std::uint32_t>(window));
  input.push_back(source.ip.is_v4() ? 1 : 2);
  append_u16(input, source.port);
  input.insert(input.end(), source.ip.bytes().begin(), source.ip.bytes().end());
  const Sha256Digest mac = hmac_sha256(secret_, input);
  return std::vector<std::uint8_t>(mac.begin(), mac.end());
}

std::vector<std::uint8_t> RendezvousResponder::challenge_for(const Endpoint& source,
                                                             Clock::time_point now) const {
  return challenge_at(source, window_of(now));
}

bool RendezvousResponder::challenge_valid(std::span<const std::uint8_t> challenge,
                                          const Endpoint& source, Clock::time_point now) const {
  const std::int64_t w = window_of(now);
  return equal_secret(challenge, challenge_at(source, w)) ||
         equal_secret(challenge, challenge_at(source, w - 1));
}

std::optional<Endpoint> RendezvousResponder::address_of(const PeerId& peer,
                                                        Clock::time_point now) const {
  auto it = peers_.find(peer.key);
  if (it == peers_.end() || it->second.expires <= now) return std::nullopt;
  return it->second.address;
}

void RendezvousResponder::sweep(Clock::time_point now) {
  for (auto it = peers_.begin(); it != peers_.end();)
    it = it->second.expires <= now ? peers_.erase(it) : std::next(it);
  while (!session_order_.empty()) {
    auto it = sessions_.find(session_order_.front());
    if (it != sessions_.end() && it->second.expires > now) break;
    if (it != sessions_.end()) sessions_.erase(it);
    session_order_.pop_front();
  }
  last_sweep_ = now;
}

void RendezvousResponder::remember_session(const std::string& key, const Endpoint& offerer,
                                           Clock::time_point now) {
  const auto expires = now + config_.session_lifetime;
  if (auto it = sessions_.find(key); it != sessions_.end()) {
    it->second.offerer_address = offerer;
    it->second.expires = expires;
    session_order_.splice(session_order_.end(), session_order_, it->second.order);
    return;
  }
  if (sessions_.size() >= config_.max_sessions) {  // the oldest goes
    sessions_.erase(session_order_.front());
    session_order_.pop_front();
  }
  session_order_.push_back(key);
  sessions_.emplace(key, Session{offerer, expires, std::prev(session_order_.end())});
}

std::vector<RendezvousResponder::Datagram> RendezvousResponder::reply(const rv::Message& request,
                                                                      const Endpoint& source,
                                                                      rv::Message answer) {
  answer.method = request.method;
  answer.transaction_id = request.transaction_id;
  auto bytes = rv::encode(answer);
  if (!bytes) {
    debug(
        fmt::format("rendezvous: cannot answer {}: {}", source.to_string(), bytes.error().message));
    return {};
  }
  return {Datagram{source, std::move(*bytes)}};
}

std::vector<RendezvousResponder::Datagram> RendezvousResponder::error(const rv::Message& request,
                                                                      const Endpoint& source,
                                                                      int code,
                                                                      std::string_view why) {
  debug(fmt::format("rendezvous <- {} {} request: {} {} ({})", source.to_string(),
                    method_name(request.method), code, reason(code), why));
  rv::Message e;
  e.message_class = MessageClass::error_response;
  e.error_code = stun::ErrorCode{code, reason(code)};
  if (code == rv::kUnknownAttribute) {
    e.unknown_attributes = request.unknown_required;
    if (e.unknown_attributes.size() > kMaxUnknownListed)
      e.unknown_attributes.resize(kMaxUnknownListed);
  }
  if (code == kRendezvousForbidden)
    ++counters_.refused;
  else if (code == rv::kPeerNotOnline)
    ++counters_.not_online;
  else
    ++counters_.errors_sent;
  return reply(request, source, std::move(e));
}

std::vector<RendezvousResponder::Datagram> RendezvousResponder::handle(
    std::span<const std::uint8_t> datagram, const Endpoint& source, Clock::time_point now) {
  ++counters_.received;
  if (source.port == 0) {
    ++counters_.dropped;
    return {};
  }
  // Rate limits before anything costs: a source flooding junk only empties its own
  // bucket. Silent, like the STUN responder.
  if (!per_source_.allow(source.ip.to_string(), now) || !total_.allow(now)) {
    ++counters_.rate_limited;
    return {};
  }
  auto decoded = rv::decode(datagram);
  if (!decoded) {
    ++counters_.dropped;
    debug(fmt::format("rendezvous <- {} dropped ({} bytes): {}", source.to_string(),
                      datagram.size(), decoded.error().message));
    return {};
  }
  const rv::Message& m = *decoded;
  // RFC 8489 s6.3: responses and indications get no answer; peers send us requests only.
  if (m.message_class != MessageClass::request) {
    ++counters_.dropped;
    debug(fmt::format("rendezvous <- {} dropped: {} that is not a request", source.to_string(),
                      method_name(m.method)));
    return {};
  }
  if (!m.unknown_required.empty())
    return error(m, source, rv::kUnknownAttribute,
                 fmt::format("attribute 0x{:04x}", m.unknown_required.front()));
  if (now - last_sweep_ >= kSweepInterval) sweep(now);
  if (m.method == rv::method::register_peer) return on_register(m, source, now);
  return on_relay(m, source, now);
}

std::vector<RendezvousResponder::Datagram> RendezvousResponder::on_register(const rv::Message& m,
                                                                            const Endpoint& source,
                                                                            Clock::time_point now) {
  const PeerId& peer = *m.peer_id;  // decode() checked it is there
  const std::string who = fmt::format("{} ({})", source.to_string(), short_id(peer));
  if (!m.challenge || !challenge_valid(*m.challenge, source, now)) {
    // Step 1, or a challenge from another address or too old: (again) "prove it".
    ++counters_.challenges;
    debug(fmt::format("rendezvous <- {} Register: 401 with a challenge{}", who,
                      m.challenge ? " (the one sent is stale or not this address's)" : ""));
    rv::Message e;
    e.message_class = MessageClass::error_response;
    e.error_code = stun::ErrorCode{rv::kUnauthenticated, reason(rv::kUnauthenticated)};
    e.challenge = challenge_for(source, now);
    e.xor_mapped_address = source;
    return reply(m, source, std::move(e));
  }
  if (!verifications_.allow(now)) {
    ++counters_.rate_limited;
    return {};
  }
  if (!rv::verify_registration(peer, *m.challenge, source, *m.signature))
    return error(m, source, kRendezvousForbidden, who + ": the signature does not verify");

  rv::Message ok;
  ok.message_class = MessageClass::success_response;
  ok.xor_mapped_address = source;
  if (m.lifetime && *m.lifetime == 0) {
    peers_.erase(peer.key);
    ++counters_.unregistered;
    debug(fmt::format("rendezvous <- {} Register: offline", who));
    ok.lifetime = 0;
    return reply(m, source, std::move(ok));
  }
  const std::uint32_t granted = std::clamp(m.lifetime.value_or(config_.default_lifetime),
                                           config_.min_lifetime, config_.max_lifetime);
  auto it = peers_.find(peer.key);
  if (it == peers_.end() && peers_.size() >= config_.max_peers) {
    sweep(now);
    if (peers_.size() >= config_.max_peers)
      return error(m, source, kRendezvousFull,
                   fmt::format("{}: {} peers online, the table is full", who, peers_.size()));
  }
  const auto expires = now + std::chrono::seconds{granted};
  if (it == peers_.end()) {
    peers_.emplace(peer.key, Peer{source, expires});
    debug(fmt::format("rendezvous <- {} Register: online for {} s", who, granted));
  } else {
    if (it->second.address != source)
      debug(fmt::format("rendezvous <- {} Register: moved from {}, online for {} s", who,
                        it->second.address.to_string(), granted));
    else
      debug(fmt::format("rendezvous <- {} Register: refreshed for {} s", who, granted));
    it->second = Peer{source, expires};
  }
  ++counters_.registered;
  ok.lifetime = granted;
  return reply(m, source, std::move(ok));
}

std::vector<RendezvousResponder::Datagram> RendezvousResponder::on_relay(const rv::Message& m,
                                                                         const Endpoint& source,
                                                                         Clock::time_point now) {
  const bool offer = m.method == rv::method::connect;
  const std::string what = offer ? "Connect" : "Answer";
  // decode() checked TARGET-PEER-ID, DESCRIPTION and SIGNATURE are there.
  auto d = rv::decode_description(*m.description);
  if (!d) return error(m, source, rv::kBadRequest, "DESCRIPTION: " + d.error().message);
  if (d->kind != (offer ? rv::Kind::offer : rv::Kind::answer))
    return error(m, source, rv::kBadRequest,
                 offer ? "a Connect carries an offer" : "an Answer carries an answer");
  if (d->receiver != *m.target_peer_id)
    return error(m, source, rv::kBadRequest,
                 "the description is for another peer than "
                 "TARGET-PEER-ID");
  // No anonymous forwarding: the signer must be online at this very address.
  const std::string who = fmt::format("{} ({})", source.to_string(), short_id(d->sender));
  auto sender = address_of(d->sender, now);
  if (!sender || *sender != source)
    return error(m, source, kRendezvousForbidden, who + ": not registered at this address");
  if (!verifications_.allow(now)) {
    ++counters_.rate_limited;
    return {};
  }
  if (!ed25519::verify(d->sender.key, rv::description_signing_input(*m.description), *m.signature))
    return error(m, source, kRendezvousForbidden,
                 who +
                     ": the description's signature "
                     "does not verify");
  const std::string target = short_id(d->receiver);
  rv::Message indication;
  indication.message_class = MessageClass::indication;
  indication.description = m.description;
  indication.signature = m.signature;
  Endpoint to;
  if (offer) {
    auto at = address_of(d->receiver, now);
    if (!at) return error(m, source, rv::kPeerNotOnline, target + " is not online");
    to = *at;
    indication.xor_peer_address = source;
    remember_session(session_key(d->sender, d->receiver, d->session_id), source, now);
  } else {
    auto it = sessions_.find(session_key(d->receiver, d->sender, d->session_id));
    if (it == sessions_.end() || it->second.expires <= now)
      return error(m, source, rv::kPeerNotOnline, "no pending offer from " + target);
    to = it->second.offerer_address;
  }
  rv::Message ok;
  ok.message_class = MessageClass::success_response;
  ok.xor_mapped_address = source;
  auto out = reply(m, source, std::move(ok));
  auto forwarded = reply(m, to, std::move(indication));
  if (out.empty() || forwarded.empty()) return {};
  out.push_back(std::move(forwarded.front()));
  ++counters_.forwarded;
  debug(fmt::format("rendezvous <- {} {} for {}: forwarded to {}", who, what, target,
                    to.to_string()));
  return out;
}

bool is_rendezvous_datagram(std::span<const std::uint8_t> d) noexcept {
  if (d.size() < 20 || (d[0] & 0xC0) != 0 || get_u32(d, 4) != stun::kMagicCookie) return false;
  const std::uint16_t type = get_u16(d, 0);
  // RFC 8489 s5: M0-M3 in bits 0-3, M4-M6 in bits 5-7, M7-M11 in bits 9-13.
  const std::uint16_t method = static_cast<std::uint16_t>((type & 0x000F) | ((type & 0x00E0) >> 1) |
                                                          ((type & 0x3E00) >> 2));
  return rendezvous::is_rendezvous_method(method);
}

void attach_rendezvous(StunServer& server, RendezvousResponder& responder, LogFn log) {
  server.set_primary_hook(
      [&server, &responder, log = std::move(log)](std::span<const std::uint8_t> datagram,
                                                  const Endpoint& source, Clock::time_point now) {
        if (!is_rendezvous_datagram(datagram)) return false;
        for (const auto& out : responder.handle(datagram, source, now))
          if (auto st = server.send_primary(out.bytes, out.to); !st && log)
            log(LogLevel::debug, fmt::format("rendezvous: datagram to {} not sent: {}",
                                             out.to.to_string(), st.error().message));
        return true;
      });
}

}  // namespace porthole::detail
