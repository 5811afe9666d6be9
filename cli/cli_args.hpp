// Turning argv into what to do. Every argument error is caught here, before the
// library is called, so nothing is sent on bad input. The global options are parsed
// here; each command's own options in its cli/cmd_<name>.cpp (see command.hpp).
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include <porthole/hold.hpp>
#include <porthole/porthole.hpp>
#include <porthole/punch.hpp>
#include <porthole/tunnel.hpp>
#include <porthole/verify.hpp>

namespace porthole::cli {

enum class Command { probe, open, close, list, nat, serve, hold, id, punch, expose, connect };

struct Invocation {
  Command command = Command::probe;
  Options options;  // log is set later by main
  OpenRequest open;
  CloseRequest close;
  bool close_all = false;  // close --all (close.via is its --via)
  bool verify = false;     // open --verify
  ServeOptions serve;
  HoldRequest hold;
  PunchOptions punch;          // punch: rendezvous, --port, --wait, ... (the rest from options)
  PeerId punch_peer;           // punch PEER_ID
  std::string punch_exec;      // punch --exec CMD
  ExposeOptions expose;        // expose (its punch part from options like punch's)
  ConnectOptions connect;      // connect
  bool timeout_given = false;  // --timeout was typed (punch's default is not the global one)
  bool json = false;
  int verbosity = 0;  // -1 quiet, 0 normal, 1 verbose
};

struct ParseOutcome {
  std::optional<Invocation> invocation;  // empty: exit now with exit_code
  int exit_code = 0;
  std::string out;  // --help / --version text; with --json, a usage error's JSON
  std::string err;  // the usage error
};

ParseOutcome parse_args(int argc, const char* const* argv);

// Runs the parsed command; its exit status.
int run_command(const Invocation& inv);

// Checks shared by several commands' options.
Result<std::uint32_t> parse_lifetime_arg(const std::string& text);
Result<std::uint16_t> parse_external_arg(const std::string& text);
Result<Via> parse_via_arg(const std::string& text);
// --description: at most 256 characters.
Status check_description_arg(const std::string& text);

}  // namespace porthole::cli
