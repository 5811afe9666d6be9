// STUN server core for `porthole serve`: RFC 8489 Binding over UDP, and with two
// addresses RFC 5780 behaviour discovery (OTHER-ADDRESS, RESPONSE-ORIGIN, CHANGE-REQUEST
// answered from the other IP and/or port). Good enough to be the STUN server of the
// lab's miniupnpd (its four CHANGE-REQUEST probes need the two-address mode).
//
// Built to sit on the public internet:
//  - answers go only to the request's source address and port; RESPONSE-ADDRESS
//    (RFC 3489) and RESPONSE-PORT (RFC 5780) are not honoured (420), so nobody can aim
//    our answers at a third party;
//  - answers are small and bounded (kMaxReplySize), and carry nothing of the request
//    but its transaction ID: no reflection of attacker-chosen bytes;
//  - a token bucket per source IP, in a table of bounded size (least recently seen
//    evicted), plus one bucket for the whole server, cap what any source, and all of
//    them together, can make us send;
//  - malformed datagrams, responses, indications and other methods are dropped
//    without a word.
// RFC 3489 clients (no magic cookie: miniupnpd's self-test, Debian's `stun`) get an
// RFC 3489 answer: MAPPED-ADDRESS, SOURCE-ADDRESS, CHANGED-ADDRESS, same rules.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "codec/stun_codec.hpp"
#include "net/deadline.hpp"
#include "net/rate_limiter.hpp"
#include "net/reactor.hpp"
#include "net/udp_socket.hpp"
#include "porthole/ip_address.hpp"
#include "porthole/log.hpp"
#include "porthole/types.hpp"

namespace porthole::detail {

struct StunServerConfig {
  stun::Endpoint listen{IpAddress(), stun::kDefaultPort};  // port 0: the kernel chooses
  // A second address for RFC 5780: another IP of this host (and another port; 0: the
  // kernel chooses one free on both IPs). Both IPs must then be real addresses (not
  // 0.0.0.0): they travel in OTHER-ADDRESS and RESPONSE-ORIGIN.
  std::optional<stun::Endpoint> alt_listen;
  std::string software;            // SOFTWARE in answers; empty (default): none, smaller answers
  double per_source_rate = 20.0;   // answers per second to one source IP...
  double per_source_burst = 40.0;  // ...after a burst of this many
  std::size_t max_sources = 4096;  // sources tracked by the rate limiter (memory bound)
  double total_rate = 5000.0;      // answers per second for the whole server
  double total_burst = 5000.0;
  LogFn log;
};

// The largest answer the server sends: header, XOR-MAPPED-ADDRESS, RESPONSE-ORIGIN,
// OTHER-ADDRESS, SOFTWARE (at most kMaxServerSoftware bytes) and FINGERPRINT, or an
// error with ERROR-CODE and UNKNOWN-ATTRIBUTES (at most kMaxUnknownListed types).
inline constexpr std::size_t kMaxServerSoftware = 32;
inline constexpr std::size_t kMaxUnknownListed = 8;
inline constexpr std::size_t kMaxReplySize = 120;

// The protocol logic without sockets: one datagram in, at most one answer out.
class StunResponder {
 public:
  // `addresses`: one (RFC 8489 only) or four (RFC 5780), indexed by
  // (other IP ? 2 : 0) + (other port ? 1 : 0): {IP1:P1, IP1:P2, IP2:P1, IP2:P2}.
  StunResponder(std::vector<stun::Endpoint> addresses, const StunServerConfig& config);

  struct Reply {
    std::size_t from = 0;  // index into the addresses: the socket to send from
    stun::Endpoint to;     // always the request's source
    std::vector<std::uint8_t> bytes;
  };

  // A datagram from `source` that arrived on addresses[arrived_on].
  std::optional<Reply> handle(std::span<const std::uint8_t> datagram, std::size_t arrived_on,
                              const stun::Endpoint& source, Clock::time_point now);

  struct Counters {
    std::uint64_t received = 0;
    std::uint64_t answered = 0;      // success responses
    std::uint64_t errors_sent = 0;   // error responses (420)
    std::uint64_t malformed = 0;     // failed a receive check
    std::uint64_t not_requests = 0;  // responses, indications, other methods
    std::uint64_t rate_limited = 0;
    std::uint64_t rfc3489_answered = 0;  // of `answered`: classic clients (no cookie)
  };
  const Counters& counters() const noexcept { return counters_; }
  std::size_t tracked_sources() const noexcept { return per_source_.tracked(); }
  const std::vector<stun::Endpoint>& addresses() const noexcept { return addresses_; }

 private:
  std::optional<Reply> error_reply(const stun::Message& request, std::size_t arrived_on,
                                   const stun::Endpoint& source,
                                   std::vector<std::uint16_t> unknown);
  std::optional<Reply> classic_reply(const stun::ClassicRequest& request, std::size_t arrived_on,
                                     const stun::Endpoint& source);
  void debug(std::string_view text) const;

  std::vector<stun::Endpoint> addresses_;
  std::string software_;
  LogFn log_;
  SourceRateLimiter per_source_;
  double total_rate_;
  double total_burst_;
  double total_tokens_;
  Clock::time_point total_last_{};
  Counters counters_;
};

// The sockets around a StunResponder: one (or four) bound UDP sockets served by a
// reactor (net/reactor.hpp).
class StunServer {
 public:
  // Binds every address. Errors: Errc::usage for bad or inconsistent addresses (not
  // IPv4, the same IP or port twice in RFC 5780 mode, 0.0.0.0 with two addresses),
  // Errc::internal when a bind fails (in use, not an address of this host).
  static Result<StunServer> open(const StunServerConfig& config);

  // The bound addresses, ports resolved: 1 or 4, indexed as in StunResponder.
  const std::vector<stun::Endpoint>& addresses() const noexcept;
  bool rfc5780() const noexcept { return sockets_.size() == 4; }

  // Puts the sockets on `reactor`: each datagram is answered as it arrives, with the
  // reactor's clock. The server must stay where it is (not moved) and outlive the
  // watches (detach() or the reactor's end). A local failure (recvfrom) is kept in
  // failure() and stops the reactor; a failed send is logged and forgotten.
  void attach(Reactor& reactor);
  void detach();
  const Status& failure() const noexcept { return failure_; }

  // A reactor of its own: answers datagrams until `stop_fd` becomes readable (not
  // read). Errors only for local failures (poll, recvfrom).
  Status serve(int stop_fd);

  const StunResponder::Counters& counters() const noexcept { return responder_.counters(); }

  // Another protocol on the primary socket (proto/rendezvous_server.hpp): a datagram
  // the hook takes (returns true) does not reach the STUN responder. send_primary()
  // sends from that socket.
  using DatagramHook = std::function<bool(std::span<const std::uint8_t> datagram,
                                          const Endpoint& source, Clock::time_point now)>;
  void set_primary_hook(DatagramHook hook) { hook_ = std::move(hook); }
  Status send_primary(std::span<const std::uint8_t> bytes, const Endpoint& to);

 private:
  StunServer(std::vector<UdpSocket> sockets, StunResponder responder, LogFn log);
  void on_readable(std::size_t index);
  std::vector<UdpSocket> sockets_;
  StunResponder responder_;
  LogFn log_;
  Reactor* reactor_ = nullptr;
  Status failure_ = ok_status();
  DatagramHook hook_;
};

}  // namespace porthole::detail
