// Deadlines: every network wait in porthole is bounded by one of these.
#pragma once

#include <chrono>

namespace porthole::detail {

using Clock = std::chrono::steady_clock;
using Deadline = Clock::time_point;

inline std::chrono::milliseconds remaining(Deadline d) {
  auto left = std::chrono::duration_cast<std::chrono::milliseconds>(d - Clock::now());
  return left.count() > 0 ? left : std::chrono::milliseconds(0);
}
inline bool expired(Deadline d) { return Clock::now() >= d; }

}  // namespace porthole::detail
