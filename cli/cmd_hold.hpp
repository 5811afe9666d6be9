// `porthole hold PORT...`: its options and the command itself.
#pragma once

#include <string>
#include <vector>

#include <CLI/CLI.hpp>
#include <porthole/hold.hpp>

namespace porthole::cli {

struct Invocation;

// The options as typed; checked by hold_request_from.
struct HoldArgs {
  std::vector<std::string> ports;
  std::string external_port;
  std::string lifetime = "7200";
  std::string via = "auto";
  std::string description = "porthole";
  std::string on_change;
  double hook_timeout = 30;
  double verify_every = 0;
  double check_every = 0;
  double retry_max = 60;
};

CLI::App* add_hold_command(CLI::App& app, HoldArgs& raw, const char* footer);
// Fills `out`; returns the usage error, or an empty string.
std::string hold_request_from(const HoldArgs& raw, HoldRequest& out);
// Runs until SIGTERM or SIGINT; the exit status.
int run_hold(const Invocation& inv);

}  // namespace porthole::cli
