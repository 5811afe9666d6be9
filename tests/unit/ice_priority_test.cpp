// ICE priorities (RFC 8445 s5.1.2, s6.1.2.3) and the order of candidate pairs.
#include <catch2/catch.hpp>

#include <cstdint>
#include <vector>

#include "codec/ice_priority.hpp"

namespace ice = porthole::detail::ice;
using ice::CandidateType;

TEST_CASE("ICE candidate priority: 2^24 type + 2^8 local + (256 - component)") {
  // s5.1.2.1 with the s5.1.2.2 recommendations: a host candidate of a single-homed host,
  // component 1, is 126 << 24 | 65535 << 8 | 255.
  CHECK(ice::candidate_priority(CandidateType::host, 65535, 1) == 0x7EFFFFFFu);
  CHECK(ice::candidate_priority(CandidateType::host, 65535, 1) == 2130706431u);
  CHECK(ice::candidate_priority(CandidateType::server_reflexive, 65535, 1) == 0x64FFFFFFu);
  CHECK(ice::candidate_priority(CandidateType::peer_reflexive, 65535, 1) == 0x6EFFFFFFu);
  CHECK(ice::candidate_priority(CandidateType::relayed, 0, 1) == 255u);
  CHECK(ice::candidate_priority(CandidateType::mapped, 1, 2) == (120u << 24) + 256u + 254u);
  CHECK(ice::candidate_priority(CandidateType::host, 65535, 256) == 0x7EFFFF00u);
  // Out-of-range inputs are clamped, never wrap into the type bits.
  CHECK(ice::candidate_priority(CandidateType::relayed, 1u << 20, 0) ==
        ice::candidate_priority(CandidateType::relayed, 65535, 1));
  CHECK(ice::candidate_priority(CandidateType::relayed, 0, 1000) == 0u);
}

TEST_CASE("ICE type preferences: host > mapped > peer-reflexive > server-reflexive > relayed") {
  auto p = [](CandidateType t) { return ice::candidate_priority(t, 0, 1); };
  CHECK(ice::type_preference(CandidateType::host) == 126);
  CHECK(ice::type_preference(CandidateType::peer_reflexive) == 110);
  CHECK(ice::type_preference(CandidateType::server_reflexive) == 100);
  CHECK(ice::type_preference(CandidateType::relayed) == 0);
  CHECK(p(CandidateType::host) > p(CandidateType::mapped));
  CHECK(p(CandidateType::mapped) > p(CandidateType::peer_reflexive));
  CHECK(p(CandidateType::peer_reflexive) > p(CandidateType::server_reflexive));
  CHECK(p(CandidateType::server_reflexive) > p(CandidateType::relayed));
  // The type dominates any local preference.
  CHECK(ice::candidate_priority(CandidateType::server_reflexive, 0, 256) >
        ice::candidate_priority(CandidateType::relayed, 65535, 1));
}

TEST_CASE("ICE pair priority: 2^32 min + 2 max + (G > D)") {
  CHECK(ice::pair_priority(10, 20) == (10ull << 32) + 40ull + 0);
  CHECK(ice::pair_priority(20, 10) == (10ull << 32) + 40ull + 1);
  CHECK(ice::pair_priority(7, 7) == (7ull << 32) + 14ull);
  const std::uint32_t max = 0xFFFFFFFFu;
  CHECK(ice::pair_priority(max, max) == (0xFFFFFFFFull << 32) + 2 * 0xFFFFFFFFull);
  // Both agents compute the same number for a pair: each passes the controlling
  // side's candidate first.
  CHECK(ice::pair_priority(0x7EFFFFFF, 0x64FFFFFF) != ice::pair_priority(0x64FFFFFF, 0x7EFFFFFF));
}

TEST_CASE("ICE pair order: decreasing priority, same list on both sides, stable on ties") {
  const std::vector<std::uint32_t> a = {ice::candidate_priority(CandidateType::host, 65535, 1),
                                        ice::candidate_priority(CandidateType::server_reflexive,
                                                                65535, 1),
                                        ice::candidate_priority(CandidateType::relayed, 65535, 1)};
  const std::vector<std::uint32_t> b = {ice::candidate_priority(CandidateType::mapped, 65535, 1),
                                        ice::candidate_priority(CandidateType::host, 65535, 1)};
  auto on_a = ice::ordered_pairs(a, b, true);   // A controlling
  auto on_b = ice::ordered_pairs(b, a, false);  // B controlled
  REQUIRE(on_a.size() == 6);
  REQUIRE(on_b.size() == 6);
  for (std::size_t i = 0; i + 1 < on_a.size(); ++i) CHECK(on_a[i].priority >= on_a[i + 1].priority);
  for (std::size_t i = 0; i < on_a.size(); ++i) {
    CHECK(on_a[i].priority == on_b[i].priority);
    CHECK(on_a[i].local_index == on_b[i].remote_index);
    CHECK(on_a[i].remote_index == on_b[i].local_index);
  }
  // host-host first, relayed pairs last.
  CHECK(on_a.front().local_index == 0);
  CHECK(on_a.front().remote_index == 1);
  CHECK(on_a.back().local_index == 2);
  // Ties keep local index, then remote index.
  const std::vector<std::uint32_t> same = {5, 5};
  auto ties = ice::ordered_pairs(same, same, true);
  REQUIRE(ties.size() == 4);
  CHECK((ties[0].local_index == 0 && ties[0].remote_index == 0));
  CHECK((ties[1].local_index == 0 && ties[1].remote_index == 1));
  CHECK((ties[2].local_index == 1 && ties[2].remote_index == 0));
  CHECK(ice::ordered_pairs({}, same, true).empty());
}
