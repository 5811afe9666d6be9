// A TURN client over UDP (RFC 8656) as a sans-IO state machine: it is fed the datagrams
// that came from the TURN server and the time, says what to send to the server
// (take_outgoing) and when it next needs to run (next_wakeup). No socket and no clock of
// its own, like StunTransaction: the punch's reactor drives it on the punch socket, a
// unit test with a fake clock.
//
// The life of an allocation:
//  - Allocate without credentials -> 401 with REALM and NONCE -> Allocate again signed
//    with the long-term key MD5(user ":" realm ":" password) (RFC 8489 s9.2.3, RFC 8656
//    s7.1); a 401 to a signed request means the credentials are wrong (s9.2.5);
//  - 438 Stale Nonce to any request: the request again with the new NONCE (s9.2.5);
//  - Refresh before the granted LIFETIME lapses (s7.2), CreatePermission per peer IP
//    renewed before its 300 s (s9.2), ChannelBind renewed before its 600 s (s12.2);
//  - data to a peer as ChannelData once its channel is bound, as a Send indication
//    before (s11.1, s12.4); data from peers arrives as Data indications or ChannelData;
//  - deallocate(): Refresh with LIFETIME 0 (s7.2).
#pragma once

#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "codec/stun_codec.hpp"
#include "codec/turn_codec.hpp"
#include "net/deadline.hpp"
#include "porthole/error.hpp"
#include "porthole/ip_address.hpp"
#include "porthole/log.hpp"
#include "proto/stun_transaction.hpp"

namespace porthole::detail {

using RandomFn = std::function<void(std::span<std::uint8_t>)>;

struct TurnClientConfig {
  Endpoint server;
  std::string username;
  std::string password;
  std::uint32_t lifetime = turn::kDefaultLifetime;  // seconds, asked for in Allocate
  // Each request's retransmissions (RFC 8489 s6.2.1): 0, 200, 600, 1400, 3000 ms, failed
  // at 3800 ms.
  StunRetransmission retransmission{std::chrono::milliseconds(200), 5, 4};
  // Renewals go this long before the granted time lapses (or at half of it if shorter).
  std::chrono::seconds renew_margin{60};
  LogFn log;  // debug lines: each request, answer and renewal
};

// RFC 8656 s9: a permission lasts 300 s; s12: a channel binding 600 s. Renewed at these.
inline constexpr std::chrono::seconds kPermissionRenewal{240};
inline constexpr std::chrono::seconds kChannelRenewal{540};

struct TurnEvent {
  enum class Type {
    allocated,    // relayed, mapped, lifetime
    failed,       // error: the allocation is unusable (or could not be made)
    data,         // peer, data: a datagram a peer sent to our relayed address
    deallocated,  // the Refresh with LIFETIME 0 was answered (or timed out)
  };
  Type type = Type::allocated;
  Endpoint relayed;
  Endpoint mapped;
  std::uint32_t lifetime = 0;
  Error error;
  Endpoint peer;
  std::vector<std::uint8_t> data;
};

class TurnClient {
 public:
  enum class State { idle, allocating, allocated, failed, deallocating, closed };

  TurnClient(TurnClientConfig config, RandomFn random);

  // Sends the first Allocate. Errc::usage (the client stays idle) when the password
  // is unusable (stun::IntegrityKey's rules) or the username empty.
  Status start(Clock::time_point now);
  // A datagram from the server (ChannelData or STUN). False when it is none of ours
  // (junk, another transaction, an unsigned success).
  bool on_datagram(std::span<const std::uint8_t> bytes, Clock::time_point now);
  void on_timer(Clock::time_point now);

  std::vector<std::vector<std::uint8_t>> take_outgoing();
  std::optional<Clock::time_point> next_wakeup() const;
  std::optional<TurnEvent> next_event();

  // Lets `peer`'s datagrams in (and ours out) through the relay; renewed until
  // deallocate(). Repeats are no-ops. Only while allocated.
  void permit(const IpAddress& peer, Clock::time_point now);
  // Binds a channel to `peer` (and permits its IP); renewed until deallocate().
  void bind_channel(const Endpoint& peer, Clock::time_point now);
  // Relays `data` to `peer`: ChannelData once its channel is bound, else a Send
  // indication. Dropped (false) unless allocated or when too big.
  bool send(const Endpoint& peer, std::span<const std::uint8_t> data);
  // Deletes the allocation (Refresh LIFETIME 0). Without an allocation: closed at once.
  void deallocate(Clock::time_point now);

  State state() const noexcept { return state_; }
  const std::optional<Endpoint>& relayed() const noexcept { return relayed_; }
  const std::optional<Endpoint>& mapped() const noexcept { return mapped_; }
  const Endpoint& server() const noexcept { return config_.server; }
  bool channel_bound(const Endpoint& peer) const;

 private:
  enum class Kind { allocate, refresh, permission, channel_bind };
  struct Request {
    Kind kind = Kind::allocate;
    std::optional<IpAddress> peer_ip;  // permission
    Endpoint peer;                     // channel_bind
    std::uint16_t channel = 0;
    std::uint32_t lifetime = 0;  // refresh
    int nonce_retries = 0;       // 438s answered so far
    bool signed_request = false;
    StunTransaction transaction;
  };
  struct Permission {
    IpAddress ip;
    bool pending = false;
    Clock::time_point renew_at{};
  };
  struct Channel {
    Endpoint peer;
    std::uint16_t number = 0;
    bool bound = false;
    bool pending = false;
    Clock::time_point renew_at{};
  };

  void send_request(Kind kind, Clock::time_point now, std::optional<IpAddress> ip = {},
                    const Endpoint& peer = {}, std::uint16_t channel = 0,
                    std::uint32_t lifetime = 0, int nonce_retries = 0);
  Result<std::vector<std::uint8_t>> encode(const Request& r, const stun::TransactionId& id) const;
  void on_response(const Request& r, const stun::Message& m, std::span<const std::uint8_t> bytes,
                   Clock::time_point now);
  void on_success(const Request& r, const stun::Message& m, Clock::time_point now);
  void on_timeout(const Request& r, Clock::time_point now);
  void forget(const Request& r);
  void closed();
  void fail(Error e);
  void emit(TurnEvent e) { events_.push_back(std::move(e)); }
  void debug(const std::string& text) const;
  Clock::time_point renew_time(Clock::time_point now, std::chrono::seconds granted) const;

  TurnClientConfig config_;
  RandomFn random_;
  State state_ = State::idle;
  std::optional<turn::LongTermAuth> auth_;
  std::optional<Endpoint> relayed_;
  std::optional<Endpoint> mapped_;
  Clock::time_point refresh_at_{};
  std::vector<Request> requests_;
  std::vector<Permission> permissions_;
  std::vector<Channel> channels_;
  std::uint16_t next_channel_ = turn::kChannelMin;
  std::vector<std::vector<std::uint8_t>> outgoing_;
  std::deque<TurnEvent> events_;
};

const char* turn_state_name(TurnClient::State state) noexcept;

}  // namespace porthole::detail
