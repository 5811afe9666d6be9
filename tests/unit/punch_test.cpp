// The pure parts of `porthole punch`: candidate building (core/candidate_gathering),
// the glare rule and the hint (core/punch_rules), the command line and the output
// (cli/cmd_punch).
#include <catch2/catch.hpp>

#include <algorithm>
#include <array>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "cli_args.hpp"
#include "cmd_punch.hpp"
#include "core/candidate_gathering.hpp"
#include "core/punch_rules.hpp"
#include "parse_command_line.hpp"

using namespace porthole;
using namespace porthole::detail;
using cli::test::parse;

namespace {

IpAddress ip(const char* text) { return IpAddress::parse(text).value(); }
Endpoint ep(const char* text) { return Endpoint::parse(text).value(); }

PeerId key_id(std::uint8_t first) {
  PeerId id;
  id.key.fill(0x11);
  id.key[0] = first;
  return id;
}

}  // namespace

TEST_CASE("host candidates: IPv4, up, not loopback or link-local, each once", "[punch]") {
  std::vector<InterfaceAddress> list = {
      {"lo", ip("127.0.0.1"), true, true},
      {"eth0", ip("10.0.1.10"), true, false},
      {"eth0", ip("fe80::1"), true, false},
      {"eth1", ip("169.254.3.4"), true, false},
      {"eth2", ip("192.168.5.2"), false, false},  // down
      {"eth3", ip("172.16.0.9"), true, false},
      {"eth3", ip("10.0.1.10"), true, false},  // the same address twice
      {"eth4", ip("2001:db8::5"), true, false},
  };
  auto hosts = host_addresses(list);
  REQUIRE(hosts.size() == 2);
  CHECK(hosts[0] == ip("10.0.1.10"));
  CHECK(hosts[1] == ip("172.16.0.9"));
}

TEST_CASE("candidate list: priorities by type, foundations, no duplicate address", "[punch]") {
  CandidateList list;
  std::vector<IpAddress> hosts = {ip("10.0.1.10"), ip("172.16.0.9")};
  list.add_host(hosts, 40000);
  list.add_server_reflexive(ep("203.0.113.5:40000"));
  list.add_server_reflexive(ep("10.0.1.10:40000"));  // no NAT: the host candidate already
  list.add_mapped(ep("203.0.113.5:40001"));
  auto c = list.candidates();
  REQUIRE(c.size() == 4);
  CHECK(c[0].type == ice::CandidateType::host);
  CHECK(c[0].address == ep("10.0.1.10:40000"));
  CHECK(c[0].priority == ice::candidate_priority(ice::CandidateType::host, 65535));
  CHECK(c[1].address == ep("172.16.0.9:40000"));
  CHECK(c[1].priority == ice::candidate_priority(ice::CandidateType::host, 65534));
  CHECK(c[2].type == ice::CandidateType::mapped);
  CHECK(c[3].type == ice::CandidateType::server_reflexive);
  CHECK(c[0].foundation != c[1].foundation);
  CHECK(c[2].foundation != c[3].foundation);
  CHECK(list.type_of(ep("203.0.113.5:40001")) == ice::CandidateType::mapped);
  CHECK_FALSE(list.contains(ep("203.0.113.5:40002")));
  // Every candidate passes the description codec's checks.
  rendezvous::Description d;
  d.sender = key_id(1);
  d.receiver = key_id(2);
  d.ufrag = "abcd";
  d.password = "abcdefghijklmnopqrstuv";
  d.candidates = c;
  CHECK(rendezvous::encode_description(d).ok());
  CHECK(list.candidates(2).size() == 2);
  std::vector<std::string> foundations;
  for (const auto& x : c) foundations.push_back(x.foundation);
  std::sort(foundations.begin(), foundations.end());
  CHECK(std::adjacent_find(foundations.begin(), foundations.end()) == foundations.end());
}

