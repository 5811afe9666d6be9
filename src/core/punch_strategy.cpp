// The pure strategy decisions of a punch (src/core/punch_strategy.hpp).
#include "core/punch_strategy.hpp"

#include <algorithm>
#include <cstdlib>

#include <fmt/format.h>

namespace porthole::detail {

namespace {

using rendezvous::NatMapping;
using rendezvous::PortAllocation;

bool dependent(NatMapping m) {
  return m == NatMapping::address_dependent || m == NatMapping::address_and_port_dependent;
}

bool predictable(const NatProfile& p) {
  return p.allocation == PortAllocation::preserving ||
         (p.allocation == PortAllocation::sequential && p.port_step != 0);
}

}  // namespace

const char* strategy_name(Strategy strategy) noexcept {
  switch (strategy) {
    case Strategy::direct: return "direct";
    case Strategy::prediction: return "prediction";
    case Strategy::birthday: return "birthday";
    case Strategy::relay: return "relay";
  }
  return "direct";
}

StrategyPlan choose_strategy(const NatProfile& local, const NatProfile& peer) {
  StrategyPlan plan;
  const bool local_hard = dependent(local.mapping);
  const bool peer_hard = dependent(peer.mapping);
  if (!local_hard && !peer_hard) return plan;
  if (local_hard && peer_hard) {
    // Each side's probes leave through a mapping of their own, which the other side's
    // destination-dependent NAT does not admit: prediction cannot meet in the middle.
    plan.strategy = Strategy::relay;
    return plan;
  }
  const NatProfile& hard = local_hard ? local : peer;
  plan.keep_checking = true;
  if (predictable(hard)) {
    plan.strategy = Strategy::prediction;
    plan.probe_peer = peer_hard;  // the easy side probes the hard side's next ports
    return plan;
  }
  plan.strategy = Strategy::birthday;
  plan.probe_peer = peer_hard;
  plan.open_sockets = local_hard;
  return plan;
}

AllocationSeen port_allocation_from(NatMapping mapping, std::span<const std::uint16_t> ports,
                                    std::uint16_t local_port) {
  AllocationSeen seen;
  if (!dependent(mapping) || ports.size() < 2) return seen;
  if (std::all_of(ports.begin(), ports.end(), [&](std::uint16_t p) { return p == local_port; })) {
    seen.allocation = PortAllocation::preserving;
    return seen;
  }
  const int step = int{ports[1]} - int{ports[0]};
  bool same = step != 0 && std::abs(step) <= rendezvous::kMaxPortStep;
  for (std::size_t i = 2; same && i < ports.size(); ++i)
    same = int{ports[i]} - int{ports[i - 1]} == step;
  if (same) {
    seen.allocation = PortAllocation::sequential;
    seen.port_step = step;
  } else {
    seen.allocation = PortAllocation::random;
  }
  return seen;
}

NatProfile nat_profile_from(std::span<const ReflexiveObservation> observations,
                            std::span<const IpAddress> host_addresses,
                            std::span<const Endpoint> servers, std::uint16_t local_port) {
  NatProfile p;
  p.mapping = nat_mapping_from(observations, host_addresses);
  std::vector<std::uint16_t> ports;
  for (const auto& server : servers)
    for (const auto& o : observations)
      if (o.server == server) ports.push_back(o.mapped.port);
  const auto a = port_allocation_from(p.mapping, ports, local_port);
  p.allocation = a.allocation;
  p.port_step = a.port_step;
  return p;
}

std::vector<std::uint16_t> predicted_ports(const NatProfile& peer,
                                           std::span<const std::uint16_t> observed) {
  std::vector<std::uint16_t> out;
  auto add = [&](int port) {
    if (port < 1 || port > 65535) return;
    const auto p = static_cast<std::uint16_t>(port);
    if (std::find(out.begin(), out.end(), p) == out.end()) out.push_back(p);
  };
  for (auto p : observed) add(p);
  if (observed.empty() || peer.allocation != PortAllocation::sequential || peer.port_step == 0)
    return out;
  // The next mapping comes after every one seen: past the largest port for a rising
  // allocation, below the smallest for a falling one.
  const int last = peer.port_step > 0 ? *std::max_element(observed.begin(), observed.end())
                                      : *std::min_element(observed.begin(), observed.end());
  for (std::size_t i = 1; i <= kPredictedPorts; ++i)
    add(last + peer.port_step * static_cast<int>(i));
  return out;
}

std::uint16_t probe_port(std::uint8_t high, std::uint8_t low) noexcept {
  const unsigned span = 65536u - kLowestProbePort;
  return static_cast<std::uint16_t>(kLowestProbePort + ((unsigned{high} << 8 | low) % span));
}

std::optional<IpAddress> probe_address(std::span<const rendezvous::Candidate> peer_candidates) {
  const rendezvous::Candidate* best = nullptr;
  for (const auto& c : peer_candidates)
    if (c.type == ice::CandidateType::server_reflexive && c.address.ip.is_v4() &&
        (!best || c.priority > best->priority))
      best = &c;
  if (!best) return std::nullopt;
  return best->address.ip;
}

std::string strategy_hint(const StrategyPlan& plan, std::size_t packets, std::size_t sockets) {
  switch (plan.strategy) {
    case Strategy::direct: return {};
    case Strategy::relay: return "strategy relay: both sides' NATs map per destination";
    case Strategy::prediction:
    case Strategy::birthday: break;
  }
  return fmt::format("tried {}: {} probes sent, {} extra sockets", strategy_name(plan.strategy),
                     packets, sockets);
}

}  // namespace porthole::detail
