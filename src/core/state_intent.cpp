#include "core/state_intent.hpp"

#include <ctime>

namespace porthole::detail {

Status record_mapping(const Session& s, Deadline deadline, const StoredMapping& rec) {
  return update_state(s, deadline, [&](StateStore& st) { st.upsert(rec); });
}

namespace {

Status intent_status(Status st) {
  if (st) return st;
  Error e = st.error();
  e.message += "\n  nothing was sent to the router";
  return e;
}

}  // namespace

Status record_intent(const Session& s, Deadline deadline, const StoredMapping& intent) {
  return intent_status(record_mapping(s, deadline, intent));
}

Status record_intent(StateStore& store, const StoredMapping& intent) {
  store.upsert(intent);
  return intent_status(store.save());
}

void restore_prior(const Session& s, Deadline deadline, const StoredMapping& intent,
                   const std::optional<StoredMapping>& prior) {
  (void)update_state(s, deadline, [&](StateStore& st) {
    if (prior)
      st.upsert(*prior);
    else
      st.remove(intent.gateway, intent.mapping.internal_ip, intent.mapping.transport,
                intent.mapping.internal_port);
  });
}

StoredMapping map_intent(const Session& s, Protocol p, const MapParams& params,
                         const std::optional<IpAddress>& external_ip) {
  StoredMapping intent;
  intent.gateway = s.gateway.gateway_ip;
  intent.mapping.protocol = p;
  intent.mapping.transport = params.transport;
  intent.mapping.internal_ip = s.gateway.local_ip;
  intent.mapping.internal_port = params.internal_port;
  intent.mapping.external_ip = external_ip;
  intent.mapping.external_port = params.suggested_external_port;
  intent.mapping.lifetime = params.lifetime;
  intent.mapping.expires_at = params.lifetime
                                  ? static_cast<std::int64_t>(std::time(nullptr)) + params.lifetime
                                  : 0;
  intent.mapping.description = params.description;
  intent.has_nonce = p == Protocol::pcp;
  intent.nonce = params.nonce;
  intent.pending = true;
  return intent;
}

}  // namespace porthole::detail