TEST_CASE("a gateway mapping at the address STUN saw makes that candidate mapped", "[punch]") {
  CandidateList list;
  list.add_server_reflexive(ep("203.0.113.5:40000"));
  list.add_server_reflexive(ep("203.0.113.5:40009"));
  list.add_mapped(ep("203.0.113.5:40000"));
  auto c = list.candidates();
  REQUIRE(c.size() == 2);
  CHECK(c[0].type == ice::CandidateType::mapped);
  CHECK(c[0].address == ep("203.0.113.5:40000"));
  CHECK(c[1].type == ice::CandidateType::server_reflexive);
  CHECK(c[0].foundation != c[1].foundation);
}

TEST_CASE("NAT mapping from what the servers saw", "[punch]") {
  using rendezvous::NatMapping;
  std::vector<IpAddress> hosts = {ip("10.0.1.10")};
  std::vector<ReflexiveObservation> none;
  CHECK(nat_mapping_from(none, hosts) == NatMapping::unknown);
  std::vector<ReflexiveObservation> one = {{ep("198.51.100.12:3478"), ep("203.0.113.5:40000")}};
  CHECK(nat_mapping_from(one, hosts) == NatMapping::unknown);
  std::vector<ReflexiveObservation> same = {{ep("198.51.100.12:3478"), ep("203.0.113.5:40000")},
                                            {ep("198.51.100.13:3478"), ep("203.0.113.5:40000")}};
  CHECK(nat_mapping_from(same, hosts) == NatMapping::endpoint_independent);
  std::vector<ReflexiveObservation> differ = {{ep("198.51.100.12:3478"), ep("203.0.113.5:40000")},
                                              {ep("198.51.100.12:3479"), ep("203.0.113.5:40007")}};
  CHECK(nat_mapping_from(differ, hosts) == NatMapping::address_and_port_dependent);
  // One server address, two ports, one mapping: an address-dependent NAT would do that
  // too, so nothing is proven.
  std::vector<ReflexiveObservation> one_ip = {{ep("198.51.100.12:3478"), ep("203.0.113.5:40000")},
                                              {ep("198.51.100.12:3479"), ep("203.0.113.5:40000")}};
  CHECK(nat_mapping_from(one_ip, hosts) == NatMapping::unknown);
  std::vector<ReflexiveObservation> open = {{ep("198.51.100.12:3478"), ep("10.0.1.10:40000")}};
  CHECK(nat_mapping_from(open, hosts) == NatMapping::endpoint_independent);
  CHECK(std::string(nat_mapping_name(NatMapping::address_and_port_dependent)) ==
        "address-and-port-dependent");
}

TEST_CASE("glare: exactly one offer wins, the smaller ID's, on both sides", "[punch]") {
  PeerId a = key_id(0x10);
  PeerId b = key_id(0x20);
  CHECK(own_offer_wins(a, b));
  CHECK_FALSE(own_offer_wins(b, a));
  PeerId c = a;
  c.key[31] = 0x12;  // differs only in the last byte
  CHECK(own_offer_wins(a, c) != own_offer_wins(c, a));
}

TEST_CASE("the hint names the side behind symmetric NAT", "[punch]") {
  using rendezvous::NatMapping;
  CHECK(punch_hint(NatMapping::endpoint_independent, NatMapping::address_and_port_dependent) ==
        "peer behind symmetric NAT: needs port prediction or a relay");
  CHECK(punch_hint(NatMapping::address_dependent, NatMapping::endpoint_independent)
            .find("this host is behind symmetric NAT") != std::string::npos);
  CHECK(punch_hint(NatMapping::address_and_port_dependent, NatMapping::address_dependent)
            .find("both sides") != std::string::npos);
  CHECK(punch_hint(NatMapping::endpoint_independent, NatMapping::unknown).empty());
  CHECK(punch_hint(NatMapping::unknown, std::nullopt).find("no description") != std::string::npos);
}

