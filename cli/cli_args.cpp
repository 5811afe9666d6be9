#include "cli_args.hpp"

#include <cmath>
#include <cstring>
#include <regex>
#include <vector>

#include <CLI/CLI.hpp>
#include <fmt/format.h>
#include <porthole/text.hpp>
#include <porthole/version.hpp>

#include "cli_config.hpp"
#include "cli_output.hpp"
#include "command.hpp"

namespace porthole::cli {
namespace {

// Every command, in the order --help lists them.
const CommandSpec kCommands[] = {
    probe_command(), open_command(),   serve_command(),   close_command(),
    list_command(),  nat_command(),    hold_command(),    id_command(),
    punch_command(), expose_command(), connect_command(),
};

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
  porthole id                            this host's peer ID
  porthole punch PEER_ID --rendezvous rv.example.net
                                         a direct UDP path to that peer through both NATs
  porthole expose 8080 --rendezvous rv.example.net --allow PEER_ID
                                         serve local TCP 8080 to that peer (QUIC tunnel)
  porthole connect PEER_ID --rendezvous rv.example.net -L 8080:8080
                                         its port 8080 on 127.0.0.1:8080

Exit status: 0 ok, 1 internal error, 2 usage, 3 no port-mapping (or STUN) service answered,
4 the gateway refused, 5 timed out after a service answered, 6 not verified
(open --verify; the mapping stays), 7 punch failed, 8 state file unusable, 9 the peer
refused us. See porthole(1).)";

constexpr const char* kSubcommandFooter = R"(Global options, before or after the command:
  --gateway IP  --timeout SECONDS  --json  -v,--verbose  -q,--quiet  --state-dir DIR
  --stun HOST[:PORT]  --upnp-allow-lan  --config FILE
Exit status: 0 ok, 1 internal error, 2 usage, 3 no port-mapping (or STUN) service answered,
4 the gateway refused, 5 timed out after a service answered, 6 not verified
(open --verify; the mapping stays), 7 punch failed, 8 state file unusable, 9 the peer
refused us. See porthole --help and porthole(1).)";

// "Usage: porthole open [OPTIONS] PORT" rather than CLI11's "Usage: open ...".
class UsageFormatter : public CLI::Formatter {
 public:
  std::string make_usage(const CLI::App* app, std::string name) const override {
    if (app->get_parent() != nullptr) name = "porthole " + name;
    return CLI::Formatter::make_usage(app, std::move(name));
  }
};

// The options every command takes, before or after its name.
struct GlobalArgs {
  std::string gateway;
  double timeout = 5.0;
  bool json = false;
  bool verbose = false;
  bool quiet = false;
  std::string state_dir;
  std::vector<std::string> stun;
  bool upnp_allow_lan = false;
  bool no_upnp_cache = false;
};

void add_global_options(CLI::App& app, GlobalArgs& raw) {
  // Config files (cli_config.hpp): CLI11 reads them; an unknown key is an error.
  app.set_config("--config", "",
                 "Read options from FILE too (TOML or INI), after /etc/porthole/porthole.conf "
                 "and ~/.config/porthole/porthole.conf; the command line wins")
      ->type_name("FILE")
      ->multi_option_policy(CLI::MultiOptionPolicy::TakeAll);
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
  app.add_flag("--no-upnp-cache", raw.no_upnp_cache,
               "Search for the UPnP IGD with SSDP instead of using the one remembered in the "
               "state directory (upnp-igd.json), and remember nothing");
}

// --gateway: a unicast IPv4 address. The ones no router can have are refused before
// anything is sent: 0.0.0.0/8 ("this network", RFC 1122 s3.2.1.3), multicast
// 224.0.0.0/4 (RFC 5771) and 240.0.0.0/4 with the limited broadcast 255.255.255.255
// (RFC 1112 s4, RFC 919 s7).
// Parsed here, once: the library gets an IpAddress.
std::string check_gateway(const std::string& text, std::optional<IpAddress>& gateway) {
  auto ip = IpAddress::parse(text);
  if (!ip || !ip->is_v4())
    return fmt::format("--gateway '{}' is not an IPv4 address like 192.168.1.1",
                       text.substr(0, 64) + (text.size() > 64 ? "..." : ""));
  const auto b = ip->bytes();
  const std::uint32_t a = std::uint32_t{b[0]} << 24 | std::uint32_t{b[1]} << 16 |
                          std::uint32_t{b[2]} << 8 | b[3];
  const char* why = nullptr;
  if (a == 0xffffffffU)
    why = "the broadcast address";
  else if ((a >> 24) == 0)
    why = "not a host address (0.0.0.0/8 means this network)";
  else if ((a >> 28) == 0xe)
    why = "a multicast address";
  else if ((a >> 28) == 0xf)
    why = "a reserved address (240.0.0.0/4)";
  if (why == nullptr) {
    gateway = *ip;
    return {};
  }
  return fmt::format("--gateway {} is {}: give the router's own address, like 192.168.1.1", text,
                     why);
}

