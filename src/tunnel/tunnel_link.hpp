// One tunnel: a QuicConnection (tunnel/quic_connection.hpp) and what it carries
// (docs/tunnel.md), on the caller's reactor. The exposing side (server) relays each
// stream to a TCP connection to `to`:port and each UDP flow to a UDP socket connected
// to `to`:port; the connecting side (client) is handed local TCP connections and local
// UDP datagrams by its listeners and relays them the other way. The link does not own
// the UDP socket the QUIC packets travel on: it is given datagrams that arrived
// (on_datagram) and sends through the caller's SendFn.
//
// The caller learns what happens through Callbacks, called from the reactor's thread;
// a callback must not destroy the link (defer that to a timer).
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "net/reactor.hpp"
#include "net/tcp_socket.hpp"
#include "net/udp_socket.hpp"
#include "porthole/log.hpp"
#include "porthole/tunnel.hpp"
#include "tunnel/quic_connection.hpp"
#include "tunnel/stream_relay.hpp"

namespace porthole::detail {

// Stream reset codes (docs/tunnel.md).
inline constexpr std::uint64_t kStreamPortNotExposed = 2;
inline constexpr std::uint64_t kStreamConnectFailed = 3;
inline constexpr std::uint64_t kStreamTcpReset = 4;

struct TunnelLinkConfig {
  bool server = false;
  std::vector<ExposedPort> ports;  // server: what is exposed
  IpAddress to;                    // server: where
  std::chrono::milliseconds udp_flow_idle{60000};
  LogFn log;
};

// Both ends' idle timeout and keep-alive: a silent path is declared broken after
// kTunnelIdle (RFC 9000 s10.1: the smaller of both sides' max_idle_timeout counts), with
// a PING every kTunnelKeepalive while idle, so four go unanswered before a break.
constexpr std::chrono::milliseconds kTunnelIdle{10000};
constexpr std::chrono::milliseconds kTunnelKeepalive{2500};

// What expose and connect ask for as their UDP socket's buffers (UdpBatch::request_buffers).
constexpr int kTunnelSocketBuffer = 4 << 20;

class TunnelLink {
 public:
  // Datagrams to the peer, in order: one call per pump, so the caller can hand them to
  // the kernel in one system call (net/udp_batch.hpp: UDP GSO or sendmmsg).
  using SendFn = std::function<void(const DatagramBuffer&)>;
  struct Callbacks {
    std::function<void()> established;  // handshake confirmed, identity checked
    // client: the exposed-port list arrived (or was malformed: the link closes)
    std::function<void(const std::vector<ExposedPort>&)> port_list;
    // The connection is over (no more packets either way).
    std::function<void(const Error&, bool by_peer, std::uint64_t app_code)> closed;
    // A relayed TCP connection has ended both ways (client: --once).
    std::function<void()> tcp_done;
  };

  TunnelLink(Reactor& reactor, std::unique_ptr<QuicConnection> connection, SendFn send,
             TunnelLinkConfig config, Callbacks callbacks);
  ~TunnelLink();
  TunnelLink(const TunnelLink&) = delete;
  TunnelLink& operator=(const TunnelLink&) = delete;

  // A datagram from the peer (from: where it came from).
  void on_datagram(std::span<const std::uint8_t> bytes, const Endpoint& from);
  // Sends what is due now (after the connection was made, or after a migrate).
  void pump();

  // client: a local TCP connection for the exposed `remote_port`.
  void add_tcp(TcpSocket socket, std::uint16_t remote_port);
  // client: a datagram from local `source` on the UDP listener `listener_fd` for the
  // exposed `remote_port`. Answers go back from that listener to the source.
  void on_local_udp(int listener_fd, std::uint16_t remote_port, const Endpoint& source,
                    std::span<const std::uint8_t> payload);
  // client: the listener is closed: its flows end now (its descriptor may be reused).
  void forget_local_udp(int listener_fd);

