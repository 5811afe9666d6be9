// The command line of `serve` and `open --verify`, the verified-open output, and
// porthole::serve's checks of its addresses (loopback only).
#include <catch2/catch.hpp>

#include <sys/eventfd.h>
#include <unistd.h>

#include <atomic>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "cli_args.hpp"
#include "parse_command_line.hpp"
#include "cmd_open.hpp"
#include "cmd_serve.hpp"
#include "ip_literal.hpp"

using porthole::test::ip;

using namespace porthole;
using namespace porthole::cli;

using cli::test::parse;

namespace {

OpenResult opened() {
  OpenResult r;
  r.mapping = {
      Protocol::pcp, Transport::udp, ip("192.168.1.100"), 41000, ip("203.0.113.2"), 41000, 7200, 0,
      "porthole"};
  return r;
}

}  // namespace

TEST_CASE("serve: --listen and --alt-listen with default ports", "[cli][serve]") {
  auto r = parse({"serve", "--listen", "198.51.100.12", "--alt-listen", "198.51.100.13"});
  REQUIRE(r.invocation);
  CHECK(r.invocation->command == Command::serve);
  CHECK(r.invocation->serve.listen_ip == ip("198.51.100.12"));
  CHECK(r.invocation->serve.listen_port == 3478);
  REQUIRE(r.invocation->serve.alt_ip);
  CHECK(*r.invocation->serve.alt_ip == ip("198.51.100.13"));
  CHECK(r.invocation->serve.alt_port == 3479);

  r = parse({"serve", "--listen", "198.51.100.12:5000", "-v"});
  REQUIRE(r.invocation);
  CHECK(r.invocation->serve.listen_port == 5000);
  CHECK_FALSE(r.invocation->serve.alt_ip);
  CHECK(r.invocation->verbosity == 1);
}

TEST_CASE("serve: the rendezvous is on unless --no-rendezvous, and its table size",
          "[cli][serve]") {
  auto r = parse({"serve", "--listen", "198.51.100.12"});
  REQUIRE(r.invocation);
  CHECK(r.invocation->serve.rendezvous);
  CHECK(r.invocation->serve.rendezvous_max_peers == 10000);
  r = parse(
      {"serve", "--listen", "198.51.100.12", "--no-rendezvous", "--rendezvous-max-peers", "50"});
  REQUIRE(r.invocation);
  CHECK_FALSE(r.invocation->serve.rendezvous);
  CHECK(r.invocation->serve.rendezvous_max_peers == 50);
  for (const char* bad : {"0", "-1", "many", "2000000"}) {
    INFO(bad);
    r = parse({"serve", "--listen", "198.51.100.12", "--rendezvous-max-peers", bad});
    CHECK_FALSE(r.invocation);
    CHECK(r.exit_code == 2);
  }
}

TEST_CASE("serve: bad addresses are usage errors", "[cli][serve]") {
  for (auto args :
       std::vector<std::vector<std::string>>{{"serve"},
                                             {"serve", "--listen", "stun.example.net"},
                                             {"serve", "--listen", "198.51.100.12:0"},
                                             {"serve", "--listen", "198.51.100.12:70000"},
                                             {"serve", "--listen", "198.51.100.12", "--alt-listen",
                                              "nowhere"},
                                             {"serve", "--listen", ""}}) {
    auto r = parse(args);
    INFO(args.back());
    CHECK_FALSE(r.invocation);
    CHECK(r.exit_code == 2);
    CHECK_FALSE(r.err.empty());
  }
}

TEST_CASE("open --verify sets the flag, help names serve and exit 6", "[cli][serve]") {
  auto r = parse({"open", "8080", "--verify", "--stun", "198.51.100.12"});
  REQUIRE(r.invocation);
  CHECK(r.invocation->verify);
  CHECK(r.invocation->options.stun_servers == std::vector<std::string>{"198.51.100.12"});
  CHECK_FALSE(parse({"open", "8080"}).invocation->verify);
  auto help = parse({"--help"});
  CHECK(help.out.find("serve") != std::string::npos);
  CHECK(help.out.find("6 not verified") != std::string::npos);
  CHECK(parse({"open", "--help"}).out.find("--verify") != std::string::npos);
}