TEST_CASE("punch command line: options and defaults", "[cli][punch]") {
  const std::string id = key_id(0x42).to_string();
  auto r = parse({"punch", id, "--rendezvous", "198.51.100.12:3479", "--port", "40000", "--no-map",
                  "--wait", "2.5", "--exec", "cat <&3", "--stun", "198.51.100.13"});
  REQUIRE(r.invocation);
  const auto& inv = *r.invocation;
  CHECK(inv.command == cli::Command::punch);
  CHECK(inv.punch_peer == key_id(0x42));
  CHECK(inv.punch.rendezvous == "198.51.100.12:3479");
  CHECK(inv.punch.port == 40000);
  CHECK_FALSE(inv.punch.map);
  CHECK(inv.punch.wait_for_peer == std::chrono::milliseconds(2500));
  CHECK(inv.punch_exec == "cat <&3");
  CHECK(inv.options.stun_servers == std::vector<std::string>{"198.51.100.13"});
  CHECK_FALSE(inv.timeout_given);

  auto d = parse({"punch", id, "--rendezvous", "rv.example"});
  REQUIRE(d.invocation);
  CHECK(d.invocation->punch.map);
  CHECK(d.invocation->punch.port == 0);
  CHECK(d.invocation->punch.timeout == std::chrono::milliseconds(10000));
  CHECK(d.invocation->punch.wait_for_peer == std::chrono::milliseconds(5000));
  CHECK(d.invocation->punch_exec.empty());

  auto t = parse({"punch", id, "--rendezvous", "rv.example", "--timeout", "3"});
  REQUIRE(t.invocation);
  CHECK(t.invocation->timeout_given);
  CHECK(t.invocation->options.timeout == std::chrono::milliseconds(3000));
}

TEST_CASE("punch command line: bad input is a usage error", "[cli][punch]") {
  const std::string id = key_id(0x42).to_string();
  std::string typo = id;
  typo[10] = typo[10] == 'a' ? 'b' : 'a';
  auto bad_id = parse({"punch", typo, "--rendezvous", "rv.example"});
  CHECK_FALSE(bad_id.invocation);
  CHECK(bad_id.exit_code == 2);
  CHECK(bad_id.err.find("peer ID") != std::string::npos);
  auto short_id = parse({"punch", "abc", "--rendezvous", "rv.example"});
  CHECK(short_id.exit_code == 2);
  CHECK(parse({"punch", id}).exit_code == 2);  // --rendezvous is required
  CHECK(parse({"punch", id, "--rendezvous", "rv.example:0"}).exit_code == 2);
  CHECK(parse({"punch", id, "--rendezvous", "rv.example", "--port", "70000"}).exit_code == 2);
  CHECK(parse({"punch", id, "--rendezvous", "rv.example", "--wait", "-1"}).exit_code == 2);
  CHECK(parse({"punch", id, "--rendezvous", "rv.example", "--exec", " "}).exit_code == 2);
  auto json = parse({"punch", "abc", "--rendezvous", "rv.example", "--json"});
  CHECK(nlohmann::json::parse(json.out)["error"]["name"] == "usage");
}

TEST_CASE("id command line", "[cli][punch]") {
  auto r = parse({"id", "--json", "--state-dir", "/tmp/x"});
  REQUIRE(r.invocation);
  CHECK(r.invocation->command == cli::Command::id);
  CHECK(r.invocation->json);
  CHECK(r.invocation->options.state_dir == "/tmp/x");
}

