#include "net/rate_limiter.hpp"

#include <algorithm>

namespace porthole::detail {

double seconds_between(Clock::time_point from, Clock::time_point to) {
  if (to <= from) return 0.0;
  return std::chrono::duration<double>(to - from).count();
}

SourceRateLimiter::SourceRateLimiter(double rate, double burst, std::size_t max_sources)
    : rate_(rate),
      burst_(std::max(1.0, burst)),
      max_sources_(std::max<std::size_t>(1, max_sources)) {}

bool SourceRateLimiter::allow(const std::string& source, Clock::time_point now) {
  auto it = entries_.find(source);
  if (it == entries_.end()) {
    if (entries_.size() >= max_sources_) {
      entries_.erase(recent_.back());
      recent_.pop_back();
    }
    recent_.push_front(source);
    it = entries_.emplace(source, Entry{burst_, now, recent_.begin()}).first;
  } else {
    Entry& e = it->second;
    e.tokens = std::min(burst_, e.tokens + rate_ * seconds_between(e.last, now));
    e.last = std::max(e.last, now);
    recent_.splice(recent_.begin(), recent_, e.recent);  // now the most recent
  }
  Entry& e = it->second;
  if (e.tokens < 1.0) return false;
  e.tokens -= 1.0;
  return true;
}

TokenBucket::TokenBucket(double rate, double burst)
    : rate_(rate), burst_(std::max(1.0, burst)), tokens_(burst_) {}

bool TokenBucket::allow(Clock::time_point now) {
  tokens_ = std::min(burst_, tokens_ + rate_ * seconds_between(last_, now));
  last_ = std::max(last_, now);
  if (tokens_ < 1.0) return false;
  tokens_ -= 1.0;
  return true;
}

}  // namespace porthole::detail
