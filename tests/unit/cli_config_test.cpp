// Config files (cli/cli_config.hpp, porthole(1) FILES): the order they are read in, the
// command line winning, and a bad file naming its file and line. Also the candidates
// `porthole __complete` offers (dist/bash-completion/porthole).
#include <catch2/catch.hpp>

#include <cstdlib>
#include <fstream>
#include <optional>
#include <string>
#include <sys/stat.h>
#include <unistd.h>

#include "cli_args.hpp"
#include "cli_config.hpp"
#include "parse_command_line.hpp"

using namespace porthole;
using namespace porthole::cli;
using cli::test::parse;

namespace {

// Every test of this binary parses without the machine's own config files; the tests
// here point the variables at files of their own.
const bool hermetic = [] {
  ::setenv("PORTHOLE_SYSTEM_CONFIG", "", 1);
  ::setenv("XDG_CONFIG_HOME", "/nonexistent/porthole-unit-tests", 1);
  return true;
}();

struct ConfigDir {
  std::string dir;
  ConfigDir() {
    char tmpl[] = "/tmp/porthole-config-test-XXXXXX";
    char* d = ::mkdtemp(tmpl);
    REQUIRE(d != nullptr);
    dir = d;
    REQUIRE(::mkdir((dir + "/xdg").c_str(), 0700) == 0);
    REQUIRE(::mkdir((dir + "/xdg/porthole").c_str(), 0700) == 0);
    ::setenv("PORTHOLE_SYSTEM_CONFIG", system().c_str(), 1);
    ::setenv("XDG_CONFIG_HOME", (dir + "/xdg").c_str(), 1);
  }
  ~ConfigDir() {
    ::setenv("PORTHOLE_SYSTEM_CONFIG", "", 1);
    ::setenv("XDG_CONFIG_HOME", "/nonexistent/porthole-unit-tests", 1);
    const int rc = std::system(("rm -rf '" + dir + "'").c_str());
    (void)rc;
  }
  std::string system() const { return dir + "/system.conf"; }
  std::string user() const { return dir + "/xdg/porthole/porthole.conf"; }
  std::string other() const { return dir + "/other.conf"; }
  static void write(const std::string& path, const std::string& text) {
    std::ofstream(path) << text;
  }
};

}  // namespace

TEST_CASE("config: no file, no change", "[cli][config]") {
  REQUIRE(hermetic);
  CHECK(default_config_files().empty());
  auto r = parse({"open", "8080"});
  REQUIRE(r.invocation);
  CHECK(r.invocation->open.lifetime == 7200);
  CHECK(r.invocation->options.timeout == std::chrono::milliseconds(5000));
}

TEST_CASE("config: system, then user, then --config, and the command line over all",
          "[cli][config]") {
  ConfigDir d;
  ConfigDir::write(d.system(), "timeout = 2\ngateway = \"192.168.1.1\"\n[open]\nlifetime = 100\n");
  CHECK(default_config_files() == std::vector<std::string>{d.system()});
  auto r = parse({"open", "8080"});
  REQUIRE(r.invocation);
  CHECK(r.invocation->options.timeout == std::chrono::milliseconds(2000));
  REQUIRE(r.invocation->options.gateway);
  CHECK(r.invocation->options.gateway->to_string() == "192.168.1.1");
  CHECK(r.invocation->open.lifetime == 100);

  // The user's file overrides the system one, key by key.
  ConfigDir::write(d.user(), "# mine\n[open]\nlifetime = 200\nvia = \"natpmp\"\n");
  CHECK(default_config_files() == std::vector<std::string>{d.system(), d.user()});
  r = parse({"open", "8080"});
  REQUIRE(r.invocation);
  CHECK(r.invocation->open.lifetime == 200);
  CHECK(r.invocation->open.via == Via::natpmp);
  CHECK(r.invocation->options.timeout == std::chrono::milliseconds(2000));

  // --config over both; the command line over every file.
  ConfigDir::write(d.other(), "[open]\nlifetime = 300\n");
  r = parse({"open", "8080", "--config", d.other()});
  REQUIRE(r.invocation);
  CHECK(r.invocation->open.lifetime == 300);
  CHECK(r.invocation->open.via == Via::natpmp);
  r = parse({"--config", d.other(), "open", "8080", "--lifetime", "400", "--timeout", "1"});
  REQUIRE(r.invocation);
  CHECK(r.invocation->open.lifetime == 400);
  CHECK(r.invocation->options.timeout == std::chrono::milliseconds(1000));

  // A section sets only its command's options: hold keeps its own default.
  r = parse({"hold", "8080"});
  REQUIRE(r.invocation);
  CHECK(r.invocation->options.timeout == std::chrono::milliseconds(2000));
}

TEST_CASE("config: flags and lists", "[cli][config]") {
  ConfigDir d;
  ConfigDir::write(d.user(),
                   "json = true\nstun = [\"198.51.100.12\", \"198.51.100.13:3479\"]\n"
                   "[open]\nverify = true\nstrict-port = true\n");
  auto r = parse({"open", "8080"});
  REQUIRE(r.invocation);
  CHECK(r.invocation->json);
  CHECK(r.invocation->verify);
  CHECK(r.invocation->open.strict_port);
  CHECK(r.invocation->options.stun_servers ==
        std::vector<std::string>{"198.51.100.12", "198.51.100.13:3479"});
}