TEST_CASE("punch output: one line, or the JSON scripts read", "[cli][punch]") {
  PunchResult r;
  r.path = PathKind::server_reflexive;
  r.local = ep("10.0.1.10:40000");
  r.local_seen = ep("203.0.113.5:40000");
  r.peer = ep("203.0.113.9:41000");
  r.peer_id = key_id(0x42);
  r.elapsed = std::chrono::milliseconds(57);
  r.report.pairs = {{ep("10.0.1.10:40000"), ep("10.0.2.20:41000"), "host", PairOutcome::failed},
                    {ep("10.0.1.10:40000"), ep("203.0.113.9:41000"), "server-reflexive",
                     PairOutcome::nominated}};
  CHECK(cli::render_punch(r, false) ==
        "punched server-reflexive path: 10.0.1.10:40000 -> 203.0.113.9:41000 in 57 ms\n");
  auto j = nlohmann::json::parse(cli::render_punch(r, true));
  CHECK(j["path"] == "server-reflexive");
  CHECK(j["local"] == "10.0.1.10:40000");
  CHECK(j["peer"] == "203.0.113.9:41000");
  CHECK(j["peer_id"] == key_id(0x42).to_string());
  CHECK(j["elapsed_ms"] == 57);
  REQUIRE(j["candidates"].size() == 2);
  CHECK(j["candidates"][0]["remote"] == "10.0.2.20:41000");
  CHECK(j["candidates"][0]["type"] == "host");
  CHECK(j["candidates"][0]["outcome"] == "failed");
  CHECK(j["candidates"][1]["outcome"] == "nominated");

  PunchReport failed;
  failed.pairs = {
      {ep("10.0.1.10:40000"), ep("203.0.113.9:41000"), "server-reflexive", PairOutcome::failed}};
  failed.hint = "peer behind symmetric NAT: needs port prediction or a relay";
  auto text = cli::render_punch_failure(make_error(Errc::punch_failed, "no path"), failed);
  CHECK(text.find("porthole: no path\n") == 0);
  CHECK(text.find("10.0.1.10:40000 -> 203.0.113.9:41000 (server-reflexive): failed") !=
        std::string::npos);
  CHECK(text.find("hint: peer behind symmetric NAT") != std::string::npos);
}

TEST_CASE("punch output: the strategy and what it sent", "[cli][punch]") {
  PunchResult r;
  r.path = PathKind::peer_reflexive;
  r.local = ep("10.0.1.10:40000");
  r.peer = ep("203.0.113.9:41000");
  r.elapsed = std::chrono::milliseconds(812);
  auto j = nlohmann::json::parse(cli::render_punch(r, true));
  CHECK(j["strategy"] == "direct");
  CHECK(j["packets_sent"] == 0);
  r.report.strategy = "birthday";
  r.report.packets_sent = 345;
  r.report.sockets_opened = 0;
  CHECK(cli::render_punch(r, false) ==
        "punched peer-reflexive path: 10.0.1.10:40000 -> 203.0.113.9:41000 in 812 ms "
        "(birthday: 345 packets, 0 extra sockets)\n");
  j = nlohmann::json::parse(cli::render_punch(r, true));
  CHECK(j["strategy"] == "birthday");
  CHECK(j["packets_sent"] == 345);
  CHECK(j["sockets_opened"] == 0);
}

TEST_CASE("punch output: the upgrade of a relayed path, as a line and as a JSON event",
          "[cli][punch]") {
  PathUpgrade u;
  u.path = PathKind::server_reflexive;
  u.peer = ep("203.0.113.9:41000");
  u.local_seen = ep("203.0.113.2:40000");
  CHECK(cli::render_upgrade(u, false) ==
        "porthole: upgraded to a direct path: 203.0.113.9:41000 (server-reflexive)\n");
  const std::string line = cli::render_upgrade(u, true);
  REQUIRE(!line.empty());
  CHECK(line.back() == '\n');
  CHECK(std::count(line.begin(), line.end(), '\n') == 1);  // one line of the stream
  auto j = nlohmann::json::parse(line);
  CHECK(j["event"] == "upgraded");
  CHECK(j["path"] == "direct");
  CHECK(j["kind"] == "server-reflexive");
  CHECK(j["peer"] == "203.0.113.9:41000");
  CHECK(j["local_seen"] == "203.0.113.2:40000");
}
