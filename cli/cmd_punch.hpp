// `porthole punch`: what it prints (cli/cmd_punch.cpp).
#pragma once

#include <string>

#include <porthole/punch.hpp>

#include "cli_args.hpp"

namespace porthole::cli {

// One line ("punched server-reflexive path: LOCAL -> PEER in N ms"), or the JSON object.
std::string render_punch(const PunchResult& result, bool json);
// stderr's lines for a failed punch: the error, each pair's outcome, the hint.
std::string render_punch_failure(const Error& error, const PunchReport& report);

// The global options (--stun, --gateway, --state-dir, --upnp-allow-lan,
// --no-upnp-cache, -v, --timeout when typed) put into punch options: punch's own, and
// those expose and connect punch with.
void apply_global_options(const Invocation& inv, PunchOptions& punch);

}  // namespace porthole::cli
