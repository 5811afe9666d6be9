// PCP client: sockets, retransmission and the result-code policy around the pure
// codec in codec/pcp_codec.
#include "proto/pcp_client.hpp"

#include <sys/random.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <utility>

#include <fmt/format.h>

#include "codec/ip_address_format.hpp"
#include "net/ipv4_class.hpp"
#include "net/udp_socket.hpp"

namespace porthole::detail {
namespace {

// s11.1: "the nonce MUST be ... random" (96 bits). getrandom(2) is the kernel CSPRNG.
Result<Nonce> fresh_nonce() {
  Nonce nonce{};
  std::size_t got = 0;
  while (got < nonce.size()) {
    ssize_t n = ::getrandom(nonce.data() + got, nonce.size() - got, 0);
    if (n < 0) {
      if (errno == EINTR) continue;
      return make_error(Errc::internal, fmt::format("getrandom: {}: cannot make a PCP nonce",
                                                    std::strerror(errno)));
    }
    got += static_cast<std::size_t>(n);
  }
  return nonce;
}

// A uniform value in [0,1) for the retransmission jitter. Not security-relevant: if the
// kernel cannot give 4 bytes at once, no jitter (0.5 means RAND = 0) is fine.
double random_unit() {
  std::uint32_t v = 0;
  if (::getrandom(&v, sizeof(v), GRND_NONBLOCK) != static_cast<ssize_t>(sizeof(v))) return 0.5;
  return static_cast<double>(v) / 4294967296.0;
}

std::int64_t unix_now() {
  return std::chrono::duration_cast<std::chrono::seconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

std::int64_t elapsed_ms(Clock::time_point since) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - since).count();
}

std::string error_lifetime_text(const pcp::Response& response) {
  // s7.4: an error's lifetime says how long the same request would fail again.
  if (response.lifetime == 0) return {};
  return fmt::format(" (the router asks not to repeat the request for {} s)", response.lifetime);
}

}  // namespace

PcpClient::PcpClient(GatewayInfo info) : info_(std::move(info)) {}

std::string PcpClient::server() const {
  return fmt::format("{}:{}", info_.gateway_ip, info_.pcp_port);
}

void PcpClient::debug(std::string_view text) const { log_to(info_.log, LogLevel::debug, text); }

bool PcpClient::server_lost_state() const {
  std::lock_guard lock(mutex_);
  return server_lost_state_;
}

void PcpClient::note_heard() {
  std::lock_guard lock(mutex_);
  heard_from_server_ = true;
}

bool PcpClient::heard_from_server() const {
  std::lock_guard lock(mutex_);
  return heard_from_server_;
}

void PcpClient::note_epoch(std::uint32_t epoch) {
  const auto now = Clock::now();
  bool valid = true;
  std::uint32_t previous = 0;
  {
    std::lock_guard lock(mutex_);
    if (last_epoch_) {
      previous = *last_epoch_;
      valid = pcp::epoch_is_valid(previous, epoch, last_epoch_time_, now);
      if (!valid) server_lost_state_ = true;
    }
    last_epoch_ = epoch;
    last_epoch_time_ = now;
  }
  if (!valid)
    log_to(info_.log, LogLevel::warning,
           fmt::format("PCP server {} epoch went from {} to {}: it lost its state (rebooted?); "
                       "its mappings must be recreated (RFC 6887 s8.5)",
                       server(), previous, epoch));
}

Error PcpClient::unsupported_version_error(const pcp::Response& response) const {
  std::string message =
      response.version == 0
          ? fmt::format(
                "{} speaks only NAT-PMP: it answered the PCP request with "
                "UNSUPP_VERSION",
                server())
          : fmt::format(
                "{} speaks only PCP version {}, not version {} (UNSUPP_VERSION): use "
                "NAT-PMP",
                server(), response.version, pcp::kVersion);
  return make_error(Errc::no_service, std::move(message), pcp::result::unsupp_version);
}

