// Which recorded mappings `close --via` and `close --all` touch: a pure choice over the
// state's entries, kept apart from the network so the unit tests can drive it.
#pragma once

#include <vector>

#include "porthole/ip_address.hpp"
#include "porthole/types.hpp"
#include "state/state_store.hpp"

namespace porthole::detail {

// Whether a mapping made with `made` is one `via` asks for (automatic: any).
bool via_selects(Via via, Protocol made) noexcept;

struct CloseAllPlan {
  // This host's mappings on this gateway made with a selected protocol, in the order
  // they are closed: by transport, then internal port.
  std::vector<StoredMapping> close;
  // Recorded for another gateway or another address of this host (the host moved
  // networks): they cannot be reached from here and are left in the state.
  std::vector<StoredMapping> elsewhere;
};
CloseAllPlan plan_close_all(const std::vector<StoredMapping>& stored, const IpAddress& gateway,
                            const IpAddress& me, Via via);

}  // namespace porthole::detail
