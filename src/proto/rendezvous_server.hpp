// The rendezvous server of `porthole serve` (docs/rendezvous.md): who is online now,
// and the relay of signed offers and answers between two peers. Sans-IO: a datagram,
// its source and the time in, at most two datagrams out; the glue at the end puts it
// on the STUN server's primary UDP socket, so STUN Binding and rendezvous share a port.
//
// Built to sit on the public internet:
//  - registration is proved: a stateless challenge (HMAC-SHA256 of the source address
//    and a time window under a random secret of this process; the current and the
//    previous window are accepted), signed by the peer's key together with the address
//    the server sees (rendezvous::verify_registration), so nobody goes online as
//    someone else, and an overheard registration replayed elsewhere does not verify;
//  - nothing is forwarded for an anonymous source: a Connect or Answer must come from
//    the address its signer is registered at, signed by that key, and goes only to the
//    address the other peer proved (or, for an answer, where the offer came from);
//  - every table is bounded (peers, pending sessions, rate-limited sources), entries
//    expire, and nothing is written to disk;
//  - a token bucket per source IP and one for the whole server, before any decoding,
//    and one for the signature checks (only after a valid challenge, or a sender
//    registered at the source);
//  - malformed datagrams, responses and indications are dropped without a word.
#pragma once

#include <array>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <list>
#include <map>
#include <optional>
#include <span>
#include <string>
#include <unordered_map>
#include <vector>

#include "codec/rendezvous_codec.hpp"
#include "net/deadline.hpp"
#include "net/rate_limiter.hpp"
#include "porthole/identity.hpp"
#include "porthole/ip_address.hpp"
#include "porthole/log.hpp"

namespace porthole::detail {

class StunServer;

struct RendezvousConfig {
  std::size_t max_peers = 10000;     // the online table
  std::size_t max_sessions = 10000;  // offers waiting for their answer
  std::uint32_t min_lifetime = 30;   // granted LIFETIME, seconds: the wish, clamped
  std::uint32_t max_lifetime = 300;
  std::uint32_t default_lifetime = 60;        // when the Register names none
  std::chrono::seconds challenge_window{30};  // a challenge is good for 1..2 windows
  std::chrono::seconds session_lifetime{30};  // how long an answer can still be routed
  double per_source_rate = 20.0;              // requests per second from one source IP...
  double per_source_burst = 40.0;             // ...after a burst of this many
  std::size_t max_sources = 4096;             // sources tracked by the rate limiter
  double total_rate = 2000.0;                 // requests per second for the whole server
  double total_burst = 2000.0;
  // Ed25519 verifications per second for the whole server (the costly step: a
  // signed request past this is dropped unanswered, like a rate-limited one).
  double verify_rate = 500.0;
  double verify_burst = 500.0;
  // The challenge secret; empty (default): 32 random bytes. Tests set it.
  std::vector<std::uint8_t> secret;
  LogFn log;  // debug: one line per event
};

// Error codes beyond the codec's (docs/rendezvous.md): a signature that does not verify
// or a sender not registered at its source; a full table.
inline constexpr int kRendezvousForbidden = 403;
inline constexpr int kRendezvousFull = 508;  // RFC 8656's Insufficient Capacity

class RendezvousResponder {
 public:
  explicit RendezvousResponder(const RendezvousConfig& config);

  struct Datagram {
    Endpoint to;
    std::vector<std::uint8_t> bytes;
    friend bool operator==(const Datagram&, const Datagram&) = default;
  };

  // One datagram from `source`; what to send (an answer to the source first, then at
  // most one indication to another peer).
  std::vector<Datagram> handle(std::span<const std::uint8_t> datagram, const Endpoint& source,
                               Clock::time_point now);

  struct Counters {
    std::uint64_t received = 0;
    std::uint64_t challenges = 0;    // 401s sent
    std::uint64_t registered = 0;    // registrations accepted (refreshes included)
    std::uint64_t unregistered = 0;  // LIFETIME 0
    std::uint64_t refused = 0;       // 403: bad signature, not registered at the source
    std::uint64_t not_online = 0;    // 404s
    std::uint64_t forwarded = 0;     // indications sent (offers and answers)
    std::uint64_t errors_sent = 0;   // 400, 420, 508
    std::uint64_t dropped = 0;       // malformed, responses, indications
    std::uint64_t rate_limited = 0;
  };
  const Counters& counters() const noexcept { return counters_; }
  // Peers in the table (expired ones count until the next sweep).
  std::size_t online() const noexcept { return peers_.size(); }
  std::size_t pending_sessions() const noexcept { return sessions_.size(); }
  std::size_t tracked_sources() const noexcept { return per_source_.tracked(); }
  // Where `peer` is online at `now`, if it is.
  std::optional<Endpoint> address_of(const PeerId& peer, Clock::time_point now) const;

  // The challenge for `source` in the window containing `now` (for tests).
  std::vector<std::uint8_t> challenge_for(const Endpoint& source, Clock::time_point now) const;

 private:
  struct Peer {
    Endpoint address;
    Clock::time_point expires;
  };
  struct Session {
    Endpoint offerer_address;
    Clock::time_point expires;
    std::list<std::string>::iterator order;  // position in session_order_
  };
  using Key = std::array<std::uint8_t, 32>;

  std::vector<Datagram> on_register(const rendezvous::Message& m, const Endpoint& source,
                                    Clock::time_point now);
  std::vector<Datagram> on_relay(const rendezvous::Message& m, const Endpoint& source,
                                 Clock::time_point now);
  std::vector<std::uint8_t> challenge_at(const Endpoint& source, std::int64_t window) const;
  std::int64_t window_of(Clock::time_point now) const;
  bool challenge_valid(std::span<const std::uint8_t> challenge, const Endpoint& source,
                       Clock::time_point now) const;
  void sweep(Clock::time_point now);
  void remember_session(const std::string& key, const Endpoint& offerer, Clock::time_point now);
  std::vector<Datagram> reply(const rendezvous::Message& request, const Endpoint& source,
                              rendezvous::Message answer);
  std::vector<Datagram> error(const rendezvous::Message& request, const Endpoint& source, int code,
                              std::string_view why);
  void debug(std::string_view text) const;

  RendezvousConfig config_;
  std::vector<std::uint8_t> secret_;
  SourceRateLimiter per_source_;
  TokenBucket total_;
  TokenBucket verifications_;
  std::map<Key, Peer> peers_;
  std::unordered_map<std::string, Session> sessions_;
  std::list<std::string> session_order_;  // oldest first (all live equally long)
  Clock::time_point last_sweep_{};
  Counters counters_;
};

// True when `datagram` looks like a STUN message of a rendezvous method (header only:
// the first two bits zero, the magic cookie, the method): the datagrams serve hands to
// the responder instead of the STUN responder.
bool is_rendezvous_datagram(std::span<const std::uint8_t> datagram) noexcept;

// Puts `responder` on `server`'s primary socket: rendezvous datagrams go to it, and its
// answers are sent from that socket. Both must outlive the server's watches.
// A failed send is logged on `log` (debug) and forgotten.
void attach_rendezvous(StunServer& server, RendezvousResponder& responder, LogFn log);

}  // namespace porthole::detail
