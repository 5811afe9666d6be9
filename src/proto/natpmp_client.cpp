// The only file that includes <natpmp.h>.
//
// libnatpmp retries on the RFC 6886 s3.1 schedule (250 ms doubling, 9 tries: ~128 s)
// and checks neither reply length nor epoch. So porthole drives its state machine
// itself: it polls the socket with min(libnatpmp's next retry, our deadline), peeks
// each datagram and discards short ones before libnatpmp parses them.
#include "proto/natpmp_client.hpp"

#include <arpa/inet.h>
#include <natpmp.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/time.h>

#include <array>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <ctime>
#include <optional>

#include <fmt/format.h>

#include "codec/ip_address_format.hpp"
#include "codec/natpmp_codec.hpp"
#include "net/ipv4_class.hpp"

namespace porthole::detail {
namespace {

// RAII for natpmp_t.
class NatpmpSession {
 public:
  NatpmpSession() = default;
  ~NatpmpSession() {
    if (open_) ::closenatpmp(&n_);
  }
  NatpmpSession(const NatpmpSession&) = delete;
  NatpmpSession& operator=(const NatpmpSession&) = delete;

  Status open(const IpAddress& gateway_ip) {
    if (!gateway_ip.is_v4())
      return make_error(Errc::usage, fmt::format("'{}' is not an IPv4 gateway", gateway_ip));
    in_addr gw{};
    std::memcpy(&gw, gateway_ip.bytes().data(), sizeof(gw));
    int r = ::initnatpmp(&n_, 1, gw.s_addr);
    if (r < 0) return make_error(Errc::internal, fmt::format("initnatpmp failed ({})", r), r);
    open_ = true;
    return ok_status();
  }
  natpmp_t* get() { return &n_; }

