// What `porthole expose` and `porthole connect` (cli/cmd_expose.cpp, cli/cmd_connect.cpp)
// share: their event lines, text or JSON, one line per event.
#pragma once

#include <string>

#include <porthole/tunnel.hpp>

#include "cli_args.hpp"

namespace porthole::cli {

std::string render_tunnel_event(const TunnelEvent& event, bool json);

}  // namespace porthole::cli