// `porthole --version`: the version, then one line per library it was built with.
std::string render_version(bool as_json) {
  const auto libraries = library_versions();
  if (as_json) {
    nlohmann::json libs = nlohmann::json::array();
    for (const auto& l : libraries)
      libs.push_back({{"name", l.name}, {"version", l.version}, {"source", l.source}});
    return dump({{"version", PORTHOLE_VERSION}, {"libraries", libs}});
  }
  std::string out = std::string("porthole ") + PORTHOLE_VERSION + "\n";
  for (const auto& l : libraries) out += fmt::format("  {} {} ({})\n", l.name, l.version, l.source);
  return out;
}

ParseOutcome usage_error(const std::string& message) {
  ParseOutcome out;
  out.exit_code = static_cast<int>(Errc::usage);
  out.err = message;
  return out;
}

// Whether --json was typed: a usage error found before the options were read must be
// JSON too.
bool json_requested(int argc, const char* const* argv) {
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--") == 0) return false;
    if (std::strcmp(argv[i], "--json") == 0) return true;
  }
  return false;
}

// The whole command line as CLI11 sees it: the global options and every command's.
struct Cli {
  struct Added {
    const CommandSpec* spec;
    std::unique_ptr<CommandOptions> options;
    CLI::App* app;
  };
  CLI::App app{"porthole: open ports on your router (PCP, NAT-PMP, UPnP IGD)", "porthole"};
  GlobalArgs raw;
  std::vector<Added> commands;

  Cli() {
    app.footer(kFooter);
    app.formatter(std::make_shared<UsageFormatter>());
    app.set_version_flag("--version", std::string("porthole ") + PORTHOLE_VERSION);
    app.require_subcommand(1, 1);
    // Before the commands are added: they inherit it.
    app.allow_config_extras(CLI::config_extras_mode::error);
    add_global_options(app, raw);
    for (const auto& spec : kCommands) {
      auto options = spec.make_options();
      CLI::App* sub = options->add_to(app);
      // Global options are accepted after the command too (`porthole open 8080 --json`).
      sub->fallthrough();
      // A command's own footer (punch --exec's rules) comes before the shared one.
      const std::string own = sub->get_footer();
      sub->footer(own.empty() ? std::string(kSubcommandFooter) : own + "\n\n" + kSubcommandFooter);
      commands.push_back({&spec, std::move(options), sub});
    }
  }
  const CLI::App* command(const std::string& name) const {
    for (const auto& c : commands)
      if (c.app->get_name() == name) return c.app;
    return nullptr;
  }
  const Added* chosen() const {
    for (const auto& c : commands)
      if (c.app->parsed()) return &c;
    return nullptr;
  }
};

// Whether `--NAME` (or `--NAME=...`) was typed.
bool typed(int argc, const char* const* argv, const std::string& name) {
  const std::string flag = "--" + name;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--") return false;
    if (a == flag || a.rfind(flag + "=", 0) == 0) return true;
  }
  return false;
}

// An error that may have come from a config file, said with the file and line of the
// key: an unknown key (CLI11's ConfigError) or a bad value of an option not typed on
// the command line (the first --NAME the message names). Unchanged otherwise.
std::string config_blame(const std::string& message, const Cli& cli,
                         const std::vector<std::string>& files, int argc, const char* const* argv) {
  if (files.empty()) return message;
  const auto* c = cli.chosen();
  const std::string section = c != nullptr ? c->app->get_name() : std::string();
  ConfigLocation where;
  const std::string unknown = "INI was not able to parse ";
  if (message.rfind(unknown, 0) == 0) {
    const std::string key = message.substr(unknown.size());
    if (!locate_config_key(files, key, "", where))
      return fmt::format("{} (in {})", message, files.back());
    const std::string name = key.substr(key.rfind('.') == std::string::npos ? 0
                                                                            : key.rfind('.') + 1);
    if (name == "++")
      return fmt::format("{}:{}: unknown section [{}]: no command '{}'", where.file, where.line,
                         where.section, where.section);
    std::string why;
    if (where.section.empty())
      why = fmt::format(
          "no global option --{} (a command's own options go in its [section], "
          "e.g. [open])",
          name);
    else if (cli.command(where.section) == nullptr)
      why = fmt::format("no command '{}' for a [{}] section", where.section, where.section);
    else
      why = fmt::format("porthole {} has no --{}", where.section, name);
    return fmt::format("{}:{}: unknown key '{}': {}", where.file, where.line, name, why);
  }
  static const std::regex option_name("--([a-z0-9][a-z0-9-]*)");
  for (std::sregex_iterator it(message.begin(), message.end(), option_name), end; it != end; ++it) {
    const std::string name = (*it)[1];
    if (typed(argc, argv, name)) continue;
    if (locate_config_key(files, name, section, where))
      return fmt::format("{}:{}: {}", where.file, where.line, message);
  }
  return message;
}

