// The sans-IO STUN transaction (RFC 8489 s6.2.1) driven by a fake clock: the schedule,
// the deadline cutting it short, matching of the transaction ID, the final states.
#include <catch2/catch.hpp>

#include <chrono>
#include <cstdint>
#include <vector>

#include "codec/stun_codec.hpp"
#include "proto/stun_transaction.hpp"
#include "ip_literal.hpp"

using porthole::test::ip;

namespace stun = porthole::detail::stun;
using porthole::detail::Clock;
using porthole::detail::StunRetransmission;
using porthole::detail::StunTransaction;
using std::chrono::milliseconds;
using Bytes = std::vector<std::uint8_t>;

namespace {

const stun::TransactionId kId = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12};
const Clock::time_point kT0 = Clock::time_point{} + std::chrono::hours(5);

Bytes request(const stun::TransactionId& id = kId) {
  return stun::encode_binding_request({id, {}, "", true});
}

Bytes success(const stun::TransactionId& id) {
  stun::BindingSuccess s;
  s.transaction_id = id;
  s.mapped = {ip("192.0.2.1"), 32853};
  return *stun::encode_binding_success(s);
}

// Runs the transaction the way a poll loop would: wakes at next_wakeup() until settled,
// returning the offsets from kT0 of every transmission.
std::vector<milliseconds> run_silent(StunTransaction& tx, Clock::time_point& now) {
  std::vector<milliseconds> sent;
  while (!tx.settled()) {
    if (tx.due(now)) sent.push_back(std::chrono::duration_cast<milliseconds>(now - kT0));
    if (auto next = tx.next_wakeup()) now = std::max(now, *next);
  }
  return sent;
}

}  // namespace

TEST_CASE("STUN transaction: the full RFC 8489 s6.2.1 schedule, then timeout",
          "[stun_transaction]") {
  StunTransaction tx(kId, request(), StunRetransmission{}, kT0 + std::chrono::hours(1));
  Clock::time_point now = kT0;
  const auto sent = run_silent(tx, now);
  CHECK(sent == std::vector<milliseconds>{milliseconds(0), milliseconds(500), milliseconds(1500),
                                          milliseconds(3500), milliseconds(7500),
                                          milliseconds(15500), milliseconds(31500)});
  CHECK(now - kT0 == milliseconds(39500));  // Rm = 16 initial RTOs after the last one
  CHECK(tx.state() == StunTransaction::State::timed_out);
  CHECK_FALSE(tx.cut_by_deadline());
  CHECK(tx.transmissions() == 7);
  CHECK_FALSE(tx.next_wakeup());
  CHECK_FALSE(tx.due(now + std::chrono::hours(1)));  // settled: nothing more, ever
}

TEST_CASE("STUN transaction: every transmission is the same request", "[stun_transaction]") {
  const Bytes bytes = request();
  StunTransaction tx(kId, bytes, StunRetransmission{milliseconds(10), 3, 2},
                     kT0 + milliseconds(999));
  auto first = tx.due(kT0);
  REQUIRE(first);
  CHECK(Bytes(first->begin(), first->end()) == bytes);
  CHECK_FALSE(tx.due(kT0 + milliseconds(9)));  // not due before the RTO
  CHECK(tx.next_wakeup() == kT0 + milliseconds(10));
  auto second = tx.due(kT0 + milliseconds(12));  // a late wake-up still sends once
  REQUIRE(second);
  CHECK(Bytes(second->begin(), second->end()) == bytes);
  // The schedule counts from the first transmission, not from the late wake-up.
  CHECK(tx.next_wakeup() == kT0 + milliseconds(30));
  CHECK(tx.due(kT0 + milliseconds(30)));
  CHECK(tx.next_wakeup() == kT0 + milliseconds(50));  // 30 + Rm * 10
  CHECK_FALSE(tx.due(kT0 + milliseconds(49)));
  CHECK_FALSE(tx.settled());
  CHECK_FALSE(tx.due(kT0 + milliseconds(50)));
  CHECK(tx.state() == StunTransaction::State::timed_out);
  CHECK(tx.transmissions() == 3);
}