  void close(std::uint64_t app_code, std::string_view reason);
  void migrate(const Endpoint& new_local, const Endpoint& new_remote);
  bool established() const { return connection_->established(); }
  bool closed() const { return closed_; }
  const PeerId* peer() const { return connection_->peer(); }
  const Endpoint& remote() const { return connection_->remote(); }
  bool addressed_to_us(std::span<const std::uint8_t> datagram) const {
    return connection_->addressed_to_us(datagram);
  }
  std::size_t open_streams() const { return streams_.size(); }

 private:
  struct Stream {
    Stream(std::int64_t stream, TcpSocket socket, StreamRelay r)
        : id(stream), tcp(std::move(socket)), relay(std::move(r)) {}
    std::int64_t id = 0;
    TcpSocket tcp;
    StreamRelay relay;
    bool connecting = false;  // server: the TCP connect is in progress
    bool port_list = false;   // client: the server's port-list stream
    bool dirty = false;       // stream data arrived since the last service_dirty()
    // The TCP socket may have bytes to read: not after a read came back short, until
    // poll(2) says readable again (a recv(2) that would block costs a system call).
    bool tcp_readable = true;
    std::vector<std::uint8_t> list_bytes;
  };
  struct ServerFlow {  // server: one UDP socket per (port, flow ID)
    UdpSocket socket;
    std::uint16_t port = 0;
    std::uint16_t flow = 0;
    Clock::time_point last{};
  };
  struct ClientFlow {  // client: a local source of a UDP listener
    int listener_fd = -1;
    std::uint16_t remote_port = 0;
    Endpoint source;
    std::uint16_t flow = 0;
    Clock::time_point last{};
  };

  void log(LogLevel level, const std::string& text) const {
    if (config_.log) config_.log(level, text);
  }
  void handle(QuicEvent::Value& event);
  void on_established();
  void on_stream_opened(std::int64_t id);
  void on_stream_data(QuicEvent::StreamData& data);
  void on_port_list_data(Stream& s, std::span<const std::uint8_t> bytes, bool fin);
  void on_stream_reset(std::int64_t id);
  void on_quic_datagram(std::span<const std::uint8_t> bytes);
  void on_tcp_ready(std::int64_t id, bool readable, bool writable);
  // Moves bytes both ways as far as they go, updates the TCP watch; false when the
  // stream is gone (finished or failed).
  bool service(Stream& s);
  // Services every stream that received data during this pump, once each: a burst of
  // packets becomes one send(2) to the TCP connection, not one per packet.
  void service_dirty();
  void flush_to_stream(Stream& s);
  void update_watch(Stream& s);
  void drop_stream(std::int64_t id, std::optional<std::uint64_t> reset_code);
  void on_server_flow_readable(std::size_t key);
  void expire_flows();
  void schedule();

  Reactor& reactor_;
  std::unique_ptr<QuicConnection> connection_;
  SendFn send_;
  TunnelLinkConfig config_;
  Callbacks callbacks_;
  std::map<std::int64_t, Stream> streams_;
  std::map<std::size_t, ServerFlow> server_flows_;  // key: port << 16 | flow
  std::vector<ClientFlow> client_flows_;
  std::uint16_t next_flow_ = 0;
  bool closed_ = false;
  bool in_pump_ = false;
  bool pump_again_ = false;
  Reactor::TimerId timer_ = 0;
  // Datagrams received since the last pump: the answer to a burst is written once,
  // after the socket is drained (one ACK for many packets), or every kMaxUnpumped.
  std::size_t unpumped_ = 0;
  Reactor::TimerId pump_timer_ = 0;
  Reactor::TimerId flow_timer_ = 0;
  DatagramBuffer packets_;
  std::vector<std::int64_t> dirty_;      // streams with Stream::dirty set
  std::vector<std::int64_t> servicing_;  // service_dirty()'s copy of dirty_
  // One buffer for every read from a UDP flow (allocated once: zeroing 64 KiB per read
  // was a fifth of a bulk transfer's CPU time). TCP reads go straight into the stream.
  std::vector<std::uint8_t> read_buffer_;
};

}  // namespace porthole::detail
