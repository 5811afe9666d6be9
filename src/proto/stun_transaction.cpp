#include "proto/stun_transaction.hpp"

#include <algorithm>
#include <utility>

namespace porthole::detail {

std::vector<std::chrono::milliseconds> retransmission_schedule(const StunRetransmission& r) {
  std::vector<std::chrono::milliseconds> at;
  std::chrono::milliseconds t{0};
  std::chrono::milliseconds rto = r.initial_rto;
  const int sends = std::max(1, r.max_transmissions);
  for (int i = 0; i < sends; ++i) {
    at.push_back(t);
    if (i + 1 < sends) {
      t += rto;
      rto *= 2;
    }
  }
  at.push_back(t + r.initial_rto * r.last_wait_factor);
  return at;
}

StunTransaction::StunTransaction(const stun::TransactionId& id, std::vector<std::uint8_t> request,
                                 const StunRetransmission& retransmission,
                                 Clock::time_point deadline)
    : id_(id),
      request_(std::move(request)),
      schedule_(retransmission_schedule(retransmission)),
      deadline_(deadline) {}

std::optional<std::span<const std::uint8_t>> StunTransaction::due(Clock::time_point now) {
  if (state_ != State::waiting) return std::nullopt;
  if (now >= deadline_) {
    state_ = State::timed_out;
    cut_by_deadline_ = true;
    return std::nullopt;
  }
  if (started_ && now < next_) return std::nullopt;
  const int max_sends = static_cast<int>(schedule_.size()) - 1;
  if (sent_ == max_sends) {  // s6.2.1: Rm * RTO after the last transmission
    state_ = State::timed_out;
    return std::nullopt;
  }
  if (sent_ == 0) first_sent_ = now;
  started_ = true;
  ++sent_;
  next_ = first_sent_ + schedule_[static_cast<std::size_t>(sent_)];
  return std::span<const std::uint8_t>(request_);
}

std::optional<Clock::time_point> StunTransaction::next_wakeup() const {
  if (state_ != State::waiting) return std::nullopt;
  if (!started_) return std::min(first_sent_, deadline_);  // now: the first transmission
  return std::min(next_, deadline_);
}

bool StunTransaction::matches(const stun::TransactionId& id) const noexcept {
  return state_ == State::waiting && id == id_;
}

void StunTransaction::answered(Clock::time_point now) {
  if (state_ != State::waiting) return;
  state_ = State::answered;
  answered_at_ = now;
}

void StunTransaction::abandon() {
  if (state_ == State::waiting) state_ = State::abandoned;
}

std::optional<stun::Message> StunTransaction::on_datagram(std::span<const std::uint8_t> bytes,
                                                          Clock::time_point now) {
  if (state_ != State::waiting) return std::nullopt;
  auto m = stun::decode(bytes);
  if (!m || !matches(m->transaction_id)) return std::nullopt;
  if (m->message_class != stun::MessageClass::success_response &&
      m->message_class != stun::MessageClass::error_response)
    return std::nullopt;
  answered(now);
  return std::move(*m);
}

}  // namespace porthole::detail
