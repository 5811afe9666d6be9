// `porthole connect PEER_ID --rendezvous HOST[:PORT] -L [BIND:]LOCAL:REMOTE[/udp]`: the
// peer's exposed ports on local ones, through an authenticated QUIC tunnel over a
// punched path (include/porthole/tunnel.hpp, docs/tunnel.md).
#include <unistd.h>

#include <cmath>
#include <csignal>
#include <cstdio>

#include <fmt/format.h>

#include "cli_output.hpp"
#include "cmd_punch.hpp"
#include "command.hpp"
#include "stop_signal.hpp"
#include "tunnel_output.hpp"

namespace porthole::cli {
namespace {

constexpr const char* kConnectFooter =
    R"(Every -L is bound before anything is sent. Lines on stdout (--json: JSON lines):
connected (path kind and strategy, as punch), then listening (one per -L), path-lost and
reconnected when the path breaks and is found again. Runs until SIGTERM or SIGINT (--once: until the first local TCP
connection has closed).
--turn turn:HOST[:PORT] (with --turn-user and --turn-password, or $PORTHOLE_TURN, as
for punch) adds a TURN relay for when no direct path can exist (both NATs symmetric);
the expose side needs none.
Exit status: 0 ok, 2 bad -L or a local port in use, 3 rendezvous unreachable, 7 no path
(or the peer not online), 8 identity key unusable, 9 refused (our ID not allowed, the
peer's identity did not match, a -L port not exposed). See porthole(1).)";

class ConnectCommandOptions : public CommandOptions {
 public:
  CLI::App* add_to(CLI::App& app) override {
    auto* sub = app.add_subcommand(
        "connect", "Reach a peer's exposed ports on local ones through a QUIC tunnel");
    sub->add_option("PEER_ID", peer_, "The exposing peer's ID (its `porthole id`)")
        ->required()
        ->type_name("");
    sub->add_option("--rendezvous", rendezvous_,
                    "The `porthole serve` both peers meet at, HOST[:PORT] (port 3478)")
        ->required()
        ->type_name("HOST[:PORT]");
    sub->add_option("-L", forwards_,
                    "[BIND:]LOCAL:REMOTE[/udp]: listen on BIND:LOCAL (127.0.0.1), carry to the "
                    "peer's REMOTE; repeat for several")
        ->required()
        ->type_name("SPEC");
    sub->add_flag("--once", once_, "Exit 0 after the first local TCP connection has closed");
    sub->add_option("--port", port_, "Local UDP port of the tunnel (default: any)")->type_name("N");
    sub->add_flag("--no-map", no_map_,
                  "Do not ask the gateway for a port mapping (PCP, NAT-PMP, UPnP)");
    sub->add_option("--wait", wait_,
                    "How long to wait for a peer that is not online yet, seconds (default 5)")
        ->type_name("SECONDS");
    turn_.add_to(*sub);
    sub->footer(kConnectFooter);
    return sub;
  }

  std::string finish(Invocation& inv) const override {
    ConnectOptions& c = inv.connect;
    auto peer = parse_peer_id(peer_);
    if (!peer) return peer.error().message;
    c.peer = *peer;
    auto hp = parse_host_port(rendezvous_, 3478);
    if (!hp) return "--rendezvous " + hp.error().message;
    c.punch.rendezvous = rendezvous_;
    for (const auto& text : forwards_) {
      auto f = parse_forward(text);
      if (!f) return f.error().message;
      for (const auto& other : c.forwards)
        if (other.local == f->local && other.proto == f->proto && other.bind == f->bind)
          return fmt::format("-L {}: local port {} is named twice", text, f->local);
      c.forwards.push_back(*f);
    }
    if (port_ < 0 || port_ > 65535)
      return fmt::format("--port {}: give a UDP port 1..65535 (or 0 for any)", port_);
    c.punch.port = static_cast<std::uint16_t>(port_);
    c.punch.map = !no_map_;
    if (!std::isfinite(wait_) || wait_ < 0 || wait_ > 3600)
      return fmt::format("--wait {}: give a number of seconds from 0 to 3600", wait_);
    c.punch.wait_for_peer = std::chrono::milliseconds(static_cast<long long>(wait_ * 1000));
    c.once = once_;
    return turn_.finish(c.punch);
  }

 private:
  std::string peer_;
  std::string rendezvous_;
  std::vector<std::string> forwards_;
  bool once_ = false;
  int port_ = 0;
  bool no_map_ = false;
  double wait_ = 5.0;
  TurnFlags turn_;
};

int run_connect(const Invocation& inv) {
  ConnectOptions options = inv.connect;
  apply_global_options(inv, options.punch);
  if (auto st = fill_turn_credentials(options.punch); !st) {
    if (inv.json) fmt::print("{}", render_error_json(st.error()));
    fmt::print(stderr, "porthole: {}\n", st.error().message);
    return static_cast<int>(st.error().code);
  }

  const int stop_fd = install_stop_signals();
  if (stop_fd < 0) return static_cast<int>(Errc::internal);
  auto on_event = [&](const TunnelEvent& e) {
    if (inv.verbosity < 0 && !inv.json) return;
    fmt::print("{}", render_tunnel_event(e, inv.json));
    std::fflush(stdout);
  };
  PunchReport report;
  auto st = connect_tunnel(options, stop_fd, on_event, &report);
  if (!st) {
    if (inv.json) fmt::print("{}", render_error_json(st.error()));
    if (st.error().code == Errc::punch_failed)
      fmt::print(stderr, "{}", render_punch_failure(st.error(), report));
    else
      fmt::print(stderr, "porthole: {}\n", st.error().message);
    return static_cast<int>(st.error().code);
  }
  return 0;
}

}  // namespace

CommandSpec connect_command() {
  return {Command::connect, make_options<ConnectCommandOptions>, run_connect};
}

}  // namespace porthole::cli
