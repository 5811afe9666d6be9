// The pieces of a punch that do not depend on who owns the socket and the reactor:
// randomness for ICE credentials and transactions, the rendezvous client's schedule,
// signing a session description, and the ICE agent's configuration with signed checks
// (docs/rendezvous.md). punch() (core/punch.cpp) runs them on a socket of its own; the
// tunnel's expose side (src/tunnel/) runs them for several peers on its one socket.
#pragma once

#include <chrono>
#include <cstddef>
#include <span>
#include <string>

#include "codec/rendezvous_codec.hpp"
#include "codec/stun_codec.hpp"
#include "core/ice_agent.hpp"
#include "net/deadline.hpp"
#include "porthole/identity.hpp"
#include "porthole/log.hpp"
#include "proto/rendezvous_client.hpp"

namespace porthole::detail {

// GnuTLS' generator, the kernel's if that fails.
void fill_random(std::span<std::uint8_t> out);
// RFC 8445 s5.3 ice-chars.
std::string random_ice_chars(std::size_t n);
stun::TransactionId random_transaction_id();

// Rendezvous requests: sent at 0, 200, 600, 1400 and 3000 ms, given up at 3800 ms; an
// offer relayed but not answered goes again after 1.5 s (a lost indication).
RendezvousClientOptions punch_rendezvous_options();

// The description encoded and signed by `identity`.
Result<rendezvous::SignedDescription> sign_description(const Identity& identity,
                                                       const rendezvous::Description& d);

// The ICE agent's configuration for checks with `peer`: signed by `identity`, the
// peer's signatures required (docs/rendezvous.md, signed checks). The tie-breaker is
// random; the functions hold copies of identity and peer.
IceAgentConfig punch_agent_config(const Identity& identity, const PeerId& peer, bool controlling,
                                  const std::string& ufrag, const std::string& password,
                                  Clock::time_point deadline, const LogFn& log);

}  // namespace porthole::detail
