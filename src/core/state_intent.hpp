// The state's read-modify-write steps `open`, `close` and `hold` share: an intent
// written before a request goes out, the outcome after it, the earlier record put back
// when the request failed. Each step takes the lock, re-reads the file (another
// porthole may have written since), changes it, writes it and lets the lock go; none
// is held across a network exchange (state/state_store.hpp).
#pragma once

#include <optional>
#include <string>

#include "core/session.hpp"
#include "state/state_store.hpp"

namespace porthole::detail {

template <class Change>
Status update_state(const Session& s, Deadline deadline, Change&& change) {
  auto store = StateStore::open(state_dir_for(s.options), deadline);
  if (!store) return store.error();
  change(*store);
  return store->save();
}

Status record_mapping(const Session& s, Deadline deadline, const StoredMapping& rec);

// The intent goes in before the router is asked; failing, nothing is sent at all (the
// error says so).
Status record_intent(const Session& s, Deadline deadline, const StoredMapping& intent);
// The same into a store the caller opened (and holds locked) already.
Status record_intent(StateStore& store, const StoredMapping& intent);

// Puts back what the state said before `intent` (the request failed or was undone).
void restore_prior(const Session& s, Deadline deadline, const StoredMapping& intent,
                   const std::optional<StoredMapping>& prior);

// The pending record of a MAP about to be sent with `params` through `p`: killed or
// failing at any later point, the state still says what may be on the router and, for
// PCP, the nonce that can delete it (RFC 6887 s15).
StoredMapping map_intent(const Session& s, Protocol p, const MapParams& params,
                         const std::optional<IpAddress>& external_ip);

}  // namespace porthole::detail