// --help, --version and the like are answered whatever the config files say.
bool reads_no_config(int argc, const char* const* argv) {
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--") == 0) return false;
    if (std::strcmp(argv[i], "--help") == 0 || std::strcmp(argv[i], "-h") == 0 ||
        std::strcmp(argv[i], "--version") == 0)
      return true;
  }
  return false;
}

ParseOutcome parse(int argc, const char* const* argv) {
  using Added = Cli::Added;
  Cli cli;
  CLI::App& app = cli.app;
  GlobalArgs& raw = cli.raw;
  const auto& commands = cli.commands;
  auto chosen = [&cli] { return cli.chosen(); };

  // The system and user config files go in front of the command line as --config
  // options: CLI11 reads every --config file, a later one winning, and the command line
  // over all of them.
  std::vector<std::string> files = reads_no_config(argc, argv) ? std::vector<std::string>()
                                                               : default_config_files();
  std::vector<const char*> args{argc > 0 ? argv[0] : "porthole"};
  for (const auto& f : files) {
    args.push_back("--config");
    args.push_back(f.c_str());
  }
  for (int i = 1; i < argc; ++i) args.push_back(argv[i]);
  auto blame = [&](const std::string& message) {
    std::vector<std::string> all = files;
    for (int i = 1; i + 1 < argc; ++i)
      if (std::strcmp(argv[i], "--config") == 0) all.emplace_back(argv[i + 1]);
    for (int i = 1; i < argc; ++i)
      if (std::strncmp(argv[i], "--config=", 9) == 0) all.emplace_back(argv[i] + 9);
    return usage_error(config_blame(message, cli, all, argc, argv));
  };

  try {
    app.parse(static_cast<int>(args.size()), args.data());
  } catch (const CLI::CallForHelp&) {
    ParseOutcome out;
    // Help for the subcommand the user named, if any.
    const Added* c = chosen();
    out.out = c != nullptr ? c->app->help() : app.help();
    return out;
  } catch (const CLI::CallForVersion&) {
    ParseOutcome out;
    out.out = render_version(json_requested(argc, argv));
    return out;
  } catch (const CLI::ParseError& e) {
    // CLI11 calls an unknown command a missing one; say what was not understood.
    auto rest = app.remaining();
    if (!rest.empty() && chosen() == nullptr) {
      std::string names;
      for (std::size_t i = 0; i < commands.size(); ++i) {
        if (i > 0) names += i + 1 == commands.size() ? " or " : ", ";
        names += commands[i].app->get_name();
      }
      return usage_error(fmt::format("unknown command '{}': use {}", rest.front(), names));
    }
    return blame(e.what());
  }

  Invocation inv;
  if (raw.verbose && raw.quiet) return blame("-v and -q contradict each other");
  inv.verbosity = raw.verbose ? 1 : raw.quiet ? -1 : 0;
  inv.json = raw.json;
  if (!raw.gateway.empty())
    if (auto err = check_gateway(raw.gateway, inv.options.gateway); !err.empty()) return blame(err);
  if (!std::isfinite(raw.timeout) || raw.timeout <= 0 || raw.timeout > 3600)
    return blame(
        fmt::format("--timeout {}: give a number of seconds above 0 and at "
                    "most 3600 (fractions allowed, e.g. 0.5)",
                    raw.timeout));
  inv.options.timeout = std::chrono::milliseconds(static_cast<long long>(raw.timeout * 1000));
  inv.timeout_given = app.get_option("--timeout")->count() > 0;
  if (inv.options.timeout.count() == 0) inv.options.timeout = std::chrono::milliseconds(1);
  inv.options.state_dir = raw.state_dir;
  inv.options.upnp_allow_lan = raw.upnp_allow_lan;
  inv.options.upnp_cache = !raw.no_upnp_cache;
  for (const auto& server : raw.stun) {
    auto hp = parse_host_port(server, 3478);
    if (!hp) return blame("--stun " + hp.error().message);
    inv.options.stun_servers.push_back(server);
  }

  const Added* c = chosen();
  if (c == nullptr) return blame("a command is required");
  inv.command = c->spec->command;
  if (auto err = c->options->finish(inv); !err.empty()) return blame(err);
  ParseOutcome out;
  out.invocation = std::move(inv);
  return out;
}

