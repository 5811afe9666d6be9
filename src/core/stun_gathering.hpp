// Server-reflexive candidates from the --stun servers (RFC 8445 s5.1.1.2): one STUN
// Binding (RFC 8489) to each, through the caller's socket, and what each answer says.
// punch() (core/punch.cpp) and expose (src/tunnel/expose.cpp) both gather so; the
// order of the servers is the order their mappings were made (core/punch_strategy.hpp,
// nat_profile_from).
#pragma once

#include <optional>
#include <span>
#include <string>
#include <vector>

#include "core/candidate_gathering.hpp"
#include "net/deadline.hpp"
#include "porthole/error.hpp"
#include "porthole/ip_address.hpp"
#include "porthole/log.hpp"
#include "proto/stun_transaction.hpp"

namespace porthole::detail {

struct StunProbe {
  Endpoint server;
  StunTransaction transaction;
};

// The servers (HOST[:PORT], port 3478), resolved: Errc::usage for one that does not
// parse; one that does not resolve is left out with a warning through `log`.
Result<std::vector<Endpoint>> resolve_stun_servers(const std::vector<std::string>& servers,
                                                   const LogFn& log);

// One Binding request to each server, retransmitted until `give_up`.
std::vector<StunProbe> start_stun_probes(std::span<const Endpoint> servers,
                                         Clock::time_point give_up);

// Whether the datagram answers one of `probes` (then true). What that server saw of our
// socket, when the answer says, is added to `candidates` (server-reflexive) and to
// `observations` (last).
bool take_stun_answer(std::vector<StunProbe>& probes, std::span<const std::uint8_t> bytes,
                      const Endpoint& from, Clock::time_point now, CandidateList& candidates,
                      std::vector<ReflexiveObservation>& observations);

}  // namespace porthole::detail
