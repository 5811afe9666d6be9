// porthole: UDP hole punching between two peers that know each other's peer ID
// (include/porthole/identity.hpp). Both run punch() naming the other; they meet at a
// rendezvous (`porthole serve`, docs/rendezvous.md), exchange signed session
// descriptions with their candidates, and run ICE connectivity checks (RFC 8445) from
// one UDP socket. The result is that socket, connect(2)ed to the peer over the path the
// checks proved.
//
// The library never throws and never prints: diagnostics go to PunchOptions::log.
#pragma once

#include <chrono>
#include <cstddef>
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
#include "porthole/log.hpp"
#include "porthole/porthole.hpp"
#include "porthole/types.hpp"

namespace porthole {

// A TURN relay (RFC 8656 over UDP, long-term credentials) for the last resort.
struct TurnServer {
  std::string server;  // HOST[:PORT] (port 3478); the CLI takes turn:HOST[:PORT]
  std::string user;
  std::string password;
};

// How the proven path runs, from this side's view: through a gateway port mapping of
// either side, between two host addresses (one LAN), to an address the peer's checks
// revealed (peer-reflexive, RFC 8445 s7.2.5.3.1), or through both NATs' mappings as
// STUN saw them (server-reflexive), or through a TURN relay (relayed: ours, or the
// peer's relayed candidate).
enum class PathKind { host, server_reflexive, peer_reflexive, mapped, relayed };
const char* path_kind_name(PathKind kind) noexcept;  // "host", "server-reflexive", ...

// A relayed path that moved to a direct one (PunchOptions::upgrade).
struct PathUpgrade {
  PathKind path = PathKind::server_reflexive;  // the direct path's kind
  Endpoint peer;                               // where the peer is now
  Endpoint local_seen;                         // this side as the peer sees it now
};

struct PunchOptions {
  std::string rendezvous;                    // HOST[:PORT] of a `porthole serve` (port 3478)
  std::vector<std::string> stun_servers;     // HOST[:PORT] for more server-reflexive candidates
  std::uint16_t port = 0;                    // local UDP port of the punch socket; 0: any
  bool map = true;                           // ask the gateway (PCP / NAT-PMP / UPnP) for a mapping
  std::optional<IpAddress> gateway;          // nullopt: the default route's gateway
  std::chrono::milliseconds timeout{10000};  // the whole punch, from the start
  std::chrono::milliseconds wait_for_peer{5000};  // how long a peer not online is waited for
  std::string state_dir;                          // identity key and mappings; empty: the default
  LogFn log;
  // Gateway service ports and UPnP's LAN rule and IGD cache, as in porthole::Options.
  std::uint16_t pcp_port = 5351;
  std::uint16_t ssdp_port = 1900;
  bool upnp_allow_lan = false;
  bool upnp_cache = true;
  // With a relay: an allocation is made from the punch socket and its relayed address
  // is a candidate of the lowest priority (RFC 8445 s5.1.2.2: type preference 0), so a
  // direct pair wins whenever one works; the relayed pair is nominated only after a
  // short grace for a direct one. An allocation not used is deleted at once.
  std::optional<TurnServer> turn;
  // A relayed result keeps looking for a direct path: the relay thread (PunchResult::
  // relay, on either side's relay) runs a round of ICE checks on the direct pairs every
  // 5 s, at most 24 rounds (2 min), and the first direct pair both sides confirm (its
  // nomination answered, RFC 8445 s8.1.1) takes over: the user's socket stays the same,
  // its datagrams go straight to the peer from then on, consent freshness (RFC 7675)
  // follows the path, and our allocation is deleted once the peer's datagrams arrive
  // direct (or 3 s after the move). on_upgrade is called then, on the relay thread.
  // Both peers need it (the other side must keep answering and checking).
  bool upgrade = false;
  std::function<void(const PathUpgrade&)> on_upgrade;
};

// What happened to one candidate pair (this socket to one remote candidate).
enum class PairOutcome { not_tried, failed, succeeded, nominated };
const char* pair_outcome_name(PairOutcome outcome) noexcept;  // "not-tried", "failed", ...

struct PairReport {
  Endpoint local;
  Endpoint remote;
  std::string remote_type;  // "host", "server-reflexive", "peer-reflexive", "relayed", "mapped"
  PairOutcome outcome = PairOutcome::not_tried;
};

// What a punch found, on success and on failure alike.
struct PunchReport {
  std::string peer_id;
  std::vector<PairReport> pairs;
  // The NAT mapping behaviour each side measured (RFC 4787 s4.1): "unknown",
  // "endpoint-independent", "address-dependent", "address-and-port-dependent".
  std::string local_nat;
  std::string peer_nat;  // empty when no description of the peer arrived
  // On failure, what would help (e.g. "peer behind symmetric NAT: needs port prediction
  // or a relay"); empty when nothing is known.
  std::string hint;
  // With PunchOptions::turn: why the relay could not be used (wrong credentials, no
  // answer, ...); empty when it could or none was asked for.
  std::string relay_error;
  std::chrono::milliseconds elapsed{0};
  // How the punch went about it, from both sides' NAT behaviour: "direct" (plain ICE
  // checks), "prediction" (probes to the ports a sequential or port-preserving
  // symmetric NAT gives next), "birthday" (the symmetric side opens up to 256 extra
  // sockets, the other side probes up to 2048 random ports of its address, one every
  // 2 ms), "relay" (both sides symmetric: only a relay can help; a path through a TURN
  // relay, either side's, is "relay" too). Probes go only to the address the peer's
  // signed description names.
  std::string strategy = "direct";
  std::size_t packets_sent = 0;    // probes and extra sockets' checks of this attempt
  std::size_t sockets_opened = 0;  // extra sockets opened (birthday, symmetric side)
};

// A file descriptor that is closed with its owner.
class OwnedFd {
 public:
  OwnedFd() = default;
  explicit OwnedFd(int fd) noexcept : fd_(fd) {}
  OwnedFd(OwnedFd&& other) noexcept : fd_(other.release()) {}
  OwnedFd& operator=(OwnedFd&& other) noexcept;
  OwnedFd(const OwnedFd&) = delete;
  OwnedFd& operator=(const OwnedFd&) = delete;
  ~OwnedFd();

