#include "core/candidate_gathering.hpp"

#include <ifaddrs.h>
#include <net/if.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include <fmt/format.h>

namespace porthole::detail {

Result<std::vector<InterfaceAddress>> list_interfaces() {
  ifaddrs* list = nullptr;
  if (::getifaddrs(&list) != 0)
    return make_error(Errc::internal, fmt::format("getifaddrs: {}", std::strerror(errno)));
  std::vector<InterfaceAddress> out;
  for (ifaddrs* it = list; it != nullptr; it = it->ifa_next) {
    if (it->ifa_addr == nullptr) continue;
    const int family = it->ifa_addr->sa_family;
    if (family != AF_INET && family != AF_INET6) continue;
    auto ep = Endpoint::from_sockaddr(it->ifa_addr, family == AF_INET ? sizeof(sockaddr_in)
                                                                      : sizeof(sockaddr_in6));
    if (!ep) continue;
    out.push_back({it->ifa_name != nullptr ? it->ifa_name : "", ep->ip,
                   (it->ifa_flags & IFF_UP) != 0, (it->ifa_flags & IFF_LOOPBACK) != 0});
  }
  ::freeifaddrs(list);
  return out;
}

std::vector<IpAddress> host_addresses(std::span<const InterfaceAddress> interfaces) {
  std::vector<IpAddress> out;
  for (const auto& i : interfaces) {
    const IpAddress& a = i.address;
    if (!i.up || i.loopback || !a.is_v4() || a.is_loopback() || a.is_link_local() ||
        a.is_unspecified() || a.is_multicast())
      continue;
    if (std::find(out.begin(), out.end(), a) == out.end()) out.push_back(a);
  }
  return out;
}

const char* candidate_type_name(ice::CandidateType type) noexcept {
  switch (type) {
    case ice::CandidateType::host: return "host";
    case ice::CandidateType::server_reflexive: return "server-reflexive";
    case ice::CandidateType::peer_reflexive: return "peer-reflexive";
    case ice::CandidateType::relayed: return "relayed";
    case ice::CandidateType::mapped: return "mapped";
  }
  return "?";
}

void CandidateList::add(ice::CandidateType type, const Endpoint& address,
                        std::uint32_t local_preference) {
  if (contains(address)) return;
  rendezvous::Candidate c;
  c.type = type;
  c.address = address;
  c.priority = ice::candidate_priority(type, local_preference);
  // s5.1.1.3: one foundation per type and base (and server). Every candidate here
  // shares the socket and no two have one address, so the type's letter and a running
  // number keep them apart.
  static constexpr char kLetter[] = {'H', 'S', 'P', 'R', 'M'};
  c.foundation = fmt::format("{}{}", kLetter[static_cast<std::size_t>(type) % 5], added_++);
  list_.push_back(std::move(c));
}

void CandidateList::add_host(std::span<const IpAddress> addresses, std::uint16_t port) {
  std::uint32_t preference = 65535;
  for (const auto& a : addresses) {
    add(ice::CandidateType::host, Endpoint{a, port}, preference);
    if (preference > 0) --preference;
  }
}

void CandidateList::add_mapped(const Endpoint& external) {
  // A port-preserving NAT often maps to the very address STUN saw: that candidate is the
  // gateway's mapping, with its endpoint-independent filtering, so it becomes mapped.
  list_.erase(std::remove_if(list_.begin(), list_.end(),
                             [&](const rendezvous::Candidate& c) {
                               return c.address == external &&
                                      c.type == ice::CandidateType::server_reflexive;
                             }),
              list_.end());
  add(ice::CandidateType::mapped, external, 65535);
}

void CandidateList::add_server_reflexive(const Endpoint& mapped) {
  add(ice::CandidateType::server_reflexive, mapped, 65535);
}

void CandidateList::add_relayed(const Endpoint& relayed) {
  add(ice::CandidateType::relayed, relayed, 65535);
}

std::vector<rendezvous::Candidate> CandidateList::candidates(std::size_t limit) const {
  std::vector<rendezvous::Candidate> out = list_;
  std::stable_sort(out.begin(), out.end(),
                   [](const auto& a, const auto& b) { return a.priority > b.priority; });
  if (out.size() > limit) out.resize(limit);
  return out;
}

bool CandidateList::contains(const Endpoint& address) const { return type_of(address).has_value(); }

std::optional<ice::CandidateType> CandidateList::type_of(const Endpoint& address) const {
  for (const auto& c : list_)
    if (c.address == address) return c.type;
  return std::nullopt;
}

rendezvous::NatMapping nat_mapping_from(std::span<const ReflexiveObservation> observations,
                                        std::span<const IpAddress> host_addresses) {
  using rendezvous::NatMapping;
  for (const auto& o : observations)
    if (std::find(host_addresses.begin(), host_addresses.end(), o.mapped.ip) !=
        host_addresses.end())
      return NatMapping::endpoint_independent;
  bool same_seen = false;
  for (std::size_t i = 0; i < observations.size(); ++i)
    for (std::size_t j = i + 1; j < observations.size(); ++j) {
      const auto& a = observations[i];
      const auto& b = observations[j];
      if (a.server == b.server) continue;
      if (a.mapped != b.mapped) return NatMapping::address_and_port_dependent;
      // One mapping for two ports of one server address would also be what an
      // address-dependent NAT does: only two server addresses prove independence.
      if (a.server.ip != b.server.ip) same_seen = true;
    }
  return same_seen ? NatMapping::endpoint_independent : NatMapping::unknown;
}

const char* nat_mapping_name(rendezvous::NatMapping mapping) noexcept {
  switch (mapping) {
    case rendezvous::NatMapping::unknown: return "unknown";
    case rendezvous::NatMapping::endpoint_independent: return "endpoint-independent";
    case rendezvous::NatMapping::address_dependent: return "address-dependent";
    case rendezvous::NatMapping::address_and_port_dependent: return "address-and-port-dependent";
  }
  return "unknown";
}

}  // namespace porthole::detail
