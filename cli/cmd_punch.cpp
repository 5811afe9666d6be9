// `porthole punch PEER_ID --rendezvous HOST[:PORT]`: a UDP path to another porthole
// peer through both NATs (include/porthole/punch.hpp); prints it, or hands the connected
// socket to a command (--exec) as fd 3, the way systemd passes sockets (LISTEN_FDS).
#include "cmd_punch.hpp"

#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cmath>
#include <csignal>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "cli_output.hpp"
#include "command.hpp"
#include "stop_signal.hpp"

namespace porthole::cli {
namespace {

using nlohmann::json;

constexpr const char* kPunchFooter =
    R"(With --exec, CMD runs as /bin/sh -c CMD with the connected UDP socket as fd 3
(LISTEN_FDS=1, LISTEN_PID: the shell's, so write `exec PROGRAM` for a program that
checks it; PORTHOLE_PEER=ip:port, PORTHOLE_PEER_ID); porthole sends
nothing on the socket after that, so CMD's own traffic must keep the path open (NATs
forget idle UDP mappings, often within 30 s). porthole waits for CMD, removes the
gateway mapping it made, and exits with CMD's status.
--turn turn:HOST[:PORT] adds a TURN relay (RFC 8656, UDP, long-term credentials) as the
last resort: --turn-user and --turn-password, or $PORTHOLE_TURN naming a mode-0600 file
of lines user=NAME and password=SECRET. A relayed path's fd 3 is a connected AF_UNIX
datagram socket that porthole relays until CMD ends; the allocation is deleted then.
While relayed, both sides check the direct pairs again every 5 s (at most 24 rounds);
when one works the path moves to it (fd 3 stays the same), porthole says so
("upgraded", with --json an event line {"event":"upgraded","path":"direct",...}) and
deletes the allocation.
Exit status: 0 ok (or CMD's), 2 usage, 3 rendezvous unreachable, 7 punch failed or peer
not online, 8 identity key or TURN credentials file unusable. See porthole(1).)";

class PunchCommandOptions : public CommandOptions {
 public:
  CLI::App* add_to(CLI::App& app) override {
    auto* punch =
        app.add_subcommand("punch",
                           "Open a direct UDP path to another porthole peer through both NATs (ICE "
                           "checks after a rendezvous)");
    punch->add_option("PEER_ID", peer_, "The other peer's ID (its `porthole id`)")
        ->required()
        ->type_name("");
    punch
        ->add_option("--rendezvous", rendezvous_,
                     "The `porthole serve` both peers meet at, HOST[:PORT] (port 3478)")
        ->required()
        ->type_name("HOST[:PORT]");
    punch->add_option("--port", port_, "Local UDP port of the punch socket (default: any)")
        ->type_name("N");
    punch->add_flag("--no-map", no_map_,
                    "Do not ask the gateway for a port mapping (PCP, NAT-PMP, UPnP)");
    punch
        ->add_option("--wait", wait_,
                     "How long to wait for a peer that is not online yet, seconds (default 5)")
        ->type_name("SECONDS");
    punch
        ->add_option(
            "--exec", exec_,
            "Run CMD with the connected socket as fd 3 (--json: the result is printed first)")
        ->type_name("CMD")
        ->each([this](const std::string&) { exec_given_ = true; });
    turn_.add_to(*punch);
    punch->footer(kPunchFooter);
    return punch;
  }

  std::string finish(Invocation& inv) const override {
    auto peer = parse_peer_id(peer_);
    if (!peer) return peer.error().message;
    inv.punch_peer = *peer;
    auto hp = parse_host_port(rendezvous_, 3478);
    if (!hp) return "--rendezvous " + hp.error().message;
    PunchOptions& p = inv.punch;
    p.rendezvous = rendezvous_;
    if (port_ < 0 || port_ > 65535)
      return fmt::format("--port {}: give a UDP port 1..65535 (or 0 for any)", port_);
    p.port = static_cast<std::uint16_t>(port_);
    p.map = !no_map_;
    if (!std::isfinite(wait_) || wait_ < 0 || wait_ > 3600)
      return fmt::format("--wait {}: give a number of seconds from 0 to 3600", wait_);
    p.wait_for_peer = std::chrono::milliseconds(static_cast<long long>(wait_ * 1000));
    if (exec_given_ && exec_.find_first_not_of(" \t\n") == std::string::npos)
      return "--exec: give a command to run";
    inv.punch_exec = exec_;
    return turn_.finish(p);
  }

