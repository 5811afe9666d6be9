#include "cli_args.hpp"

#include <cmath>
#include <sstream>

#include <CLI/CLI.hpp>
#include <fmt/format.h>
#include <porthole/text.hpp>

#include "cmd_hold.hpp"

namespace porthole::cli {
namespace {

constexpr const char* kFooter = R"(Examples:
  porthole probe                         which protocols the gateway speaks
  porthole open 8080                     forward external TCP 8080 to this host's 8080
  porthole open 51820/udp --lifetime 3600
  porthole open 8080 --via upnp --json   force UPnP, print JSON
  porthole close 8080                    remove this host's mapping of 8080
  porthole list                          the router's table, ours marked
  porthole open 8080 --verify --stun stun.example.net
                                         map, then prove it from outside (exit 6 if not)
  porthole serve --listen 198.51.100.10 --alt-listen 198.51.100.11
                                         STUN + connect-back server on a public host
  porthole nat --stun stun.example.net   public address, NAT behaviour, double NAT
  porthole hold 8080 51820/udp           keep them open until stopped (SIGTERM closes)

Exit status: 0 ok, 1 internal error, 2 usage, 3 no port-mapping (or STUN) service answered,
4 the gateway refused, 5 timed out after a service answered, 6 not verified
(open --verify; the mapping stays), 8 state file unusable.
See porthole(1).)";

constexpr const char* kSubcommandFooter = R"(Global options, before or after the command:
  --gateway IP  --timeout SECONDS  --json  -v,--verbose  -q,--quiet  --state-dir DIR
  --stun HOST[:PORT]  --upnp-allow-lan
Exit status: 0 ok, 1 internal error, 2 usage, 3 no port-mapping (or STUN) service answered,
4 the gateway refused, 5 timed out after a service answered, 6 not verified
(open --verify; the mapping stays), 8 state file unusable.
See porthole --help and porthole(1).)";

// "Usage: porthole open [OPTIONS] PORT" rather than CLI11's "Usage: open ...".
class UsageFormatter : public CLI::Formatter {
 public:
  std::string make_usage(const CLI::App* app, std::string name) const override {
    if (app->get_parent() != nullptr) name = "porthole " + name;
    return CLI::Formatter::make_usage(app, std::move(name));
  }
};

struct RawArgs {
  std::string gateway;
  double timeout = 5.0;
  bool json = false;
  bool verbose = false;
  bool quiet = false;
  std::string state_dir;
  std::vector<std::string> stun;
  bool upnp_allow_lan = false;
  std::string port;
  std::string external_port;
  std::string lifetime = "7200";
  std::string via = "auto";
  std::string description = "porthole";
  bool strict_port = false;
  bool verify = false;
  std::string listen;
  std::string alt_listen;
};

void add_global_options(CLI::App& app, RawArgs& raw) {
  app.add_option("--gateway", raw.gateway, "Gateway IPv4 address (default: the default route's)")
      ->type_name("IP");
  app.add_option("--timeout", raw.timeout, "Overall deadline in seconds (default 5)")
      ->type_name("SECONDS");
  app.add_flag("--json", raw.json, "Print results as JSON on stdout");
  app.add_flag("-v,--verbose", raw.verbose, "Show the protocol exchange on stderr");
  app.add_flag("-q,--quiet", raw.quiet, "Print only errors");
  app.add_option("--state-dir", raw.state_dir,
                 "Where porthole keeps its mappings (default: $PORTHOLE_STATE_DIR, "
                 "/var/lib/porthole as root, else ~/.local/state/porthole)")
      ->type_name("DIR");
  app.add_option("--stun", raw.stun,
                 "STUN server HOST[:PORT] (port 3478 by default); repeat for several "
                 "(default: $PORTHOLE_STUN, else public servers)")
      ->type_name("HOST[:PORT]");
  app.add_flag("--upnp-allow-lan", raw.upnp_allow_lan,
               "Accept a UPnP device served from another address of this host's LAN subnet "
               "(default: only from the gateway's own address)");
}

Result<std::uint16_t> parse_external(const std::string& text) {
  auto spec = parse_port_spec(text);
  if (!spec) return make_error(Errc::usage, "--external-port: " + spec.error().message);
  if (text.find('/') != std::string::npos)
    return make_error(Errc::usage, "--external-port takes a number; the transport comes "
                                   "from PORT");
  return spec->port;
}

