// One STUN client transaction over UDP as a sans-IO state machine (RFC 8489 s6.2.1):
// it is told the time and the datagrams that arrive, and says what to send and when
// it next needs to run. No socket, no clock of its own: a poll loop (StunClient today,
// a reactor later) drives it, and a unit test drives it with a fake clock.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <span>
#include <vector>

#include "codec/stun_codec.hpp"
#include "net/deadline.hpp"

namespace porthole::detail {

// s6.2.1: RTO starts at `initial_rto` and doubles after each transmission; Rc
// transmissions in all; after the last one the client waits Rm times the initial RTO.
struct StunRetransmission {
  std::chrono::milliseconds initial_rto{500};
  int max_transmissions = 7;  // Rc (at least 1 is sent)
  int last_wait_factor = 16;  // Rm
};

// Offsets from the first transmission at which each transmission is due, then (last
// element) the moment the transaction fails: {0, 500, 1500, ..., 31500, 39500} ms for
// the defaults.
std::vector<std::chrono::milliseconds> retransmission_schedule(const StunRetransmission& r);

class StunTransaction {
 public:
  enum class State {
    waiting,    // sending or waiting for the answer
    answered,   // a response with our transaction ID was accepted
    timed_out,  // the deadline, or the end of the schedule, came first
    abandoned,  // the caller gave up (a send failed, ...)
  };

  // `request`: the encoded request carrying `id`; every transmission sends these same
  // bytes (a retransmission is the same transaction). The first one is due at once.
  StunTransaction(const stun::TransactionId& id, std::vector<std::uint8_t> request,
                  const StunRetransmission& retransmission, Clock::time_point deadline);

  // The request when a transmission is due at `now` (counted as sent); nothing
  // otherwise. Settles the transaction as timed out once the deadline or Rm * RTO
  // after the last transmission has passed.
  std::optional<std::span<const std::uint8_t>> due(Clock::time_point now);
  // When due() next has something to do (a transmission or the give-up time, never
  // after the deadline); nothing once settled.
  std::optional<Clock::time_point> next_wakeup() const;

  // True while waiting and `id` is ours: the caller may then accept the answer.
  bool matches(const stun::TransactionId& id) const noexcept;
  void answered(Clock::time_point now);
  void abandon();

  // For users without their own acceptance rules: decodes `bytes`; a success or error
  // response with our transaction ID settles the transaction and is returned. Anything
  // else (junk, a request, another ID, after settling) is ignored.
  std::optional<stun::Message> on_datagram(std::span<const std::uint8_t> bytes,
                                           Clock::time_point now);

  State state() const noexcept { return state_; }
  bool settled() const noexcept { return state_ != State::waiting; }
  // Whether the timeout was the caller's deadline (true) or the schedule's end.
  bool cut_by_deadline() const noexcept { return cut_by_deadline_; }
  const stun::TransactionId& id() const noexcept { return id_; }
  int transmissions() const noexcept { return sent_; }
  Clock::time_point first_sent() const noexcept { return first_sent_; }
  // From the first transmission to the answer; zero until answered.
  Clock::duration elapsed() const noexcept { return answered_at_ - first_sent_; }

 private:
  stun::TransactionId id_;
  std::vector<std::uint8_t> request_;
  std::vector<std::chrono::milliseconds> schedule_;
  Clock::time_point deadline_;
  Clock::time_point next_{};  // the next transmission, or the give-up time
  Clock::time_point first_sent_{};
  Clock::time_point answered_at_{};
  int sent_ = 0;
  bool started_ = false;
  bool cut_by_deadline_ = false;
  State state_ = State::waiting;
};

}  // namespace porthole::detail