  int get() const noexcept { return fd_; }
  bool valid() const noexcept { return fd_ >= 0; }
  // Gives the descriptor up: the caller closes it.
  int release() noexcept;

 private:
  int fd_ = -1;
};

// The relay thread of a relayed PunchResult (src/core/punch.cpp).
class RelayLoop;

struct PunchResult {
  OwnedFd socket;  // UDP, bound to `local`, connect(2)ed to `peer`
  PathKind path = PathKind::server_reflexive;
  Endpoint local;       // the socket's own address
  Endpoint local_seen;  // this side as the peer sees it (the check's XOR-MAPPED-ADDRESS)
  Endpoint peer;
  PeerId peer_id;
  std::chrono::milliseconds elapsed{0};
  PunchReport report;
  // The gateway mapping made for the socket's port, when one was (a mapped candidate).
  // It stays until release_punch_mapping(): call that once the socket is done with.
  std::optional<Mapping> mapping;
  // PathKind::relayed through this side's own allocation: `socket` is then one end of
  // an AF_UNIX SOCK_DGRAM socketpair, connected, one datagram per peer datagram; the
  // other end is served by a thread of porthole's that relays through the TURN server
  // (ChannelData, with the allocation, permission and channel kept alive: RFC 8656 s7.2,
  // s9, s12). It runs while this handle lives (every copy of it) and until sending to
  // `socket`'s end fails; when it ends, the allocation is deleted (Refresh LIFETIME 0).
  // Keep it as long as the socket is used. With PunchOptions::upgrade, a path to the
  // peer's relayed candidate is served the same way (that thread, the socketpair), so
  // it too can move to a direct path. Empty for every other path.
  std::shared_ptr<RelayLoop> relay;
};

// Punches a path to `peer`. `stop_fd` (-1: none): when it becomes readable (an eventfd
// a signal handler writes to) the punch ends at once, its mapping removed, with
// Errc::punch_failed saying it was stopped. `report` (may be null) is filled in either
// way, so a failure still tells every pair's outcome and the hint.
//
// Errors: Errc::usage (bad options; nothing sent), Errc::state (the identity key file),
// Errc::no_service (the rendezvous is unreachable: named), Errc::punch_failed (the
// peer was not online within wait_for_peer: "not online"; the checks failed; the
// timeout; stopped), Errc::refused (the peer's description failed its signature).
Result<PunchResult> punch(const PunchOptions& options, const PeerId& peer, int stop_fd = -1,
                          PunchReport* report = nullptr);

// Reads a TURN credentials file ($PORTHOLE_TURN): lines `user=NAME` and
// `password=SECRET` (both required), optionally `server=HOST[:PORT]`; blank lines and
// lines starting with '#' are skipped. The file must be a regular file owned by us and
// readable by no one else (mode 0600), like the identity key: anything else is
// Errc::state naming the file and the fix.
Result<TurnServer> load_turn_credentials(const std::string& file);

// Removes the gateway mapping a punch made (PunchResult::mapping), bounded by `timeout`.
Status release_punch_mapping(const PunchOptions& options, const Mapping& mapping,
                             std::chrono::milliseconds timeout = std::chrono::seconds(2));

}  // namespace porthole
