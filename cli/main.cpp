// porthole: the command-line tool. Results on stdout, diagnostics on stderr.
#include <cstdio>
#include <iostream>
#include <mutex>
#include <unistd.h>

#include <fmt/format.h>

#include "cli_args.hpp"
#include "cli_output.hpp"
#include "cmd_nat.hpp"
#include "cmd_serve.hpp"
#include "cmd_hold.hpp"

namespace {

using namespace porthole;

void print_warnings(const std::vector<std::string>& warnings, int verbosity) {
  if (verbosity < 0) return;
  for (const auto& w : warnings) fmt::print(stderr, "porthole: warning: {}\n", w);
}

int fail(const Error& e, bool json) {
  if (json) fmt::print("{}", cli::render_error_json(e));
  fmt::print(stderr, "porthole: {}\n", e.message);
  return static_cast<int>(e.code);
}

template <class T, class Render>
int report(const Result<T>& r, const cli::Invocation& inv, Render render) {
  if (!r) return fail(r.error(), inv.json);
  if (inv.verbosity >= 0 || inv.json) fmt::print("{}", render(*r, inv.json));
  print_warnings(r->warnings, inv.verbosity);
  return 0;
}

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
  switch (inv.command) {
    case cli::Command::probe: return report(probe(inv.options), inv, cli::render_probe);
    case cli::Command::open:
      if (inv.verify) return cli::run_open_verify(inv);
      return report(open(inv.options, inv.open), inv, cli::render_open);
    case cli::Command::close:
      return report(close(inv.options, inv.close), inv, cli::render_close);
    case cli::Command::list: {
      auto listed = list(inv.options);
      int status = report(listed, inv, cli::render_list);
      return status != 0 ? status : cli::list_exit_status(*listed);
    }
    case cli::Command::nat: return report(discover_nat(inv.options), inv, cli::render_nat);
    case cli::Command::serve: return cli::run_serve(inv);
    case cli::Command::hold: return cli::run_hold(inv);
  }
  return 1;
}

}  // namespace

int main(int argc, char** argv) {
  int code = 1;
  try {
    code = run(argc, argv);
  } catch (const std::exception& e) {
    fmt::print(stderr, "porthole: internal error: {}\n", e.what());
    code = 1;
  }
  std::fflush(stdout);
  std::fflush(stderr);
  // Probe threads that lost the race may still be waiting on a socket; they own their
  // resources, so leave without running destructors under them.
  std::_Exit(code);
}
