#include "core/hold_schedule.hpp"

#include <algorithm>

#include "codec/pcp_codec.hpp"

namespace porthole::detail {

std::vector<std::chrono::milliseconds> hold_renewal_points(Protocol protocol,
                                                           std::uint32_t lifetime,
                                                           std::span<const double> random01) {
  if (lifetime == 0) return {};
  if (protocol == Protocol::pcp) return pcp::renewal_schedule(lifetime, random01);
  // The same halvings, each at the start of its window: 1/2, 3/4, 7/8, ... (with the
  // same 4 s minimum spacing, so a short lease is not hammered near its end).
  std::vector<double> starts(random01.size(), 0.0);
  return pcp::renewal_schedule(lifetime, starts);
}

std::chrono::milliseconds next_backoff(std::chrono::milliseconds previous,
                                       std::chrono::milliseconds retry_min,
                                       std::chrono::milliseconds retry_max) noexcept {
  if (previous.count() <= 0) return std::min(retry_min, retry_max);
  return std::clamp(previous * 2, retry_min, retry_max);
}

}  // namespace porthole::detail
