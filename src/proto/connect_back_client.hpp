// The requester's side of the connect-back check (codec/connect_back_codec.hpp): ask
// a `porthole serve` to connect to our external address and port, and see whether the
// connection arrives here.
#pragma once

#include <cstdint>
#include <string>

#include "codec/connect_back_codec.hpp"
#include "net/deadline.hpp"
#include "porthole/log.hpp"
#include "porthole/types.hpp"

namespace porthole::detail {

struct ConnectBackQuery {
  IpAddress server_ip;  // the serve's TCP control address
  std::uint16_t server_port = 0;
  IpAddress target_ip;              // our external address (the mapping's)
  std::uint16_t target_port = 0;    // the mapping's external port
  std::uint16_t internal_port = 0;  // where the connection must arrive on this host
  LogFn log;
};

struct ConnectBackResult {
  connect_back::Reply reply;  // what the server said
  // porthole listened on the internal port itself (it was free) ...
  bool own_listener = false;
  // ... and a connection carrying our token arrived there (the strongest proof).
  bool token_received = false;
  std::string accepted_from;  // "ip:port" of that connection
  // The port was taken by another program (the user's service): the server's
  // connection, from reply.detail, was found in this host's TCP table instead.
  bool seen_in_tcp_table = false;
};

// Errors: Errc::no_service when the server does not take the control connection (not a
// `porthole serve`, or unreachable), Errc::timeout when its reply does not come before
// the deadline, Errc::internal for a malformed reply or a local failure.
Result<ConnectBackResult> connect_back_check(const ConnectBackQuery& query, Deadline deadline);

}  // namespace porthole::detail
