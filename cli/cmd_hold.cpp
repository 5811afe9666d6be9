#include "cmd_hold.hpp"

#include <csignal>
#include <cmath>
#include <cstdio>
#include <sys/signalfd.h>
#include <unistd.h>

#include <fmt/format.h>
#include <porthole/text.hpp>

#include "cli_args.hpp"
#include "cli_output.hpp"
#include "sd_notify.hpp"

namespace porthole::cli {
namespace {

// Seconds as typed (fractions allowed: tests use short intervals) to milliseconds.
std::string seconds_arg(const char* name, double value, bool zero_ok,
                        std::chrono::milliseconds& out) {
  if (!std::isfinite(value) || value < 0 || (!zero_ok && value == 0) || value > 86400 * 365)
    return fmt::format("{} {} must be {} seconds", name, value,
                       zero_ok ? "0 (off) or a positive number of" : "a positive number of");
  out = std::chrono::milliseconds(static_cast<long long>(std::llround(value * 1000)));
  if (value > 0 && out.count() == 0) out = std::chrono::milliseconds(1);
  return {};
}

}  // namespace

CLI::App* add_hold_command(CLI::App& app, HoldArgs& raw, const char* footer) {
  auto* hold = app.add_subcommand(
      "hold", "Keep ports forwarded until stopped (SIGTERM/SIGINT removes them): renews, "
              "recovers from router reboots, prints one line per event");
  hold->add_option("PORT", raw.ports, "Internal ports: N, N/tcp or N/udp (default tcp)")
      ->required()->type_name("");
  hold->add_option("--external-port", raw.external_port,
                   "External port to ask for (only with one PORT; default: same as PORT)")
      ->type_name("N");
  hold->add_option("--lifetime", raw.lifetime,
                   "Lease in seconds, renewed before it runs out (default 7200; 0 = "
                   "permanent where the protocol allows)")->type_name("SECONDS");
  hold->add_option("--via", raw.via, "Protocol: auto (default), pcp, natpmp or upnp")
      ->type_name("PROTOCOL");
  hold->add_option("--description", raw.description,
                   "Description stored on the router (UPnP): printable UTF-8, at most 256 "
                   "characters")->type_name("TEXT");
  hold->add_option("--on-change", raw.on_change,
                   "Run CMD (/bin/sh -c) when an external address or port changes, with "
                   "PORTHOLE_EXTERNAL_IP, _EXTERNAL_PORT, _INTERNAL_PORT, _TRANSPORT, _PROTOCOL")
      ->type_name("CMD");
  hold->add_option("--hook-timeout", raw.hook_timeout,
                   "Kill an --on-change command still running after this long (default 30)")
      ->type_name("SECONDS");
  hold->add_option("--verify-every", raw.verify_every,
                   "Check the external address by STUN (--stun) this often (default 0: off)")
      ->type_name("SECONDS");
  hold->add_option("--check-every", raw.check_every,
                   "UPnP: check that the router still has the entry this often (default: "
                   "300 for permanent leases, else only at renewals)")->type_name("SECONDS");
  hold->add_option("--retry-max", raw.retry_max,
                   "Longest wait between attempts while no protocol answers (default 60; "
                   "starts at 1, doubling)")->type_name("SECONDS");
  hold->fallthrough();
  hold->footer(footer);
  return hold;
}

std::string hold_request_from(const HoldArgs& raw, HoldRequest& out) {
  if (raw.ports.empty()) return "hold needs at least one PORT";
  auto life = parse_lifetime_arg(raw.lifetime);
  if (!life) return life.error().message;
  auto via = parse_via(raw.via);
  if (!via) return "--via: " + via.error().message;
  if (auto ok = check_description(raw.description); !ok)
    return "--description: " + ok.error().message;
  std::optional<std::uint16_t> ext;
  if (!raw.external_port.empty()) {
    // One external port cannot serve several internal ones.
    if (raw.ports.size() > 1)
      return "--external-port goes with one PORT only; run one hold per port to choose "
             "external ports";
    auto e = parse_external_arg(raw.external_port);
    if (!e) return e.error().message;
    ext = *e;
  }
  for (const auto& text : raw.ports) {
    auto spec = parse_port_spec(text);
    if (!spec) return spec.error().message;
    OpenRequest r;
    r.port = *spec;
    r.external_port = ext;
    r.lifetime = *life;
    r.via = *via;
    r.description = raw.description;
    out.mappings.push_back(r);
  }
  out.on_change = raw.on_change;
  for (auto [name, value, zero_ok, dest] :
       {std::tuple{"--hook-timeout", raw.hook_timeout, false, &out.hook_timeout},
        std::tuple{"--verify-every", raw.verify_every, true, &out.verify_every},
        std::tuple{"--check-every", raw.check_every, true, &out.check_every},
        std::tuple{"--retry-max", raw.retry_max, false, &out.retry_max}}) {
    if (auto err = seconds_arg(name, value, zero_ok, *dest); !err.empty()) return err;
  }
  out.retry_min = std::min(out.retry_min, out.retry_max);
  return {};
}

int run_hold(const Invocation& inv) {
  // SIGTERM and SIGINT arrive through a signalfd that hold() polls with everything
  // else: no handler runs in the middle of a protocol exchange.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGTERM);
  sigaddset(&stop_signals, SIGINT);
  if (sigprocmask(SIG_BLOCK, &stop_signals, nullptr) != 0) {
    fmt::print(stderr, "porthole: cannot block SIGTERM/SIGINT\n");
    return static_cast<int>(Errc::internal);
  }
  int stop_fd = signalfd(-1, &stop_signals, SFD_CLOEXEC | SFD_NONBLOCK);
  if (stop_fd < 0) {
    fmt::print(stderr, "porthole: signalfd failed\n");
    return static_cast<int>(Errc::internal);
  }
  std::signal(SIGPIPE, SIG_IGN);  // a closed stdout must not kill us before release

  const std::size_t ports = inv.hold.mappings.size();
  auto on_event = [&](const HoldEvent& e) {
    if (e.kind == HoldEventKind::ready)
      sd_notify_state(fmt::format("READY=1\nSTATUS=holding {} port(s)", ports));
    if (e.kind == HoldEventKind::stopping) sd_notify_state("STOPPING=1");
    const bool is_error = e.kind == HoldEventKind::error || e.kind == HoldEventKind::lost;
    if (inv.verbosity < 0 && !is_error && !inv.json) return;
    fmt::print("{}", render_hold_event(e, inv.json));
    std::fflush(stdout);  // one event, one line, now (a pipe would buffer it)
  };
  auto st = hold(inv.options, inv.hold, on_event, stop_fd);
  ::close(stop_fd);
  if (!st) {
    if (inv.json) fmt::print("{}", render_error_json(st.error()));
    fmt::print(stderr, "porthole: {}\n", st.error().message);
    return static_cast<int>(st.error().code);
  }
  return 0;
}

}  // namespace porthole::cli