Result<UdpSocket> PcpClient::open_socket(IpAddress& client_ip) {
  // s8.1 / s16.4: a connected socket with a kernel-chosen (random) source port; its
  // local address is what the Client IP field must carry.
  auto socket = UdpSocket::open_connected({info_.gateway_ip, info_.pcp_port});
  if (!socket) return socket.error();
  client_ip = socket->local_ip();
  if (client_ip.is_unspecified())
    return make_error(Errc::internal, "cannot read the local address of the PCP socket");
  return socket;
}

Result<pcp::Response> PcpClient::exchange(UdpSocket& socket, std::span<const std::uint8_t> request,
                                          const pcp::RequestKey& key, const std::string& summary,
                                          Deadline deadline) {
  const auto start = Clock::now();
  const bool probing = key.opcode == pcp::opcode::announce;
  bool heard_now = false;
  std::string last_drop;
  std::chrono::milliseconds rt{0};
  for (int transmission = 0;; ++transmission) {
    // s8.1.1: every retransmission is the same datagram (same nonce), after RT.
    rt = pcp::next_retransmit_timeout(rt, random_unit());
    debug(transmission == 0
              ? fmt::format("pcp -> {} {}", server(), summary)
              : fmt::format("pcp -> {} {} (retransmission {})", server(), summary, transmission));
    if (auto sent = socket.send(request); !sent) {
      if (sent.error().code == Errc::no_service)
        return make_error(Errc::no_service,
                          fmt::format("no PCP server at {}: port unreachable (ICMP)", server()));
      return sent.error();
    }
    const Deadline phase_end = std::min(deadline, Clock::now() + rt);
    for (;;) {
      auto got = socket.receive(phase_end, pcp::kMaxMessageSize);
      if (!got) {
        if (got.error().code == Errc::timeout) break;  // retransmit, or give up
        if (got.error().code == Errc::no_service)
          return make_error(Errc::no_service,
                            fmt::format("no PCP server at {}: port unreachable (ICMP)", server()));
        return got.error();
      }
      const Datagram& d = *got;
      // s8.3: only the server's address and port may answer.
      if (d.from != Endpoint{info_.gateway_ip, info_.pcp_port}) {
        debug(fmt::format("pcp <- {} dropped: not from the PCP server {}", d.from, server()));
        continue;
      }
      auto response = pcp::decode_response(d.bytes);
      if (!response) {
        last_drop = response.error().message;
        debug(fmt::format("pcp <- {} dropped ({} bytes): {}", server(), d.bytes.size(), last_drop));
        continue;
      }
      heard_now = true;
      note_heard();
      if (response->unsupported_version()) {
        debug(fmt::format("pcp <- {} {}", server(), pcp::describe(*response)));
        return response;
      }
      if (const char* field = pcp::mismatch(*response, key)) {
        last_drop = fmt::format("{} (wrong {})", pcp::describe(*response), field);
        debug(fmt::format("pcp <- {} dropped, not an answer to our request: {}", server(),
                          last_drop));
        continue;
      }
      debug(fmt::format("pcp <- {} {}", server(), pcp::describe(*response)));
      note_epoch(response->epoch);
      return response;
    }
    if (Clock::now() >= deadline) break;
  }
  // A probe that only heard junk found no usable service either way; for MAP, silence
  // from a server that answered before is a timeout (port_mapper.hpp).
  if (heard_now || (!probing && heard_from_server())) {
    std::string message =
        fmt::format("the PCP server {} answered before, but not to this request within {} ms",
                    server(), elapsed_ms(start));
    if (!last_drop.empty()) message += "; last reply dropped: " + last_drop;
    return make_error(Errc::timeout, std::move(message));
  }
  return make_error(Errc::no_service,
                    fmt::format("no PCP answer from {} within {} ms", server(), elapsed_ms(start)));
}

