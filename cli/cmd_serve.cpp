// `porthole serve`: the public-side server, STUN (RFC 8489, RFC 5780), the rendezvous
// of `porthole punch` (docs/rendezvous.md) and the TCP connect-back check of
// `open --verify`, in the foreground until SIGTERM or SIGINT; log lines on stderr, or
// with --json one JSON object per line on stdout (serve_log_line).
#include <unistd.h>

#include <csignal>
#include <cstdint>
#include <ctime>

#include <fmt/format.h>

#include "cli_output.hpp"
#include "cmd_serve.hpp"
#include "command.hpp"
#include "stop_signal.hpp"

namespace porthole::cli {
namespace {

// --listen IP[:PORT] and --alt-listen IP2[:PORT2]: IPv4 literals of this host.
Status parse_serve_addresses(const std::string& listen, const std::string& alt, ServeOptions& out) {
  auto a = parse_host_port(listen, 3478);
  if (!a) return make_error(Errc::usage, "--listen " + a.error().message);
  auto ip = IpAddress::parse(a->host);
  if (!ip || !ip->is_v4())
    return make_error(Errc::usage, fmt::format("--listen '{}' is not an IPv4 address of this "
                                               "host",
                                               a->host));
  out.listen_ip = *ip;
  out.listen_port = a->port;
  if (alt.empty()) return ok_status();
  auto b = parse_host_port(alt, 3479);
  if (!b) return make_error(Errc::usage, "--alt-listen " + b.error().message);
  auto alt_ip = IpAddress::parse(b->host);
  if (!alt_ip || !alt_ip->is_v4())
    return make_error(Errc::usage, fmt::format("--alt-listen '{}' is not an IPv4 address of "
                                               "this host",
                                               b->host));
  out.alt_ip = *alt_ip;
  out.alt_port = b->port;
  return ok_status();
}

std::string utc_now() {
  const std::time_t t = std::time(nullptr);
  std::tm tm{};
  ::gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

class ServeCommandOptions : public CommandOptions {
 public:
  CLI::App* add_to(CLI::App& app) override {
    auto* serve = app.add_subcommand("serve",
                                     "Run the public-side server: STUN (RFC 8489/5780), "
                                     "the rendezvous of 'punch' and the TCP "
                                     "connect-back check of --verify");
    serve->add_option("--listen", listen_, "Address to serve on, IP[:PORT] (port 3478)")
        ->required()
        ->type_name("IP[:PORT]");
    serve
        ->add_option("--alt-listen", alt_listen_,
                     "Second address for RFC 5780 CHANGE-REQUEST, IP2[:PORT2] (port 3479)")
        ->type_name("IP2[:PORT2]");
    serve->add_flag("--no-rendezvous", no_rendezvous_,
                    "Do not run the rendezvous of 'porthole punch' on the STUN UDP port");
    serve
        ->add_option("--rendezvous-max-peers", max_peers_,
                     "Peers the rendezvous keeps online at once (default 10000)")
        ->type_name("N")
        ->check(CLI::Range(1, 1000000));
    return serve;
  }
  std::string finish(Invocation& inv) const override {
    auto st = parse_serve_addresses(listen_, alt_listen_, inv.serve);
    inv.serve.rendezvous = !no_rendezvous_;
    inv.serve.rendezvous_max_peers = max_peers_;
    return st ? std::string() : st.error().message;
  }

 private:
  std::string listen_;
  std::string alt_listen_;
  bool no_rendezvous_ = false;
  std::size_t max_peers_ = 10000;
};

// One log line to its stream: the JSON lines are the output of `serve --json`.
void print_log(bool as_json, LogLevel level, std::string_view text) {
  const std::string line = serve_log_line(utc_now(), level, text, as_json);
  if (as_json) {
    fmt::print("{}", line);
    std::fflush(stdout);  // a reader of the pipe gets each event as it happens
  } else {
    fmt::print(stderr, "{}", line);
  }
}

int run_serve(const Invocation& inv) {
  ServeOptions options = inv.serve;
  const int verbosity = inv.verbosity;
  const bool as_json = inv.json;
  // One line per notable event (start, each connect-back); -v adds every request,
  // -q keeps only errors.
  options.log = [verbosity, as_json](LogLevel level, std::string_view text) {
    if (verbosity < 0 || (level == LogLevel::debug && verbosity < 1)) return;
    print_log(as_json, level, text);
  };
  // SIGTERM / SIGINT notify the stop eventfd, which serve()'s reactor watches.
  const int stop = install_stop_signals();
  if (stop < 0) return static_cast<int>(Errc::internal);
  auto st = serve(options, stop);
  if (!st) return fail(st.error(), as_json);
  if (verbosity >= 0) print_log(as_json, LogLevel::info, "stopped");
  return 0;
}

}  // namespace

std::string serve_log_line(std::string_view time, LogLevel level, std::string_view text,
                           bool as_json) {
  if (!as_json) return fmt::format("{} porthole serve: {}\n", time, text);
  const char* name = level == LogLevel::debug  ? "debug"
                     : level == LogLevel::info ? "info"
                                               : "warning";
  // One line per object: dump() without indentation; text that is not UTF-8 (a peer's
  // bytes quoted in a message) is replaced rather than thrown on.
  return nlohmann::json{{"time", time}, {"level", name}, {"message", text}}.dump(
             -1, ' ', false, nlohmann::json::error_handler_t::replace) +
         "\n";
}

CommandSpec serve_command() {
  return {Command::serve, make_options<ServeCommandOptions>, run_serve};
}

}  // namespace porthole::cli