TEST_CASE("verified open: JSON says verified and how", "[cli][serve]") {
  Verification v;
  v.verified = true;
  v.method = "stun-change-request";
  v.server = "198.51.100.12:3478";
  v.observed = "203.0.113.2:41000";
  v.proof = "it arrived";
  auto j = nlohmann::json::parse(render_open_verified(opened(), v, true));
  CHECK(j["external_port"] == 41000);
  CHECK(j["verified"] == true);
  CHECK(j["verification"]["method"] == "stun-change-request");
  CHECK(j["verification"]["observed"] == "203.0.113.2:41000");
  CHECK(j["verification"]["server"] == "198.51.100.12:3478");
  CHECK(j["verification"]["proof"] == "it arrived");
  CHECK(render_open_verified(opened(), v, false).find("verified (stun-change-request") !=
        std::string::npos);

  Verification no;
  no.server = "198.51.100.12:3478";
  no.explanation = "the outer one still blocks";
  j = nlohmann::json::parse(render_open_verified(opened(), no, true));
  CHECK(j["verified"] == false);
  CHECK(j["verification"]["method"].is_null());
  CHECK(j["verification"]["observed"].is_null());
  CHECK(j["verification"]["explanation"] == "the outer one still blocks");
  CHECK(render_open_verified(opened(), no, false).find("NOT verified: the outer one") !=
        std::string::npos);

  Result<Verification> failed = make_error(Errc::internal, "socket: out of files");
  j = nlohmann::json::parse(render_open_verified(opened(), failed, true));
  CHECK(j["verified"] == false);
  CHECK(j["verification"]["error"] == "socket: out of files");
}

TEST_CASE("porthole::serve: binds, stops, refuses inconsistent addresses", "[serve]") {
  // Already asked to stop: bind, then return at once.
  const int stop = ::eventfd(1, EFD_CLOEXEC);
  REQUIRE(stop >= 0);
  CHECK(serve({ip("127.0.0.1"), 0, std::nullopt, 0, {}}, stop).ok());
  auto same = serve({ip("127.0.0.1"), 0, ip("127.0.0.1"), 0, {}}, stop);
  REQUIRE_FALSE(same.ok());
  CHECK(same.error().code == Errc::usage);
  auto bad = serve({ip("::1"), 3478, std::nullopt, 0, {}}, stop);  // not IPv4
  REQUIRE_FALSE(bad.ok());
  CHECK(bad.error().code == Errc::usage);
  ::close(stop);
}

TEST_CASE("porthole::verify: bad input is refused before anything is sent", "[serve]") {
  Options o;
  o.stun_servers = {"198.51.100.12:99999"};
  Mapping m = opened().mapping;
  auto r = verify(o, m);
  REQUIRE_FALSE(r.ok());
  CHECK(r.error().code == Errc::usage);
  m.external_port = 0;
  o.stun_servers = {"127.0.0.1"};
  r = verify(o, m);
  REQUIRE_FALSE(r.ok());
  CHECK(r.error().code == Errc::usage);
}

TEST_CASE("serve --json: each log line is one JSON object with the text log's content",
          "[cli][serve]") {
  CHECK(serve_log_line("2026-12-01T15:00:00Z", LogLevel::info, "serving on 198.51.100.12:3478",
                       false) ==
        "2026-12-01T15:00:00Z porthole serve: serving on 198.51.100.12:3478\n");
  const std::string line = serve_log_line("2026-12-01T15:00:00Z", LogLevel::debug,
                                          "a \"quoted\"\nword \xff", true);
  REQUIRE(line.back() == '\n');
  CHECK(line.find('\n') == line.size() - 1);  // one line, whatever the text holds
  auto j = nlohmann::json::parse(line);
  CHECK(j["time"] == "2026-12-01T15:00:00Z");
  CHECK(j["level"] == "debug");
  CHECK(j["message"] == "a \"quoted\"\nword \xef\xbf\xbd");  // invalid UTF-8 replaced
  CHECK(nlohmann::json::parse(serve_log_line("t", LogLevel::warning, "w", true))["level"] ==
        "warning");
}
