// `porthole hold PORT...`: keeps ports forwarded until SIGTERM or SIGINT, one line
// (or JSON object) per event on stdout.
#include <csignal>
#include <cmath>
#include <cstdio>
#include <string>
#include <sys/signalfd.h>
#include <tuple>
#include <unistd.h>
#include <vector>

#include <fmt/format.h>
#include <nlohmann/json.hpp>
#include <porthole/hold.hpp>

#include "cli_output.hpp"
#include "command.hpp"
#include "sd_notify.hpp"

namespace porthole::cli {
namespace {

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

CLI::App* add_hold_command(CLI::App& app, HoldArgs& raw) {
  auto* hold = app.add_subcommand(
      "hold",
      "Keep ports forwarded until stopped (SIGTERM/SIGINT removes them): renews, "
      "recovers from router reboots, prints one line per event");
  hold->add_option("PORT", raw.ports, "Internal ports: N, N/tcp or N/udp (default tcp)")
      ->required()
      ->type_name("");
  hold->add_option("--external-port", raw.external_port,
                   "External port to ask for (only with one PORT; default: same as PORT)")
      ->type_name("N");
  hold->add_option("--lifetime", raw.lifetime,
                   "Lease in seconds, renewed before it runs out (default 7200; 0 = "
                   "permanent where the protocol allows)")
      ->type_name("SECONDS");
  hold->add_option("--via", raw.via, "Protocol: auto (default), pcp, natpmp or upnp")
      ->type_name("PROTOCOL");
  hold->add_option("--description", raw.description,
                   "Description stored on the router (UPnP): printable UTF-8, at most 256 "
                   "characters")
      ->type_name("TEXT");
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
                   "300 for permanent leases, else only at renewals)")
      ->type_name("SECONDS");
  hold->add_option("--retry-max", raw.retry_max,
                   "Longest wait between attempts while no protocol answers (default 60; "
                   "starts at 1, doubling)")
      ->type_name("SECONDS");
  return hold;
}

std::string hold_request_from(const HoldArgs& raw, HoldRequest& out) {
  if (raw.ports.empty()) return "hold needs at least one PORT";
  auto life = parse_lifetime_arg(raw.lifetime);
  if (!life) return life.error().message;
  auto via = parse_via_arg(raw.via);
  if (!via) return via.error().message;
  if (auto st = check_description_arg(raw.description); !st) return st.error().message;
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

std::string render_hold_event(const HoldEvent& e, bool as_json) {
  if (!as_json) return fmt::format("{} {}\n", hold_event_name(e.kind), e.message);
  nlohmann::json j = {{"event", hold_event_name(e.kind)}, {"message", e.message}};
  if (e.kind != HoldEventKind::ready && e.kind != HoldEventKind::stopping && e.port.port != 0) {
    j["port"] = e.port.port;
    j["transport"] = transport_name(e.port.transport);
  }
  if (e.mapping) j["mapping"] = mapping_json(*e.mapping);
  if (e.previous_protocol) j["previous_protocol"] = protocol_name(*e.previous_protocol);
  if (e.previous_external_ip) {
    j["previous_external_ip"] = e.previous_external_ip->to_string();
    j["previous_external_port"] = e.previous_external_port;
  }
  if (e.error)
    j["error"] = {{"code", static_cast<int>(e.error->code)},
                  {"name", errc_name(e.error->code)},
                  {"protocol_code", e.error->protocol_code},
                  {"message", e.error->message}};
  if (e.retry_in) j["retry_in_ms"] = e.retry_in->count();
  return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
}

// Runs until SIGTERM or SIGINT; the exit status.
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

class HoldOptions : public CommandOptions {
 public:
  CLI::App* add_to(CLI::App& app) override { return add_hold_command(app, raw_); }
  std::string finish(Invocation& inv) const override { return hold_request_from(raw_, inv.hold); }

 private:
  HoldArgs raw_;
};

}  // namespace

CommandSpec hold_command() { return {Command::hold, make_options<HoldOptions>, run_hold}; }

}  // namespace porthole::cli
