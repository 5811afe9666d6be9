// `porthole expose PORT[/tcp|/udp]... --rendezvous HOST[:PORT] --allow PEER_ID`: serves
// local ports to allowed peers through an authenticated QUIC tunnel
// (include/porthole/tunnel.hpp, docs/tunnel.md), in the foreground like hold.
#include <unistd.h>

#include <cmath>
#include <csignal>
#include <cstdio>

#include <fmt/format.h>

#include "cli_output.hpp"
#include "command.hpp"
#include "sd_notify.hpp"
#include "cmd_punch.hpp"
#include "stop_signal.hpp"
#include "tunnel_output.hpp"

namespace porthole::cli {
namespace {

constexpr const char* kExposeFooter =
    R"(Runs until SIGTERM or SIGINT: then the tunnels close, the gateway mapping is removed
and porthole goes offline at the rendezvous. One event line per event on stdout (--json:
JSON lines): ready, mapping, peer-connected (path kind and strategy), peer-refused,
peer-gone.
Exit status: 0 after a clean stop, 2 usage, 3 rendezvous unreachable, 8 identity key
unusable. See porthole(1).)";

class ExposeCommandOptions : public CommandOptions {
 public:
  CLI::App* add_to(CLI::App& app) override {
    auto* sub = app.add_subcommand(
        "expose", "Serve local ports to allowed peers through an authenticated QUIC tunnel");
    sub->add_option("PORT", ports_, "N, N/tcp or N/udp: a local port to serve")
        ->required()
        ->type_name("");
    sub->add_option("--rendezvous", rendezvous_,
                    "The `porthole serve` peers find this host at, HOST[:PORT] (port 3478)")
        ->required()
        ->type_name("HOST[:PORT]");
    sub->add_option("--allow", allow_, "A peer ID let in; repeat for several")
        ->type_name("PEER_ID");
    sub->add_flag("--allow-any", allow_any_, "Let in every peer (warned about)");
    sub->add_option("--to", to_, "Where the ports are, an IPv4 address (default 127.0.0.1)")
        ->type_name("HOST");
    sub->add_option("--port", port_, "Local UDP port of the tunnel (default: any)")->type_name("N");
    sub->add_flag("--no-map", no_map_,
                  "Do not ask the gateway for a port mapping (PCP, NAT-PMP, UPnP)");
    sub->add_flag("--verify", verify_,
                  "Prove the gateway mapping from outside (--stun with two addresses); unproven: "
                  "not advertised, peers punch");
    sub->add_option("--lifetime", lifetime_,
                    "Lease of the gateway mapping, seconds (default 7200; renewed at half)")
        ->type_name("SEC");
    sub->footer(kExposeFooter);
    return sub;
  }

  std::string finish(Invocation& inv) const override {
    ExposeOptions& e = inv.expose;
    for (const auto& text : ports_) {
      auto p = parse_exposed_port(text);
      if (!p) return p.error().message;
      e.ports.push_back(*p);
    }
    for (const auto& text : allow_) {
      auto id = parse_peer_id(text);
      if (!id) return "--allow " + id.error().message;
      e.allow.push_back(*id);
    }
    e.allow_any = allow_any_;
    e.to = to_;
    auto hp = parse_host_port(rendezvous_, 3478);
    if (!hp) return "--rendezvous " + hp.error().message;
    e.punch.rendezvous = rendezvous_;
    if (port_ < 0 || port_ > 65535)
      return fmt::format("--port {}: give a UDP port 1..65535 (or 0 for any)", port_);
    e.punch.port = static_cast<std::uint16_t>(port_);
    e.punch.map = !no_map_;
    e.verify = verify_;
    auto life = parse_lifetime_arg(lifetime_);
    if (!life) return life.error().message;
    e.lifetime = *life;
    if (auto st = check_expose_options(e); !st) return st.error().message;
    return {};
  }

 private:
  std::vector<std::string> ports_;
  std::string rendezvous_;
  std::vector<std::string> allow_;
  bool allow_any_ = false;
  std::string to_ = "127.0.0.1";
  int port_ = 0;
  bool no_map_ = false;
  bool verify_ = false;
  std::string lifetime_ = "7200";
};

int run_expose(const Invocation& inv) {
  ExposeOptions options = inv.expose;
  apply_global_options(inv, options.punch);
  if (options.allow_any && inv.verbosity >= 0)
    fmt::print(stderr,
               "porthole: warning: --allow-any: every peer that finds this host may use the "
               "exposed ports\n");

  const int stop_fd = install_stop_signals();
  if (stop_fd < 0) return static_cast<int>(Errc::internal);
  auto on_event = [&](const TunnelEvent& e) {
    if (e.type == TunnelEventType::ready)
      sd_notify_state(fmt::format("READY=1\nSTATUS=exposing {} port(s)", e.ports.size()));
    const bool important = e.type == TunnelEventType::peer_refused ||
                           (e.type == TunnelEventType::mapping && e.what == "lost");
    if (inv.verbosity < 0 && !important && !inv.json) return;
    fmt::print("{}", render_tunnel_event(e, inv.json));
    std::fflush(stdout);
  };
  auto st = expose(options, stop_fd, on_event);
  sd_notify_state("STOPPING=1");
  if (!st) {
    if (inv.json) fmt::print("{}", render_error_json(st.error()));
    fmt::print(stderr, "porthole: {}\n", st.error().message);
    return static_cast<int>(st.error().code);
  }
  return 0;
}

}  // namespace

CommandSpec expose_command() {
  return {Command::expose, make_options<ExposeCommandOptions>, run_expose};
}

}  // namespace porthole::cli
