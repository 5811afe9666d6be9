// From the outcomes of the RFC 5780 behaviour tests to a verdict: a pure function, so
// every combination is unit-tested without a network.
#pragma once

#include <optional>

#include "codec/stun_codec.hpp"
#include "porthole/nat.hpp"

namespace porthole::detail {

// How a filtering test (a Binding with CHANGE-REQUEST) came out.
enum class FilterAnswer {
  not_run,   // the server has no other address (no OTHER-ADDRESS)
  answered,  // the answer came from the changed address: the NAT let it in
  silent,    // nothing within the negative-test wait: the NAT filtered it
  refused,   // an error response (420: the server does not do RFC 5780)
};

struct NatTestResults {
  Endpoint local;    // the mapping socket's local IP and port
  Endpoint mapped1;  // test I: Binding to the server's primary address
  // Test II: to the other IP, primary port; test III: other IP and other port
  // (RFC 5780 s4.3). Empty when not run or not answered.
  std::optional<Endpoint> mapped2;
  std::optional<Endpoint> mapped3;
  // When the server has no other address: test I's socket, to the next configured
  // server on another IP. Equal to mapped1: endpoint-independent mapping (the same
  // comparison as test II, with another server); different: not EIM, so symmetric,
  // without telling address- from address-and-port-dependent.
  std::optional<Endpoint> mapped_second_server;
  // s4.4 test II (change IP and port) and test III (change port), sent from a socket
  // that has talked only to the primary address; `control` is a plain Binding sent
  // with them on that socket: without its answer a silence proves nothing.
  FilterAnswer change_ip_port = FilterAnswer::not_run;
  FilterAnswer change_port = FilterAnswer::not_run;
  bool control_answered = false;
};

struct NatVerdict {
  NatBehaviour mapping = NatBehaviour::unknown;
  NatBehaviour filtering = NatBehaviour::unknown;
  NatType nat_type = NatType::unknown;
  bool behind_nat = true;  // false: the server saw our own address
  bool port_preserved = false;
};

NatVerdict classify_nat(const NatTestResults& r);

}  // namespace porthole::detail
