// porthole::verify: the proof from outside that a mapping lets unsolicited inbound
// traffic in. A STUN Binding answer to the mapped port (RFC 8489 s6) only shows the
// outbound mapping; the inbound proof is an answer from another address (RFC 5780 s7.2
// CHANGE-REQUEST) for UDP and a connection from the server (connect-back) for TCP.
#include <algorithm>
#include <optional>

#include <fmt/format.h>

#include "codec/ip_address_format.hpp"
#include "core/stun_servers.hpp"
#include "core/verify_from.hpp"
#include "net/bound_udp_socket.hpp"
#include "net/resolve.hpp"
#include "porthole/verify.hpp"
#include "proto/connect_back_client.hpp"
#include "proto/stun_client.hpp"

namespace porthole {
namespace {

using detail::Clock;
using detail::Deadline;
namespace stun = detail::stun;
namespace cb = detail::connect_back;

constexpr const char* kInnerRouter =
    "the mapping sits on an inner router; the outer one still blocks (double NAT: map the "
    "port on the outer router too, or ask its owner)";

void log_to(const Options& o, std::string_view text) {
  if (o.log) o.log(LogLevel::debug, text);
}

struct Server {
  std::string name;  // as the user wrote it
  Endpoint endpoint;
};

Result<std::vector<Server>> servers(const Options& options) {
  auto configured = detail::configured_stun_servers(options);
  if (!configured) return configured.error();
  std::vector<Server> out;
  std::vector<std::string> failures;
  for (const auto& entry : *configured) {
    auto ip = detail::resolve_ipv4(entry.where.host);
    if (!ip) {
      failures.push_back(ip.error().message);
      continue;
    }
    out.push_back({entry.name, {*ip, entry.where.port}});
  }
  if (out.empty())
    return make_error(Errc::no_service,
                      fmt::format("no STUN server address: {}",
                                  failures.empty() ? "none given" : failures.front()));
  return out;
}

Verification not_verified(std::string server, std::string explanation, std::string observed = {}) {
  Verification v;
  v.server = std::move(server);
  v.observed = std::move(observed);
  v.explanation = std::move(explanation);
  return v;
}

// The UDP proof, from `socket` (bound to the mapping's internal port).
Result<Verification> verify_udp_on(detail::UdpSocket& socket, const Options& options,
                                   const Mapping& m, const std::vector<Server>& list,
                                   Deadline deadline);

Result<Verification> verify_udp(const Options& options, const Mapping& m,
                                const std::vector<Server>& list, Deadline deadline) {
  // From the internal port itself, so the NAT shows the mapping under test.
  auto socket = detail::open_bound_udp_socket(Endpoint{IpAddress(), m.internal_port});
  if (!socket)
    return not_verified(list.front().endpoint.to_string(),
                        fmt::format("cannot send from UDP port {} ({}); if another program "
                                    "holds it, run `porthole open --verify` before starting "
                                    "that program",
                                    m.internal_port, socket.error().message));
  return verify_udp_on(*socket, options, m, list, deadline);
}

Result<Verification> verify_udp_on(detail::UdpSocket& socket, const Options& options,
                                   const Mapping& m, const std::vector<Server>& list,
                                   Deadline deadline) {
  detail::StunClientOptions copts;
  copts.log = options.log;
  copts.initial_rto = std::chrono::milliseconds{250};
  detail::StunClient client(copts);

  std::string last_error;
  std::optional<Verification> one_address;  // the first answer from a server without RFC 5780
  for (const auto& server : list) {
    const std::string where = server.endpoint.to_string();
    // A server that does not answer gets a second or so; the next one the rest.
    detail::StunBindingQuery q{server.endpoint, {}, {}, {}};
    q.deadline = std::min(deadline, Clock::now() + std::chrono::milliseconds{1500});
    auto b = client.binding(socket, q, deadline);
    if (!b) {
      last_error = b.error().message;
      log_to(options, "verify: " + last_error);
      continue;
    }
    const std::string observed = b->mapped.to_string();
    if (m.external_ip && b->mapped.ip != *m.external_ip)
      return not_verified(where,
                          fmt::format("the STUN server sees this port as {}, but the router "
                                      "mapped it on {}: {}",
                                      observed, *m.external_ip, kInnerRouter),
                          observed);
    if (b->mapped.port != m.external_port)
      return not_verified(where,
                          fmt::format("the STUN server sees this port as {}, not as the mapped "
                                      "port {}: the NAT does not send this port's traffic "
                                      "through the mapping",
                                      observed, m.external_port),
                          observed);
    if (!b->other_address || b->other_address->ip == b->responder.ip ||
        b->other_address->port == b->responder.port) {
      // Perhaps the next server in the list can; if none, this is the verdict.
      if (!one_address)
        one_address =
            not_verified(where,
                         fmt::format("the STUN server {} has no second address (RFC 5780 "
                                     "OTHER-ADDRESS): it confirmed the outbound mapping {} but "
                                     "cannot prove inbound traffic; use a `porthole serve` with "
                                     "--alt-listen",
                                     where, observed),
                         observed);
      log_to(options,
             fmt::format("verify: {} has no second address; trying the next server", where));
      continue;
    }
    // The inbound proof: an answer from an IP and port we never sent to.
    detail::StunBindingQuery change{server.endpoint,
                                    stun::ChangeRequest{true, true},
                                    b->other_address,
                                    {}};
    const auto wait = std::max(std::chrono::milliseconds{600}, b->elapsed * 4);
    change.deadline = std::min(deadline, Clock::now() + wait);
    auto c = client.binding(socket, change, deadline);
    if (!c) {
      std::string why = fmt::format(
          "the answer from the server's other address {} did not "
          "arrive at UDP port {} ({}): the router lets only replies "
          "in, so the forward to this host is not in place",
          b->other_address->to_string(), m.internal_port, c.error().message);
      return not_verified(where, std::move(why), observed);
    }
    Verification v;
    v.verified = true;
    v.method = "stun-change-request";
    v.server = where;
    v.observed = observed;
    v.proof = fmt::format(
        "the STUN server sees UDP port {} as {} (the mapped endpoint), and "
        "its answer sent from {} (an address this host never sent to) "
        "arrived",
        m.internal_port, observed, c->responder.to_string());
    return v;
  }
  if (one_address) return *one_address;
  return not_verified(list.front().endpoint.to_string(), "no STUN server answered: " + last_error);
}

Result<Verification> verify_tcp(const Options& options, const Mapping& m,
                                const std::vector<Server>& list, Deadline deadline) {
  if (!m.external_ip)
    return not_verified(list.front().endpoint.to_string(),
                        "the router did not say its external address, so there is nothing "
                        "to connect back to");
  // The first server of the list that takes the control connection (public STUN servers
  // do not: TCP verification needs a `porthole serve`).
  std::string where;
  std::optional<Result<detail::ConnectBackResult>> r;
  for (const auto& server : list) {
    where = server.endpoint.to_string();
    detail::ConnectBackQuery q{server.endpoint.ip, server.endpoint.port, *m.external_ip,
                               m.external_port,    m.internal_port,      options.log};
    r = detail::connect_back_check(q, deadline);
    if (r->ok() || r->error().code != Errc::no_service) break;
    log_to(options, "verify: " + r->error().message);
  }
  if (!r->ok())
    return not_verified(where, fmt::format("the connect-back check could not run: {} (TCP "
                                           "verification needs a `porthole serve` as --stun)",
                                           r->error().message));
  const detail::ConnectBackResult& cb_result = r->value();
  const auto& reply = cb_result.reply;
  const std::string target = Endpoint{*m.external_ip, m.external_port}.to_string();
  const std::string observed = reply.observed_ip.to_string();
  if (reply.observed_ip != *m.external_ip)
    return not_verified(where,
                        fmt::format("the server sees this host as {}, but the router mapped the "
                                    "port on {}: {}",
                                    observed, *m.external_ip, kInnerRouter),
                        observed);
  switch (reply.outcome) {
    case cb::Outcome::connected: break;
    case cb::Outcome::refused:
    case cb::Outcome::timeout:
    case cb::Outcome::unreachable:
      return not_verified(where,
                          fmt::format("the server could not connect to {} ({}{}{}): the forward "
                                      "to this host is not in place",
                                      target, cb::outcome_name(reply.outcome),
                                      reply.detail.empty() ? "" : ": ", reply.detail),
                          observed);
    default:
      return not_verified(where,
                          fmt::format("the server answered {}: {}", cb::outcome_name(reply.outcome),
                                      reply.detail),
                          observed);
  }
  Verification v;
  v.server = where;
  v.observed = observed;
  if (cb_result.token_received) {
    v.verified = true;
    v.method = "connect-back-token";
    v.proof = fmt::format(
        "the server connected to {} from {}, and the connection arrived "
        "at porthole's listener on TCP port {} carrying our token",
        target, cb_result.accepted_from, m.internal_port);
  } else if (cb_result.seen_in_tcp_table) {
    v.verified = true;
    v.method = "connect-back-handshake";
    v.proof = fmt::format(
        "the server's connection to {} (from {}) completed and reached "
        "the service already listening on TCP port {} (seen in this "
        "host's TCP table)",
        target, reply.detail, m.internal_port);
  } else if (cb_result.own_listener) {
    v.explanation = fmt::format(
        "the server connected to {}, but the connection did not "
        "arrive at TCP port {} here: something else answered (the "
        "router itself, or another host)",
        target, m.internal_port);
  } else {
    v.explanation = fmt::format(
        "the server connected to {}, but this host's TCP table shows "
        "no such connection on port {}: something else answered",
        target, m.internal_port);
  }
  return v;
}

// The servers to verify against, or the verdict (or error) when there are none.
Result<std::vector<Server>> verify_servers(const Options& options, const Mapping& mapping,
                                           std::optional<Verification>& verdict) {
  if (mapping.internal_port == 0 || mapping.external_port == 0)
    return make_error(Errc::usage, "verify: the mapping has no ports");
  auto list = servers(options);
  if (!list && list.error().code != Errc::usage) verdict = not_verified("", list.error().message);
  return list;
}

}  // namespace

Result<Verification> verify(const Options& options, const Mapping& mapping) {
  std::optional<Verification> verdict;
  auto list = verify_servers(options, mapping, verdict);
  if (verdict) return *verdict;
  if (!list) return list.error();
  const Deadline deadline = Clock::now() + options.timeout;
  return mapping.transport == Transport::udp ? verify_udp(options, mapping, *list, deadline)
                                             : verify_tcp(options, mapping, *list, deadline);
}

namespace detail {

Result<Verification> verify_udp_from(UdpSocket& socket, const Options& options,
                                     const Mapping& mapping) {
  if (mapping.transport != Transport::udp)
    return make_error(Errc::usage, "verify: not a UDP mapping");
  std::optional<Verification> verdict;
  auto list = verify_servers(options, mapping, verdict);
  if (verdict) return *verdict;
  if (!list) return list.error();
  return verify_udp_on(socket, options, mapping, *list, Clock::now() + options.timeout);
}

}  // namespace detail
}  // namespace porthole