Result<std::uint32_t> parse_lifetime(const std::string& text) {
  std::size_t used = 0;
  long long v = 0;
  try {
    v = std::stoll(text, &used);
  } catch (...) {
    used = 0;
  }
  if (used != text.size() || text.empty())
    return make_error(Errc::usage, fmt::format("--lifetime '{}' is not a number of seconds", text));
  if (v < 0)
    return make_error(Errc::usage, fmt::format("--lifetime {} is negative: use 0 (permanent) or "
                                               "a number of seconds", v));
  if (v > 0xffffffffLL)
    return make_error(Errc::usage, fmt::format("--lifetime {} is too large", v));
  return static_cast<std::uint32_t>(v);
}

// --listen IP[:PORT] and --alt-listen IP2[:PORT2]: IPv4 literals of this host.
Status parse_serve_addresses(const std::string& listen, const std::string& alt,
                             ServeOptions& out) {
  auto a = parse_host_port(listen, 3478);
  if (!a) return make_error(Errc::usage, "--listen " + a.error().message);
  if (!is_ipv4_literal(a->host))
    return make_error(Errc::usage, fmt::format("--listen '{}' is not an IPv4 address of this "
                                               "host", a->host));
  out.listen_ip = a->host;
  out.listen_port = a->port;
  if (alt.empty()) return ok_status();
  auto b = parse_host_port(alt, 3479);
  if (!b) return make_error(Errc::usage, "--alt-listen " + b.error().message);
  if (!is_ipv4_literal(b->host))
    return make_error(Errc::usage, fmt::format("--alt-listen '{}' is not an IPv4 address of "
                                               "this host", b->host));
  out.alt_ip = b->host;
  out.alt_port = b->port;
  return ok_status();
}

ParseOutcome usage_error(const std::string& message) {
  ParseOutcome out;
  out.exit_code = static_cast<int>(Errc::usage);
  out.err = message;
  return out;
}

}  // namespace

Result<std::uint32_t> parse_lifetime_arg(const std::string& text) { return parse_lifetime(text); }
Result<std::uint16_t> parse_external_arg(const std::string& text) { return parse_external(text); }

