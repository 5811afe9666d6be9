// What `porthole expose` and `porthole connect` (cli/cmd_expose.cpp, cli/cmd_connect.cpp)
// share: their event lines, text or JSON, one line per event; the global options in
// their PunchOptions; the stop signals.
#pragma once

#include <string>

#include <porthole/tunnel.hpp>

#include "cli_args.hpp"

namespace porthole::cli {

std::string render_tunnel_event(const TunnelEvent& event, bool json);

// The global options (--stun, --gateway, --state-dir, --upnp-allow-lan, -v, --timeout
// when typed) put into a tunnel command's punch options.
void apply_global_options(const Invocation& inv, PunchOptions& punch);

// SIGTERM and SIGINT blocked and delivered to a signalfd the library polls (as hold
// does), SIGPIPE ignored; -1 (after saying why on stderr) when that fails.
int open_stop_signal_fd();

}  // namespace porthole::cli
