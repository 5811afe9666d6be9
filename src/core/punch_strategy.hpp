// How a punch goes about it, from both sides' NAT behaviour (the signed descriptions
// carry each side's mapping and port allocation, src/codec/rendezvous_codec.hpp): pure
// decisions, no socket. src/core/punch.cpp acts on them.
//
//   direct      neither mapping depends on the destination (RFC 4787 s4.1): the plain
//               ICE checks (RFC 8445) find the path.
//   prediction  one side's mapping is destination-dependent but its ports follow a
//               pattern (preserved, or sequential with a step): the other side sends
//               probes to the ports that side's next mapping will get.
//   birthday    one side's mapping is destination-dependent with random ports, the
//               other's endpoint-independent: the hard side opens extra sockets toward
//               the easy side (each a new mapping on its NAT), the easy side probes
//               random ports of the hard side's address until one of them is hit
//               (1 - e^(-probes * sockets / 64512) in all).
//   relay       both mappings destination-dependent: no direct path can be predicted;
//               a TURN relay is needed.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "codec/rendezvous_codec.hpp"
#include "core/candidate_gathering.hpp"
#include "porthole/ip_address.hpp"

namespace porthole::detail {

enum class Strategy : std::uint8_t { direct, prediction, birthday, relay };
const char* strategy_name(Strategy strategy) noexcept;  // "direct", "prediction", ...

// The caps of one attempt (documented in man/porthole.1, punch). The birthday method's
// odds with every socket and probe used: 1 - e^(-2048 * 257 / 64512), above 99.9 %.
inline constexpr std::size_t kBirthdaySockets = 256;  // extra sockets of the hard side
inline constexpr std::size_t kMaxProbes = 2048;       // probes of the easy side
inline constexpr std::chrono::milliseconds kBirthdayProbeInterval{2};
// The hard side opens its extra sockets only this long after the checks began, when the
// plain checks have not found a path (they do against full-cone and restricted-cone
// NATs).
inline constexpr std::chrono::milliseconds kBirthdayDelay{1000};
// Prediction: the observed ports and this many after them in the step's direction,
// probed round after round, one probe every interval, up to kMaxProbes.
inline constexpr std::size_t kPredictedPorts = 16;
inline constexpr std::chrono::milliseconds kPredictionProbeInterval{5};
// Random probe ports: those a NAT hands out for source ports above the well-known range.
inline constexpr std::uint16_t kLowestProbePort = 1024;

struct NatProfile {
  rendezvous::NatMapping mapping = rendezvous::NatMapping::unknown;
  rendezvous::PortAllocation allocation = rendezvous::PortAllocation::unknown;
  int port_step = 0;  // sequential only
};

struct StrategyPlan {
  Strategy strategy = Strategy::direct;
  bool probe_peer = false;    // we probe ports of the peer's address (prediction, birthday)
  bool open_sockets = false;  // birthday, the hard side: kBirthdaySockets extra sockets
  // The agent keeps checking until the deadline even when every pair has failed: the
  // way in opens when a probe hits.
  bool keep_checking = false;
};

// Both sides compute it from the same two profiles (each as its own and the peer's), so
// their plans match: the side that probes is the other's hard side's peer.
StrategyPlan choose_strategy(const NatProfile& local, const NatProfile& peer);

// The allocation the ports a NAT gave one socket's mappings show, in the order the
// mappings were made (`ports`), for a socket on `local_port`. Only a dependent
// mapping has one: unknown otherwise and with fewer than two ports. All equal to
// local_port: preserving; every step between neighbours the same, 1..kMaxPortStep in
// size: sequential with that step; anything else: random.
struct AllocationSeen {
  rendezvous::PortAllocation allocation = rendezvous::PortAllocation::unknown;
  int port_step = 0;
};
AllocationSeen port_allocation_from(rendezvous::NatMapping mapping,
                                    std::span<const std::uint16_t> ports, std::uint16_t local_port);

// This side's profile from what the servers saw of its one socket on `local_port`: the
// mapping behaviour (nat_mapping_from) and the allocation of the mappings, taken in the
// order their first requests left, which is the order of `servers`.
NatProfile nat_profile_from(std::span<const ReflexiveObservation> observations,
                            std::span<const IpAddress> host_addresses,
                            std::span<const Endpoint> servers, std::uint16_t local_port);

// Prediction: the ports the peer's next mappings may have, from the ports its
// description's server-reflexive candidates show: those, then (sequential) the next
// kPredictedPorts ports past the last one in the step's direction. Each once, in
// 1..65535.
std::vector<std::uint16_t> predicted_ports(const NatProfile& peer,
                                           std::span<const std::uint16_t> observed);

// A random probe port in kLowestProbePort..65535 from two random bytes.
std::uint16_t probe_port(std::uint8_t high, std::uint8_t low) noexcept;

// Where probes go: the address of the peer's best server-reflexive candidate (what its
// NAT showed the rendezvous and STUN servers); none when it has none.
std::optional<IpAddress> probe_address(std::span<const rendezvous::Candidate> peer_candidates);

// What the failure hint adds about the strategy tried, e.g. "tried birthday: 2048
// probes, 256 sockets"; for relay, that one is needed.
std::string strategy_hint(const StrategyPlan& plan, std::size_t packets, std::size_t sockets);

}  // namespace porthole::detail
