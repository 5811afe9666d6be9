// porthole::hold: keep mappings open for as long as the caller wants, through lease
// expiry, router reboots, address changes and protocols that come and go.
//
// One reactor in the calling thread: the call sleeps until the earliest due
// renewal/check, an announcement from the gateway (224.0.0.1:5350), a hook exiting, or
// the stop fd. Protocol exchanges run on worker threads, so the stop fd is seen at once
// even while a router is silent.
// Like the rest of the library it never throws and never prints; what happens is told
// to the caller's event callback, one event at a time, from the calling thread.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "porthole/porthole.hpp"

namespace porthole {

struct HoldRequest {
  // One entry per port. `strict_port` is ignored (hold keeps what the router grants).
  std::vector<OpenRequest> mappings;
  // Run through /bin/sh -c when a mapping's external address or port changes, with
  // PORTHOLE_EXTERNAL_IP, PORTHOLE_EXTERNAL_PORT, PORTHOLE_INTERNAL_PORT,
  // PORTHOLE_TRANSPORT and PORTHOLE_PROTOCOL in its environment. Empty: none.
  std::string on_change;
  std::chrono::milliseconds hook_timeout{30000};  // then the hook's process group is killed
  // UPnP: how often GetSpecificPortMappingEntry checks that an entry is still there
  // (and GetExternalIPAddress whether the address changed). 0: only for permanent
  // leases, every 300 s; set it to check leased entries between renewals too.
  std::chrono::milliseconds check_every{0};
  // Periodic STUN check of the external address (Options::stun_servers); 0: off.
  std::chrono::milliseconds verify_every{0};
  // Back-off while no protocol answers: doubles from `retry_min` up to `retry_max`.
  std::chrono::milliseconds retry_min{1000};
  std::chrono::milliseconds retry_max{60000};
  // Where PCP ANNOUNCE / NAT-PMP address announcements arrive (RFC 6887 s14.1.3,
  // RFC 6886 s3.2.1); 0: do not listen.
  std::uint16_t announce_port = 5350;
};

enum class HoldEventKind {
  mapped,                    // first mapping of a port
  renewed,                   // lease extended (same protocol)
  lost,                      // the mapping is gone or cannot be renewed
  remapped,                  // made again after it was lost (router reboot, expiry)
  external_address_changed,  // external IP or port differs from before (hook runs)
  protocol_switched,         // now held through another protocol
  error,                     // something failed; hold keeps going (retry_in says when)
  released,                  // removed from the router at stop
  ready,                     // every port had its first attempt (systemd READY=1)
  stopping,                  // the stop fd fired; releasing now (systemd STOPPING=1)
};
const char* hold_event_name(HoldEventKind kind) noexcept;  // "mapped", "protocol-switched"...

struct HoldEvent {
  HoldEventKind kind = HoldEventKind::mapped;
  PortSpec port;                                  // which requested port (not for ready/stopping)
  std::optional<Mapping> mapping;                 // the mapping as now held, where there is one
  std::optional<Protocol> previous_protocol;      // protocol-switched
  std::optional<IpAddress> previous_external_ip;  // external-address-changed
  std::uint16_t previous_external_port = 0;
  std::optional<Error> error;                         // error, lost
  std::optional<std::chrono::milliseconds> retry_in;  // error: next attempt
  std::string message;                                // one line for people
};
using HoldEventFn = std::function<void(const HoldEvent&)>;

// Runs until `stop_fd` becomes readable (an eventfd, a pipe, a signalfd: hold does not
// read it), then removes every mapping it holds (PCP with the creating nonce) and the
// state entries, all removals at once and the whole stop bounded by one
// Options::timeout, and returns. Errors: Errc::usage for a bad request (nothing sent),
// Errc::no_service when there is no gateway to talk to, Errc::state when the state
// directory is unusable; after stop, the error of a removal that failed, or for several
// one error counting them with the status of combined failures (those mappings stay
// recorded in the state file, so `porthole close` can retry them).
Status hold(const Options& options, const HoldRequest& request, const HoldEventFn& on_event,
            int stop_fd);

}  // namespace porthole
