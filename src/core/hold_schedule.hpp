// When `hold` does what: renewal points per protocol and the back-off while nothing
// answers. Pure functions of the values passed in (random numbers included), so the
// unit tests pin them down.
#pragma once

#include <chrono>
#include <cstdint>
#include <span>
#include <vector>

#include "porthole/types.hpp"

namespace porthole::detail {

// Offsets from the grant at which to try renewing a mapping of `lifetime` seconds;
// attempt k+1 only if attempt k failed. Empty for a permanent (0) lease.
//  PCP (RFC 6887 s11.2.1): a random point in 1/2..5/8 of the lifetime, then in
//    3/4..3/4+1/16, 7/8..7/8+1/32, ... (pcp::renewal_schedule), `random01` per attempt.
//  NAT-PMP (RFC 6886 s3.3: "renew ... halfway to expiry") and UPnP (the IGD has no rule:
//    half the lease, as for NAT-PMP): at 1/2, then the same halvings without the random
//    spread.
std::vector<std::chrono::milliseconds> hold_renewal_points(Protocol protocol,
                                                           std::uint32_t lifetime,
                                                           std::span<const double> random01);

// The next wait after a failed attempt: `retry_min` the first time (previous 0), then
// doubled, never above `retry_max`.
std::chrono::milliseconds next_backoff(std::chrono::milliseconds previous,
                                       std::chrono::milliseconds retry_min,
                                       std::chrono::milliseconds retry_max) noexcept;

}  // namespace porthole::detail