 private:
  std::string peer_;
  std::string rendezvous_;
  int port_ = 0;
  bool no_map_ = false;
  double wait_ = 5.0;
  std::string exec_;
  bool exec_given_ = false;
  TurnFlags turn_;
};

json pairs_json(const std::vector<PairReport>& pairs) {
  json out = json::array();
  for (const auto& p : pairs)
    out.push_back({{"local", p.local.to_string()},
                   {"remote", p.remote.to_string()},
                   {"type", p.remote_type},
                   {"outcome", pair_outcome_name(p.outcome)}});
  return out;
}

// SIGINT / SIGTERM: before CMD runs they end the punch (the stop eventfd); while it
// runs they go to CMD, and porthole exits with its status.
volatile sig_atomic_t g_child = 0;
extern "C" void on_punch_signal(int sig) {
  const int saved = errno;
  if (g_child > 0) {
    ::kill(static_cast<pid_t>(g_child), sig);
  } else {
    notify_stop();
  }
  errno = saved;
}

extern "C" char** environ;

// The environment CMD gets: ours without the variables set here, then them. The last
// entry is LISTEN_PID's, filled in by the child (it names the process that reads the
// socket: the child itself, after exec).
struct ChildEnvironment {
  std::vector<std::string> strings;
  std::vector<char*> pointers;
  char listen_pid[32] = "LISTEN_PID=";
};

void make_child_environment(ChildEnvironment& env, const PunchResult& result) {
  static constexpr const char* kOurs[] = {"LISTEN_FDS=", "LISTEN_PID=", "LISTEN_FDNAMES=",
                                          "PORTHOLE_PEER=", "PORTHOLE_PEER_ID="};
  for (char** e = environ; e != nullptr && *e != nullptr; ++e) {
    bool ours = false;
    for (const char* prefix : kOurs)
      ours = ours || std::strncmp(*e, prefix, std::strlen(prefix)) == 0;
    if (!ours) env.strings.emplace_back(*e);
  }
  env.strings.emplace_back("LISTEN_FDS=1");
  env.strings.emplace_back("LISTEN_FDNAMES=porthole");
  env.strings.push_back("PORTHOLE_PEER=" + result.peer.to_string());
  env.strings.push_back("PORTHOLE_PEER_ID=" + result.peer_id.to_string());
  for (auto& s : env.strings) env.pointers.push_back(s.data());
  env.pointers.push_back(env.listen_pid);
  env.pointers.push_back(nullptr);
}

// The child's side of --exec, after fork(): only async-signal-safe calls.
[[noreturn]] void exec_child(int fd, const char* command, ChildEnvironment& env) {
  if (fd != 3) {
    if (::dup2(fd, 3) < 0) ::_exit(127);  // dup2 clears FD_CLOEXEC on the new fd
  } else if (::fcntl(3, F_SETFD, 0) != 0) {
    ::_exit(127);
  }
  // LISTEN_PID=<pid> without stdio: digits backwards, then reversed.
  char digits[24];
  int n = 0;
  for (long pid = static_cast<long>(::getpid()); pid > 0 && n < 23; pid /= 10)
    digits[n++] = static_cast<char>('0' + pid % 10);
  std::size_t at = std::strlen(env.listen_pid);
  while (n > 0) env.listen_pid[at++] = digits[--n];
  env.listen_pid[at] = '\0';
  char sh[] = "/bin/sh";
  char dash_c[] = "-c";
  char* argv[] = {sh, dash_c, const_cast<char*>(command), nullptr};
  ::execve("/bin/sh", argv, env.pointers.data());
  ::_exit(127);
}

// Runs CMD with the socket; CMD's exit status (128 + signal when a signal ended it).
int run_exec(const Invocation& inv, PunchResult& result) {
  ChildEnvironment env;
  make_child_environment(env, result);
  std::fflush(stdout);
  std::fflush(stderr);
  const pid_t pid = ::fork();
  if (pid < 0) {
    fmt::print(stderr, "porthole: fork: {}\n", std::strerror(errno));
    return static_cast<int>(Errc::internal);
  }
  if (pid == 0) exec_child(result.socket.get(), inv.punch_exec.c_str(), env);
  g_child = pid;
  result.socket = OwnedFd();  // CMD owns the path now; porthole sends nothing on it
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  g_child = 0;
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
  return static_cast<int>(Errc::internal);
}

void print_failure(const Error& error, const PunchReport& report, const Invocation& inv) {
  if (inv.json) {
    // The error object every command prints, plus what a punch found out.
    json j = {{"error", error_json(error)}};
    if (error.code == Errc::punch_failed) {
      j["candidates"] = pairs_json(report.pairs);
      j["strategy"] = report.strategy;
      j["packets_sent"] = report.packets_sent;
      j["sockets_opened"] = report.sockets_opened;
      if (!report.hint.empty()) j["hint"] = report.hint;
    }
    fmt::print("{}", dump(j));
  }
  fmt::print(stderr, "{}", render_punch_failure(error, report));
}

int run_punch(const Invocation& inv) {
  PunchOptions options = inv.punch;
  apply_global_options(inv, options);
  if (auto st = fill_turn_credentials(options); !st) {
    print_failure(st.error(), PunchReport{}, inv);
    return static_cast<int>(st.error().code);
  }

  if (install_stop_signals(on_punch_signal) < 0) return static_cast<int>(Errc::internal);
  if (!inv.punch_exec.empty()) {
    // A relayed path serves CMD until it ends: it moves to a direct path when one
    // appears, and says so (on the relay thread: one write each, flushed).
    options.upgrade = true;
    options.on_upgrade = [json_out = inv.json, quiet = inv.verbosity < 0](const PathUpgrade& u) {
      if (json_out) {
        fmt::print("{}", render_upgrade(u, true));
        std::fflush(stdout);
      } else if (!quiet) {
        fmt::print(stderr, "{}", render_upgrade(u, false));
      }
    };
  }

  PunchReport report;
  auto r = punch(options, inv.punch_peer, stop_fd(), &report);
  if (!r) {
    print_failure(r.error(), report, inv);
    return static_cast<int>(r.error().code);
  }
  int code = 0;
  if (!r->report.relay_error.empty() && inv.verbosity >= 0)
    fmt::print(stderr, "porthole: warning: no TURN relay: {}\n", r->report.relay_error);
  if (!inv.punch_exec.empty()) {
    // The result first (--json: on stdout, before anything CMD prints), so a script can
    // read the path and then CMD's own output.
    if (inv.json)
      fmt::print("{}", render_punch(*r, true));
    else if (inv.verbosity > 0)
      fmt::print(stderr, "porthole: {}", render_punch(*r, false));
    std::fflush(stdout);
    code = run_exec(inv, *r);
  } else if (inv.verbosity >= 0 || inv.json) {
    fmt::print("{}", render_punch(*r, inv.json));
  }
  if (r->mapping) {
    auto st = release_punch_mapping(options, *r->mapping);
    if (!st && inv.verbosity >= 0)
      fmt::print(stderr, "porthole: warning: could not remove the gateway mapping of UDP {}: {}\n",
                 r->mapping->internal_port, st.error().message);
  }
  return code;
}

}  // namespace

