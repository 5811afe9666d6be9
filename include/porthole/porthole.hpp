// porthole: open ports on home routers over PCP, NAT-PMP and UPnP IGD.
//
// The library never throws across this API and never prints: every call returns a
// Result, and diagnostics go to Options::log when one is set.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "porthole/error.hpp"
#include "porthole/ip_address.hpp"
#include "porthole/log.hpp"
#include "porthole/types.hpp"

namespace porthole {

struct Options {
  std::optional<IpAddress> gateway;         // nullopt: the default route's gateway
  std::chrono::milliseconds timeout{5000};  // overall deadline of one operation
  std::string state_dir;                    // empty: default_state_dir()
  LogFn log;                                // protocol exchange and decisions
  // Service ports, overridable so tests can point the clients at fakes.
  std::uint16_t pcp_port = 5351;
  std::uint16_t ssdp_port = 1900;
  // STUN servers ("HOST[:PORT]", port 3478 by default) for NAT discovery and
  // verification, tried in order; empty: default_stun_servers().
  std::vector<std::string> stun_servers;
  // UPnP: accept a device whose LOCATION and controlURL are on another address of this
  // host's LAN subnet (some routers serve their IGD from a second address). Off: only
  // the gateway's own address.
  bool upnp_allow_lan = false;
  // UPnP: go straight to the IGD the last discovery found (kept in the state directory
  // as upnp-igd.json) instead of searching with SSDP; a cached device that fails or
  // no longer fits is searched for afresh at once. Off: always search, keep nothing.
  // probe() always searches.
  bool upnp_cache = true;
};

// $PORTHOLE_STATE_DIR, else /var/lib/porthole for root, else
// $XDG_STATE_HOME/porthole or ~/.local/state/porthole.
std::string default_state_dir();

// $PORTHOLE_STUN (HOST[:PORT] entries separated by commas or spaces) when set, else a
// short built-in list of public STUN servers.
std::vector<std::string> default_stun_servers();

struct ProtocolProbe {
  Protocol protocol = Protocol::pcp;
  bool available = false;
  std::optional<IpAddress> external_ip;  // nullopt when the protocol cannot tell
  std::chrono::milliseconds elapsed{0};
  std::optional<Error> error;  // why it is not available
};

struct ProbeReport {
  IpAddress gateway;
  IpAddress local_ip;                    // our address towards the gateway
  std::vector<ProtocolProbe> protocols;  // pcp, natpmp, upnp, in that order
  std::vector<std::string> warnings;
};
Result<ProbeReport> probe(const Options& options);

struct OpenRequest {
  PortSpec port;                               // internal port and transport
  std::optional<std::uint16_t> external_port;  // suggestion; default: same as internal
  std::uint32_t lifetime = 7200;               // seconds; 0 asks for a permanent lease
  Via via = Via::automatic;
  // Valid UTF-8, printable, at most kMaxDescriptionChars characters (porthole/text.hpp);
  // open and hold refuse anything else with Errc::usage before sending.
  // Valid UTF-8, printable, at most kMaxDescriptionChars characters (porthole/text.hpp);
  // open and hold refuse anything else with Errc::usage before sending.
  std::string description = "porthole";
  bool strict_port = false;  // fail rather than accept another port
};

struct OpenResult {
  Mapping mapping;
  bool refreshed = false;             // an existing mapping of ours was renewed
  std::vector<std::string> warnings;  // e.g. "router assigned port 8081 instead of 8080"
};
Result<OpenResult> open(const Options& options, const OpenRequest& request);

struct CloseRequest {
  PortSpec port;                               // internal port and transport
  std::optional<std::uint16_t> external_port;  // narrow to one external port
  // Only a mapping made with this protocol. A recorded mapping made with another one is
  // left alone (Errc::usage, nothing sent); with no record, only Via::upnp (and
  // automatic) look for this host's rows in the router's UPnP table.
  Via via = Via::automatic;
};

struct CloseResult {
  std::vector<Mapping> removed;
  std::vector<std::string> warnings;
};
Result<CloseResult> close(const Options& options, const CloseRequest& request);

// `close --all`: every mapping the state records for this host on the current gateway
// (made with `via`'s protocol unless automatic), each closed as close() does.
struct CloseAllRequest {
  Via via = Via::automatic;
};
struct CloseAllItem {
  PortSpec port;                // internal port and transport, as recorded
  Protocol protocol;            // the protocol it was made with
  std::uint16_t external_port;  // as recorded
  Result<CloseResult> outcome;  // what close() said for it
};
struct CloseAllResult {
  std::string state_file;             // where the mappings were read from
  std::vector<CloseAllItem> items;    // empty: nothing recorded (not an error)
  std::vector<std::string> warnings;  // e.g. mappings recorded on another gateway, left alone
};
Result<CloseAllResult> close_all(const Options& options, const CloseAllRequest& request);

struct ListedMapping {
  Mapping mapping;
  bool ours = false;  // internal client is this host
  // Whether the router's table shows it: false for a record of ours the router does
  // not confirm; unset when the table could not be read.
  std::optional<bool> confirmed;
  // The router's NewInternalClient as it sent it, when that is not an IP address
  // (mapping.internal_ip is then 0.0.0.0); empty otherwise. Untrusted text.
  std::string internal_client_text;
};
struct ListResult {
  std::vector<ListedMapping> mappings;
  std::vector<std::string> warnings;
  // false: the router's UPnP table was not read to its end (a warning says why), and
  // `incomplete` is the error that stopped it (Errc::timeout: the deadline ran out).
  bool complete = true;
  std::optional<Error> incomplete;
};
Result<ListResult> list(const Options& options);

}  // namespace porthole
