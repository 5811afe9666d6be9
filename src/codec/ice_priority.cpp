#include "codec/ice_priority.hpp"

#include <algorithm>

namespace porthole::detail::ice {

std::uint32_t type_preference(CandidateType type) noexcept {
  switch (type) {
    case CandidateType::host: return kPreferenceHost;
    case CandidateType::mapped: return kPreferenceMapped;
    case CandidateType::peer_reflexive: return kPreferencePeerReflexive;
    case CandidateType::server_reflexive: return kPreferenceServerReflexive;
    case CandidateType::relayed: return kPreferenceRelayed;
  }
  return kPreferenceRelayed;
}

std::uint32_t candidate_priority(CandidateType type, std::uint32_t local_preference,
                                 std::uint32_t component) noexcept {
  local_preference = std::min<std::uint32_t>(local_preference, 65535);
  component = std::clamp<std::uint32_t>(component, 1, 256);
  return (type_preference(type) << 24) + (local_preference << 8) + (256 - component);
}

std::uint64_t pair_priority(std::uint32_t controlling, std::uint32_t controlled) noexcept {
  const std::uint64_t g = controlling, d = controlled;
  return (std::min(g, d) << 32) + 2 * std::max(g, d) + (g > d ? 1 : 0);
}

std::vector<CandidatePair> ordered_pairs(std::span<const std::uint32_t> local_priorities,
                                         std::span<const std::uint32_t> remote_priorities,
                                         bool controlling) {
  std::vector<CandidatePair> pairs;
  pairs.reserve(local_priorities.size() * remote_priorities.size());
  for (std::size_t l = 0; l < local_priorities.size(); ++l)
    for (std::size_t r = 0; r < remote_priorities.size(); ++r) {
      CandidatePair p;
      p.local_priority = local_priorities[l];
      p.remote_priority = remote_priorities[r];
      p.local_index = l;
      p.remote_index = r;
      p.priority = controlling ? pair_priority(p.local_priority, p.remote_priority)
                               : pair_priority(p.remote_priority, p.local_priority);
      pairs.push_back(p);
    }
  std::stable_sort(pairs.begin(), pairs.end(), [](const CandidatePair& a, const CandidatePair& b) {
    return a.priority > b.priority;
  });
  return pairs;
}

}  // namespace porthole::detail::ice