std::string render_punch(const PunchResult& r, bool as_json) {
  if (as_json)
    return dump(
        {{"path", path_kind_name(r.path)},
         {"local", r.local.to_string()},
         {"local_seen", r.local_seen.to_string()},
         {"peer", r.peer.to_string()},
         {"peer_id", r.peer_id.to_string()},
         {"elapsed_ms", r.elapsed.count()},
         {"strategy", r.report.strategy},
         {"packets_sent", r.report.packets_sent},
         {"sockets_opened", r.report.sockets_opened},
         {"relay_error", r.report.relay_error.empty() ? json(nullptr) : json(r.report.relay_error)},
         {"candidates", pairs_json(r.report.pairs)}});
  // A strategy beyond the plain checks is named, with what it cost.
  std::string how;
  if (r.report.strategy != "direct")
    how = fmt::format(" ({}: {} packets, {} extra sockets)", r.report.strategy,
                      r.report.packets_sent, r.report.sockets_opened);
  return fmt::format("punched {} path: {} -> {} in {} ms{}\n", path_kind_name(r.path),
                     r.local.to_string(), r.peer.to_string(), r.elapsed.count(), how);
}

std::string render_upgrade(const PathUpgrade& u, bool as_json) {
  if (as_json) {
    // One line: an event in the stream after the result object.
    const json j = {{"event", "upgraded"},
                    {"path", "direct"},
                    {"kind", path_kind_name(u.path)},
                    {"peer", u.peer.to_string()},
                    {"local_seen", u.local_seen.to_string()}};
    return j.dump(-1, ' ', false, json::error_handler_t::replace) + "\n";
  }
  return fmt::format("porthole: upgraded to a direct path: {} ({})\n", u.peer.to_string(),
                     path_kind_name(u.path));
}

