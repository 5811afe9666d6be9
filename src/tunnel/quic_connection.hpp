// One QUIC connection (RFC 9000) between two porthole peers, as a sans-IO state machine:
// it is fed the datagrams that arrived and the time, and hands back the datagrams to send
// and the time it next needs to run. It owns no socket and reads no clock, so a unit test
// can run two of them against each other in memory, and the tunnel can run many on one
// reactor over whatever socket punching or a port mapping gave it.
//
// TLS 1.3 (RFC 9001) with mutual authentication pinned to peer IDs: each side presents a
// self-signed certificate for its Ed25519 identity key (include/porthole/identity.hpp);
// the client accepts only the key of the ID it dialled, the server asks allow_peer about
// the client's. The peer counts as authenticated only once the handshake is confirmed
// (RFC 9001 s4.1.2): in TLS 1.3 the client finishes before the server has checked the
// client's certificate.
//
// QUIC itself is ngtcp2's (src/tunnel/quic_connection.cpp is the only file that includes
// its headers); RFC 9221 DATAGRAM frames carry the tunnel's UDP.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "net/deadline.hpp"
#include "net/udp_batch.hpp"
#include "porthole/error.hpp"
#include "porthole/identity.hpp"
#include "porthole/ip_address.hpp"

namespace porthole::detail {

using TimePoint = Clock::time_point;

// Application close codes (CONNECTION_CLOSE of type 0x1d, RFC 9000 s19.19).
inline constexpr std::uint64_t kQuicCloseNormal = 0;
inline constexpr std::uint64_t kQuicCloseNotAllowed = 1;
inline constexpr std::uint64_t kQuicClosePortNotExposed = 2;

struct QuicConfig {
  bool server = false;
  // This host's identity; must outlive the connection. Null: no certificate (a server
  // refuses such a client; a client without one is refused by the server).
  const Identity* identity = nullptr;
  // Client: the ID dialled; the server's TLS key must be this one.
  std::optional<PeerId> expect_peer;
  // Server: asked once the client's certificate is verified to hold the key of the
  // PeerId passed; false refuses the client (TLS alert, then Closed). Empty: refuse all.
  std::function<bool(const PeerId&)> allow_peer;
  Endpoint local, remote;
  // RFC 9000 s10.1: silence this long closes the connection (a Closed event).
  std::chrono::milliseconds idle_timeout{30000};
  // A PING this often when nothing else is sent, so NAT bindings stay open.
  std::chrono::milliseconds keepalive{5000};
  std::string alpn = "porthole/1";
};

struct QuicEvent {
  // The handshake is confirmed and the peer's identity checked.
  struct HandshakeDone {
    PeerId peer;
  };
  // The peer opened a stream (bidirectional or unidirectional).
  struct StreamOpened {
    std::int64_t id = 0;
  };
  // In-order bytes of a stream; fin: the peer will send no more.
  struct StreamData {
    std::int64_t id = 0;
    std::vector<std::uint8_t> bytes;
    bool fin = false;
  };
  // The peer reset its sending side (RESET_STREAM) or asked us to stop (STOP_SENDING).
  struct StreamReset {
    std::int64_t id = 0;
    std::uint64_t code = 0;
  };
  // A write_stream() that took fewer bytes than offered may now take more.
  struct StreamWritable {
    std::int64_t id = 0;
  };
  struct Datagram {
    std::vector<std::uint8_t> bytes;
  };
  // The connection is over. by_peer: the peer closed it (app_code is its application
  // close code, when it sent one). error.code is Errc::peer_refused when the peer refused
  // us or its identity did not match, Errc::timeout for the idle timeout, Errc::ok for a
  // normal close.
  struct Closed {
    Error error;
    bool by_peer = false;
    std::uint64_t app_code = 0;
  };
  using Value = std::variant<HandshakeDone, StreamOpened, StreamData, StreamReset, StreamWritable,
                             Datagram, Closed>;
  Value value;
};

class QuicConnection {
 public:
  // A client connection; its first flight is ready for write_packets().
  static Result<std::unique_ptr<QuicConnection>> client(const QuicConfig& config, TimePoint now);
  // A server connection for a client whose first Initial packet is `first_packet` (it is
  // read as if passed to receive()). Errc::usage when it is not a QUIC Initial we can
  // accept (the caller drops it).
  static Result<std::unique_ptr<QuicConnection>> server(const QuicConfig& config,
                                                        std::span<const std::uint8_t> first_packet,
                                                        TimePoint now);
  ~QuicConnection();
  QuicConnection(const QuicConnection&) = delete;
  QuicConnection& operator=(const QuicConnection&) = delete;

