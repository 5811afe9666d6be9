#include "proto/turn_client.hpp"

#include <algorithm>

#include <fmt/format.h>

namespace porthole::detail {
namespace {

using Bytes = std::vector<std::uint8_t>;

// RFC 8489 s9.2.5 does not bound the 438 retries; a server that keeps calling every
// fresh nonce stale is broken, and three rounds are plenty for a real one.
constexpr int kMaxNonceRetries = 3;

const char* kind_name(int kind) {
  static constexpr const char* kNames[] = {"Allocate", "Refresh", "CreatePermission",
                                           "ChannelBind"};
  return kNames[kind];
}

bool is_channel_data(std::span<const std::uint8_t> bytes) {
  // s12.4 (RFC 7983 s7): ChannelData starts 0b01; STUN messages 0b00.
  return !bytes.empty() && (bytes[0] & 0xc0) == 0x40;
}

std::string error_text(const stun::Message& m) {
  if (!m.error_code) return "an error without ERROR-CODE";
  return fmt::format("{} {}", m.error_code->code, m.error_code->reason);
}

}  // namespace

const char* turn_state_name(TurnClient::State state) noexcept {
  switch (state) {
    case TurnClient::State::idle: return "idle";
    case TurnClient::State::allocating: return "allocating";
    case TurnClient::State::allocated: return "allocated";
    case TurnClient::State::failed: return "failed";
    case TurnClient::State::deallocating: return "deallocating";
    case TurnClient::State::closed: return "closed";
  }
  return "?";
}

TurnClient::TurnClient(TurnClientConfig config, RandomFn random)
    : config_(std::move(config)), random_(std::move(random)) {}

void TurnClient::debug(const std::string& text) const {
  if (config_.log) config_.log(LogLevel::debug, "TURN " + config_.server.to_string() + ": " + text);
}

Status TurnClient::start(Clock::time_point now) {
  if (state_ != State::idle) return ok_status();
  if (config_.username.empty()) return make_error(Errc::usage, "the TURN user name is empty");
  // The password's rules are the long-term key's (OpaqueString); any realm shows them.
  if (auto k = stun::IntegrityKey::long_term(config_.username, "realm", config_.password); !k)
    return make_error(Errc::usage, "TURN password: " + k.error().message);
  state_ = State::allocating;
  send_request(Kind::allocate, now);
  return ok_status();
}

Clock::time_point TurnClient::renew_time(Clock::time_point now,
                                         std::chrono::seconds granted) const {
  const auto margin = std::min<std::chrono::seconds>(config_.renew_margin, granted / 2);
  return now + granted - margin;
}

Result<Bytes> TurnClient::encode(const Request& r, const stun::TransactionId& id) const {
  const turn::LongTermAuth* auth = auth_ ? &*auth_ : nullptr;
  switch (r.kind) {
    case Kind::allocate: return turn::encode_allocate(id, config_.lifetime, auth);
    case Kind::refresh: return turn::encode_refresh(id, r.lifetime, auth);
    case Kind::permission: {
      const IpAddress ip = r.peer_ip.value_or(IpAddress{});
      return turn::encode_create_permission(id, std::span(&ip, 1), auth);
    }
    case Kind::channel_bind: return turn::encode_channel_bind(id, r.channel, r.peer, auth);
  }
  return make_error(Errc::internal, "unknown TURN request");
}

void TurnClient::send_request(Kind kind, Clock::time_point now, std::optional<IpAddress> ip,
                              const Endpoint& peer, std::uint16_t channel, std::uint32_t lifetime,
                              int nonce_retries) {
  stun::TransactionId id{};
  random_(id);
  Request r{kind,
            ip,
            peer,
            channel,
            lifetime,
            nonce_retries,
            auth_.has_value(),
            StunTransaction(id, {}, config_.retransmission, Clock::time_point::max())};
  auto bytes = encode(r, id);
  if (!bytes) {
    fail(bytes.error());
    return;
  }
  r.transaction = StunTransaction(id, std::move(*bytes), config_.retransmission,
                                  Clock::time_point::max());
  debug(fmt::format("{} request{}", kind_name(static_cast<int>(kind)),
                    r.signed_request ? " (signed)" : ""));
  if (auto first = r.transaction.due(now)) outgoing_.emplace_back(first->begin(), first->end());
  requests_.push_back(std::move(r));
}

bool TurnClient::on_datagram(std::span<const std::uint8_t> bytes, Clock::time_point now) {
  if (is_channel_data(bytes)) {
    auto cd = turn::decode_channel_data(bytes);
    if (!cd) return false;
    for (const auto& c : channels_)
      if (c.number == cd->channel && c.bound) {
        TurnEvent e;
        e.type = TurnEvent::Type::data;
        e.peer = c.peer;
        e.data.assign(cd->data.begin(), cd->data.end());
        emit(std::move(e));
        return true;
      }
    return false;
  }
  auto m = stun::decode(bytes);
  if (!m) return false;
  if (m->message_class == stun::MessageClass::indication) {
    if (m->method != stun::method::data) return false;
    auto d = turn::read_data_indication(*m);
    if (!d) return false;
    TurnEvent e;
    e.type = TurnEvent::Type::data;
    e.peer = d->peer;
    e.data = std::move(d->data);
    emit(std::move(e));
    return true;
  }
  if (m->message_class != stun::MessageClass::success_response &&
      m->message_class != stun::MessageClass::error_response)
    return false;
  auto it = std::find_if(requests_.begin(), requests_.end(), [&](const Request& r) {
    return r.transaction.matches(m->transaction_id);
  });
  if (it == requests_.end()) return false;
  // RFC 8489 s9.2.4: once a request was signed, its success response must be too, with
  // the same key; an unsigned or wrongly signed one is someone else's (ignored, the
  // transaction keeps waiting for the real answer).
  if (it->signed_request && m->message_class == stun::MessageClass::success_response) {
    if (!auth_ || !m->has_message_integrity || !stun::check_integrity(bytes, *m, auth_->key)) {
      debug("dropped a success response without our MESSAGE-INTEGRITY");
      return false;
    }
  }
  Request r = std::move(*it);
  requests_.erase(it);
  r.transaction.answered(now);
  on_response(r, *m, bytes, now);
  return true;
}

void TurnClient::on_response(const Request& r, const stun::Message& m,
                             std::span<const std::uint8_t>, Clock::time_point now) {
  const char* what = kind_name(static_cast<int>(r.kind));
  if (m.message_class == stun::MessageClass::success_response) {
    debug(fmt::format("{} succeeded", what));
    on_success(r, m, now);
    return;
  }
  const int code = m.error_code ? m.error_code->code : 0;
  debug(fmt::format("{} failed: {}", what, error_text(m)));
  if (code == 401) {
    // s9.2.5: the first 401 brings the realm and nonce; a 401 to a request signed with
    // them means the server does not know this user and password.
    if (!r.signed_request && r.kind == Kind::allocate && m.realm && m.nonce) {
      auto key = stun::IntegrityKey::long_term(config_.username, *m.realm, config_.password);
      if (!key) {
        fail(make_error(Errc::usage, "TURN password: " + key.error().message));
        return;
      }
      auth_ = turn::LongTermAuth{config_.username, *m.realm, *m.nonce, std::move(*key)};
      send_request(Kind::allocate, now);
      return;
    }
    fail(make_error(Errc::refused,
                    fmt::format("wrong TURN credentials: {} refused user \"{}\" ({})",
                                config_.server.to_string(), config_.username, error_text(m)),
                    code));
    return;
  }
  if (code == 438 && m.nonce && auth_ && r.nonce_retries < kMaxNonceRetries) {
    // s9.2.5: a stale nonce; the same request again with the new one.
    auth_->nonce = *m.nonce;
    if (m.realm && *m.realm != auth_->realm) {
      auto key = stun::IntegrityKey::long_term(config_.username, *m.realm, config_.password);
      if (key) {
        auth_->realm = *m.realm;
        auth_->key = std::move(*key);
      }
    }
    send_request(r.kind, now, r.peer_ip, r.peer, r.channel, r.lifetime, r.nonce_retries + 1);
    return;
  }
  switch (r.kind) {
    case Kind::allocate:
      fail(make_error(Errc::refused,
                      fmt::format("TURN server {} refused the allocation: {}",
                                  config_.server.to_string(), error_text(m)),
                      code));
      return;
    case Kind::refresh:
      if (r.lifetime == 0 || code == 437) {
        // s7.2: 437 Allocation Mismatch: there is no allocation (any more).
        closed();
        return;
      }
      fail(make_error(Errc::refused,
                      fmt::format("TURN server {} refused to refresh the allocation: {}",
                                  config_.server.to_string(), error_text(m)),
                      code));
      return;
    case Kind::permission:
    case Kind::channel_bind: forget(r); return;
  }
}

void TurnClient::on_success(const Request& r, const stun::Message& m, Clock::time_point now) {
  switch (r.kind) {
    case Kind::allocate: {
      if (state_ != State::allocating) return;
      if (!m.xor_relayed_address) {
        fail(make_error(Errc::internal, fmt::format("TURN server {}: Allocate answered without "
                                                    "XOR-RELAYED-ADDRESS",
                                                    config_.server.to_string())));
        return;
      }
      relayed_ = m.xor_relayed_address;
      mapped_ = m.xor_mapped_address;
      const std::uint32_t granted = m.lifetime.value_or(turn::kDefaultLifetime);
      refresh_at_ = renew_time(now, std::chrono::seconds(granted));
      state_ = State::allocated;
      TurnEvent e;
      e.type = TurnEvent::Type::allocated;
      e.relayed = *relayed_;
      e.mapped = mapped_.value_or(Endpoint{});
      e.lifetime = granted;
      emit(std::move(e));
      on_timer(now);  // permissions and channels asked for before the allocation
      return;
    }
    case Kind::refresh:
      if (r.lifetime == 0) {
        closed();
        return;
      }
      refresh_at_ = renew_time(now, std::chrono::seconds(m.lifetime.value_or(r.lifetime)));
      return;
    case Kind::permission:
      for (auto& p : permissions_)
        if (p.ip == r.peer_ip) {
          p.pending = false;
          p.renew_at = now + kPermissionRenewal;
        }
      return;
    case Kind::channel_bind:
      for (auto& c : channels_)
        if (c.number == r.channel) {
          c.pending = false;
          c.bound = true;
          c.renew_at = now + kChannelRenewal;
        }
      return;
  }
}

void TurnClient::on_timeout(const Request& r, Clock::time_point) {
  const char* what = kind_name(static_cast<int>(r.kind));
  debug(fmt::format("{}: no answer", what));
  switch (r.kind) {
    case Kind::allocate:
      fail(make_error(Errc::no_service, fmt::format("TURN server {} did not answer the Allocate",
                                                    config_.server.to_string())));
      return;
    case Kind::refresh:
      if (r.lifetime == 0) {
        closed();
        return;
      }
      fail(make_error(Errc::no_service,
                      fmt::format("TURN server {} stopped answering", config_.server.to_string())));
      return;
    case Kind::permission:
    case Kind::channel_bind: forget(r); return;
  }
}

// A permission or channel the server refused or never confirmed: asked for again only
// if the caller asks again.
void TurnClient::forget(const Request& r) {
  if (r.kind == Kind::permission)
    std::erase_if(permissions_, [&](const Permission& p) { return p.ip == r.peer_ip; });
  else
    std::erase_if(channels_, [&](const Channel& c) { return c.number == r.channel; });
}

void TurnClient::closed() {
  state_ = State::closed;
  emit(TurnEvent{TurnEvent::Type::deallocated, {}, {}, 0, {}, {}, {}});
}

void TurnClient::fail(Error e) {
  if (state_ == State::failed || state_ == State::closed) return;
  state_ = State::failed;
  requests_.clear();
  TurnEvent ev;
  ev.type = TurnEvent::Type::failed;
  ev.error = std::move(e);
  emit(std::move(ev));
}

void TurnClient::on_timer(Clock::time_point now) {
  std::vector<Request> timed_out;
  for (auto it = requests_.begin(); it != requests_.end();) {
    if (auto bytes = it->transaction.due(now)) outgoing_.emplace_back(bytes->begin(), bytes->end());
    if (it->transaction.settled()) {
      timed_out.push_back(std::move(*it));
      it = requests_.erase(it);
    } else {
      ++it;
    }
  }
  for (const auto& r : timed_out) on_timeout(r, now);
  if (state_ != State::allocated) return;
  auto pending = [&](Kind k) {
    return std::any_of(requests_.begin(), requests_.end(),
                       [&](const Request& r) { return r.kind == k; });
  };
  if (now >= refresh_at_ && !pending(Kind::refresh)) {
    refresh_at_ = Clock::time_point::max();  // until the answer says
    send_request(Kind::refresh, now, {}, {}, 0, config_.lifetime);
  }
  for (auto& p : permissions_)
    if (!p.pending && now >= p.renew_at) {
      p.pending = true;
      send_request(Kind::permission, now, p.ip);
    }
  for (auto& c : channels_)
    if (!c.pending && now >= c.renew_at) {
      c.pending = true;
      send_request(Kind::channel_bind, now, {}, c.peer, c.number);
    }
}

std::vector<std::vector<std::uint8_t>> TurnClient::take_outgoing() {
  std::vector<std::vector<std::uint8_t>> out;
  out.swap(outgoing_);
  return out;
}

std::optional<Clock::time_point> TurnClient::next_wakeup() const {
  std::optional<Clock::time_point> next;
  auto earlier = [&](std::optional<Clock::time_point> t) {
    if (t && (!next || *t < *next)) next = t;
  };
  for (const auto& r : requests_) earlier(r.transaction.next_wakeup());
  if (state_ == State::allocated) {
    if (refresh_at_ != Clock::time_point::max()) earlier(refresh_at_);
    for (const auto& p : permissions_)
      if (!p.pending) earlier(p.renew_at);
    for (const auto& c : channels_)
      if (!c.pending) earlier(c.renew_at);
  }
  return next;
}

std::optional<TurnEvent> TurnClient::next_event() {
  if (events_.empty()) return std::nullopt;
  TurnEvent e = std::move(events_.front());
  events_.pop_front();
  return e;
}

void TurnClient::permit(const IpAddress& peer, Clock::time_point now) {
  if (state_ != State::allocating && state_ != State::allocated && state_ != State::idle) return;
  for (const auto& p : permissions_)
    if (p.ip == peer) return;
  permissions_.push_back({peer, false, Clock::time_point{}});  // due at once
  on_timer(now);
}

void TurnClient::bind_channel(const Endpoint& peer, Clock::time_point now) {
  if (state_ != State::allocating && state_ != State::allocated && state_ != State::idle) return;
  for (const auto& c : channels_)
    if (c.peer == peer) return;
  if (next_channel_ > turn::kChannelMax) return;  // 4096 peers: not what a punch needs
  permit(peer.ip, now);
  channels_.push_back({peer, next_channel_++, false, false, Clock::time_point{}});
  on_timer(now);
}

bool TurnClient::channel_bound(const Endpoint& peer) const {
  return std::any_of(channels_.begin(), channels_.end(),
                     [&](const Channel& c) { return c.peer == peer && c.bound; });
}

bool TurnClient::send(const Endpoint& peer, std::span<const std::uint8_t> data) {
  if (state_ != State::allocated) return false;
  for (const auto& c : channels_)
    if (c.peer == peer && c.bound) {
      auto bytes = turn::encode_channel_data(c.number, data);
      if (!bytes) return false;
      outgoing_.push_back(std::move(*bytes));
      return true;
    }
  stun::TransactionId id{};
  random_(id);
  auto bytes = turn::encode_send_indication(id, peer, data);
  if (!bytes) return false;
  outgoing_.push_back(std::move(*bytes));
  return true;
}

void TurnClient::deallocate(Clock::time_point now) {
  if (state_ != State::allocated) {
    if (state_ != State::failed) state_ = State::closed;
    requests_.clear();
    return;
  }
  requests_.clear();
  permissions_.clear();
  channels_.clear();
  state_ = State::deallocating;
  send_request(Kind::refresh, now, {}, {}, 0, 0);
}

}  // namespace porthole::detail