Result<ProbeInfo> PcpClient::probe(Deadline deadline) {
  IpAddress client_ip;
  auto socket = open_socket(client_ip);
  if (!socket) return socket.error();
  const auto request = pcp::encode_announce_request(client_ip);
  auto response = exchange(*socket, request, pcp::announce_key(),
                           fmt::format("ANNOUNCE client {}", client_ip), deadline);
  if (!response) return response.error();
  if (response->unsupported_version()) return unsupported_version_error(*response);
  // s14.1: ANNOUNCE is mandatory for servers, but a server that does not know it still
  // speaks PCP: UNSUPP_OPCODE proves the service as well as SUCCESS does.
  if (response->result_code != pcp::result::success &&
      response->result_code != pcp::result::unsupp_opcode)
    return make_error(Errc::refused,
                      fmt::format("{} answered PCP ANNOUNCE with {}{}", server(),
                                  pcp::describe_result(response->result_code),
                                  error_lifetime_text(*response)),
                      response->result_code);
  ProbeInfo info;
  info.epoch = response->epoch;
  return info;
}

Result<MapOutcome> PcpClient::map(const MapParams& params, Deadline deadline) {
  if (params.lifetime == 0)
    return make_error(Errc::usage,
                      "PCP has no permanent mappings, and a MAP with lifetime 0 deletes one: "
                      "ask for a lifetime (at most 86400 s) or use unmap");
  if (params.internal_port == 0)
    return make_error(Errc::usage, "PCP MAP needs an internal port (1-65535)");

  MapOutcome outcome;
  std::uint32_t lifetime = params.lifetime;
  if (lifetime > pcp::kMaxLifetime) {
    outcome.warnings.push_back(
        fmt::format("lifetime {} s is longer than PCP routers keep mappings; asked for {} s (24 h)",
                    lifetime, pcp::kMaxLifetime));
    lifetime = pcp::kMaxLifetime;
  }

  IpAddress client_ip;
  auto socket = open_socket(client_ip);
  if (!socket) return socket.error();
  if (!params.internal_ip.is_unspecified() && params.internal_ip != client_ip)
    log_to(info_.log, LogLevel::info,
           fmt::format("pcp: the request names {} (the address this host sends from towards "
                       "{}), not {}: the router would refuse another address",
                       client_ip, info_.gateway_ip, params.internal_ip));

  Nonce nonce = params.nonce;
  if (!params.have_nonce) {
    auto fresh = fresh_nonce();
    if (!fresh) return fresh.error();
    nonce = *fresh;
  }

  pcp::MapRequest request;
  request.client_ip = client_ip;
  request.lifetime = lifetime;
  request.nonce = nonce;
  request.protocol = pcp::iana_protocol(params.transport);
  request.internal_port = params.internal_port;
  request.suggested_external_port = params.suggested_external_port;
  request.suggested_external_ip = params.suggested_external_ip;
  auto bytes = pcp::encode_map_request(request);
  if (!bytes) return bytes.error();

  auto response = exchange(*socket, *bytes, pcp::key_of(request), pcp::describe(request), deadline);
  if (!response) return response.error();
  if (response->unsupported_version()) return unsupported_version_error(*response);
  const std::string what = fmt::format("{} {}", transport_name(params.transport),
                                       params.internal_port);
  if (response->result_code != pcp::result::success)
    return make_error(Errc::refused,
                      fmt::format("{} refused the PCP mapping {}: {}{}", server(), what,
                                  pcp::describe_result(response->result_code),
                                  error_lifetime_text(*response)),
                      response->result_code);

  const auto& granted = *response->map;  // present: mismatch() checked it
  if (response->lifetime == 0)
    return make_error(Errc::internal,
                      fmt::format("{} answered the PCP mapping {} with SUCCESS and lifetime 0 "
                                  "(that would be a deletion)",
                                  server(), what));
  if (!granted.external_ip)
    return make_error(Errc::internal,
                      fmt::format("{} assigned a non-IPv4 external address to the PCP mapping "
                                  "{}",
                                  server(), what));
  if (granted.external_port == 0)
    return make_error(Errc::internal,
                      fmt::format("{} assigned external port 0 to the PCP mapping {}", server(),
                                  what));

  // s11.3/s11.4: the server may pick another port than suggested; the client takes it
  // (the mapping core tells the user).
  if (response->lifetime != lifetime)
    outcome.warnings.push_back(fmt::format("router granted a lifetime of {} s instead of {} s",
                                           response->lifetime, lifetime));
  // 0.0.0.0, loopback, multicast: no address anyone could reach (RFC 6887 s11.4 has the
  // server fill in its external address; one without a WAN address has none to give).
  const bool no_external = is_unusable_external_ip(*granted.external_ip);
  if (no_external)
    outcome.warnings.push_back(
        fmt::format("router reported external address {}: it has no usable external address "
                    "(upstream NAT / CGNAT?)",
                    *granted.external_ip));

  Mapping& m = outcome.mapping;
  m.protocol = Protocol::pcp;
  m.transport = params.transport;
  m.internal_ip = client_ip;
  m.internal_port = params.internal_port;
  if (!no_external) m.external_ip = granted.external_ip;
  m.external_port = granted.external_port;
  m.lifetime = response->lifetime;
  m.expires_at = unix_now() + response->lifetime;
  m.description = params.description;
  outcome.nonce = nonce;
  outcome.epoch = response->epoch;
  return outcome;
}

