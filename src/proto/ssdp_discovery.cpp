#include "proto/ssdp_discovery.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstring>
#include <iterator>
#include <optional>
#include <unordered_set>
#include <vector>

#include <fmt/format.h>

#include "codec/ip_address_format.hpp"
#include "codec/ssdp_codec.hpp"
#include "net/route.hpp"
#include "net/udp_socket.hpp"

namespace porthole::detail {
namespace {

using std::chrono::milliseconds;

// When each round of M-SEARCHes goes out, from the start. UDP gets lost; a router that
// honours MX waits up to MX seconds before it answers, so the later rounds are spread.
constexpr std::array<milliseconds, 3> kSendAt = {milliseconds(0), milliseconds(200),
                                                 milliseconds(600)};
// The first round asks only for the version-1 types: a device answers a search for an
// earlier version of its type (UDA 1.1 s1.3.2), so IGD:1 finds IGDv1 and IGDv2 devices
// and WANIPConnection:1 a device that announces only that service. Every datagram is an
// answer the router schedules, and the description GET that follows the first answer
// waits behind the others: four datagrams instead of eight. The later rounds (only
// when nothing usable came) also ask for the version-2 types, for a device that answers
// its own version only.
constexpr std::array<std::string_view, 2> kFirstTargets = {ssdp::kIgd1, ssdp::kWanIp1};
constexpr std::array<std::string_view, 4> kTargets = {ssdp::kIgd1, ssdp::kIgd2, ssdp::kWanIp1,
                                                      ssdp::kWanIp2};
// UDA 1.1 allows MX 1..5; the smallest keeps MX-honouring routers quick.
constexpr int kMx = 1;
// A device answers within MX seconds of an M-SEARCH (UDA 1.1 s1.3.3), so once the last
// round has had MX seconds and a little slack, nobody is coming: give up then rather
// than at the caller's deadline (a gateway without UPnP must not cost the whole
// --timeout when PCP and NAT-PMP have already said no).
constexpr milliseconds kDiscoveryWindow = kSendAt.back() + std::chrono::seconds(kMx) +
                                          milliseconds(200);
// A hostile or chatty LAN must not flood the log or grow memory without bound.
constexpr std::size_t kMaxLoggedIgnores = 32;
constexpr std::size_t kMaxRemembered = 64;
// IP_MULTICAST_TTL: the IGD is on our link; 2 tolerates one bridge-like hop.
constexpr unsigned char kMulticastTtl = 2;

void configure_multicast(int fd, const GatewayInfo& gw) {
  unsigned char ttl = kMulticastTtl;
  if (::setsockopt(fd, IPPROTO_IP, IP_MULTICAST_TTL, &ttl, sizeof(ttl)) != 0)
    log_to(gw.log, LogLevel::debug,
           fmt::format("ssdp    IP_MULTICAST_TTL: {}", std::strerror(errno)));
  // Send the multicast out of the interface that faces the gateway, not whatever the
  // multicast route says.
  if (!gw.local_ip.is_v4() || gw.local_ip.is_unspecified()) return;
  in_addr local{};
  std::memcpy(&local, gw.local_ip.bytes().data(), sizeof(local));
  if (::setsockopt(fd, IPPROTO_IP, IP_MULTICAST_IF, &local, sizeof(local)) != 0)
    log_to(gw.log, LogLevel::debug,
           fmt::format("ssdp    IP_MULTICAST_IF {}: {}", gw.local_ip, std::strerror(errno)));
}

// What the answers that were not used amounted to, for the log and the final error.
struct Ignored {
  std::size_t garbage = 0;
  std::size_t not_igd = 0;
  std::size_t refused = 0;
  std::size_t duplicates = 0;
  std::size_t logged = 0;
  std::string last_refusal;  // "ignored an answer from 192.168.1.7: LOCATION ...: refused"
  std::unordered_set<std::string> seen;  // at most kMaxRemembered datagrams of 2 KiB
};

class Discovery {
 public:
  Discovery(const GatewayInfo& gw, UdpSocket& sock, bool multicast, Clock::time_point start)
      : gw_(gw), sock_(sock), multicast_(multicast), start_(start) {
    // 239.255.255.250 (ssdp::kMulticastIp), the UPnP multicast group.
    multicast_to_ = Endpoint{IpAddress::v4({239, 255, 255, 250}), ssdp::kPort};
    for (auto target : kFirstTargets) first_requests_.push_back(ssdp::build_msearch(target, kMx));
    for (auto target : kTargets) requests_.push_back(ssdp::build_msearch(target, kMx));
  }

