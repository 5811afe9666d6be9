// Token buckets per source address, for the servers of `porthole serve` (STUN answers,
// connect-back checks): what one source, in a bounded table, may make us do.
#pragma once

#include <cstddef>
#include <list>
#include <string>
#include <unordered_map>

#include "net/deadline.hpp"

namespace porthole::detail {

// Token buckets per source, in a table of at most max_sources entries: when it is full,
// the source seen least recently is forgotten (it then starts again with a full
// bucket, which costs little: a forgotten source was not sending much). Time comes in
// as a parameter.
class SourceRateLimiter {
 public:
  SourceRateLimiter(double rate, double burst, std::size_t max_sources);
  // Takes a token from `source`'s bucket; false when it is empty.
  bool allow(const std::string& source, Clock::time_point now);
  std::size_t tracked() const noexcept { return entries_.size(); }

 private:
  struct Entry {
    double tokens = 0;
    Clock::time_point last{};
    std::list<std::string>::iterator recent;  // position in recent_
  };
  double rate_;
  double burst_;
  std::size_t max_sources_;
  std::unordered_map<std::string, Entry> entries_;
  std::list<std::string> recent_;  // most recently seen first
};

// One token bucket (a whole server's cap): `rate` tokens a second, at most `burst`.
class TokenBucket {
 public:
  TokenBucket(double rate, double burst);
  bool allow(Clock::time_point now);

 private:
  double rate_;
  double burst_;
  double tokens_;
  Clock::time_point last_{};
};

// Seconds from `from` to `to`, 0 when `to` is not later (a clock read out of order).
double seconds_between(Clock::time_point from, Clock::time_point to);

}  // namespace porthole::detail