TEST_CASE("config: a bad file is exit 2 naming the file and line", "[cli][config]") {
  ConfigDir d;
  SECTION("unknown key at the top") {
    ConfigDir::write(d.user(), "timeout = 2\n\nlifetime = 5\n");
    auto r = parse({"open", "8080"});
    CHECK_FALSE(r.invocation);
    CHECK(r.exit_code == 2);
    CHECK(r.err == d.user() +
                       ":3: unknown key 'lifetime': no global option --lifetime (a command's own "
                       "options go in its [section], e.g. [open])");
  }
  SECTION("unknown key in a section") {
    ConfigDir::write(d.system(), "[open]\nlifetime = 5\nlifetme = 6\n");
    auto r = parse({"probe"});
    CHECK(r.exit_code == 2);
    CHECK(r.err == d.system() + ":3: unknown key 'lifetme': porthole open has no --lifetme");
  }
  SECTION("a section that is no command") {
    ConfigDir::write(d.user(), "[opne]\nlifetime = 5\n");
    auto r = parse({"probe"});
    CHECK(r.exit_code == 2);
    CHECK(r.err == d.user() + ":1: unknown section [opne]: no command 'opne'");
  }
  SECTION("a line that is not key = value") {
    ConfigDir::write(d.user(), "timeout = 2\nthis is not toml\n");
    auto r = parse({"probe"});
    CHECK(r.exit_code == 2);
    CHECK_THAT(r.err, Catch::StartsWith(d.user() + ":2: unknown key 'this is not toml'"));
  }
  SECTION("a value CLI11 cannot convert") {
    ConfigDir::write(d.user(), "\n\ntimeout = soon\n");
    auto r = parse({"probe"});
    CHECK(r.exit_code == 2);
    CHECK_THAT(r.err, Catch::StartsWith(d.user() + ":3: "));
    CHECK_THAT(r.err, Catch::Contains("--timeout"));
  }
  SECTION("a value porthole refuses") {
    ConfigDir::write(d.user(), "[open]\nvia = \"carrier-pigeon\"\n");
    auto r = parse({"open", "8080"});
    CHECK(r.exit_code == 2);
    CHECK_THAT(r.err, Catch::StartsWith(d.user() + ":2: --via: unknown protocol 'carrier-pigeon'"));
    // Typed on the command line, the same error is the command line's.
    r = parse({"open", "8080", "--via", "carrier-pigeon"});
    CHECK_THAT(r.err, Catch::StartsWith("--via: unknown protocol"));
  }
  SECTION("the file read last is blamed for a key set in several") {
    ConfigDir::write(d.system(), "timeout = 99999\n");
    ConfigDir::write(d.user(), "\ntimeout = 99998\n");
    auto r = parse({"probe"});
    CHECK(r.exit_code == 2);
    CHECK_THAT(r.err, Catch::StartsWith(d.user() + ":2: --timeout 99998"));
  }
  SECTION("a --config file that is missing") {
    auto r = parse({"probe", "--config", d.dir + "/absent.conf"});
    CHECK(r.exit_code == 2);
    CHECK_THAT(r.err, Catch::Contains(d.dir + "/absent.conf"));
  }
  SECTION("--help and --version answer whatever the files say") {
    ConfigDir::write(d.user(), "nonsense = 1\n");
    CHECK(parse({"--version"}).exit_code == 0);
    CHECK(parse({"open", "--help"}).exit_code == 0);
  }
}

TEST_CASE("locate_config_key: sections, dotted keys, the last file first", "[cli][config]") {
  ConfigDir d;
  ConfigDir::write(d.system(), "[hold]\nlifetime = 1\n");
  ConfigDir::write(d.user(), "gateway = \"x\"\n[[open]]\n  lifetime = 2 # two\n");
  ConfigLocation where;
  REQUIRE(locate_config_key({d.system(), d.user()}, "open.lifetime", "", where));
  CHECK(where.file == d.user());
  CHECK(where.line == 3);
  CHECK(where.section == "open");
  REQUIRE(locate_config_key({d.system(), d.user()}, "lifetime", "hold", where));
  CHECK(where.file == d.system());
  CHECK(where.line == 2);
  REQUIRE(locate_config_key({d.system(), d.user()}, "gateway", "hold", where));
  CHECK(where.line == 1);
  CHECK(where.section.empty());
  CHECK_FALSE(locate_config_key({d.system(), d.user()}, "timeout", "open", where));
}

TEST_CASE("__complete: commands, options, values from the parser's own tables", "[cli][complete]") {
  auto words = [](std::vector<std::string> args) {
    args.insert(args.begin(), "__complete");
    auto r = parse(args);
    CHECK(r.exit_code == 0);
    CHECK_FALSE(r.invocation);
    return r.out;
  };
  auto first = words({""});
  for (const char* c : {"probe\n", "open\n", "close\n", "hold\n", "punch\n", "serve\n"})
    CHECK_THAT(first, Catch::Contains(c));
  CHECK_THAT(words({"open", "--"}), Catch::Contains("--lifetime\n"));
  CHECK_THAT(words({"open", "--"}), Catch::Contains("--gateway\n"));  // global ones too
  CHECK_THAT(words({"close", "--"}), Catch::Contains("--all\n"));
  CHECK_THAT(words({"--json", "close", "--"}), Catch::Contains("--via\n"));
  CHECK(words({"open", "8080", "--via", ""}) == "auto\npcp\nnatpmp\nupnp\n");
  CHECK(words({"--timeout", "3", "close", "--via", "n"}) == "auto\npcp\nnatpmp\nupnp\n");
  CHECK(words({"--state-dir", ""}) == "@dirs\n");
  CHECK(words({"probe", "--config", ""}) == "@files\n");
  // After a value-taking option's value, commands again; within a command, no command.
  CHECK_THAT(words({"--timeout", "3", ""}), Catch::Contains("open\n"));
  CHECK(words({"open", ""}).empty());
}