Status PcpClient::unmap(const Mapping& mapping, const Nonce& nonce, Deadline deadline) {
  if (mapping.internal_port == 0)
    return make_error(Errc::usage, "PCP delete needs the mapping's internal port");
  IpAddress client_ip;
  auto socket = open_socket(client_ip);
  if (!socket) return socket.error();
  if (!mapping.internal_ip.is_unspecified() && mapping.internal_ip != client_ip)
    log_to(info_.log, LogLevel::info,
           fmt::format("pcp: deleting a mapping made for {} from {}: the router will only "
                       "accept it if that is the same host",
                       mapping.internal_ip, client_ip));

  // s15: a delete is a MAP with lifetime 0 and the nonce that created the mapping;
  // the mapping's assigned address and port go along as suggestions.
  pcp::MapRequest request;
  request.client_ip = client_ip;
  request.lifetime = 0;
  request.nonce = nonce;
  request.protocol = pcp::iana_protocol(mapping.transport);
  request.internal_port = mapping.internal_port;
  request.suggested_external_port = mapping.external_port;
  if (mapping.external_ip && mapping.external_ip->is_v4())
    request.suggested_external_ip = mapping.external_ip;
  auto bytes = pcp::encode_map_request(request);
  if (!bytes) return bytes.error();

  auto response = exchange(*socket, *bytes, pcp::key_of(request), pcp::describe(request), deadline);
  if (!response) return response.error();
  if (response->unsupported_version()) return unsupported_version_error(*response);
  const std::string what = fmt::format("{} {} -> {}", transport_name(mapping.transport),
                                       mapping.internal_port, mapping.external_port);
  if (response->result_code == pcp::result::not_authorized)
    return make_error(Errc::refused,
                      fmt::format("{} refused to delete the PCP mapping {}: NOT_AUTHORIZED: the "
                                  "nonce does not match (someone else's mapping, or the router "
                                  "lost it)",
                                  server(), what),
                      response->result_code);
  if (response->result_code != pcp::result::success)
    return make_error(Errc::refused,
                      fmt::format("{} refused to delete the PCP mapping {}: {}{}", server(), what,
                                  pcp::describe_result(response->result_code),
                                  error_lifetime_text(*response)),
                      response->result_code);
  if (response->lifetime != 0)
    debug(fmt::format("pcp: delete of {} answered SUCCESS with lifetime {} (expected 0)", what,
                      response->lifetime));
  return ok_status();
}

}  // namespace porthole::detail
