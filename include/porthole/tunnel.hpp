// porthole: an authenticated QUIC tunnel (RFC 9000, RFC 9221 datagrams) between two
// peers that know each other's peer ID (include/porthole/identity.hpp). One side
// exposes local TCP and UDP ports (expose()); the other connects to it through the
// rendezvous and a punched path (connect_tunnel()) and relays its local ports to them.
// TLS 1.3 authenticates both ends by the keys behind their peer IDs; the exposing side
// lets in only the IDs it allows. The wire protocol inside QUIC is docs/tunnel.md.
//
// Both calls run one reactor in the calling thread until the stop fd is readable (an
// eventfd a signal handler writes to), like hold(). The library never throws and never
// prints: what happens goes to the event callback, diagnostics to PunchOptions::log.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "porthole/error.hpp"
#include "porthole/identity.hpp"
#include "porthole/ip_address.hpp"
#include "porthole/punch.hpp"

namespace porthole {

enum class TunnelProto : std::uint8_t { tcp, udp };
const char* tunnel_proto_name(TunnelProto proto) noexcept;  // "tcp", "udp"

// A port `expose` serves: PORT[/tcp|/udp] (tcp when no suffix).
struct ExposedPort {
  std::uint16_t port = 0;
  TunnelProto proto = TunnelProto::tcp;
  bool operator==(const ExposedPort&) const = default;
};
// Errc::usage naming the spec when it is not PORT[/tcp|/udp] with PORT 1..65535.
Result<ExposedPort> parse_exposed_port(std::string_view spec);
std::string to_string(const ExposedPort& port);  // "8080/tcp"

// One `connect -L [BIND:]LOCAL:REMOTE[/udp]`: listen on BIND:LOCAL (127.0.0.1 when no
// BIND) and carry what arrives to the peer's exposed REMOTE port.
struct Forward {
  IpAddress bind = IpAddress::v4({127, 0, 0, 1});
  std::uint16_t local = 0;
  std::uint16_t remote = 0;
  TunnelProto proto = TunnelProto::tcp;
};
// Errc::usage naming the spec: ports must be 1..65535, BIND an IPv4 address, the
// suffix /udp or /tcp.
Result<Forward> parse_forward(std::string_view spec);

// What happens, one event at a time, from the calling thread. Which fields are set
// depends on the type (see each).
enum class TunnelEventType {
  ready,           // expose: registered. ports, local (the tunnel's UDP socket), mapping
  mapping,         // expose: the gateway mapping changed. what, mapping, reason
  peer_connected,  // expose: peer_id, path, peer, strategy
  peer_refused,    // expose: peer_id (empty when unknown), reason
  peer_gone,       // expose: peer_id, reason
  connected,       // connect: peer_id, path, peer, elapsed, strategy
  listening,       // connect: local, remote_port, proto (one per -L, after connected)
  path_lost,       // connect: reason
  reconnected,     // connect: path, peer, strategy
};
const char* tunnel_event_name(TunnelEventType type) noexcept;  // "peer-connected", ...

struct TunnelEvent {
  TunnelEventType type = TunnelEventType::ready;
  std::string peer_id;
  std::string path;  // path_kind_name(): "host", "server-reflexive", "mapped", ...
  // How the path was found (punch.hpp, PunchReport::strategy): "direct", "prediction",
  // "birthday", "relay"; empty when not known.
  std::string strategy;
  std::optional<Endpoint> peer;
  std::string reason;
  std::chrono::milliseconds elapsed{0};
  // ready
  std::vector<ExposedPort> ports;
  std::optional<Endpoint> local;
  std::optional<Endpoint> mapping;  // the external address of the gateway mapping
  // mapping: "mapped", "renewed", "lost", "removed", "unverified"
  std::string what;
  // listening
  std::uint16_t remote_port = 0;
  TunnelProto proto = TunnelProto::tcp;
};
using TunnelEventFn = std::function<void(const TunnelEvent&)>;

struct ExposeOptions {
  std::vector<ExposedPort> ports;  // at least one
  std::string to = "127.0.0.1";    // where the exposed ports are (an IPv4 address)
  std::vector<PeerId> allow;       // the peers let in
  bool allow_any = false;          // every peer (the caller should warn about it)
  // The rendezvous, --stun servers, the UDP port, the gateway mapping (map, gateway,
  // state_dir, log): as for punch(). timeout bounds each peer's punch.
  PunchOptions punch;
  std::uint32_t lifetime = 7200;  // of the gateway mapping, seconds (renewed at half)
  bool verify = false;            // prove the mapping from outside with STUN first
};

// Errc::usage when the options cannot work (no port, neither allow nor allow_any, a
// bad `to`): nothing is sent.
Status check_expose_options(const ExposeOptions& options);
// Whether `peer` may use the tunnel.
bool expose_allows(const ExposeOptions& options, const PeerId& peer);

// Registers at the rendezvous and serves every allowed peer until `stop_fd` is
// readable, then closes the tunnels, removes the gateway mapping, goes offline and
// returns ok. Errors: Errc::usage (options; nothing sent), Errc::state (identity key),
// Errc::no_service (the rendezvous is unreachable), Errc::internal.
Status expose(const ExposeOptions& options, int stop_fd, const TunnelEventFn& on_event);

struct ConnectOptions {
  PeerId peer;
  PunchOptions punch;  // rendezvous, stun, port, map, timeout, wait_for_peer, state_dir, log
  std::vector<Forward> forwards;
  bool once = false;  // return after the first local TCP connection has closed
  // UDP flows with no datagram for this long are forgotten.
  std::chrono::milliseconds udp_flow_idle{60000};
};

// Binds every forward first (Errc::usage when one cannot be: nothing sent), punches to
// the peer, makes the QUIC connection pinned to its ID, checks every forward's port is
// exposed, then relays until `stop_fd` is readable (or, with once, the first TCP
// connection is done). A lost path is found again by itself. Errors: Errc::usage,
// Errc::state, Errc::no_service (rendezvous unreachable), Errc::punch_failed (no path:
// the report's reasons), Errc::peer_refused (not allowed, identity mismatch, a port not
// exposed), Errc::internal.
Status connect_tunnel(const ConnectOptions& options, int stop_fd, const TunnelEventFn& on_event,
                      PunchReport* report = nullptr);

// The connecting side for a program, without local ports: a tunnel to `options.peer`
// (options.forwards and once are ignored) run by a thread of its own, on which the
// program opens streams and datagram flows to the ports the peer exposes. Each is one
// end of a socketpair the caller owns (blocking; close it when done):
//   open_stream(PORT): AF_UNIX SOCK_STREAM, one QUIC stream to the exposed TCP PORT
//     (what is written reaches the service; shutdown(SHUT_WR) is its FIN);
//   open_datagrams(PORT): AF_UNIX SOCK_SEQPACKET, one flow to the exposed UDP PORT: each
//     message written is one RFC 9221 datagram there, answers come back as messages;
//     closing it ends the flow.
// A port the peer does not expose is Errc::peer_refused. When the path breaks the
// thread finds one again (as connect_tunnel does); ends opened meanwhile are closed at
// once (the caller reads EOF) and new ones work once it is back. on_event runs on the
// tunnel's thread.
class TunnelClient {
 public:
  // Returns once the tunnel is up and the exposed ports are known, or with the error
  // connect_tunnel would give (within options.punch.timeout and the handshake's).
  static Result<std::unique_ptr<TunnelClient>> connect(const ConnectOptions& options,
                                                       TunnelEventFn on_event = {});
  ~TunnelClient();  // close()
  TunnelClient(const TunnelClient&) = delete;
  TunnelClient& operator=(const TunnelClient&) = delete;

  Result<OwnedFd> open_stream(std::uint16_t port);
  Result<OwnedFd> open_datagrams(std::uint16_t port);
  bool connected() const;                    // false while a broken path is sought again
  std::vector<ExposedPort> exposed() const;  // what the peer said it exposes
  void close();                              // ends the tunnel and joins the thread

 private:
  TunnelClient() = default;
  Result<OwnedFd> open(std::uint16_t port, TunnelProto proto);
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace porthole
