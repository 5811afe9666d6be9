// The punch agent's side of the rendezvous (docs/rendezvous.md), sans-IO: it is told
// the time and the datagrams that came from the server, and says what to send to the
// server and when it next needs to run. The agent owns the socket (the one it punches
// with, in a UdpMux) and sends what take_outgoing() gives to server().
//
// Register (steps 1-4: the challenge, the signature over it and the address the server
// reports) when started, and again before the granted LIFETIME runs out; Connect with a
// signed offer (sent again, same bytes, new transaction, every `reconnect_interval`
// after the server accepted it until an answer from that peer arrives: that covers a
// lost indication); Answer with a signed answer. Every request is a STUN transaction
// (proto/stun_transaction.hpp), retransmitted on the given schedule. What happens comes
// out as events. Descriptions are passed on as they arrived: checking them
// (rendezvous::open_description, session IDs, replays) is the agent's.
#pragma once

#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <optional>
#include <span>
#include <vector>

#include "codec/rendezvous_codec.hpp"
#include "net/deadline.hpp"
#include "porthole/error.hpp"
#include "porthole/identity.hpp"
#include "porthole/ip_address.hpp"
#include "proto/stun_transaction.hpp"

namespace porthole::detail {

struct RendezvousEvent {
  enum class Type {
    registered,        // online; `observed`: our address as the server sees it
    not_online,        // 404 to a Connect or an Answer: `peer` is not there (any more)
    connect_accepted,  // the server forwarded our offer to `peer` (said once per
                       // connect(), not for the resends); `observed` as above
    offer_received,    // `description` (unchecked) from `offerer` (XOR-PEER-ADDRESS)
    answer_received,   // `description` (unchecked)
    failed,            // `error`: Errc::no_service (no answer) or Errc::refused
  };
  Type type = Type::failed;
  Endpoint observed;
  PeerId peer;
  rendezvous::SignedDescription description;
  Endpoint offerer;
  Error error = make_error(Errc::internal, "");
};

// Fills the span with random bytes (transaction IDs).
using RandomFn = std::function<void(std::span<std::uint8_t>)>;

struct RendezvousClientOptions {
  StunRetransmission retransmission{std::chrono::milliseconds{250}, 6, 8};
  std::uint32_t lifetime = 60;  // the LIFETIME we ask for, seconds
  std::chrono::milliseconds reconnect_interval{2000};
};

class RendezvousClient {
 public:
  // No request runs past `deadline` (Clock::time_point::max(): none); a refresh that
  // would be due after it is not made.
  RendezvousClient(Identity identity, Endpoint server, Clock::time_point deadline, RandomFn random,
                   RendezvousClientOptions options = {});

  // Registers: the first Register request is due at once.
  void start(Clock::time_point now);
  // Sends `offer` (signed by us, for `target`) in a Connect request.
  void connect(const PeerId& target, rendezvous::SignedDescription offer, Clock::time_point now);
  // Sends `answer` in an Answer request, to be relayed to where `target`'s offer came from.
  void answer(const PeerId& target, const rendezvous::SignedDescription& answer,
              Clock::time_point now);
  // Goes offline (a signed Register with LIFETIME 0, one transaction, no event); no
  // more refreshes. Needs a challenge from an earlier registration, else does nothing.
  void stop(Clock::time_point now);

  // A datagram that arrived; false (ignored) unless it is from server() and a
  // rendezvous message for us.
  bool on_datagram(std::span<const std::uint8_t> bytes, const Endpoint& from,
                   Clock::time_point now);
  // Retransmissions, refreshes and give-ups due at `now`.
  void on_timer(Clock::time_point now);
  // The datagrams to send to server(), oldest first; empties the queue.
  std::vector<std::vector<std::uint8_t>> take_outgoing();
  // When on_timer() next has something to do; nothing when idle.
  std::optional<Clock::time_point> next_wakeup() const;
  std::optional<RendezvousEvent> next_event();

  bool registered() const noexcept { return registered_; }
  // Our address as the server last reported it.
  const std::optional<Endpoint>& observed() const noexcept { return observed_; }
  const Endpoint& server() const noexcept { return server_; }
  const PeerId& id() const noexcept { return identity_.id(); }

 private:
  enum class Op { hello, signed_register, unregister, connect, answer };
  struct Pending {
    Op op;
    StunTransaction transaction;
    PeerId target;
  };
  struct Offer {
    PeerId target;
    rendezvous::SignedDescription offer;
    std::optional<Clock::time_point> resend_at;  // set once the server accepted it
    bool accepted = false;                       // connect_accepted said (once per offer)
  };

  void send(Op op, rendezvous::Message m, const PeerId& target, Clock::time_point now);
  void send_hello(Clock::time_point now);
  void send_signed_register(std::uint32_t lifetime, Op op, Clock::time_point now);
  void send_relay(std::uint16_t method, const PeerId& target,
                  const rendezvous::SignedDescription& description, Clock::time_point now);
  void on_response(const Pending& p, const rendezvous::Message& m, Clock::time_point now);
  void on_register_response(const rendezvous::Message& m, Clock::time_point now);
  void on_indication(const rendezvous::Message& m);
  void pump(Clock::time_point now);
  void fail(Errc code, std::string message);
  void emit(RendezvousEvent e) { events_.push_back(std::move(e)); }
  std::string server_text() const;

  Identity identity_;
  Endpoint server_;
  Clock::time_point deadline_;
  RandomFn random_;
  RendezvousClientOptions options_;
  std::vector<Pending> pending_;
  std::vector<Offer> offers_;
  std::vector<std::vector<std::uint8_t>> outgoing_;
  std::deque<RendezvousEvent> events_;
  bool started_ = false;
  bool registered_ = false;
  bool stopped_ = false;
  int challenges_in_a_row_ = 0;
  std::optional<std::vector<std::uint8_t>> challenge_;  // the last one, for refreshes
  std::optional<Endpoint> observed_;
  std::optional<Clock::time_point> refresh_at_;
};

}  // namespace porthole::detail