ParseOutcome parse_args(int argc, const char* const* argv) {
  CLI::App app{"porthole: open ports on your router (PCP, NAT-PMP, UPnP IGD)", "porthole"};
  app.footer(kFooter);
  app.formatter(std::make_shared<UsageFormatter>());
  app.set_version_flag("--version", std::string("porthole 0.1.0"));
  app.require_subcommand(1, 1);
  RawArgs raw;
  add_global_options(app, raw);

  auto* probe = app.add_subcommand("probe", "Which protocols the gateway speaks, its external "
                                            "address, how long each took");
  auto* open = app.add_subcommand("open", "Forward an external port to this host");
  open->add_option("PORT", raw.port, "Internal port: N, N/tcp or N/udp (default tcp)")
      ->required()->type_name("");
  open->add_option("--external-port", raw.external_port,
                   "External port to ask for (default: same as PORT; the router may assign "
                   "another)")->type_name("N");
  open->add_option("--lifetime", raw.lifetime,
                   "Lease in seconds (default 7200; 0 = permanent where the protocol allows)")
      ->type_name("SECONDS");
  open->add_option("--via", raw.via, "Protocol: auto (default), pcp, natpmp or upnp")
      ->type_name("PROTOCOL");
  open->add_option("--description", raw.description,
                   "Description stored on the router (UPnP): printable UTF-8, at most 256 "
                   "characters")->type_name("TEXT");
  open->add_flag("--strict-port", raw.strict_port,
                 "Fail (exit 4) instead of accepting another external port");
  open->add_flag("--verify", raw.verify,
                 "Then prove from outside that inbound traffic arrives (needs a --stun "
                 "server: RFC 5780 for UDP, a `porthole serve` for TCP); exit 6 if not");
  auto* serve = app.add_subcommand("serve", "Run the public-side server: STUN (RFC 8489/5780) "
                                            "and the TCP connect-back check of --verify");
  serve->add_option("--listen", raw.listen, "Address to serve on, IP[:PORT] (port 3478)")
      ->required()->type_name("IP[:PORT]");
  serve->add_option("--alt-listen", raw.alt_listen,
                    "Second address for RFC 5780 CHANGE-REQUEST, IP2[:PORT2] (port 3479)")
      ->type_name("IP2[:PORT2]");
  auto* close = app.add_subcommand("close", "Remove the mapping this host made");
  close->add_option("PORT", raw.port, "Internal port: N, N/tcp or N/udp (default tcp)")
      ->required()->type_name("");
  close->add_option("--external-port", raw.external_port,
                    "Only the mapping on this external port")->type_name("N");
  auto* list = app.add_subcommand("list", "The router's UPnP table (ours marked) and our "
                                          "PCP/NAT-PMP mappings; exit 5 if the deadline "
                                          "cut the table short");
  auto* nat = app.add_subcommand("nat", "Public address (STUN), NAT mapping and filtering "
                                        "behaviour (RFC 5780), double NAT");
  // Global options are accepted after the command too (`porthole open 8080 --json`).
  for (auto* sub : {probe, open, close, list, nat, serve}) {
    sub->fallthrough();
    sub->footer(kSubcommandFooter);
  }
  HoldArgs hold_raw;
  auto* hold = add_hold_command(app, hold_raw, kSubcommandFooter);

  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp&) {
    ParseOutcome out;
    // Help for the subcommand the user named, if any.
    const CLI::App* target = &app;
    for (auto* sub : {probe, open, close, list, nat, serve, hold})
      if (sub->parsed()) target = sub;
    out.out = target->help();
    return out;
  } catch (const CLI::CallForVersion& e) {
    ParseOutcome out;
    out.out = app.version() + "\n";
    (void)e;
    return out;
  } catch (const CLI::ParseError& e) {
    // CLI11 calls an unknown command a missing one; say what was not understood.
    auto rest = app.remaining();
    if (!rest.empty() && !probe->parsed() && !open->parsed() && !close->parsed() &&
        !list->parsed() && !nat->parsed() && !serve->parsed() && !hold->parsed())
      return usage_error(fmt::format("unknown command '{}': use probe, open, close, list, nat, "
                                     "serve or hold",
                                     rest.front()));
    return usage_error(e.what());
  }

  Invocation inv;
  if (raw.verbose && raw.quiet) return usage_error("-v and -q contradict each other");
  inv.verbosity = raw.verbose ? 1 : raw.quiet ? -1 : 0;
  inv.json = raw.json;
  if (!raw.gateway.empty() && !is_ipv4_literal(raw.gateway))
    return usage_error(fmt::format("--gateway '{}' is not an IPv4 address like 192.168.1.1",
                                   raw.gateway));
  inv.options.gateway = raw.gateway;
  if (!std::isfinite(raw.timeout) || raw.timeout <= 0 || raw.timeout > 3600)
    return usage_error(fmt::format("--timeout {} must be between 0 and 3600 seconds",
                                   raw.timeout));
  inv.options.timeout = std::chrono::milliseconds(static_cast<long long>(raw.timeout * 1000));
  if (inv.options.timeout.count() == 0) inv.options.timeout = std::chrono::milliseconds(1);
  inv.options.state_dir = raw.state_dir;
  inv.options.upnp_allow_lan = raw.upnp_allow_lan;
  for (const auto& server : raw.stun) {
    auto hp = parse_host_port(server, 3478);
    if (!hp) return usage_error("--stun " + hp.error().message);
    inv.options.stun_servers.push_back(server);
  }

  if (hold->parsed()) {
    inv.command = Command::hold;
    if (auto err = hold_request_from(hold_raw, inv.hold); !err.empty()) return usage_error(err);
  } else if (probe->parsed()) {
    inv.command = Command::probe;
  } else if (list->parsed()) {
    inv.command = Command::list;
  } else if (nat->parsed()) {
    inv.command = Command::nat;
  } else if (serve->parsed()) {
    inv.command = Command::serve;
    auto st = parse_serve_addresses(raw.listen, raw.alt_listen, inv.serve);
    if (!st) return usage_error(st.error().message);
  } else {
    auto spec = parse_port_spec(raw.port);
    if (!spec) return usage_error(spec.error().message);
    std::optional<std::uint16_t> ext;
    if (!raw.external_port.empty()) {
      auto e = parse_external(raw.external_port);
      if (!e) return usage_error(e.error().message);
      ext = *e;
    }
    if (open->parsed()) {
      inv.command = Command::open;
      inv.open.port = *spec;
      inv.open.external_port = ext;
      auto life = parse_lifetime(raw.lifetime);
      if (!life) return usage_error(life.error().message);
      inv.open.lifetime = *life;
      auto via = parse_via(raw.via);
      if (!via) return usage_error("--via: " + via.error().message);
      inv.open.via = *via;
      if (auto ok = check_description(raw.description); !ok)
        return usage_error("--description: " + ok.error().message);
      inv.open.description = raw.description;
      inv.open.strict_port = raw.strict_port;
      inv.verify = raw.verify;
    } else {
      inv.command = Command::close;
      inv.close.port = *spec;
      inv.close.external_port = ext;
    }
  }
  ParseOutcome out;
  out.invocation = std::move(inv);
  return out;
}

}  // namespace porthole::cli
