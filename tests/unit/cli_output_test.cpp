// What the CLI prints of router text (a description with 0xff, ESC and newline), the
// list's completeness and exit status, and where a bad --description is refused.
#include <catch2/catch.hpp>

#include <algorithm>
#include <string>

#include <nlohmann/json.hpp>
#include <porthole/hold.hpp>
#include <porthole/porthole.hpp>
#include <porthole/text.hpp>

#include "cli_output.hpp"
#include "cmd_list.hpp"
#include "parse_command_line.hpp"
#include "ip_literal.hpp"
#include "tunnel_output.hpp"

using porthole::test::ip;

using namespace porthole;

namespace {

ListResult hostile_table() {
  ListResult r;
  ListedMapping lm;
  lm.mapping.protocol = Protocol::upnp;
  lm.mapping.internal_ip = ip("192.168.1.101");
  lm.mapping.internal_port = 4000;
  lm.mapping.external_port = 4000;
  lm.mapping.external_ip = ip("203.0.113.2");
  lm.mapping.description =
      "a\xff"
      "b\x1b[2Jc\nd";
  r.mappings.push_back(lm);
  return r;
}

}  // namespace

TEST_CASE("list text output escapes a router description with 0xff, ESC and newline",
          "[cli][text]") {
  std::string text = cli::render_list(hostile_table(), false);
  CHECK(text.find("a\\xffb\\x1b[2Jc\\nd") != std::string::npos);
  CHECK(text.find('\x1b') == std::string::npos);
  CHECK(text.find('\xff') == std::string::npos);
  // Header, one row, footer: the newline in the description made no line of its own.
  CHECK(std::count(text.begin(), text.end(), '\n') == 3);
  CHECK(text.find("incomplete") == std::string::npos);
}

TEST_CASE("list JSON output stays valid with a router description of 0xff, ESC, newline",
          "[cli][text]") {
  std::string out = cli::render_list(hostile_table(), true);
  auto j = nlohmann::json::parse(out);  // throws, failing the test, if not valid JSON
  CHECK(j["mappings"][0]["description"] ==
        "a\xef\xbf\xbd"
        "b\x1b[2Jc\nd");
  CHECK(j["complete"] == true);
  CHECK(out.find('\x1b') == std::string::npos);  // written as \u001b
}

TEST_CASE("list shows a router's internal client that is no IP address as the router sent it",
          "[cli][text]") {
  ListResult r = hostile_table();
  r.mappings[0].mapping.internal_ip = IpAddress{};
  r.mappings[0].internal_client_text = "nas\x1b.lan";
  const std::string text = cli::render_list(r, false);
  CHECK(text.find("nas\\x1b.lan:4000") != std::string::npos);
  CHECK(text.find("0.0.0.0:4000") == std::string::npos);
  CHECK(nlohmann::json::parse(cli::render_list(r, true))["mappings"][0]["internal_ip"] ==
        "nas\x1b.lan");
}

TEST_CASE("list output says when the table is incomplete", "[cli][text]") {
  ListResult r = hostile_table();
  r.complete = false;
  r.incomplete = make_error(Errc::timeout, "the deadline ran out");
  CHECK(nlohmann::json::parse(cli::render_list(r, true))["complete"] == false);
  CHECK(cli::render_list(r, false).find("incomplete") != std::string::npos);
  r.mappings.clear();
  CHECK(cli::render_list(r, false).find("incomplete") != std::string::npos);
}

TEST_CASE("a bad --description is a usage error for open and hold (exit 2)", "[cli][text]") {
  for (const char* bad : {"\xff", "a\x1b[31m", "two\nlines"}) {
    INFO(bad);
    for (const char* command : {"open", "hold"}) {
      auto r = cli::test::parse({command, "8080", "--description", bad});
      CHECK_FALSE(r.invocation);
      CHECK(r.exit_code == 2);
      CHECK(r.err.find("--description") != std::string::npos);
    }
  }
  auto ok = cli::test::parse({"open", "8080", "--description", "caf\xc3\xa9"});
  REQUIRE(ok.invocation);
  CHECK(ok.invocation->open.description == "caf\xc3\xa9");
}

TEST_CASE("the library refuses a bad description before it sends anything", "[text]") {
  Options options;
  options.gateway = ip("127.0.0.1");
  OpenRequest req;
  req.port.port = 8080;
  req.description = "\xff";
  auto opened = open(options, req);
  REQUIRE_FALSE(opened.ok());
  CHECK(opened.error().code == Errc::usage);
  CHECK(opened.error().message.find("UTF-8") != std::string::npos);

  HoldRequest hold_req;
  req.description = "a\nb";
  hold_req.mappings.push_back(req);
  auto held = hold(
      options, hold_req, [](const HoldEvent&) {}, -1);
  REQUIRE_FALSE(held.ok());
  CHECK(held.error().code == Errc::usage);
  CHECK(held.error().message.find("control character") != std::string::npos);
}

TEST_CASE("list exits 0 for a whole table, 5 when the deadline cut it short", "[cli]") {
  ListResult r;
  CHECK(cli::list_exit_status(r) == 0);
  r.complete = false;
  r.incomplete = make_error(Errc::timeout, "the deadline ran out after 6 rows");
  CHECK(cli::list_exit_status(r) == 5);
}

TEST_CASE("tunnel events name the strategy of the path when it is known", "[cli][json]") {
  TunnelEvent e;
  e.type = TunnelEventType::connected;
  e.peer_id = "peer";
  e.path = "peer-reflexive";
  e.peer = Endpoint{IpAddress::v4({203, 0, 113, 9}), 40000};
  e.strategy = "birthday";
  auto j = nlohmann::json::parse(cli::render_tunnel_event(e, true));
  CHECK(j["event"] == "connected");
  CHECK(j["path"] == "peer-reflexive");
  CHECK(j["strategy"] == "birthday");
  CHECK(cli::render_tunnel_event(e, false).find("path peer-reflexive strategy birthday") !=
        std::string::npos);
  e.type = TunnelEventType::peer_connected;
  CHECK(nlohmann::json::parse(cli::render_tunnel_event(e, true))["strategy"] == "birthday");
  // Not known (a library caller's own events): no field, no word.
  e.strategy.clear();
  CHECK_FALSE(nlohmann::json::parse(cli::render_tunnel_event(e, true)).contains("strategy"));
  CHECK(cli::render_tunnel_event(e, false).find("strategy") == std::string::npos);
}
