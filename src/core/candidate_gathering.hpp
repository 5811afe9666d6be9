// The local candidates of a punch (RFC 8445 s5.1.1): the punch socket's port on this
// host's addresses (host), a gateway port mapping of that port (mapped), and the socket
// as STUN servers and the rendezvous see it (server-reflexive); their foundations and
// priorities (s5.1.1.3, s5.1.2), and what the reflexive answers say about the NAT's
// mapping behaviour (RFC 4787 s4.1). The building is pure; list_interfaces() is the
// one part that asks the system.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "codec/ice_priority.hpp"
#include "codec/rendezvous_codec.hpp"
#include "porthole/error.hpp"
#include "porthole/ip_address.hpp"

namespace porthole::detail {

struct InterfaceAddress {
  std::string name;
  IpAddress address;
  bool up = false;
  bool loopback = false;  // IFF_LOOPBACK
};

// getifaddrs(3): every interface address (IPv4 and IPv6).
Result<std::vector<InterfaceAddress>> list_interfaces();

// The addresses a host candidate can have: IPv4 (the punch socket is IPv4), on an
// interface that is up, neither loopback nor link-local (RFC 8445 s5.1.1.1: they reach
// no peer on another host) nor unspecified nor multicast; each once, in list order.
std::vector<IpAddress> host_addresses(std::span<const InterfaceAddress> interfaces);

const char* candidate_type_name(ice::CandidateType type) noexcept;

// One server's view of the punch socket: who answered, and the XOR-MAPPED-ADDRESS.
struct ReflexiveObservation {
  Endpoint server;
  Endpoint mapped;
};

// The candidate list as it grows. Everything added shares the one socket, so its base
// (s5.1.1.1) is the host address the traffic leaves from.
class CandidateList {
 public:
  // Host candidates: `port` on each address, the first the most preferred (s5.1.2.2:
  // local preference 65535 - index).
  void add_host(std::span<const IpAddress> addresses, std::uint16_t port);
  // A gateway mapping's external address; it replaces a server-reflexive candidate
  // at the same address (the NAT's mapping is the gateway's port mapping).
  void add_mapped(const Endpoint& external);
  // What a STUN server or the rendezvous saw. Ignored when it equals a candidate
  // already there (s5.1.3: a reflexive address that is a host address adds nothing).
  void add_server_reflexive(const Endpoint& mapped);
  // A TURN allocation's relayed address (RFC 8445 s5.1.1.2): type preference 0.
  void add_relayed(const Endpoint& relayed);

  // What goes into the description: at most `limit` candidates (the codec's bound),
  // highest priority first.
  std::vector<rendezvous::Candidate> candidates(
      std::size_t limit = rendezvous::kMaxCandidates) const;
  // Whether `address` is one of ours (of any type).
  bool contains(const Endpoint& address) const;
  // The type of our candidate at `address`.
  std::optional<ice::CandidateType> type_of(const Endpoint& address) const;

 private:
  void add(ice::CandidateType type, const Endpoint& address, std::uint32_t local_preference);
  std::vector<rendezvous::Candidate> list_;
  unsigned added_ = 0;  // foundations' running number
};

// The mapping behaviour the observations show (RFC 4787 s4.1). Two servers that saw
// different mapped ports or addresses: address_and_port_dependent (which of the two
// dependent kinds is not always told apart by two answers; the harder is assumed). The same mapped
// endpoint from servers at two different IP addresses: endpoint_independent. A mapped address that
// is one of our host addresses (no NAT at all): endpoint_independent. Anything else: unknown.
rendezvous::NatMapping nat_mapping_from(std::span<const ReflexiveObservation> observations,
                                        std::span<const IpAddress> host_addresses);
const char* nat_mapping_name(rendezvous::NatMapping mapping) noexcept;

}  // namespace porthole::detail
