// STUN server core: the responder's protocol decisions, the rate limiter, and the
// socket loop around them.
#include "proto/stun_server.hpp"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <utility>

#include <fmt/format.h>

#include "codec/ip_address_format.hpp"
#include "net/bound_udp_socket.hpp"
#include "porthole/types.hpp"

namespace porthole::detail {
namespace {

void log_line(const LogFn& log, LogLevel level, std::string_view text) {
  if (log) log(level, text);
}

constexpr std::size_t kOtherBoth = 3;  // index xor: the address differing in IP and port
constexpr std::size_t kOtherIp = 2;
constexpr std::size_t kOtherPort = 1;

}  // namespace

// --- StunResponder ---

StunResponder::StunResponder(std::vector<stun::Endpoint> addresses, const StunServerConfig& config)
    : addresses_(std::move(addresses)),
      software_(config.software.substr(0, kMaxServerSoftware)),
      log_(config.log),
      per_source_(config.per_source_rate, config.per_source_burst, config.max_sources),
      total_rate_(config.total_rate),
      total_burst_(std::max(1.0, config.total_burst)),
      total_tokens_(total_burst_) {}

void StunResponder::debug(std::string_view text) const {
  if (log_) log_(LogLevel::debug, text);
}

std::optional<StunResponder::Reply> StunResponder::handle(std::span<const std::uint8_t> datagram,
                                                          std::size_t arrived_on,
                                                          const stun::Endpoint& source,
                                                          Clock::time_point now) {
  ++counters_.received;
  if (arrived_on >= addresses_.size() || source.port == 0) return std::nullopt;

  // Rate limits first: they are the cheapest check, and a source flooding junk uses up
  // its own bucket only. Silent: an answer saying "slow down" would be traffic too.
  if (!per_source_.allow(source.ip.to_string(), now)) {
    ++counters_.rate_limited;
    return std::nullopt;
  }
  total_tokens_ = std::min(total_burst_,
                           total_tokens_ + total_rate_ * seconds_between(total_last_, now));
  total_last_ = std::max(total_last_, now);
  if (total_tokens_ < 1.0) {
    ++counters_.rate_limited;
    return std::nullopt;
  }
  total_tokens_ -= 1.0;

  const std::string from_text = source.to_string();
  auto message = stun::decode(datagram);
  if (!message) {
    if (auto classic = stun::decode_rfc3489(datagram))
      return classic_reply(*classic, arrived_on, source);
    ++counters_.malformed;
    debug(fmt::format("stun serve <- {} dropped ({} bytes): {}", from_text, datagram.size(),
                      message.error().message));
    return std::nullopt;
  }
  const stun::Message& m = *message;
  // RFC 8489 s6.3: indications and responses get no answer; porthole serves Binding
  // only, and an unknown method gets no answer either (nothing to say to a TURN client).
  if (m.message_class != stun::MessageClass::request || m.method != stun::method::binding) {
    ++counters_.not_requests;
    debug(fmt::format("stun serve <- {} dropped: not a Binding request: {}", from_text,
                      stun::describe(m)));
    return std::nullopt;
  }
  debug(fmt::format("stun serve <- {} {}", from_text, stun::describe(m)));

  // s6.3.1: unknown comprehension-required attributes (among them RESPONSE-ADDRESS and
  // RESPONSE-PORT, which would redirect the answer) get a 420 listing them.
  if (!m.unknown_required.empty()) return error_reply(m, arrived_on, source, m.unknown_required);

  const bool rfc5780 = addresses_.size() == 4;
  std::size_t from = arrived_on;
  if (m.change_request && (m.change_request->change_ip || m.change_request->change_port)) {
    // A server without a second address cannot honour CHANGE-REQUEST. It answers the
    // way a server without RFC 5780 does (420 listing it), so the client learns at once
    // that filtering cannot be tested here instead of waiting for an answer that
    // never comes.
    if (!rfc5780) return error_reply(m, arrived_on, source, {stun::attr::change_request});
    // RFC 5780 s6.1: answer from the address that differs from the one the request
    // arrived on in the IP (change IP) and/or the port (change port).
    if (m.change_request->change_ip) from ^= kOtherIp;
    if (m.change_request->change_port) from ^= kOtherPort;
  }

  stun::BindingSuccess s;
  s.transaction_id = m.transaction_id;
  s.mapped = source;
  if (rfc5780) {
    s.response_origin = addresses_[from];
    s.other_address = addresses_[arrived_on ^ kOtherBoth];
  }
  s.software = software_;
  // Answer a FINGERPRINT with a FINGERPRINT: the client multiplexes STUN with other
  // traffic (ICE); one that did not ask gets 8 bytes less.
  s.fingerprint = m.has_fingerprint;
  auto bytes = stun::encode_binding_success(s);
  if (!bytes || bytes->size() > kMaxReplySize) {
    debug(fmt::format("stun serve: cannot answer {}: {}", from_text,
                      bytes ? "answer too large" : bytes.error().message));
    return std::nullopt;
  }
  ++counters_.answered;
  debug(fmt::format("stun serve -> {} from {}: XOR-MAPPED-ADDRESS {} ({} bytes)", from_text,
                    addresses_[from].to_string(), from_text, bytes->size()));
  return Reply{from, source, std::move(*bytes)};
}

std::optional<StunResponder::Reply> StunResponder::classic_reply(
    const stun::ClassicRequest& request, std::size_t arrived_on, const stun::Endpoint& source) {
  const stun::Message& m = request.message;
  const std::string from_text = source.to_string();
  if (m.message_class != stun::MessageClass::request || m.method != stun::method::binding) {
    ++counters_.not_requests;
    debug(fmt::format("stun serve <- {} dropped: not an RFC 3489 Binding request", from_text));
    return std::nullopt;
  }
  // RESPONSE-ADDRESS (which would aim the answer elsewhere) lands here with every other
  // attribute we do not do: RFC 3489 clients get no 420 from us, just silence.
  if (!m.unknown_required.empty()) {
    ++counters_.malformed;
    debug(fmt::format("stun serve <- {} dropped: RFC 3489 request with {}", from_text,
                      stun::attribute_name(m.unknown_required.front())));
    return std::nullopt;
  }
  const bool rfc5780 = addresses_.size() == 4;
  std::size_t from = arrived_on;
  if (m.change_request && (m.change_request->change_ip || m.change_request->change_port)) {
    if (!rfc5780) {
      ++counters_.malformed;
      debug(fmt::format("stun serve <- {} dropped: CHANGE-REQUEST needs --alt-listen", from_text));
      return std::nullopt;
    }
    if (m.change_request->change_ip) from ^= kOtherIp;
    if (m.change_request->change_port) from ^= kOtherPort;
  }
  stun::ClassicBindingSuccess s{request.transaction_id, source, addresses_[from], std::nullopt};
  if (rfc5780) s.changed_address = addresses_[arrived_on ^ kOtherBoth];
  auto bytes = stun::encode_rfc3489_binding_success(s);
  if (!bytes || bytes->size() > kMaxReplySize) return std::nullopt;
  ++counters_.answered;
  ++counters_.rfc3489_answered;
  debug(fmt::format("stun serve <- {} RFC 3489 Binding request{}; -> from {}: MAPPED-ADDRESS {}",
                    from_text, from != arrived_on ? " (CHANGE-REQUEST)" : "",
                    addresses_[from].to_string(), from_text));
  return Reply{from, source, std::move(*bytes)};
}

std::optional<StunResponder::Reply> StunResponder::error_reply(const stun::Message& request,
                                                               std::size_t arrived_on,
                                                               const stun::Endpoint& source,
                                                               std::vector<std::uint16_t> unknown) {
  if (unknown.size() > kMaxUnknownListed) unknown.resize(kMaxUnknownListed);
  std::string names;
  for (std::uint16_t t : unknown) names += (names.empty() ? "" : " ") + stun::attribute_name(t);
  auto bytes = stun::encode_binding_error({request.transaction_id, 420, stun::error_reason(420),
                                           std::move(unknown), software_, request.has_fingerprint});
  if (!bytes || bytes->size() > kMaxReplySize) return std::nullopt;
  ++counters_.errors_sent;
  debug(fmt::format("stun serve -> {}: 420 Unknown Attribute ({})", source.to_string(), names));
  return Reply{arrived_on, source, std::move(*bytes)};
}

// --- StunServer ---

StunServer::StunServer(std::vector<UdpSocket> sockets, StunResponder responder, LogFn log)
    : sockets_(std::move(sockets)), responder_(std::move(responder)), log_(std::move(log)) {}

const std::vector<stun::Endpoint>& StunServer::addresses() const noexcept {
  return responder_.addresses();
}

Result<StunServer> StunServer::open(const StunServerConfig& config) {
  const auto& a = config.listen;
  if (!a.ip.is_v4())
    return make_error(Errc::usage, fmt::format("STUN listen address '{}' is not IPv4", a.ip));
  if (config.software.size() > kMaxServerSoftware)
    return make_error(Errc::usage, fmt::format("SOFTWARE for the STUN server: at most {} bytes",
                                               kMaxServerSoftware));
  if (!config.alt_listen) {
    auto socket = open_bound_udp_socket(a);
    if (!socket) return socket.error();
    std::vector<stun::Endpoint> addresses = {{a.ip, socket->local_port()}};
    std::vector<UdpSocket> sockets;
    sockets.push_back(std::move(*socket));
    log_line(config.log, LogLevel::info,
             fmt::format("STUN server on {} (one address: no RFC 5780 CHANGE-REQUEST)",
                         addresses[0].to_string()));
    return StunServer(std::move(sockets), StunResponder(std::move(addresses), config), config.log);
  }

  const auto& b = *config.alt_listen;
  if (!b.ip.is_v4())
    return make_error(Errc::usage, fmt::format("STUN alternate address '{}' is not IPv4", b.ip));
  if (a.ip.is_unspecified() || b.ip.is_unspecified())
    return make_error(Errc::usage,
                      "RFC 5780 needs two real addresses of this host, not 0.0.0.0: "
                      "clients are told them in OTHER-ADDRESS");
  if (a.ip == b.ip)
    return make_error(Errc::usage,
                      fmt::format("the alternate address must be another IP than {}", a.ip));
  if (a.port != 0 && a.port == b.port)
    return make_error(Errc::usage, fmt::format("the alternate port must differ from {}", a.port));

  // {IP1:P1, IP1:P2, IP2:P1, IP2:P2}. A kernel-chosen port may be taken on the other IP:
  // then try again with new ones.
  Error last = make_error(Errc::internal, "cannot bind the STUN server's addresses");
  for (int attempt = 0; attempt < 10; ++attempt) {
    std::vector<UdpSocket> sockets;
    std::vector<stun::Endpoint> addresses;
    auto bind = [&](const IpAddress& ip, std::uint16_t port) {
      auto s = open_bound_udp_socket(Endpoint{ip, port});
      if (!s) {
        last = s.error();
        return false;
      }
      addresses.push_back({ip, s->local_port()});
      sockets.push_back(std::move(*s));
      return true;
    };
    if (!bind(a.ip, a.port)) return last;
    const std::uint16_t p1 = addresses[0].port;
    if (!bind(a.ip, b.port)) {
      if (b.port == 0) continue;
      return last;
    }
    const std::uint16_t p2 = addresses[1].port;
    if (!bind(b.ip, p1) || !bind(b.ip, p2)) {
      if (a.port == 0 || b.port == 0) continue;
      return last;
    }
    log_line(config.log, LogLevel::info,
             fmt::format("STUN server on {}, {}, {}, {} (RFC 5780)", addresses[0].to_string(),
                         addresses[1].to_string(), addresses[2].to_string(),
                         addresses[3].to_string()));
    return StunServer(std::move(sockets), StunResponder(std::move(addresses), config), config.log);
  }
  return last;
}

void StunServer::attach(Reactor& reactor) {
  reactor_ = &reactor;
  for (std::size_t i = 0; i < sockets_.size(); ++i)
    reactor.watch(sockets_[i].fd(), true, false, [this, i](bool, bool) { on_readable(i); });
}

void StunServer::detach() {
  if (reactor_ == nullptr) return;
  for (const auto& s : sockets_) reactor_->unwatch(s.fd());
  reactor_ = nullptr;
}

void StunServer::on_readable(std::size_t i) {
  // Ready: the short deadline only guards against a datagram that vanished.
  auto got = sockets_[i].receive(Clock::now() + std::chrono::milliseconds{5},
                                 stun::kMaxDatagramSize);
  if (!got) {
    if (got.error().code == Errc::timeout || got.error().code == Errc::no_service) return;
    failure_ = got.error();
    reactor_->stop();
    return;
  }
  if (i == 0 && hook_ && hook_(got->bytes, got->from, reactor_->now())) return;
  auto reply = responder_.handle(got->bytes, i, got->from, reactor_->now());
  if (!reply) return;
  if (auto sent = sockets_[reply->from].send_to(reply->bytes, reply->to); !sent)
    log_line(log_, LogLevel::debug,
             fmt::format("stun serve: answer to {} not sent: {}", reply->to.to_string(),
                         sent.error().message));
}

Status StunServer::send_primary(std::span<const std::uint8_t> bytes, const Endpoint& to) {
  return sockets_.front().send_to(bytes, to);
}

Status StunServer::serve(int stop_fd) {
  Reactor reactor;
  attach(reactor);
  reactor.stop_on(stop_fd);
  Status st = reactor.run();
  detach();
  if (!st) return st;
  return failure_;
}

}  // namespace porthole::detail
