// The mapping policy `open` and `hold` share, stated once: which protocols to try in
// which order, the lease to ask for, which ports are ports, one exit status for several
// protocols' failures, and where the state lives.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "porthole/porthole.hpp"

namespace porthole::detail {

// PCP and NAT-PMP have no permanent mappings; a "permanent" (0) request gets this, the
// longest lifetime porthole asks for (about a day).
inline constexpr std::uint32_t kLongestLease = 86400;

// --via alone, or automatic: PCP, NAT-PMP, UPnP, with the protocol that holds the
// mapping now (the state file's, or hold's last grant) first, so a mapping is refreshed
// where it lives rather than added a second time elsewhere.
std::vector<Protocol> protocol_order(Via via, std::optional<Protocol> prior);

// The lifetime to ask `p` for when `requested` seconds were asked (0: permanent).
std::uint32_t lease_for(Protocol p, std::uint32_t requested) noexcept;

// Errc::usage for port 0, internal or external.
Status check_ports(const PortSpec& port, const std::optional<std::uint16_t>& external);

// The exit status for a failure made of several protocols' failures: any refusal
// wins (4), then a timeout after an answer (5), else nothing answered (3); a local
// failure (internal, state, usage) is that.
Errc combined_errc(const std::vector<Error>& errors);

// Options::state_dir, or default_state_dir() when it is empty.
std::string state_dir_for(const Options& options);

}  // namespace porthole::detail