// The values an option takes, for completion: words, or "@files" / "@dirs" for the
// shell to complete paths. Known by the option's value name (type_name).
std::string value_candidates(const CLI::Option& opt) {
  const std::string type = opt.get_type_name();
  if (type == "PROTOCOL") return "auto\npcp\nnatpmp\nupnp\n";
  if (type == "DIR") return "@dirs\n";
  if (type == "FILE" || type == "PATH") return "@files\n";
  return {};
}

// Every long option of `app` (and -h/--help), one a line.
void add_option_names(const CLI::App& app, std::string& out) {
  for (const CLI::Option* opt : app.get_options()) {
    if (opt->get_positional()) continue;
    for (const auto& name : opt->get_lnames()) out += "--" + name + "\n";
  }
}

// `porthole __complete WORD... CURRENT` (dist/bash-completion/porthole): the words
// typed so far after `porthole` and the one being completed; prints the candidates for
// CURRENT, one a line, from the same option tables the parser uses, so a new command
// or option is completed without touching the completion script.
std::string complete(int argc, const char* const* argv) {
  Cli cli;
  if (argc < 1) return {};
  const std::string current = argv[argc - 1];
  const CLI::App* scope = nullptr;           // the command named, if any
  const CLI::Option* wants_value = nullptr;  // the option whose value CURRENT is
  for (int i = 0; i + 1 < argc; ++i) {
    const std::string word = argv[i];
    if (wants_value != nullptr) {  // this word was that option's value
      wants_value = nullptr;
      continue;
    }
    if (word.starts_with('-')) {
      if (word.find('=') != std::string::npos) continue;
      const CLI::Option* opt = scope != nullptr ? scope->get_option_no_throw(word) : nullptr;
      if (opt == nullptr) opt = cli.app.get_option_no_throw(word);
      if (opt != nullptr && opt->get_expected_min() > 0) wants_value = opt;
      continue;
    }
    if (scope == nullptr) scope = cli.command(word);
  }
  if (wants_value != nullptr) return value_candidates(*wants_value);
  std::string out;
  if (current.starts_with('-')) {
    if (scope != nullptr) add_option_names(*scope, out);
    add_option_names(cli.app, out);
    return out;
  }
  if (scope == nullptr)
    for (const auto& c : cli.commands) out += c.app->get_name() + "\n";
  return out;
}

}  // namespace

Result<std::uint16_t> parse_external_arg(const std::string& text) {
  auto spec = parse_port_spec(text);
  if (!spec) return make_error(Errc::usage, "--external-port: " + spec.error().message);
  if (text.find('/') != std::string::npos)
    return make_error(Errc::usage,
                      "--external-port takes a number; the transport comes "
                      "from PORT");
  return spec->port;
}

Result<std::uint32_t> parse_lifetime_arg(const std::string& text) {
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
                                               "a number of seconds",
                                               v));
  if (v > 0xffffffffLL)
    return make_error(Errc::usage, fmt::format("--lifetime {} is too large", v));
  return static_cast<std::uint32_t>(v);
}

Result<Via> parse_via_arg(const std::string& text) {
  auto via = parse_via(text);
  if (!via) return make_error(Errc::usage, "--via: " + via.error().message);
  return *via;
}

Status check_description_arg(const std::string& text) {
  if (auto ok = check_description(text); !ok)
    return make_error(Errc::usage, "--description: " + ok.error().message);
  return ok_status();
}

ParseOutcome parse_args(int argc, const char* const* argv) {
  if (argc >= 2 && std::strcmp(argv[1], "__complete") == 0) {
    ParseOutcome done;
    done.out = complete(argc - 2, argv + 2);
    return done;
  }
  ParseOutcome out = parse(argc, argv);
  if (!out.invocation && out.exit_code == static_cast<int>(Errc::usage) &&
      json_requested(argc, argv))
    out.out = render_error_json(make_error(Errc::usage, out.err));
  return out;
}

void add_port_argument(CLI::App& sub, std::string& port) {
  sub.add_option("PORT", port, "Internal port: N, N/tcp or N/udp (default tcp)")
      ->required()
      ->type_name("");
}

std::string parse_port_arguments(const std::string& port, const std::string& external_port,
                                 PortSpec& spec, std::optional<std::uint16_t>& external) {
  auto parsed = parse_port_spec(port);
  if (!parsed) return parsed.error().message;
  spec = *parsed;
  if (external_port.empty()) return {};
  auto e = parse_external_arg(external_port);
  if (!e) return e.error().message;
  external = *e;
  return {};
}

int run_command(const Invocation& inv) {
  for (const auto& spec : kCommands)
    if (spec.command == inv.command) return spec.run(inv);
  return static_cast<int>(Errc::internal);
}

}  // namespace porthole::cli
