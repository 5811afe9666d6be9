// The pure parts of include/porthole/punch.hpp and src/core/punch_rules.hpp.
#include <unistd.h>

#include <algorithm>
#include <string>

#include "core/ice_agent.hpp"
#include "core/punch_rules.hpp"
#include "porthole/punch.hpp"

namespace porthole {

// The agent's enum (core/ice_agent.hpp) has the same values in the same order.
const char* path_kind_name(PathKind kind) noexcept {
  return detail::path_kind_name(static_cast<detail::PathKind>(kind));
}

const char* pair_outcome_name(PairOutcome outcome) noexcept {
  switch (outcome) {
    case PairOutcome::not_tried: return "not-tried";
    case PairOutcome::failed: return "failed";
    case PairOutcome::succeeded: return "succeeded";
    case PairOutcome::nominated: return "nominated";
  }
  return "?";
}

OwnedFd& OwnedFd::operator=(OwnedFd&& other) noexcept {
  if (this != &other) {
    if (fd_ >= 0) ::close(fd_);
    fd_ = other.release();
  }
  return *this;
}

OwnedFd::~OwnedFd() {
  if (fd_ >= 0) ::close(fd_);
}

int OwnedFd::release() noexcept {
  int fd = fd_;
  fd_ = -1;
  return fd;
}

namespace detail {

bool own_offer_wins(const PeerId& self, const PeerId& peer) noexcept {
  return std::lexicographical_compare(self.key.begin(), self.key.end(), peer.key.begin(),
                                      peer.key.end());
}

std::string punch_hint(rendezvous::NatMapping local, std::optional<rendezvous::NatMapping> peer) {
  using rendezvous::NatMapping;
  auto hard = [](NatMapping m) {
    return m == NatMapping::address_dependent || m == NatMapping::address_and_port_dependent;
  };
  if (!peer) return "no description of the peer arrived: is it running porthole punch naming us?";
  if (hard(local) && hard(*peer)) return "both sides behind symmetric NAT: needs a relay";
  if (hard(*peer)) return "peer behind symmetric NAT: needs port prediction or a relay";
  if (hard(local)) return "this host is behind symmetric NAT: needs port prediction or a relay";
  return {};
}

}  // namespace detail
}  // namespace porthole
