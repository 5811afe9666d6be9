// ICE candidate and candidate-pair priorities (RFC 8445 s5.1.2, s6.1.2.3) and the order
// checks are made in: pure functions.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

namespace porthole::detail::ice {

// Candidate types (RFC 8445 s5.1.1) and porthole's own: a port mapping that PCP,
// NAT-PMP or UPnP made on the gateway.
enum class CandidateType : std::uint8_t {
  host = 0,
  server_reflexive = 1,
  peer_reflexive = 2,
  relayed = 3,
  mapped = 4,
};

// Type preferences (s5.1.2.2 recommends host 126, peer-reflexive 110, server-reflexive
// 100, relayed 0). A mapped candidate sits between host and peer-reflexive: it is a
// public address like a server-reflexive one, but the gateway forwards whatever reaches
// it (endpoint-independent filtering), so it works against any peer's NAT without a
// punch; a host candidate still wins because it is direct when both are on one LAN.
inline constexpr std::uint32_t kPreferenceHost = 126;
inline constexpr std::uint32_t kPreferenceMapped = 120;
inline constexpr std::uint32_t kPreferencePeerReflexive = 110;
inline constexpr std::uint32_t kPreferenceServerReflexive = 100;
inline constexpr std::uint32_t kPreferenceRelayed = 0;

std::uint32_t type_preference(CandidateType type) noexcept;

// s5.1.2.1: priority = 2^24 * type preference + 2^8 * local preference + (256 -
// component ID). `local_preference` is 0..65535 (65535 for a host with one address,
// s5.1.2.2) and `component` 1..256; larger values are clamped to those ranges.
std::uint32_t candidate_priority(CandidateType type, std::uint32_t local_preference,
                                 std::uint32_t component = 1) noexcept;

// s6.1.2.3: 2^32 * min(G, D) + 2 * max(G, D) + (G > D ? 1 : 0), where G is the
// priority of the controlling agent's candidate and D the controlled agent's.
std::uint64_t pair_priority(std::uint32_t controlling, std::uint32_t controlled) noexcept;

struct CandidatePair {
  std::uint32_t local_priority = 0;
  std::uint32_t remote_priority = 0;
  std::size_t local_index = 0;  // into the caller's candidate lists
  std::size_t remote_index = 0;
  std::uint64_t priority = 0;  // pair_priority() from this agent's role
};

// Every pair of a local and a remote candidate, in decreasing pair priority (s6.1.2.3:
// "sort ... in decreasing order of priority"); equal priorities keep a stable order
// (local index, then remote index), so both runs of a test see the same list.
// `controlling` says whose candidate is G. Pairing only compatible candidates (same
// address family and transport, s6.1.2.2) is the caller's business: it passes them as
// separate lists.
std::vector<CandidatePair> ordered_pairs(std::span<const std::uint32_t> local_priorities,
                                         std::span<const std::uint32_t> remote_priorities,
                                         bool controlling);

}  // namespace porthole::detail::ice
