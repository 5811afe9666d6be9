// porthole::discover_nat: RFC 5780 NAT behaviour discovery over STUN, and double-NAT
// detection from the gateway's own idea of its external address.
//
// Timeline (one server that answers, RTT r):
//   0      test I (Binding to the primary address) from socket A; NAT-PMP and UPnP
//          probes of the gateway start in their own threads
//   r      socket A: mapping tests II and III (RFC 5780 s4.3), positive tests;
//          socket B: filtering tests II and III (s4.4) plus a control Binding, all to
//          the primary address; the two CHANGE-REQUESTs are negative tests that share
//          ONE wait of max(4 r, 100 ms)
//   r+wait verdict; the gateway probe gets what is left of its own short budget
// Socket B has only ever talked to the primary address. Socket A has talked to the
// other address too (mapping tests), so on A a NAT with address(-and-port)-dependent
// filtering would let the changed answers in and the filtering tests would lie.
#include <algorithm>
#include <future>
#include <memory>
#include <thread>

#include <fmt/format.h>

#include "codec/ip_address_format.hpp"
#include "core/nat_classify.hpp"
#include "core/stun_servers.hpp"
#include "core/session.hpp"
#include "net/ipv4_class.hpp"
#include "net/resolve.hpp"
#include "net/route.hpp"
#include "net/udp_socket.hpp"
#include "porthole/nat.hpp"
#include "proto/stun_client.hpp"

