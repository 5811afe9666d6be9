// The decisions of a punch that need no socket (src/core/punch.cpp uses them): who
// answers whose offer, and the hint a failure gives.
#pragma once

#include <optional>
#include <string>

#include "codec/rendezvous_codec.hpp"
#include "porthole/identity.hpp"
#include "porthole/punch.hpp"

namespace porthole::detail {

// Glare (both offers got through the rendezvous): the offer of the peer whose public key
// is the smaller, compared byte by byte, wins; both sides compute the same answer. True
// when `self`'s offer is the one both answer.
bool own_offer_wins(const PeerId& self, const PeerId& peer) noexcept;

// What a failed punch suggests, from each side's NAT mapping (RFC 4787 s4.1); empty
// when nothing points anywhere. `peer` is empty when no description of the peer came.
std::string punch_hint(rendezvous::NatMapping local, std::optional<rendezvous::NatMapping> peer);

}  // namespace porthole::detail
