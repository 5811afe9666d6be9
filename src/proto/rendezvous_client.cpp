// The rendezvous client (proto/rendezvous_client.hpp, docs/rendezvous.md).
#include "proto/rendezvous_client.hpp"

#include <algorithm>
#include <utility>

#include <fmt/format.h>

namespace porthole::detail {
namespace {

namespace rv = rendezvous;
using stun::MessageClass;

// A server that answers every signed Register with a new challenge is not letting us
// in; after this many in a row we say so instead of signing forever.
constexpr int kMaxChallengesInARow = 3;

std::string error_text(const rv::Message& m) {
  if (!m.error_code) return "an error";
  return m.error_code->reason.empty()
             ? fmt::format("{}", m.error_code->code)
             : fmt::format("{} {}", m.error_code->code, m.error_code->reason);
}

}  // namespace

RendezvousClient::RendezvousClient(Identity identity, Endpoint server, Clock::time_point deadline,
                                   RandomFn random, RendezvousClientOptions options)
    : identity_(std::move(identity)),
      server_(server),
      deadline_(deadline),
      random_(std::move(random)),
      options_(options) {}

std::string RendezvousClient::server_text() const { return "rendezvous " + server_.to_string(); }

void RendezvousClient::fail(Errc code, std::string message) {
  RendezvousEvent e;
  e.type = RendezvousEvent::Type::failed;
  e.error = make_error(code, std::move(message));
  emit(std::move(e));
}

void RendezvousClient::send(Op op, rv::Message m, const PeerId& target, Clock::time_point now) {
  m.message_class = MessageClass::request;
  if (random_) random_(m.transaction_id);
  auto bytes = rv::encode(m);
  if (!bytes) {
    fail(Errc::usage,
         fmt::format("cannot send to the {}: {}", server_text(), bytes.error().message));
    return;
  }
  pending_.push_back(Pending{op,
                             StunTransaction(m.transaction_id, std::move(*bytes),
                                             options_.retransmission, deadline_),
                             target});
  pump(now);
}

void RendezvousClient::send_hello(Clock::time_point now) {
  rv::Message m;
  m.method = rv::method::register_peer;
  m.peer_id = identity_.id();
  m.lifetime = options_.lifetime;
  send(Op::hello, std::move(m), identity_.id(), now);
}

void RendezvousClient::send_signed_register(std::uint32_t lifetime, Op op, Clock::time_point now) {
  if (!challenge_ || !observed_) return;
  auto signature = identity_.sign(
      rv::registration_signing_input(identity_.id(), *challenge_, *observed_));
  if (!signature) {
    fail(Errc::internal, "cannot sign the registration: " + signature.error().message);
    return;
  }
  rv::Message m;
  m.method = rv::method::register_peer;
  m.peer_id = identity_.id();
  m.challenge = *challenge_;
  m.signature = std::move(*signature);
  m.lifetime = lifetime;
  send(op, std::move(m), identity_.id(), now);
}

void RendezvousClient::send_relay(std::uint16_t method, const PeerId& target,
                                  const rv::SignedDescription& description, Clock::time_point now) {
  rv::Message m;
  m.method = method;
  m.target_peer_id = target;
  m.description = description.bytes;
  m.signature = description.signature;
  send(method == rv::method::connect ? Op::connect : Op::answer, std::move(m), target, now);
}

void RendezvousClient::start(Clock::time_point now) {
  if (started_) return;
  started_ = true;
  send_hello(now);
}

void RendezvousClient::connect(const PeerId& target, rv::SignedDescription offer,
                               Clock::time_point now) {
  // A new offer to the same peer replaces the one we kept resending.
  offers_.erase(std::remove_if(offers_.begin(), offers_.end(),
                               [&](const Offer& o) { return o.target == target; }),
                offers_.end());
  offers_.push_back(Offer{target, std::move(offer), std::nullopt});
  send_relay(rv::method::connect, target, offers_.back().offer, now);
}

void RendezvousClient::answer(const PeerId& target, const rv::SignedDescription& answer,
                              Clock::time_point now) {
  send_relay(rv::method::answer, target, answer, now);
}

void RendezvousClient::stop(Clock::time_point now) {
  if (stopped_) return;
  stopped_ = true;
  refresh_at_.reset();
  offers_.clear();
  pending_.clear();
  if (registered_) send_signed_register(0, Op::unregister, now);
  registered_ = false;
}

bool RendezvousClient::on_datagram(std::span<const std::uint8_t> bytes, const Endpoint& from,
                                   Clock::time_point now) {
  if (from != server_) return false;
  auto decoded = rv::decode(bytes);
  if (!decoded) return false;
  const rv::Message& m = *decoded;
  if (m.message_class == MessageClass::request) return false;
  if (m.message_class == MessageClass::indication) {
    if (stopped_) return true;
    on_indication(m);
    return true;
  }
  auto it = std::find_if(pending_.begin(), pending_.end(),
                         [&](const Pending& p) { return p.transaction.matches(m.transaction_id); });
  if (it == pending_.end()) return false;
  it->transaction.answered(now);
  const Pending p = std::move(*it);
  pending_.erase(it);
  on_response(p, m, now);
  pump(now);
  return true;
}

void RendezvousClient::on_indication(const rv::Message& m) {
  auto signed_description = m.signed_description();
  if (!signed_description) return;
  RendezvousEvent e;
  e.description = std::move(*signed_description);
  if (m.method == rv::method::connect && m.xor_peer_address) {
    e.type = RendezvousEvent::Type::offer_received;
    e.offerer = *m.xor_peer_address;
    emit(std::move(e));
    return;
  }
  if (m.method != rv::method::answer) return;
  // An answer to one of our offers ends its resending. Unverified here: a forged
  // "answer" only stops the resending, and the agent checks what it gets.
  if (auto d = rv::decode_description(e.description.bytes)) {
    offers_.erase(std::remove_if(offers_.begin(), offers_.end(),
                                 [&](const Offer& o) { return o.target == d->sender; }),
                  offers_.end());
    e.peer = d->sender;
  }
  e.type = RendezvousEvent::Type::answer_received;
  emit(std::move(e));
}

void RendezvousClient::on_register_response(const rv::Message& m, Clock::time_point now) {
  if (m.message_class == MessageClass::error_response && m.error_code &&
      m.error_code->code == rv::kUnauthenticated && m.challenge && m.xor_mapped_address) {
    if (++challenges_in_a_row_ > kMaxChallengesInARow) {
      fail(Errc::refused, fmt::format("the {} keeps asking for a new challenge: registration "
                                      "refused",
                                      server_text()));
      return;
    }
    challenge_ = *m.challenge;
    observed_ = *m.xor_mapped_address;
    send_signed_register(options_.lifetime, Op::signed_register, now);
    return;
  }
  if (m.message_class == MessageClass::error_response) {
    registered_ = false;
    refresh_at_.reset();
    fail(Errc::refused,
         fmt::format("the {} refused the registration: {}", server_text(), error_text(m)));
    return;
  }
  challenges_in_a_row_ = 0;
  const std::uint32_t granted = m.lifetime.value_or(0);
  if (granted == 0) {
    fail(Errc::refused, fmt::format("the {} granted no lifetime", server_text()));
    return;
  }
  const bool news = !registered_ || observed_ != m.xor_mapped_address;
  registered_ = true;
  observed_ = m.xor_mapped_address;
  // Refresh at half the lifetime: time for the whole retransmission schedule and a
  // second challenge round before it runs out.
  refresh_at_ = now + std::chrono::milliseconds{std::int64_t{granted} * 500};
  if (news) {
    RendezvousEvent e;
    e.type = RendezvousEvent::Type::registered;
    e.observed = *observed_;
    e.peer = identity_.id();
    emit(std::move(e));
  }
}

void RendezvousClient::on_response(const Pending& p, const rv::Message& m, Clock::time_point now) {
  switch (p.op) {
    case Op::unregister:
      // A challenge gone stale since the last refresh: sign the new one.
      if (m.error_code && m.error_code->code == rv::kUnauthenticated && m.challenge &&
          m.xor_mapped_address && ++challenges_in_a_row_ <= kMaxChallengesInARow) {
        challenge_ = *m.challenge;
        observed_ = *m.xor_mapped_address;
        send_signed_register(0, Op::unregister, now);
      }
      return;
    case Op::hello:
    case Op::signed_register: on_register_response(m, now); return;
    case Op::connect:
    case Op::answer: break;
  }
  RendezvousEvent e;
  e.peer = p.target;
  if (m.message_class == MessageClass::success_response) {
    if (p.op == Op::answer) return;
    bool said = false;
    for (Offer& o : offers_)
      if (o.target == p.target) {
        o.resend_at = now + options_.reconnect_interval;
        said = std::exchange(o.accepted, true);
      }
    if (said) return;
    e.type = RendezvousEvent::Type::connect_accepted;
    if (m.xor_mapped_address) e.observed = *m.xor_mapped_address;
    emit(std::move(e));
    return;
  }
  if (m.error_code && m.error_code->code == rv::kPeerNotOnline) {
    offers_.erase(std::remove_if(offers_.begin(), offers_.end(),
                                 [&](const Offer& o) { return o.target == p.target; }),
                  offers_.end());
    e.type = RendezvousEvent::Type::not_online;
    emit(std::move(e));
    return;
  }
  fail(Errc::refused,
       fmt::format("the {} refused our {} for {}: {}", server_text(),
                   p.op == Op::connect ? "offer" : "answer", p.target.to_string(), error_text(m)));
}

void RendezvousClient::pump(Clock::time_point now) {
  for (Pending& p : pending_)
    if (auto bytes = p.transaction.due(now)) outgoing_.emplace_back(bytes->begin(), bytes->end());
  // Transactions that ran out of time: the server did not answer.
  for (auto it = pending_.begin(); it != pending_.end();) {
    if (!it->transaction.settled()) {
      ++it;
      continue;
    }
    const Op op = it->op;
    it = pending_.erase(it);
    if (op == Op::unregister) continue;
    if (op == Op::hello || op == Op::signed_register) registered_ = false;
    fail(Errc::no_service, fmt::format("the {} did not answer", server_text()));
  }
  if (refresh_at_ && now >= *refresh_at_) {
    refresh_at_.reset();
    if (now < deadline_) {
      if (challenge_ && observed_)
        send_signed_register(options_.lifetime, Op::signed_register, now);
      else
        send_hello(now);
    }
  }
  for (Offer& o : offers_) {
    if (!o.resend_at || now < *o.resend_at) continue;
    o.resend_at.reset();
    if (now < deadline_) send_relay(rv::method::connect, o.target, o.offer, now);
  }
}

void RendezvousClient::on_timer(Clock::time_point now) { pump(now); }

std::vector<std::vector<std::uint8_t>> RendezvousClient::take_outgoing() {
  return std::exchange(outgoing_, {});
}

std::optional<Clock::time_point> RendezvousClient::next_wakeup() const {
  std::optional<Clock::time_point> next;
  auto consider = [&](std::optional<Clock::time_point> t) {
    if (t && (!next || *t < *next)) next = t;
  };
  for (const Pending& p : pending_) consider(p.transaction.next_wakeup());
  if (refresh_at_ && *refresh_at_ < deadline_) consider(refresh_at_);
  for (const Offer& o : offers_)
    if (o.resend_at && *o.resend_at < deadline_) consider(o.resend_at);
  return next;
}

std::optional<RendezvousEvent> RendezvousClient::next_event() {
  if (events_.empty()) return std::nullopt;
  RendezvousEvent e = std::move(events_.front());
  events_.pop_front();
  return e;
}

}  // namespace porthole::detail