  // A datagram that arrived from `from`. An error means the datagram was not accepted
  // (garbage, or the connection is closed); a fatal one also queues a Closed event.
  Status receive(std::span<const std::uint8_t> datagram, const Endpoint& from, TimePoint now);
  // Appends the packets to send now, each one datagram to remote(); consecutive ones of
  // equal size may go out in one GSO batch.
  void write_packets(DatagramBuffer& out, TimePoint now);
  // When on_timeout() wants to run next (TimePoint::max() when never).
  TimePoint next_timeout() const;
  void on_timeout(TimePoint now);

  bool established() const;  // handshake confirmed AND the peer's identity checked
  bool closed() const;       // no more packets will be sent or accepted
  const PeerId* peer() const;
  const Endpoint& local() const;
  const Endpoint& remote() const;

  // A new bidirectional stream; Errc::internal when the peer's stream limit is reached
  // or the handshake is not done.
  Result<std::int64_t> open_stream();
  // Copies bytes to the stream's send buffer (kept until the peer acknowledges them) and
  // returns how many it took: fewer when flow control or the buffer limit says so, then a
  // StreamWritable event follows. fin with every byte taken ends the stream.
  std::size_t write_stream(std::int64_t id, std::span<const std::uint8_t> bytes, bool fin);
  // The bytes the stream's send buffer takes now; 0 arms a StreamWritable event for when
  // it takes more.
  std::size_t stream_room(std::int64_t id);
  // Room for up to `max` more bytes at the end of the stream's send buffer, for the caller
  // to fill in place (a recv(2) straight into it: no copy) and then commit_stream() what it
  // wrote. Empty when the stream takes nothing now (as stream_room() == 0). Valid until
  // the next call on the connection; bytes not committed are not sent.
  std::span<std::uint8_t> stream_space(std::int64_t id, std::size_t max);
  void commit_stream(std::int64_t id, std::size_t n);
  // The application has consumed n bytes of the stream: the peer may send n more.
  void consume_stream(std::int64_t id, std::size_t n);
  void reset_stream(std::int64_t id, std::uint64_t code);
  // One RFC 9221 DATAGRAM; an error if the peer did not offer them or it is too big.
  Status send_datagram(std::span<const std::uint8_t> bytes);
  // The biggest datagram send_datagram() takes now (0 before the handshake).
  std::size_t max_datagram_size() const;
  // Sends CONNECTION_CLOSE with an application code; a Closed event follows.
  void close(std::uint64_t app_code, std::string_view reason);
  // Moves the connection onto a new path (another socket, a re-punched address): the next
  // packets go from new_local to new_remote, and the peer validates the path (RFC 9000 s9).
  void migrate(const Endpoint& new_local, const Endpoint& new_remote, TimePoint now);

  std::optional<QuicEvent> next_event();

  // Whether a short-header packet (RFC 9000 s17.3) is addressed to one of this
  // connection's own connection IDs: a peer whose NAT rebound it arrives from a new
  // address (s9.3), and the socket's owner finds its connection by this, not by address.
  bool addressed_to_us(std::span<const std::uint8_t> datagram) const;

  struct State;  // the adapter's (src/tunnel/quic_connection.cpp)

 private:
  explicit QuicConnection(std::unique_ptr<State> state);
  std::unique_ptr<State> state_;
};

}  // namespace porthole::detail