TEST_CASE("STUN transaction: the deadline cuts the schedule short", "[stun_transaction]") {
  StunTransaction tx(kId, request(), StunRetransmission{}, kT0 + milliseconds(2000));
  Clock::time_point now = kT0;
  const auto sent = run_silent(tx, now);
  CHECK(sent == std::vector<milliseconds>{milliseconds(0), milliseconds(500), milliseconds(1500)});
  CHECK(now - kT0 == milliseconds(2000));
  CHECK(tx.state() == StunTransaction::State::timed_out);
  CHECK(tx.cut_by_deadline());

  StunTransaction late(kId, request(), StunRetransmission{}, kT0);
  CHECK_FALSE(late.due(kT0));  // a deadline already passed: nothing is sent at all
  CHECK(late.state() == StunTransaction::State::timed_out);
  CHECK(late.transmissions() == 0);
}

TEST_CASE("STUN transaction: Rc = 1 sends once and waits Rm * RTO", "[stun_transaction]") {
  StunTransaction tx(kId, request(), StunRetransmission{milliseconds(100), 1, 3},
                     kT0 + std::chrono::hours(1));
  Clock::time_point now = kT0;
  CHECK(run_silent(tx, now) == std::vector<milliseconds>{milliseconds(0)});
  CHECK(now - kT0 == milliseconds(300));
}

TEST_CASE("STUN transaction: the answer must carry our transaction ID", "[stun_transaction]") {
  StunTransaction tx(kId, request(), StunRetransmission{}, kT0 + std::chrono::hours(1));
  REQUIRE(tx.due(kT0));
  REQUIRE(tx.due(kT0 + milliseconds(500)));
  stun::TransactionId other = kId;
  other[11] ^= 1;
  CHECK_FALSE(tx.matches(other));
  CHECK_FALSE(tx.on_datagram(success(other), kT0 + milliseconds(600)));
  CHECK_FALSE(tx.on_datagram(Bytes{1, 2, 3}, kT0 + milliseconds(600)));
  CHECK_FALSE(tx.on_datagram(request(), kT0 + milliseconds(600)));  // our own request echoed
  CHECK_FALSE(tx.settled());
  CHECK(tx.matches(kId));
  auto m = tx.on_datagram(success(kId), kT0 + milliseconds(700));
  REQUIRE(m);
  CHECK(m->xor_mapped_address == stun::Endpoint{ip("192.0.2.1"), 32853});
  CHECK(tx.state() == StunTransaction::State::answered);
  CHECK(tx.elapsed() == milliseconds(700));
  CHECK(tx.transmissions() == 2);
  CHECK_FALSE(tx.matches(kId));  // settled: a duplicate answer is not ours any more
  CHECK_FALSE(tx.on_datagram(success(kId), kT0 + milliseconds(800)));
  CHECK_FALSE(tx.next_wakeup());
  CHECK_FALSE(tx.due(kT0 + milliseconds(1500)));
}

TEST_CASE("STUN transaction: an error response settles it too, abandon stops it",
          "[stun_transaction]") {
  StunTransaction tx(kId, request(), StunRetransmission{}, kT0 + std::chrono::hours(1));
  REQUIRE(tx.due(kT0));
  auto error = stun::encode_binding_error({kId, 420, "Unknown Attribute", {0x7777}, "", false});
  REQUIRE(error);
  auto m = tx.on_datagram(*error, kT0 + milliseconds(5));
  REQUIRE(m);
  CHECK(m->error_code->code == 420);
  CHECK(tx.state() == StunTransaction::State::answered);

  StunTransaction gone(kId, request(), StunRetransmission{}, kT0 + std::chrono::hours(1));
  REQUIRE(gone.due(kT0));
  gone.abandon();
  CHECK(gone.state() == StunTransaction::State::abandoned);
  CHECK_FALSE(gone.due(kT0 + milliseconds(500)));
  CHECK_FALSE(gone.on_datagram(success(kId), kT0 + milliseconds(501)));
}