namespace porthole {
namespace {

using detail::Clock;
using detail::Deadline;
using detail::FilterAnswer;
using detail::StunBinding;
using detail::StunBindingQuery;
using detail::StunClient;
using detail::StunClientOptions;
using detail::UdpSocket;
using std::chrono::milliseconds;
namespace stun = detail::stun;

// The negative-test wait: a few round trips, but never less than this floor (a busy
// host or server can be late by tens of milliseconds, and a late answer would be
// taken for a filtered one).
constexpr milliseconds kNegativeFloor{100};
constexpr int kNegativeRtts = 4;
// Positive tests after test I (the mapping tests, the control Binding) may retransmit
// but give up after this long: a server whose other address is dead must not cost
// the whole deadline.
constexpr milliseconds kPositiveWait{1000};
// The gateway probe: NAT-PMP answers within milliseconds, UPnP within a few hundred on
// real routers. Counted from the start; after STUN is done it is not waited for longer.
constexpr milliseconds kGatewayBudget{1000};

milliseconds ms_since(Clock::time_point t) {
  return std::chrono::duration_cast<milliseconds>(Clock::now() - t);
}

void debug(const Options& o, std::string_view text) {
  detail::log_to(o.log, LogLevel::debug, text);
}

struct Answered {
  std::size_t index = 0;  // of the entry in the configured list
  std::string entry;      // as configured
  Endpoint server;
  UdpSocket socket;
  StunBinding binding;
};

// Test I against each server in order until one answers. Each server gets an equal
// share of what is left of the deadline.
Result<Answered> first_answer(const Options& options,
                              const std::vector<detail::StunServerEntry>& servers,
                              StunClient& client, Deadline deadline) {
  std::vector<std::string> failures;
  for (std::size_t i = 0; i < servers.size(); ++i) {
    const std::string& entry = servers[i].name;
    auto ip = detail::resolve_ipv4(servers[i].where.host);
    if (!ip) {
      failures.push_back(ip.error().message);
      continue;
    }
    auto socket = UdpSocket::open_unconnected();
    if (!socket) return socket.error();
    const auto left = static_cast<long>(servers.size() - i);
    const Deadline until = Clock::now() + detail::remaining(deadline) / left;
    StunBindingQuery q;
    q.server = {*ip, servers[i].where.port};
    debug(options, fmt::format("nat: test I against {} ({})", entry, q.server.to_string()));
    auto b = client.binding(*socket, q, until);
    if (!b) {
      failures.push_back(fmt::format("{}: {}", entry, b.error().message));
      continue;
    }
    return Answered{i, entry, q.server, std::move(*socket), std::move(*b)};
  }
  std::string text = "no STUN server answered";
  for (std::size_t i = 0; i < failures.size(); ++i) text += (i ? "; " : ": ") + failures[i];
  return make_error(Errc::no_service, std::move(text));
}

// Without RFC 5780 on the first server: test I from the same socket to the next
// configured server on another IP. Its answer shows whether the NAT kept the mapping
// for another destination. Empty when there is none or it does not answer in time.
std::optional<Endpoint> second_server_mapping(const Options& options,
                                              const std::vector<detail::StunServerEntry>& servers,
                                              Answered& a, StunClient& client, Deadline until) {
  for (std::size_t j = a.index + 1; j < servers.size(); ++j) {
    auto ip = detail::resolve_ipv4(servers[j].where.host);
    if (!ip || *ip == a.server.ip) continue;
    StunBindingQuery q;
    q.server = {*ip, servers[j].where.port};
    debug(options, fmt::format("nat: no RFC 5780 on {}; mapping compared with {} ({})", a.entry,
                               servers[j].name, q.server.to_string()));
    auto b = client.binding(a.socket, q, until);
    if (b) return b->mapped;
    debug(options, fmt::format("nat: {}: {}", servers[j].name, b.error().message));
  }
  return std::nullopt;
}

FilterAnswer filter_answer(const Result<StunBinding>& r) {
  if (r) return FilterAnswer::answered;
  if (r.error().code == Errc::no_service) {
    // An answer from the primary address to a CHANGE-REQUEST (the client drops it and
    // says so) is a server that ignores the request, not a NAT that filters.
    if (r.error().message.find("ignored CHANGE-REQUEST") != std::string::npos)
      return FilterAnswer::refused;
    return FilterAnswer::silent;
  }
  return FilterAnswer::refused;
}

// The filtering tests on their own socket: control, change IP+port, change port.
std::vector<Result<StunBinding>> filtering_tests(const Options& options, UdpSocket& socket,
                                                 const Endpoint& server, const Endpoint& other,
                                                 milliseconds wait, Deadline positive) {
  StunClientOptions o;
  o.log = options.log;
  // Three sends inside the wait (0, wait/3, wait), against loss.
  o.initial_rto = std::max(milliseconds{1}, wait / 3);
  o.max_transmissions = 3;
  StunClient client(o);
  const Deadline negative = Clock::now() + wait;
  std::vector<StunBindingQuery> q(3);
  q[0].server = server;
  q[1].server = server;
  q[1].change_request = stun::ChangeRequest{true, true};
  q[1].other_address = other;
  q[1].deadline = negative;
  q[2].server = server;
  q[2].change_request = stun::ChangeRequest{false, true};
  q[2].other_address = other;
  q[2].deadline = negative;
  return client.bindings(socket, q, positive);
}

}  // namespace

const char* nat_behaviour_name(NatBehaviour b) noexcept {
  switch (b) {
    case NatBehaviour::unknown: return "unknown";
    case NatBehaviour::endpoint_independent: return "endpoint-independent";
    case NatBehaviour::address_dependent: return "address-dependent";
    case NatBehaviour::address_and_port_dependent: return "address-and-port-dependent";
  }
  return "unknown";
}

const char* nat_type_name(NatType t) noexcept {
  switch (t) {
    case NatType::unknown: return "unknown";
    case NatType::none: return "none";
    case NatType::full_cone: return "full-cone";
    case NatType::restricted_cone: return "restricted-cone";
    case NatType::port_restricted_cone: return "port-restricted-cone";
    case NatType::symmetric: return "symmetric";
  }
  return "unknown";
}

Result<NatReport> discover_nat(const Options& options) {
  const auto started = Clock::now();
  if (options.timeout.count() <= 0) return make_error(Errc::usage, "the timeout must be positive");
  const Deadline deadline = started + options.timeout;

  // Every entry is checked before anything is sent.
  auto configured = detail::configured_stun_servers(options);
  if (!configured) return configured.error();
  const std::vector<detail::StunServerEntry>& servers = *configured;

  // The gateway's external address, asked concurrently (PCP's ANNOUNCE does not carry
  // one; NAT-PMP and UPnP do). No gateway (no default route) only costs the verdict.
  NatReport report;
  std::unique_ptr<detail::ProbeRace> race;
  if (auto session = detail::open_session(options)) {
    report.gateway = session->gateway.gateway_ip;
    race = std::make_unique<detail::ProbeRace>(*session, std::vector<Protocol>{Protocol::natpmp,
                                                                               Protocol::upnp});
  } else {
    debug(options, "nat: no gateway to ask for its external address: " + session.error().message);
  }

  StunClientOptions copts;
  copts.log = options.log;
  StunClient client(copts);
  auto first = first_answer(options, servers, client, deadline);
  if (!first) return first.error();
  Answered& a = *first;
  const StunBinding& b1 = a.binding;
  report.server = a.entry;
  report.server_address = a.server.to_string();
  report.server_software = b1.software;
  report.public_ip = b1.mapped.ip;
  report.public_port = b1.mapped.port;
  report.rtt = b1.rtt.value_or(b1.elapsed);
  auto local = detail::local_ip_towards(a.server.ip);
  if (local) report.local_ip = *local;
  report.local_port = a.socket.local_port();

  detail::NatTestResults tests;
  tests.local = {report.local_ip.value_or(IpAddress()), report.local_port};
  tests.mapped1 = b1.mapped;
  const std::optional<Endpoint> other = b1.other_address;
  // RFC 5780 s4.3 needs another IP and another port. stund started without a second
  // address sends CHANGED-ADDRESS 0.0.0.0:3479: not an address to send anything to.
  const bool testable = other && other->ip.is_v4() && !detail::is_unusable_external_ip(other->ip) &&
                        other->ip != a.server.ip && other->port != a.server.port &&
                        other->port != 0;
  if (!testable) {
    tests.mapped_second_server = second_server_mapping(options, servers, a, client,
                                                       std::min(deadline,
                                                                Clock::now() + kPositiveWait));
    report.warnings.push_back(fmt::format(
        "STUN server {} gave no usable other address (RFC 5780 OTHER-ADDRESS{}): {} cannot "
        "be tested; name one that supports RFC 5780 with --stun",
        a.entry, other ? ": " + other->to_string() : std::string(),
        tests.mapped_second_server ? "filtering, and mapping beyond endpoint-independent or not,"
                                   : "mapping and filtering"));
  } else {
    report.server_other_address = other->to_string();
    const milliseconds wait = std::min(std::max(kNegativeFloor, report.rtt * kNegativeRtts),
                                       detail::remaining(deadline));
    report.negative_wait = wait;
    const Deadline positive = std::min(deadline, Clock::now() + std::max(kPositiveWait, wait));
    debug(options, fmt::format("nat: RTT {} ms; mapping and filtering tests, negative wait {} ms",
                               report.rtt.count(), wait.count()));

    // Filtering on socket B, in a thread of its own, while socket A does the mapping.
    std::vector<Result<StunBinding>> filtering;
    auto socket_b = UdpSocket::open_unconnected();
    if (!socket_b) return socket_b.error();
    std::future<std::vector<Result<StunBinding>>> pending;
    try {
      pending = std::async(std::launch::async, filtering_tests, std::cref(options),
                           std::ref(*socket_b), a.server, *other, wait, positive);
    } catch (const std::system_error&) {
      // No thread to be had: run it after the mapping tests instead.
    }

    StunClientOptions mopts;
    mopts.log = options.log;
    mopts.initial_rto = std::clamp(report.rtt * 3, milliseconds{50}, milliseconds{500});
    StunClient mapping_client(mopts);
    std::vector<StunBindingQuery> mq(2);
    mq[0].server = {other->ip, a.server.port};  // test II: other IP, primary port
    mq[1].server = *other;                      // test III: other IP and port
    auto mapped = mapping_client.bindings(a.socket, mq, positive);
    if (mapped[0]) tests.mapped2 = mapped[0]->mapped;
    if (mapped[1]) tests.mapped3 = mapped[1]->mapped;
    for (const auto& m : mapped)
      if (!m) debug(options, "nat: mapping test: " + m.error().message);
    if (!tests.mapped2 && !tests.mapped3)
      report.warnings.push_back(fmt::format(
          "STUN server {} advertises the other address {}, but nothing answered from there: "
          "mapping and filtering are unknown",
          a.entry, report.server_other_address));

    filtering = pending.valid()
                    ? pending.get()
                    : filtering_tests(options, *socket_b, a.server, *other, wait, positive);
    tests.control_answered = filtering[0].ok();
    tests.change_ip_port = filter_answer(filtering[1]);
    tests.change_port = filter_answer(filtering[2]);
    for (std::size_t i = 1; i < filtering.size(); ++i)
      if (!filtering[i]) debug(options, "nat: filtering test: " + filtering[i].error().message);
    if (tests.change_ip_port == FilterAnswer::refused)
      report.warnings.push_back(
          fmt::format("STUN server {} does not honour CHANGE-REQUEST "
                      "({}): filtering is unknown",
                      a.entry, filtering[1].error().message));
    else if (!tests.control_answered)
      report.warnings.emplace_back(
          "the control Binding of the filtering tests went unanswered "
          "(packet loss?): filtering is unknown");
  }

  const detail::NatVerdict v = detail::classify_nat(tests);
  report.mapping = v.mapping;
  report.filtering = v.filtering;
  report.nat_type = v.nat_type;
  report.port_preserved = v.port_preserved;

  if (!v.behind_nat) {
    report.double_nat = false;
  } else if (race) {
    // NAT-PMP first (milliseconds); UPnP when NAT-PMP cannot tell.
    const Deadline until = std::max(Clock::now(), std::min(deadline, started + kGatewayBudget));
    for (Protocol p : {Protocol::natpmp, Protocol::upnp}) {
      auto o = race->await(p, p == Protocol::natpmp ? std::optional(milliseconds{0}) : std::nullopt,
                           until);
      if (o.finished && o.result && o.result->ok() && o.result->value().external_ip) {
        report.gateway_external_ip = o.result->value().external_ip;
        report.gateway_external_ip_via = p;
        break;
      }
    }
    if (report.gateway_external_ip) {
      report.double_nat = report.gateway_external_ip != report.public_ip;
      if (*report.double_nat)
        report.warnings.push_back(fmt::format(
            "double NAT: the gateway's external address {} is not the public address {}: "
            "another NAT sits beyond the gateway (double NAT or CGNAT), and ports mapped on "
            "the gateway are not reachable from the internet",
            *report.gateway_external_ip, report.public_ip));
    } else {
      debug(options, "nat: the gateway did not tell its external address (NAT-PMP, UPnP)");
    }
  }
  report.elapsed = ms_since(started);
  return report;
}

}  // namespace porthole
