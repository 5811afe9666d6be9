// The STUN servers a command asks, as configured: one place turns --stun /
// $PORTHOLE_STUN / the built-in list into checked entries for nat, verify and hold.
#pragma once

#include <string>
#include <vector>

#include "porthole/porthole.hpp"

namespace porthole::detail {

struct StunServerEntry {
  std::string name;  // as configured ("HOST[:PORT]")
  HostPort where;    // port 3478 when none was given
};

// options.stun_servers, else default_stun_servers(), in order. Errc::usage naming the
// entry when one is malformed: every entry is checked before anything is sent.
Result<std::vector<StunServerEntry>> configured_stun_servers(const Options& options);

}  // namespace porthole::detail
