// porthole: the command-line tool. Results on stdout, diagnostics on stderr. Each
// command lives in cli/cmd_<name>.cpp; cli_args.cpp parses and dispatches.
#include <cstdio>
#include <exception>
#include <mutex>
#include <unistd.h>

#include <fmt/format.h>

#include "cli_args.hpp"

namespace {

using namespace porthole;

int run(int argc, char** argv) {
  auto parsed = cli::parse_args(argc, argv);
  if (!parsed.invocation) {
    if (!parsed.out.empty()) fmt::print("{}", parsed.out);
    if (!parsed.err.empty())
      fmt::print(stderr, "porthole: {}\nRun 'porthole --help' for usage.\n", parsed.err);
    return parsed.exit_code;
  }
  cli::Invocation inv = std::move(*parsed.invocation);
  static std::mutex log_mu;  // probes log from several threads
  if (inv.verbosity > 0) {
    inv.options.log = [](LogLevel, std::string_view text) {
      std::lock_guard lock(log_mu);
      fmt::print(stderr, "porthole: {}\n", text);
    };
  }
  return cli::run_command(inv);
}

}  // namespace

int main(int argc, char** argv) {
  int code = 1;
  try {
    code = run(argc, argv);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "porthole: internal error: %s\n", e.what());
    code = 1;
  } catch (...) {
    // Nothing may escape main (bugprone-exception-escape), and printing must not throw.
    std::fputs("porthole: internal error\n", stderr);
    code = 1;
  }
  std::fflush(stdout);
  std::fflush(stderr);
  // Probe threads that lost the race may still be waiting on a socket; they own their
  // resources, so leave without running destructors under them.
  std::_Exit(code);
}
