#include "core/nat_classify.hpp"

namespace porthole::detail {
namespace {

// RFC 5780 s4.3: test II's mapping equal to test I's is endpoint-independent; else
// test III (another port on that other IP) equal to test II's is address-dependent,
// different is address-and-port-dependent.
NatBehaviour mapping_of(const NatTestResults& r) {
  if (!r.mapped2) {
    if (r.mapped_second_server && *r.mapped_second_server == r.mapped1)
      return NatBehaviour::endpoint_independent;
    return NatBehaviour::unknown;
  }
  if (*r.mapped2 == r.mapped1) return NatBehaviour::endpoint_independent;
  if (!r.mapped3) return NatBehaviour::unknown;
  return *r.mapped3 == *r.mapped2 ? NatBehaviour::address_dependent
                                  : NatBehaviour::address_and_port_dependent;
}

// RFC 5780 s4.4: an answer from the other IP and port means endpoint-independent
// filtering; else an answer from the other port (same IP) means address-dependent;
// else address-and-port-dependent. A refused or untested change leaves it unknown, and
// so does a silence that proves nothing: the control Binding went unanswered (loss),
// or the other address never answered the mapping tests either (a server that
// advertises an address it does not serve from).
NatBehaviour filtering_of(const NatTestResults& r) {
  if (r.change_ip_port == FilterAnswer::answered) return NatBehaviour::endpoint_independent;
  const bool other_alive = r.mapped2 || r.mapped3;
  if (r.change_ip_port != FilterAnswer::silent || !r.control_answered || !other_alive)
    return NatBehaviour::unknown;
  if (r.change_port == FilterAnswer::answered) return NatBehaviour::address_dependent;
  if (r.change_port == FilterAnswer::silent) return NatBehaviour::address_and_port_dependent;
  return NatBehaviour::unknown;
}

}  // namespace

NatVerdict classify_nat(const NatTestResults& r) {
  NatVerdict v;
  v.behind_nat = !(r.mapped1 == r.local);
  v.port_preserved = r.mapped1.port == r.local.port;
  v.filtering = filtering_of(r);
  if (!v.behind_nat) {
    // The server saw our own address and port: no translation at all. Filtering is
    // still worth reporting (a host firewall behaves like one).
    v.mapping = NatBehaviour::endpoint_independent;
    v.nat_type = NatType::none;
    return v;
  }
  v.mapping = mapping_of(r);
  switch (v.mapping) {
    case NatBehaviour::unknown:
      // Another server saw another mapping: not EIM, whichever dependence it is.
      v.nat_type = r.mapped_second_server && !r.mapped2 && !(*r.mapped_second_server == r.mapped1)
                       ? NatType::symmetric
                       : NatType::unknown;
      break;
    case NatBehaviour::address_dependent:
    case NatBehaviour::address_and_port_dependent: v.nat_type = NatType::symmetric; break;
    case NatBehaviour::endpoint_independent:
      switch (v.filtering) {
        case NatBehaviour::unknown: v.nat_type = NatType::unknown; break;
        case NatBehaviour::endpoint_independent: v.nat_type = NatType::full_cone; break;
        case NatBehaviour::address_dependent: v.nat_type = NatType::restricted_cone; break;
        case NatBehaviour::address_and_port_dependent:
          v.nat_type = NatType::port_restricted_cone;
          break;
      }
      break;
  }
  return v;
}

}  // namespace porthole::detail
