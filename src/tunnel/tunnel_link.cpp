#include "tunnel/tunnel_link.hpp"

#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstring>

#include <fmt/format.h>

#include "codec/tunnel_codec.hpp"

namespace porthole::detail {

namespace {

constexpr std::size_t kReadChunk = std::size_t{64} * 1024;

bool is_server_stream(std::int64_t id) { return (id & 1) == 1; }

std::size_t flow_key(std::uint16_t port, std::uint16_t flow) {
  return (static_cast<std::size_t>(port) << 16) | flow;
}

}  // namespace

TunnelLink::TunnelLink(Reactor& reactor, std::unique_ptr<QuicConnection> connection, SendFn send,
                       TunnelLinkConfig config, Callbacks callbacks)
    : reactor_(reactor),
      connection_(std::move(connection)),
      send_(std::move(send)),
      config_(std::move(config)),
      callbacks_(std::move(callbacks)),
      read_buffer_(kReadChunk) {}

TunnelLink::~TunnelLink() {
  if (timer_ != 0) reactor_.cancel(timer_);
  if (pump_timer_ != 0) reactor_.cancel(pump_timer_);
  if (flow_timer_ != 0) reactor_.cancel(flow_timer_);
  for (auto& [id, s] : streams_)
    if (s.tcp.valid()) reactor_.unwatch(s.tcp.fd());
  for (auto& [key, f] : server_flows_) reactor_.unwatch(f.socket.fd());
}

void TunnelLink::on_datagram(std::span<const std::uint8_t> bytes, const Endpoint& from) {
  if (closed_) return;
  const auto now = reactor_.now();  // one clock read a datagram
  if (auto st = connection_->receive(bytes, from, now); !st)
    log(LogLevel::debug, "QUIC: dropped a datagram: " + st.error().message);
  // The rest of a burst is likely waiting in the socket: pump once it is drained (a
  // timer due now runs before the reactor polls again), or now and then meanwhile.
  constexpr std::size_t kMaxUnpumped = 64;
  if (++unpumped_ >= kMaxUnpumped) {
    pump();
    return;
  }
  if (pump_timer_ == 0)
    pump_timer_ = reactor_.add_timer(now, [this] {
      pump_timer_ = 0;
      if (unpumped_ > 0) pump();
    });
}

// Sends what QUIC has, hands its events out, until neither produces more.
void TunnelLink::pump() {
  if (in_pump_) {
    pump_again_ = true;
    return;
  }
  in_pump_ = true;
  unpumped_ = 0;
  do {
    pump_again_ = false;
    while (!closed_) {
      auto e = connection_->next_event();
      if (!e) break;
      handle(e->value);
    }
    if (!closed_) service_dirty();
    if (closed_) break;
    packets_.clear();
    connection_->write_packets(packets_, reactor_.now());
    if (!packets_.empty()) send_(packets_);
    while (!closed_) {
      auto e = connection_->next_event();
      if (!e) break;
      pump_again_ = true;
      handle(e->value);
    }
  } while (pump_again_ && !closed_);
  in_pump_ = false;
  schedule();
}

void TunnelLink::schedule() {
  if (timer_ != 0) {
    reactor_.cancel(timer_);
    timer_ = 0;
  }
  if (closed_) return;
  const auto due = connection_->next_timeout();
  if (due == TimePoint::max()) return;
  timer_ = reactor_.add_timer(std::max(due, reactor_.now()), [this] {
    timer_ = 0;
    connection_->on_timeout(reactor_.now());
    pump();
  });
}

void TunnelLink::handle(QuicEvent::Value& event) {
  if (std::holds_alternative<QuicEvent::HandshakeDone>(event)) {
    on_established();
  } else if (auto* o = std::get_if<QuicEvent::StreamOpened>(&event)) {
    on_stream_opened(o->id);
  } else if (auto* d = std::get_if<QuicEvent::StreamData>(&event)) {
    on_stream_data(*d);
  } else if (auto* r = std::get_if<QuicEvent::StreamReset>(&event)) {
    on_stream_reset(r->id);
  } else if (auto* w = std::get_if<QuicEvent::StreamWritable>(&event)) {
    auto it = streams_.find(w->id);
    if (it != streams_.end()) service(it->second);
  } else if (auto* g = std::get_if<QuicEvent::Datagram>(&event)) {
    on_quic_datagram(g->bytes);
  } else if (auto* c = std::get_if<QuicEvent::Closed>(&event)) {
    closed_ = true;
    // Our CONNECTION_CLOSE (RFC 9000 s10.2; a refusal's TLS alert) goes out before the
    // owner hears of the end and perhaps closes the socket.
    packets_.clear();
    connection_->write_packets(packets_, reactor_.now());
    if (!packets_.empty()) send_(packets_);
    // Every relayed connection ends with the tunnel.
    std::vector<std::int64_t> ids;
    for (const auto& [id, s] : streams_) ids.push_back(id);
    for (auto id : ids) drop_stream(id, std::nullopt);
    if (callbacks_.closed) callbacks_.closed(c->error, c->by_peer, c->app_code);
  }
}

void TunnelLink::on_established() {
  if (callbacks_.established) callbacks_.established();
  if (!config_.server) return;
  // docs/tunnel.md: the exposed-port list on the first server-initiated stream.
  auto id = connection_->open_stream();
  if (!id) {
    log(LogLevel::warning, "QUIC: cannot open the port-list stream: " + id.error().message);
    return;
  }
  Stream s(*id, TcpSocket(), StreamRelay(tunnel::encode_port_list(config_.ports), false));
  s.port_list = true;
  s.relay.on_tcp_eof();  // all there is: the FIN goes with it
  auto [it, inserted] = streams_.emplace(*id, std::move(s));
  flush_to_stream(it->second);
}

void TunnelLink::on_stream_opened(std::int64_t id) {
  if (streams_.count(id) != 0) return;
  if (config_.server) {
    if (is_server_stream(id)) return;
    streams_.emplace(id, Stream(id, TcpSocket(), StreamRelay({}, true)));
    return;
  }
  if (!is_server_stream(id)) return;
  Stream s(id, TcpSocket(), StreamRelay({}, false));
  s.port_list = true;
  s.relay.on_tcp_eof();
  streams_.emplace(id, std::move(s));
}

void TunnelLink::on_port_list_data(Stream& s, std::span<const std::uint8_t> bytes, bool fin) {
  s.list_bytes.insert(s.list_bytes.end(), bytes.begin(), bytes.end());
  connection_->consume_stream(s.id, bytes.size());
  if (!fin) {
    if (s.list_bytes.size() > 4 + 3 * tunnel::kMaxExposedPorts) {
      close(kQuicCloseNormal, "malformed exposed-port list");
    }
    return;
  }
  auto list = tunnel::decode_port_list(s.list_bytes);
  if (!list || !list->has_value()) {
    log(LogLevel::warning, "the peer sent a malformed exposed-port list");
    close(kQuicCloseNormal, "malformed exposed-port list");
    return;
  }
  // Our side of the stream ends too.
  flush_to_stream(s);
  if (callbacks_.port_list) callbacks_.port_list(**list);
}

void TunnelLink::on_stream_data(QuicEvent::StreamData& data) {
  auto it = streams_.find(data.id);
  if (it == streams_.end()) {
    // Every stream is known from its StreamOpened event (or from add_tcp) on: this one
    // was dropped while its data was still queued or in flight. Its bytes still count
    // against the connection's flow control (RFC 9000 s4.1), so they are given back.
    connection_->consume_stream(data.id, data.bytes.size());
    return;
  }
  Stream& s = it->second;
  if (s.port_list) {
    if (!config_.server) on_port_list_data(s, data.bytes, data.fin);
    return;
  }
  const bool had_port = s.relay.target_port().has_value();
  if (auto st = s.relay.on_stream_data(std::move(data.bytes), data.fin); !st) {
    log(LogLevel::info, "a stream without a tunnel header: reset");
    drop_stream(s.id, kStreamPortNotExposed);
    return;
  }
  if (config_.server && !had_port && s.relay.target_port()) {
    const std::uint16_t port = *s.relay.target_port();
    const bool exposed = std::find(config_.ports.begin(), config_.ports.end(),
                                   ExposedPort{port, TunnelProto::tcp}) != config_.ports.end();
    if (!exposed) {
      log(LogLevel::info, fmt::format("a stream for port {}/tcp, which is not exposed", port));
      drop_stream(s.id, kStreamPortNotExposed);
      return;
    }
    auto tcp = tcp_connect_start(config_.to.to_string(), port);
    if (!tcp) {
      log(LogLevel::info,
          fmt::format("connect to {}:{}: {}", config_.to.to_string(), port, tcp.error().message));
      drop_stream(s.id, kStreamConnectFailed);
      return;
    }
    s.tcp = std::move(*tcp);
    s.connecting = true;
    const std::int64_t id = s.id;
    reactor_.watch(s.tcp.fd(), false, true, [this, id](bool r, bool w) { on_tcp_ready(id, r, w); });
    // Data that came with the header waits for the connect; the header itself is
    // consumed now.
    if (auto n = s.relay.take_unreported_header(); n > 0) connection_->consume_stream(s.id, n);
    return;
  }
  if (!s.dirty) {
    s.dirty = true;
    dirty_.push_back(s.id);
  }
}

void TunnelLink::service_dirty() {
  // service() may drop streams and handle() more events meanwhile: take the list first.
  servicing_.clear();
  servicing_.swap(dirty_);
  for (auto id : servicing_) {
    auto it = streams_.find(id);
    if (it == streams_.end()) continue;
    it->second.dirty = false;
    service(it->second);
  }
}

void TunnelLink::on_stream_reset(std::int64_t id) {
  auto it = streams_.find(id);
  if (it == streams_.end()) return;
  // The peer gave up on the stream: the TCP connection goes with it, as a reset.
  if (it->second.tcp.valid()) {
    ::linger l{1, 0};
    ::setsockopt(it->second.tcp.fd(), SOL_SOCKET, SO_LINGER, &l, sizeof l);
  }
  drop_stream(id, kStreamTcpReset);
}

void TunnelLink::drop_stream(std::int64_t id, std::optional<std::uint64_t> reset_code) {
  auto it = streams_.find(id);
  if (it == streams_.end()) return;
  const bool relayed = it->second.tcp.valid() || !config_.server;
  const bool was_list = it->second.port_list;
  if (it->second.tcp.valid()) reactor_.unwatch(it->second.tcp.fd());
  if (reset_code && !closed_) connection_->reset_stream(id, *reset_code);
  streams_.erase(it);
  if (relayed && !was_list && callbacks_.tcp_done) callbacks_.tcp_done();
}

void TunnelLink::add_tcp(TcpSocket socket, std::uint16_t remote_port) {
  auto id = connection_->open_stream();
  if (!id) {
    log(LogLevel::warning, "QUIC: cannot open a stream: " + id.error().message);
    return;  // the socket closes: the local program sees the connection end
  }
  auto header = tunnel::encode_stream_header(remote_port);
  Stream s(*id, std::move(socket), StreamRelay(header, false));
  const int fd = s.tcp.fd();
  auto [it, inserted] = streams_.emplace(*id, std::move(s));
  const std::int64_t sid = *id;
  reactor_.watch(fd, true, false, [this, sid](bool r, bool w) { on_tcp_ready(sid, r, w); });
  service(it->second);
  pump();
}

void TunnelLink::on_tcp_ready(std::int64_t id, bool readable, bool writable) {
  auto it = streams_.find(id);
  if (it == streams_.end()) return;
  Stream& s = it->second;
  if (readable) s.tcp_readable = true;
  if (s.connecting) {
    if (!writable) return;
    if (int err = tcp_connect_error(s.tcp); err != 0) {
      log(LogLevel::info, fmt::format("connect to {}:{}: {}", config_.to.to_string(),
                                      s.relay.target_port().value_or(0), std::strerror(err)));
      drop_stream(id, kStreamConnectFailed);
      pump();
      return;
    }
    s.connecting = false;
  }
  service(s);
  pump();
}

void TunnelLink::flush_to_stream(Stream& s) {
  auto pending = s.relay.to_stream();
  if (pending.empty() && !s.relay.fin_pending()) return;
  const bool fin = s.relay.fin_pending();
  const std::size_t n = connection_->write_stream(s.id, pending, fin);
  s.relay.took_by_stream(n, fin && n == pending.size());
}

bool TunnelLink::service(Stream& s) {
  if (s.port_list) {
    flush_to_stream(s);
    return true;
  }
  if (s.connecting || !s.tcp.valid()) return true;
  const std::int64_t id = s.id;
  // Stream -> TCP first: it frees the peer's window.
  while (!s.relay.to_tcp().empty()) {
    auto out = s.relay.to_tcp();
    ssize_t n = ::send(s.tcp.fd(), out.data(), out.size(), MSG_DONTWAIT | MSG_NOSIGNAL);
    if (n < 0) {
      if (errno == EAGAIN || errno == EWOULDBLOCK) break;
      if (errno == EINTR) continue;
      drop_stream(id, kStreamTcpReset);
      return false;
    }
    connection_->consume_stream(id, s.relay.wrote_to_tcp(static_cast<std::size_t>(n)));
  }
  if (s.relay.shutdown_pending()) {
    ::shutdown(s.tcp.fd(), SHUT_WR);
    s.relay.did_shutdown();
  }
  // TCP -> stream, only as far as the stream takes it, read straight into the stream's
  // send buffer; only once the socket is known to have data (a read that came back
  // short or empty means wait for poll(2)).
  flush_to_stream(s);
  while (s.tcp_readable && s.relay.to_stream().empty() && s.relay.tcp_read_room() > 0) {
    const auto room = connection_->stream_space(id, std::min(kReadChunk, s.relay.tcp_read_room()));
    if (room.empty()) break;  // a StreamWritable event follows
    ssize_t n = ::recv(s.tcp.fd(), room.data(), room.size(), MSG_DONTWAIT);
    if (n < 0) {
      if (errno == EAGAIN || errno == EWOULDBLOCK) {
        s.tcp_readable = false;
        break;
      }
      if (errno == EINTR) continue;
      drop_stream(id, kStreamTcpReset);
      return false;
    }
    if (n == 0) {
      s.relay.on_tcp_eof();
      flush_to_stream(s);
      continue;
    }
    connection_->commit_stream(id, static_cast<std::size_t>(n));
    if (static_cast<std::size_t>(n) < room.size()) s.tcp_readable = false;
  }
  if (s.relay.done()) {
    drop_stream(id, std::nullopt);
    return false;
  }
  update_watch(s);
  return true;
}

void TunnelLink::update_watch(Stream& s) {
  if (!s.tcp.valid()) return;
  const bool read = s.relay.to_stream().empty() && s.relay.tcp_read_room() > 0 &&
                    connection_->stream_room(s.id) > 0;
  const bool write = !s.relay.to_tcp().empty() || s.relay.shutdown_pending();
  reactor_.set_interest(s.tcp.fd(), read, write);
}

void TunnelLink::on_quic_datagram(std::span<const std::uint8_t> bytes) {
  auto d = tunnel::decode_datagram(bytes);
  if (!d) return;
  const auto now = reactor_.now();
  if (!config_.server) {
    for (auto& f : client_flows_) {
      if (f.flow != d->flow || f.remote_port != d->port) continue;
      f.last = now;
      if (f.source.port == 0) {  // a connected socket (TunnelClient::open_datagrams)
        ::send(f.listener_fd, d->payload.data(), d->payload.size(), MSG_DONTWAIT | MSG_NOSIGNAL);
        return;
      }
      sockaddr_storage sa{};
      const std::size_t len = f.source.to_sockaddr(sa);
      ::sendto(f.listener_fd, d->payload.data(), d->payload.size(), MSG_DONTWAIT | MSG_NOSIGNAL,
               reinterpret_cast<const sockaddr*>(&sa), static_cast<socklen_t>(len));
      return;
    }
    return;
  }
  const bool exposed = std::find(config_.ports.begin(), config_.ports.end(),
                                 ExposedPort{d->port, TunnelProto::udp}) != config_.ports.end();
  if (!exposed) return;
  const std::size_t key = flow_key(d->port, d->flow);
  auto it = server_flows_.find(key);
  if (it == server_flows_.end()) {
    auto sock = UdpSocket::open_connected(Endpoint{config_.to, d->port});
    if (!sock) {
      log(LogLevel::info, "UDP flow: " + sock.error().message);
      return;
    }
    ServerFlow f{std::move(*sock), d->port, d->flow, now};
    const int fd = f.socket.fd();
    it = server_flows_.emplace(key, std::move(f)).first;
    reactor_.watch(fd, true, false, [this, key](bool, bool) { on_server_flow_readable(key); });
    if (flow_timer_ == 0)
      flow_timer_ = reactor_.add_timer_in(config_.udp_flow_idle / 2, [this] {
        flow_timer_ = 0;
        expire_flows();
      });
  }
  it->second.last = now;
  ::send(it->second.socket.fd(), d->payload.data(), d->payload.size(), MSG_DONTWAIT | MSG_NOSIGNAL);
}

void TunnelLink::on_server_flow_readable(std::size_t key) {
  auto it = server_flows_.find(key);
  if (it == server_flows_.end()) return;
  auto& buf = read_buffer_;
  for (;;) {
    ssize_t n = ::recv(it->second.socket.fd(), buf.data(), buf.size(), MSG_DONTWAIT);
    if (n < 0) {
      if (errno == EINTR) continue;
      break;  // EAGAIN, or an ICMP error on the connected socket: nothing to relay
    }
    it->second.last = reactor_.now();
    auto dgram = tunnel::encode_datagram(
        it->second.port, it->second.flow,
        std::span<const std::uint8_t>(buf.data(), static_cast<std::size_t>(n)));
    if (auto st = connection_->send_datagram(dgram); !st)
      log(LogLevel::debug, "UDP datagram not sent: " + st.error().message);
  }
  pump();
}

void TunnelLink::on_local_udp(int listener_fd, std::uint16_t remote_port, const Endpoint& source,
                              std::span<const std::uint8_t> payload) {
  if (closed_ || !connection_->established()) return;
  const auto now = reactor_.now();
  ClientFlow* flow = nullptr;
  for (auto& f : client_flows_)
    if (f.listener_fd == listener_fd && f.source == source) flow = &f;
  if (flow == nullptr) {
    client_flows_.push_back({listener_fd, remote_port, source, next_flow_++, now});
    flow = &client_flows_.back();
    if (flow_timer_ == 0)
      flow_timer_ = reactor_.add_timer_in(config_.udp_flow_idle / 2, [this] {
        flow_timer_ = 0;
        expire_flows();
      });
  }
  flow->last = now;
  auto dgram = tunnel::encode_datagram(remote_port, flow->flow, payload);
  if (auto st = connection_->send_datagram(dgram); !st)
    log(LogLevel::debug, "UDP datagram not sent: " + st.error().message);
  pump();
}

void TunnelLink::forget_local_udp(int listener_fd) {
  std::erase_if(client_flows_, [&](const ClientFlow& f) { return f.listener_fd == listener_fd; });
}

void TunnelLink::expire_flows() {
  const auto now = reactor_.now();
  for (auto it = server_flows_.begin(); it != server_flows_.end();) {
    if (now - it->second.last >= config_.udp_flow_idle) {
      reactor_.unwatch(it->second.socket.fd());
      it = server_flows_.erase(it);
    } else {
      ++it;
    }
  }
  client_flows_.erase(std::remove_if(client_flows_.begin(), client_flows_.end(),
                                     [&](const ClientFlow& f) {
                                       return now - f.last >= config_.udp_flow_idle;
                                     }),
                      client_flows_.end());
  if (!server_flows_.empty() || !client_flows_.empty())
    flow_timer_ = reactor_.add_timer_in(config_.udp_flow_idle / 2, [this] {
      flow_timer_ = 0;
      expire_flows();
    });
}

void TunnelLink::close(std::uint64_t app_code, std::string_view reason) {
  if (closed_) return;
  connection_->close(app_code, reason);
  pump();
}

void TunnelLink::migrate(const Endpoint& new_local, const Endpoint& new_remote) {
  connection_->migrate(new_local, new_remote, reactor_.now());
  pump();
}

}  // namespace porthole::detail
