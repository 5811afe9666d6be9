// `porthole punch`: what it prints (cli/cmd_punch.cpp).
#pragma once

#include <string>

#include <porthole/punch.hpp>

#include <CLI/CLI.hpp>

#include "cli_args.hpp"

namespace porthole::cli {

// One line ("punched server-reflexive path: LOCAL -> PEER in N ms"), or the JSON object.
std::string render_punch(const PunchResult& result, bool json);
// A relayed path's move to a direct one (PunchOptions::on_upgrade): the JSON event line
// {"event":"upgraded","path":"direct","kind":...,"peer":...,"local_seen":...}, or the
// line "porthole: upgraded to a direct path: PEER (KIND)".
std::string render_upgrade(const PathUpgrade& upgrade, bool json);
// stderr's lines for a failed punch: the error, each pair's outcome, the hint.
std::string render_punch_failure(const Error& error, const PunchReport& report);

// The global options (--stun, --gateway, --state-dir, --upnp-allow-lan,
// --no-upnp-cache, -v, --timeout when typed) put into punch options: punch's own, and
// those expose and connect punch with.
void apply_global_options(const Invocation& inv, PunchOptions& punch);

// --turn, --turn-user, --turn-password: punch's and connect's.
class TurnFlags {
 public:
  void add_to(CLI::App& app);
  // Into p.turn; a usage message when the flags do not fit together.
  std::string finish(PunchOptions& p) const;

 private:
  std::string turn_;
  std::string user_;
  std::string password_;
};
// --turn without --turn-user/--turn-password: the file $PORTHOLE_TURN names.
Status fill_turn_credentials(PunchOptions& options);

}  // namespace porthole::cli
