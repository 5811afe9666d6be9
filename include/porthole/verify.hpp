// porthole::verify: prove from outside that unsolicited inbound traffic reaches a
// mapping (`porthole open --verify`), and porthole::serve, the public-side server
// that makes such proofs possible (`porthole serve`).
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "porthole/porthole.hpp"

namespace porthole {

struct Verification {
  bool verified = false;
  // How: "stun-change-request" (UDP: a STUN answer sent from another IP and port of
  // the server arrived at the internal port), "connect-back-token" (TCP: the server's
  // connection reached porthole's listener on the internal port and carried our
  // token), "connect-back-handshake" (TCP: the port is the user's service; the
  // server's connection completed and this host's TCP table lists it).
  std::string method;
  std::string server;       // "IP:PORT" of the STUN server / porthole serve used
  std::string observed;     // our external endpoint as the server saw it ("IP:PORT", or
                            // "IP" for TCP); empty when it could not tell
  std::string proof;        // what was proven, one sentence (verified)
  std::string explanation;  // why not, one sentence or two (not verified)
  std::vector<std::string> warnings;
};

// Proves `mapping` (normally OpenResult::mapping) from outside, through the first of
// options.stun_servers (else default_stun_servers()) that can (servers that do not
// answer, have no second address for UDP or take no connect-back for TCP are skipped):
//  UDP: a STUN Binding from the internal port must show the mapped external IP and
//       port, and an answer requested with CHANGE-REQUEST from the server's other IP
//       and port (RFC 5780) must arrive there;
//  TCP: the server (a `porthole serve`: connect-back over TCP on the same port) must
//       connect to the mapped external address and port and reach this host.
// A check that runs and fails is a Verification with verified = false and the
// explanation (the mapping is left in place). Errors only for bad options
// (Errc::usage) and local failures (Errc::internal).
Result<Verification> verify(const Options& options, const Mapping& mapping);

struct ServeOptions {
  IpAddress listen_ip;               // an IPv4 address of this host (0.0.0.0: any)
  std::uint16_t listen_port = 3478;  // UDP STUN and TCP connect-back
  // A second address for RFC 5780 (CHANGE-REQUEST, OTHER-ADDRESS): four UDP sockets.
  std::optional<IpAddress> alt_ip;
  std::uint16_t alt_port = 3479;
  LogFn log;  // info: start-up and one line per connect-back; debug: every request
  // The rendezvous of `porthole punch` (docs/rendezvous.md) on the primary UDP socket.
  bool rendezvous = true;
  std::size_t rendezvous_max_peers = 10000;  // peers online at once
};

// Runs the STUN server and the connect-back checks, one thread, until `stop_fd` (an
// eventfd, a pipe a signal handler writes to, a signalfd: serve does not read it)
// becomes readable. Errors: Errc::usage for bad addresses or no stop fd,
// Errc::internal when a socket cannot be bound.
Status serve(const ServeOptions& options, int stop_fd);

}  // namespace porthole