  // One round of M-SEARCHes; false if not a single datagram could be sent.
  bool send_round(std::size_t round, std::string& error) {
    bool any = false;
    const bool first = round == 0;
    for (const auto& request : first ? first_requests_ : requests_) {
      auto bytes = std::span(reinterpret_cast<const std::uint8_t*>(request.data()), request.size());
      if (auto st = sock_.send_to(bytes, {gw_.gateway_ip, gw_.ssdp_port}); st)
        any = true;
      else
        error = st.error().message;
      if (multicast_) {
        if (auto st = sock_.send_to(bytes, multicast_to_); st)
          any = true;
        else
          error = st.error().message;
      }
    }
    log_to(gw_.log, LogLevel::debug,
           fmt::format("ssdp -> M-SEARCH for {} to {}:{}{} (round {}){}",
                       first ? "IGD:1, WANIPConnection:1" : "IGD:1, IGD:2, WANIPConnection:1, :2",
                       gw_.gateway_ip, gw_.ssdp_port,
                       multicast_ ? fmt::format(" and {}:{}", ssdp::kMulticastIp, ssdp::kPort)
                                  : std::string(),
                       round + 1, error.empty() ? "" : fmt::format(": {}", error)));
    return any;
  }

  // The answer, if this datagram is a usable one.
  std::optional<IgdLocation> consider(const Datagram& d) {
    std::string_view text(reinterpret_cast<const char*>(d.bytes.data()), d.bytes.size());
    // Unicast and multicast both reach the router, and every round asks again: the
    // same answer comes several times. Only the first of each is looked at and logged.
    // Exact keys, not hashes: a crafted datagram must not shadow the router's answer.
    std::string key = fmt::format("{}\n{}", d.from, text);
    if (ignored_.seen.count(key)) {
      ++ignored_.duplicates;
      return std::nullopt;
    }
    if (ignored_.seen.size() < kMaxRemembered) ignored_.seen.insert(std::move(key));

    auto parsed = ssdp::parse_search_response(text);
    if (!parsed) {
      ++ignored_.garbage;
      note(d, parsed.error().message);
      return std::nullopt;
    }
    if (!ssdp::denotes_igd(*parsed)) {
      ++ignored_.not_igd;
      note(d, fmt::format("not an IGD (ST '{}', USN '{}')", printable_excerpt(parsed->st, 120),
                          printable_excerpt(parsed->usn, 120)));
      return std::nullopt;
    }
    // LOCATION must be on the gateway itself, whoever sent the answer: an HA router may
    // answer from its own address, but the description must come from the gateway
    // (or, when the user allows it, from another address of our LAN subnet).
    auto url = check_device_url(parsed->location, gw_.gateway_ip.to_string(), gw_.upnp_allow_lan,
                                gw_.local_ip.to_string(),
                                gw_.upnp_allow_lan ? prefix_length_of(gw_.local_ip) : 0,
                                "LOCATION");
    if (!url) {
      ++ignored_.refused;
      ignored_.last_refusal = fmt::format("ignored an answer from {}: {}", d.from.ip,
                                          url.error().message);
      note(d, url.error().message);
      return std::nullopt;
    }
    IgdLocation out;
    out.location = std::move(parsed->location);
    out.url = std::move(*url);
    // Callers log these: keep terminal escapes and raw high bytes out of them.
    out.st = printable_excerpt(parsed->st, 256);
    out.server = printable_excerpt(parsed->server, 256);
    out.from_ip = d.from.ip;
    out.elapsed = std::chrono::duration_cast<milliseconds>(Clock::now() - start_);
    log_to(gw_.log, LogLevel::debug,
           fmt::format("ssdp <- {}: {} at {} ({}) after {} ms", d.from, out.st,
                       printable_excerpt(out.location, 200), out.server, out.elapsed.count()));
    return out;
  }