std::string render_punch_failure(const Error& error, const PunchReport& report) {
  std::string out = fmt::format("porthole: {}\n", error.message);
  for (const auto& p : report.pairs)
    out += fmt::format("porthole:   {} -> {} ({}): {}\n", p.local.to_string(), p.remote.to_string(),
                       p.remote_type, pair_outcome_name(p.outcome));
  if (!report.hint.empty()) out += fmt::format("porthole: hint: {}\n", report.hint);
  return out;
}

CommandSpec punch_command() {
  return {Command::punch, make_options<PunchCommandOptions>, run_punch};
}

void apply_global_options(const Invocation& inv, PunchOptions& punch) {
  punch.stun_servers = inv.options.stun_servers;
  punch.gateway = inv.options.gateway;
  punch.state_dir = inv.options.state_dir;
  punch.upnp_allow_lan = inv.options.upnp_allow_lan;
  punch.upnp_cache = inv.options.upnp_cache;
  punch.log = inv.options.log;
  if (inv.timeout_given) punch.timeout = inv.options.timeout;
}

void TurnFlags::add_to(CLI::App& app) {
  app.add_option("--turn", turn_,
                 "A TURN relay for when no direct path works, turn:HOST[:PORT] (port 3478)")
      ->type_name("turn:HOST[:PORT]");
  app.add_option("--turn-user", user_, "TURN user name (else from $PORTHOLE_TURN)")
      ->type_name("NAME");
  app.add_option("--turn-password", password_,
                 "TURN password (else from $PORTHOLE_TURN; visible to other local users)")
      ->type_name("SECRET");
}

std::string TurnFlags::finish(PunchOptions& p) const {
  if (turn_.empty()) {
    if (!user_.empty() || !password_.empty())
      return "--turn-user and --turn-password need --turn turn:HOST[:PORT]";
    return {};
  }
  std::string server = turn_;
  if (server.rfind("turns:", 0) == 0) return "--turn " + turn_ + ": TURN over TLS is not supported";
  if (server.rfind("turn:", 0) == 0) server = server.substr(5);
  if (server.find('?') != std::string::npos)
    return "--turn " + turn_ + ": no ?transport= (porthole speaks TURN over UDP only)";
  auto thp = parse_host_port(server, 3478);
  if (!thp) return "--turn " + thp.error().message;
  if (user_.empty() != password_.empty())
    return "--turn-user and --turn-password go together (or neither: $PORTHOLE_TURN)";
  p.turn = TurnServer{server, user_, password_};
  return {};
}

// --turn without --turn-user/--turn-password: the file $PORTHOLE_TURN names.
Status fill_turn_credentials(PunchOptions& options) {
  if (!options.turn || !options.turn->user.empty()) return ok_status();
  const char* file = std::getenv("PORTHOLE_TURN");
  if (file == nullptr || *file == '\0')
    return make_error(Errc::usage,
                      "--turn needs --turn-user and --turn-password, or $PORTHOLE_TURN naming a "
                      "credentials file");
  auto creds = load_turn_credentials(file);
  if (!creds) return creds.error();
  options.turn->user = creds->user;
  options.turn->password = creds->password;
  return ok_status();
}

}  // namespace porthole::cli
