// STUN Binding client (RFC 8489 s6.2.1, UDP), with RFC 5780's CHANGE-REQUEST for
// behaviour discovery. porthole's own implementation on top of codec/stun_codec.
//
// The building block of `porthole nat` (mapping and filtering tests run as concurrent
// transactions on one socket) and of `open --verify` (a Binding sent from the mapped
// internal port, on the caller's socket).
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "codec/stun_codec.hpp"
#include "net/deadline.hpp"
#include "porthole/log.hpp"
#include "porthole/types.hpp"
#include "proto/stun_transaction.hpp"

namespace porthole::detail {

class UdpSocket;

// One Binding transaction.
struct StunBindingQuery {
  Endpoint server;  // IPv4 address and port the request goes to
  // RFC 5780 s4.4 filtering tests: ask for the answer from another IP and/or port.
  std::optional<stun::ChangeRequest> change_request;
  // Required when change_request asks for a change: the server's other address, from
  // an earlier answer's OTHER-ADDRESS (or CHANGED-ADDRESS). The answer is then accepted
  // only from that IP (change_ip) and/or port (change_port): a server that ignores
  // CHANGE-REQUEST and answers from its primary address must not pass a filtering test.
  // (An error response, typically 420 from a server with one address, is accepted from
  // `server` as well.)
  std::optional<Endpoint> other_address;
  // Give up on this transaction earlier than the call's deadline. Negative tests (an
  // answer that may never come) wait a few measured round trips, not seconds.
  std::optional<Deadline> deadline;
};

// What the answer to a Binding request says.
struct StunBinding {
  Endpoint mapped;                          // our address and port as the server saw them
  bool mapped_is_xor = true;                // false: only MAPPED-ADDRESS came (an RFC 3489 server)
  Endpoint responder;                       // the UDP source the answer came from
  std::optional<Endpoint> response_origin;  // RESPONSE-ORIGIN, else SOURCE-ADDRESS
  std::optional<Endpoint> other_address;    // OTHER-ADDRESS, else CHANGED-ADDRESS
  std::string software;                     // the server's SOFTWARE, sanitised; may be empty
  std::uint16_t local_port = 0;             // the port the request left from
  int transmissions = 0;                    // requests sent (1 + retransmissions)
  std::chrono::milliseconds elapsed{0};     // from the first transmission to the answer
  // The round-trip time, only when it is unambiguous: one transmission (Karn's rule;
  // with retransmissions nobody knows which one was answered).
  std::optional<std::chrono::milliseconds> rtt;
};

// Retransmission (RFC 8489 s6.2.1): RTO starts at 500 ms and doubles; Rc = 7
// transmissions; after the last one the client waits Rm = 16 times the initial RTO. In
// full that is sends at 0, 0.5, 1.5, 3.5, 7.5, 15.5, 31.5 s and failure at 39.5 s.
//
// porthole's deadlines are much shorter, and the caller's Deadline always wins: a
// command-line tool cannot wait 40 s for a server that is not there. Intended use:
// about 3 s for an address query (sends at 0, 0.5 and 1.5 s: three chances against
// loss, and a server 1.5 s away still answers), and a few measured round trips
// (StunBinding::rtt of an earlier answer) for a negative test, where silence is the
// expected answer. Tests shrink initial_rto to run the whole schedule in milliseconds.
struct StunClientOptions {
  std::chrono::milliseconds initial_rto{500};
  int max_transmissions = 7;  // Rc
  int last_wait_factor = 16;  // Rm
  bool fingerprint = true;    // FINGERPRINT on our requests (lets servers tell STUN apart)
  std::string software;       // SOFTWARE on our requests; empty: none (smaller requests)
  LogFn log;                  // debug: every request, answer and dropped datagram
};

// retransmission_schedule() (proto/stun_transaction.hpp) of these options.
std::vector<std::chrono::milliseconds> stun_schedule(const StunClientOptions& options);

// Errors (per transaction):
//  Errc::usage       the server is not an IPv4 address, or a change is asked without
//                    other_address
//  Errc::no_service  nothing (or nothing but other hosts' datagrams) came before the
//                    deadline or the end of the retransmission schedule
//  Errc::timeout     the server's address sent only datagrams that failed the receive
//                    checks (the last reason is in the message)
//  Errc::refused     an error response; protocol_code = the STUN error code (420 to a
//                    CHANGE-REQUEST: the server does not do RFC 5780)
//  Errc::internal    a local failure, or an answer that makes no sense (no mapped
//                    address, unknown comprehension-required attributes: s6.3.3)
class StunClient {
 public:
  explicit StunClient(StunClientOptions options = {});

  // From a fresh socket (kernel-chosen port).
  Result<StunBinding> binding(const StunBindingQuery& query, Deadline deadline);

  // From the caller's socket, which must be unconnected (UdpSocket::open_unconnected,
  // or open_bound_udp_socket to send from a chosen port, e.g. the mapped internal
  // port). Datagrams that answer nothing in flight are read and dropped.
  Result<StunBinding> binding(UdpSocket& socket, const StunBindingQuery& query, Deadline deadline);

  // Several transactions at once on one socket (so they share a NAT mapping), each
  // with its own fresh 96-bit transaction ID from getrandom(2) and its own schedule.
  // An answer is accepted only when its transaction ID is one in flight, it comes from
  // that transaction's expected address, and it passes every receive check of
  // stun::decode. One Result per query, in order; returns when all are settled.
  std::vector<Result<StunBinding>> bindings(UdpSocket& socket,
                                            std::span<const StunBindingQuery> queries,
                                            Deadline deadline);

 private:
  void debug(std::string_view text) const;
  StunClientOptions options_;
};

}  // namespace porthole::detail