  Error no_answer(Deadline deadline) const {
    auto total = std::max(milliseconds(0),
                          std::chrono::duration_cast<milliseconds>(deadline - start_));
    std::string msg;
    if (ignored_.garbage + ignored_.not_igd + ignored_.refused == 0) {
      msg = fmt::format("no UPnP IGD answered M-SEARCH on {} within {} ms", gw_.gateway_ip,
                        total.count());
    } else {
      msg = fmt::format("no usable UPnP IGD answered M-SEARCH on {} within {} ms", gw_.gateway_ip,
                        total.count());
      if (!ignored_.last_refusal.empty()) msg += "; " + ignored_.last_refusal;
      std::vector<std::string> others;
      if (ignored_.not_igd)
        others.push_back(fmt::format("{} from other device types", ignored_.not_igd));
      if (ignored_.garbage) others.push_back(fmt::format("{} malformed", ignored_.garbage));
      if (!others.empty())
        msg += fmt::format("; other answers ignored: {}", fmt::join(others, ", "));
    }
    return make_error(Errc::no_service, std::move(msg));
  }

  void log_summary() const {
    if (ignored_.duplicates)
      log_to(gw_.log, LogLevel::debug,
             fmt::format("ssdp    {} duplicate answers ignored", ignored_.duplicates));
  }

 private:
  void note(const Datagram& d, std::string_view reason) {
    if (ignored_.logged < kMaxLoggedIgnores)
      log_to(gw_.log, LogLevel::debug, fmt::format("ssdp <- {} ignored: {}", d.from, reason));
    else if (ignored_.logged == kMaxLoggedIgnores)
      log_to(gw_.log, LogLevel::debug, "ssdp    further ignored answers are not logged");
    ++ignored_.logged;
  }

  const GatewayInfo& gw_;
  UdpSocket& sock_;
  bool multicast_;
  Endpoint multicast_to_;
  Clock::time_point start_;
  std::vector<std::string> first_requests_;
  std::vector<std::string> requests_;
  Ignored ignored_;
};

}  // namespace

Result<IgdLocation> discover_igd(const GatewayInfo& gw, Deadline deadline) {
  if (!gw.gateway_ip.is_v4())
    return make_error(Errc::usage,
                      fmt::format("gateway '{}' is not an IPv4 address", gw.gateway_ip));
  // A loopback gateway is a test fake: multicast would reach the real LAN.
  const bool multicast = !gw.gateway_ip.is_loopback();

  auto sock = UdpSocket::open_unconnected();
  if (!sock) return sock.error();
  if (multicast) configure_multicast(sock->fd(), gw);

  const auto start = Clock::now();
  deadline = std::min(deadline, start + kDiscoveryWindow);
  Discovery discovery(gw, *sock, multicast, start);
  std::size_t round = 0;
  for (;;) {
    // Checked on every pass, so a flood of answers cannot stretch discovery.
    auto now = Clock::now();
    if (now >= deadline) break;
    if (round < kSendAt.size() && now >= start + kSendAt[round]) {
      std::string error;
      if (!discovery.send_round(round, error) && round == 0)
        return make_error(Errc::no_service,
                          fmt::format("cannot send M-SEARCH to {}: {}", gw.gateway_ip, error));
      ++round;
      continue;
    }
    Deadline wake = round < kSendAt.size() ? std::min(deadline, start + kSendAt[round]) : deadline;
    auto got = sock->receive(wake, ssdp::kMaxDatagram);
    if (!got) {
      if (got.error().code == Errc::timeout) continue;     // next round, or the deadline
      if (got.error().code == Errc::no_service) continue;  // a stray ICMP error
      return got.error();
    }
    if (auto found = discovery.consider(*got)) {
      discovery.log_summary();
      return std::move(*found);
    }
  }
  discovery.log_summary();
  return discovery.no_answer(deadline);
}

}  // namespace porthole::detail