 private:
  natpmp_t n_{};
  bool open_ = false;
};

std::string result_text(int code) {
  switch (code) {
    case NATPMP_ERR_UNSUPPORTEDVERSION: return "unsupported version (result 1)";
    case NATPMP_ERR_NOTAUTHORIZED: return "not authorized / refused (result 2)";
    case NATPMP_ERR_NETWORKFAILURE:
      return "network failure (result 3): the gateway has no external address; it may sit "
             "behind another NAT (upstream NAT / CGNAT)";
    case NATPMP_ERR_OUTOFRESOURCES: return "out of resources (result 4)";
    case NATPMP_ERR_UNSUPPORTEDOPCODE: return "unsupported opcode (result 5)";
    case NATPMP_ERR_UNDEFINEDERROR: return "unknown result code";
    default: return fmt::format("libnatpmp error {}", code);
  }
}

// Sent a request already; wait for the matching reply under `deadline`.
// `answered` tells whether any reply came (to tell a dead service from a slow one).
Result<natpmpresp_t> await_reply(natpmp_t* n, const natpmp::RequestKey& key, Deadline deadline,
                                 const GatewayInfo& info, bool& answered) {
  for (;;) {
    timeval tv{};
    int r = ::getnatpmprequesttimeout(n, &tv);
    auto lib_wait = std::chrono::milliseconds(r == 0 ? tv.tv_sec * 1000 + tv.tv_usec / 1000 : 0);
    auto left = remaining(deadline);
    if (left.count() == 0)
      return make_error(answered ? Errc::timeout : Errc::no_service,
                        fmt::format("no NAT-PMP answer from {} before the deadline",
                                    info.gateway_ip));
    auto wait = std::min(left, std::max(lib_wait, std::chrono::milliseconds(0)));
    pollfd pfd{n->s, POLLIN, 0};
    int ready = ::poll(&pfd, 1, static_cast<int>(wait.count()));
    if (ready > 0) {
      // One byte more than the largest reply, so an over-long datagram shows as such.
      std::uint8_t peek[natpmp::kMaxReplySize + 1];
      ssize_t len = ::recv(n->s, peek, sizeof(peek), MSG_PEEK | MSG_TRUNC);
      // Reading the socket error clears it, so the ICMP verdict is ours to act on.
      if (len < 0 && errno == ECONNREFUSED)
        return make_error(answered ? Errc::timeout : Errc::no_service,
                          fmt::format("no NAT-PMP service on {}:5351 (port unreachable)",
                                      info.gateway_ip),
                          NATPMP_ERR_NOGATEWAYSUPPORT);
      if (len >= 0) {
        // libnatpmp checks neither length nor (outside this wrapper) the opcode: our
        // codec does, and whatever does not answer this request never reaches it.
        auto size = std::min<std::size_t>(static_cast<std::size_t>(len), sizeof(peek));
        auto reply = natpmp::decode_reply({peek, size});
        const char* why = reply ? natpmp::mismatch(*reply, key) : nullptr;
        if (!reply || (why && !reply->unsupported_version())) {
          ::recv(n->s, peek, sizeof(peek), 0);  // consume it
          log_to(info.log, LogLevel::debug,
                 fmt::format("natpmp <- dropped: {}",
                             reply ? fmt::format("does not answer the request ({})", why)
                                   : reply.error().message));
          continue;
        }
        // libnatpmp folds result codes above 5 into one "undefined error": keep ours.
        if (reply->result_code > 5) {
          ::recv(n->s, peek, sizeof(peek), 0);
          answered = true;
          return make_error(Errc::refused,
                            fmt::format("NAT-PMP: {}", natpmp::describe_result(reply->result_code)),
                            reply->result_code);
        }
      }
    }
    natpmpresp_t resp{};
    r = ::readnatpmpresponseorretry(n, &resp);
    if (r == NATPMP_TRYAGAIN) continue;
    if (r == 0) {
      answered = true;
      return resp;
    }
    if (r == NATPMP_ERR_NOGATEWAYSUPPORT || r == NATPMP_ERR_SENDERR || r == NATPMP_ERR_RECVFROM)
      return make_error(answered ? Errc::timeout : Errc::no_service,
                        fmt::format("no NAT-PMP service on {}:5351 (port unreachable)",
                                    info.gateway_ip),
                        r);
    if (r == NATPMP_ERR_WRONGPACKETSOURCE) continue;  // not from the gateway: ignore
    answered = true;
    if (r == NATPMP_ERR_UNSUPPORTEDVERSION)
      return make_error(Errc::no_service,
                        fmt::format("the gateway {} does not speak NAT-PMP (unsupported "
                                    "version)",
                                    info.gateway_ip),
                        r);
    return make_error(Errc::refused, fmt::format("NAT-PMP: {}", result_text(r)), r);
  }
}

Result<natpmpresp_t> public_address(natpmp_t* n, Deadline deadline, const GatewayInfo& info,
                                    bool& answered) {
  log_to(info.log, LogLevel::debug,
         fmt::format("natpmp -> {}:5351 public address request", info.gateway_ip));
  int r = ::sendpublicaddressrequest(n);
  if (r < 0)
    return make_error(Errc::no_service,
                      fmt::format("cannot send NAT-PMP request to {} ({})", info.gateway_ip, r), r);
  auto resp = await_reply(n, natpmp::public_address_key(), deadline, info, answered);
  if (resp && resp->type != NATPMP_RESPTYPE_PUBLICADDRESS)
    return make_error(Errc::internal, "NAT-PMP reply of the wrong type");
  if (resp) {
    char buf[INET_ADDRSTRLEN] = {};
    ::inet_ntop(AF_INET, &resp->pnu.publicaddress.addr, buf, sizeof(buf));
    log_to(info.log, LogLevel::debug,
           fmt::format("natpmp <- public address {} epoch {}", buf, resp->epoch));
  }
  return resp;
}

// The public address as porthole reports it: none for 0.0.0.0, loopback or multicast,
// which no one outside could reach (RFC 6886 s3.2 leaves it to the client to judge).
std::optional<IpAddress> usable_external_ip(const in_addr& a) {
  std::array<std::uint8_t, 4> bytes{};
  std::memcpy(bytes.data(), &a, bytes.size());
  const IpAddress ip = IpAddress::v4(bytes);
  if (is_unusable_external_ip(ip)) return std::nullopt;
  return ip;
}

}  // namespace

Result<ProbeInfo> NatpmpClient::probe(Deadline deadline) {
  NatpmpSession s;
  if (auto st = s.open(info_.gateway_ip); !st) return st.error();
  bool answered = false;
  auto resp = public_address(s.get(), deadline, info_, answered);
  if (!resp) {
    // The public address request failing with result 3 still proves NAT-PMP is spoken.
    if (resp.error().code == Errc::refused) {
      ProbeInfo info;
      return info;
    }
    return resp.error();
  }
  ProbeInfo info;
  info.external_ip = usable_external_ip(resp->pnu.publicaddress.addr);
  info.epoch = resp->epoch;
  return info;
}

Result<MapOutcome> NatpmpClient::map(const MapParams& params, Deadline deadline) {
  if (params.lifetime == 0)
    return make_error(Errc::usage, "NAT-PMP has no permanent mappings (lifetime 0 deletes)");
  NatpmpSession s;
  if (auto st = s.open(info_.gateway_ip); !st) return st.error();
  bool answered = false;
  // The mapping reply does not carry the external address: ask for it first
  // (requests go one at a time, RFC 6886 s3.1).
  auto addr = public_address(s.get(), deadline, info_, answered);
  if (!addr) return addr.error();

  int proto = params.transport == Transport::udp ? NATPMP_PROTOCOL_UDP : NATPMP_PROTOCOL_TCP;
  log_to(info_.log, LogLevel::debug,
         fmt::format("natpmp -> {}:5351 map {} {} suggest {} lifetime {}", info_.gateway_ip,
                     transport_name(params.transport), params.internal_port,
                     params.suggested_external_port, params.lifetime));
  int r = ::sendnewportmappingrequest(s.get(), proto, params.internal_port,
                                      params.suggested_external_port, params.lifetime);
  if (r < 0)
    return make_error(Errc::timeout, fmt::format("cannot send NAT-PMP mapping request ({})", r), r);
  auto key = natpmp::mapping_key(params.transport == Transport::udp ? natpmp::opcode::map_udp
                                                                    : natpmp::opcode::map_tcp,
                                 params.internal_port);
  auto resp = await_reply(s.get(), key, deadline, info_, answered);
  if (!resp) return resp.error();
  int want_type = params.transport == Transport::udp ? NATPMP_RESPTYPE_UDPPORTMAPPING
                                                     : NATPMP_RESPTYPE_TCPPORTMAPPING;
  if (resp->type != want_type || resp->pnu.newportmapping.privateport != params.internal_port)
    return make_error(Errc::internal, "NAT-PMP reply does not match the request");
  log_to(info_.log, LogLevel::debug,
         fmt::format("natpmp <- mapped external {} -> internal {} lifetime {}",
                     resp->pnu.newportmapping.mappedpublicport,
                     resp->pnu.newportmapping.privateport, resp->pnu.newportmapping.lifetime));

  MapOutcome out;
  Mapping& m = out.mapping;
  m.protocol = Protocol::natpmp;
  m.transport = params.transport;
  m.internal_ip = params.internal_ip;
  m.internal_port = params.internal_port;
  m.external_ip = usable_external_ip(addr->pnu.publicaddress.addr);
  m.external_port = resp->pnu.newportmapping.mappedpublicport;
  m.lifetime = resp->pnu.newportmapping.lifetime;
  m.expires_at = std::time(nullptr) + m.lifetime;
  out.epoch = resp->epoch;
  m.description = params.description;
  if (m.external_port == 0 || m.lifetime == 0)
    return make_error(Errc::refused,
                      "NAT-PMP: the gateway granted no mapping (port or "
                      "lifetime 0)");
  return out;
}

Status NatpmpClient::unmap(const Mapping& mapping, const Nonce& /*nonce*/, Deadline deadline) {
  NatpmpSession s;
  if (auto st = s.open(info_.gateway_ip); !st) return st.error();
  int proto = mapping.transport == Transport::udp ? NATPMP_PROTOCOL_UDP : NATPMP_PROTOCOL_TCP;
  // RFC 6886 s3.4: deletion = lifetime 0 and suggested external port 0.
  log_to(info_.log, LogLevel::debug,
         fmt::format("natpmp -> {}:5351 delete {} {}", info_.gateway_ip,
                     transport_name(mapping.transport), mapping.internal_port));
  int r = ::sendnewportmappingrequest(s.get(), proto, mapping.internal_port, 0, 0);
  if (r < 0)
    return make_error(Errc::no_service, fmt::format("cannot send NAT-PMP delete ({})", r), r);
  bool answered = false;
  auto key = natpmp::mapping_key(mapping.transport == Transport::udp ? natpmp::opcode::map_udp
                                                                     : natpmp::opcode::map_tcp,
                                 mapping.internal_port);
  auto resp = await_reply(s.get(), key, deadline, info_, answered);
  if (!resp) return resp.error();
  return ok_status();
}

}  // namespace porthole::detail
