// The UPnP IGD cache: its file (state/igd_cache.hpp), the decisions over a cached entry
// (cached_device, cache_looks_stale) and UpnpClient with a cache against FakeIgd: a hit
// sends no M-SEARCH, a stale or refused entry is forgotten and the IGD searched afresh.
#include <catch2/catch.hpp>

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <fstream>
#include <optional>
#include <string>
#include <vector>

#include "fake_igd.hpp"
#include "ip_literal.hpp"
#include "porthole/punch.hpp"
#include "proto/upnp_client.hpp"
#include "state/igd_cache.hpp"
#include "state/state_store.hpp"

using porthole::test::FakeIgd;
using porthole::test::ip;

using namespace porthole;
using namespace porthole::detail;
using namespace std::chrono_literals;

namespace {

Deadline soon() { return Clock::now() + 10s; }

std::string temp_dir() {
  char tmpl[] = "/tmp/porthole-igd-cache-test-XXXXXX";
  char* d = ::mkdtemp(tmpl);
  REQUIRE(d != nullptr);
  return d;
}

void write_file(const std::string& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << text;
}

UpnpCachedIgd sample() {
  UpnpCachedIgd e;
  e.gateway = ip("192.168.1.1");
  e.local_ip = ip("192.168.1.100");
  e.location = "http://192.168.1.1:5000/rootDesc.xml";
  e.control_url = "http://192.168.1.1:5000/ctl/IPConn";
  e.service_type = "urn:schemas-upnp-org:service:WANIPConnection:2";
  e.udn = "uuid:9f0c2a54-6d1e-4b7a-8c3f-000000000001";
  return e;
}

GatewayInfo lan_gateway() {
  GatewayInfo gw;
  gw.gateway_ip = ip("192.168.1.1");
  gw.local_ip = ip("192.168.1.100");
  return gw;
}

bool same(const UpnpCachedIgd& a, const UpnpCachedIgd& b) {
  return a.gateway == b.gateway && a.local_ip == b.local_ip && a.location == b.location &&
         a.control_url == b.control_url && a.service_type == b.service_type && a.udn == b.udn;
}

// A cache held in memory, counting what the client did with it.
struct MemoryCache {
  std::optional<UpnpCachedIgd> entry;
  int loads = 0, saves = 0, forgets = 0;
  UpnpCache hooks() {
    UpnpCache c;
    c.load = [this] {
      ++loads;
      return entry;
    };
    c.save = [this](const UpnpCachedIgd& e) {
      ++saves;
      entry = e;
    };
    c.forget = [this] {
      ++forgets;
      entry.reset();
    };
    return c;
  }
};

struct Rig {
  FakeIgd igd;
  MemoryCache cache;
  std::vector<std::string> log;
  UpnpClient client() {
    return UpnpClient(igd.gateway([this](LogLevel, std::string_view l) { log.emplace_back(l); }),
                      cache.hooks());
  }
  bool logged(std::string_view needle) const {
    return std::any_of(log.begin(), log.end(),
                       [&](const std::string& l) { return l.find(needle) != std::string::npos; });
  }
};

// A TCP port on 127.0.0.1 that nobody listens on (bound, then closed).
std::uint16_t closed_port() {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  REQUIRE(fd >= 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  REQUIRE(::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0);
  socklen_t len = sizeof a;
  REQUIRE(::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) == 0);
  ::close(fd);
  return ntohs(a.sin_port);
}

}  // namespace

TEST_CASE("UPnP cache file: every field round-trips", "[upnp][cache]") {
  auto parsed = parse_igd_cache(serialize_igd_cache(sample()));
  REQUIRE(parsed.ok());
  CHECK(same(*parsed, sample()));
}

TEST_CASE("UPnP cache file: how many WAN services the device had, one when not written",
          "[upnp][cache]") {
  UpnpCachedIgd e = sample();
  e.wan_services = 3;
  auto parsed = parse_igd_cache(serialize_igd_cache(e));
  REQUIRE(parsed.ok());
  CHECK(parsed->wan_services == 3);
  std::string text = serialize_igd_cache(sample());
  const std::string field = ",\n  \"wan_services\": 1";
  const auto at = text.find(field);
  REQUIRE(at != std::string::npos);
  auto older = parse_igd_cache(text.erase(at, field.size()));  // a file of before
  REQUIRE(older.ok());
  CHECK(older->wan_services == 1);
  for (const char* bad : {"0", "9", "\"2\"", "1.5"}) {
    INFO(bad);
    std::string t = serialize_igd_cache(sample());
    t.replace(t.find("\"wan_services\": 1"), 17, std::string("\"wan_services\": ") + bad);
    auto r = parse_igd_cache(t);
    REQUIRE_FALSE(r.ok());
    CHECK_THAT(r.error().message, Catch::Contains("bad 'wan_services'"));
  }
}

TEST_CASE("UPnP cache file: a corrupt file is an error naming the fault", "[upnp][cache]") {
  const std::string good = serialize_igd_cache(sample());
  auto with = [&](const std::string& from, const std::string& to) {
    std::string t = good;
    auto at = t.find(from);
    REQUIRE(at != std::string::npos);
    return t.replace(at, from.size(), to);
  };
  struct Case {
    std::string text, fault;
  };
  const std::vector<Case> cases = {
      {"", "not a JSON object"},
      {"[1,2]", "not a JSON object"},
      {good.substr(0, good.size() / 2), "not a JSON object"},
      {with("\"version\": 1", "\"version\": 7"), "format version"},
      {with("\"192.168.1.1\"", "\"gateway.example\""), "'gateway'"},
      {with("\"192.168.1.1\"", "\"::1\""), "'gateway'"},
      {with("\"192.168.1.100\"", "17"), "'local_ip'"},
      {with("/ctl/IPConn", "/ctl/\\u001b[2J"), "'control_url'"},
      {with("\"service_type\"", "\"servicetype\""), "'service_type'"},
      {with("uuid:", std::string(200, 'u')), "'udn'"},
  };
  for (const auto& c : cases) {
    auto r = parse_igd_cache(c.text);
    INFO(c.text);
    REQUIRE_FALSE(r.ok());
    CHECK(r.error().code == Errc::state);
    CHECK(r.error().message.find(c.fault) != std::string::npos);
  }
}

TEST_CASE("UPnP cache file: saved, loaded, forgotten, and corrupt or missing is no entry",
          "[upnp][cache]") {
  const std::string dir = temp_dir() + "/state";  // created on first save
  auto none = load_igd_cache(dir);
  REQUIRE(none.ok());
  CHECK_FALSE(none->has_value());
  REQUIRE(save_igd_cache(dir, sample()).ok());
  struct stat st {};
  REQUIRE(::stat((dir + "/upnp-igd.json").c_str(), &st) == 0);
  CHECK((st.st_mode & 0777) == 0600);
  auto loaded = load_igd_cache(dir);
  REQUIRE(loaded.ok());
  REQUIRE(loaded->has_value());
  CHECK(same(**loaded, sample()));

  write_file(dir + "/upnp-igd.json", "{\"version\": 1, \"gateway\": ");
  auto corrupt = load_igd_cache(dir);
  REQUIRE_FALSE(corrupt.ok());
  CHECK(corrupt.error().message.find(dir + "/upnp-igd.json is corrupt") != std::string::npos);

  REQUIRE(forget_igd_cache(dir).ok());
  CHECK(::stat((dir + "/upnp-igd.json").c_str(), &st) != 0);
  CHECK(forget_igd_cache(dir).ok());  // nothing to remove is fine

  // A link planted in the cache's place is not followed.
  REQUIRE(::symlink("/etc/passwd", (dir + "/upnp-igd.json").c_str()) == 0);
  auto linked = load_igd_cache(dir);
  REQUIRE_FALSE(linked.ok());
  CHECK(linked.error().message.find("symbolic link") != std::string::npos);
  // Saving replaces the link itself, never what it points to.
  REQUIRE(save_igd_cache(dir, sample()).ok());
  REQUIRE(::lstat((dir + "/upnp-igd.json").c_str(), &st) == 0);
  CHECK(S_ISREG(st.st_mode));
}

TEST_CASE("UPnP cache: an entry is used only on its gateway, under the LOCATION policy",
          "[upnp][cache]") {
  auto ok = cached_device(sample(), lan_gateway());
  REQUIRE(ok.ok());
  CHECK(ok->control.host == "192.168.1.1");
  CHECK(ok->control.port == 5000);
  CHECK(ok->control.path == "/ctl/IPConn");
  CHECK(ok->v2);
  CHECK(ok->udn == sample().udn);

  auto refused = [&](UpnpCachedIgd e, std::string_view why, GatewayInfo gw = lan_gateway()) {
    auto r = cached_device(e, gw);
    INFO(why);
    REQUIRE_FALSE(r.ok());
    CHECK(r.error().code == Errc::no_service);
    CHECK(r.error().message.find(why) != std::string::npos);
  };
  GatewayInfo other = lan_gateway();
  other.gateway_ip = ip("192.168.1.254");
  refused(sample(), "the gateway changed", other);
  GatewayInfo moved = lan_gateway();
  moved.local_ip = ip("192.168.1.101");
  refused(sample(), "address changed", moved);

  auto e = sample();
  e.control_url = "http://192.168.1.7:5000/ctl/IPConn";  // another LAN host
  refused(e, "controlURL");
  e = sample();
  e.location = "http://127.0.0.1:5000/rootDesc.xml";
  refused(e, "LOCATION");
  e = sample();
  e.control_url = "https://192.168.1.1/ctl/IPConn";
  refused(e, "controlURL");
  e = sample();
  e.service_type = "urn:schemas-upnp-org:service:Layer3Forwarding:1";
  refused(e, "no WAN connection service");

  // The DSL Forum's service names are WAN connection services too; v1 is v1.
  e = sample();
  e.service_type = "urn:dslforum-org:service:WANPPPConnection:1";
  auto dsl = cached_device(e, lan_gateway());
  REQUIRE(dsl.ok());
  CHECK_FALSE(dsl->v2);
}

TEST_CASE("UPnP cache: which first answers mean a stale entry", "[upnp][cache]") {
  CHECK(cache_looks_stale(Result<SoapReply>(make_error(Errc::no_service, "connect: refused"))));
  CHECK(cache_looks_stale(Result<SoapReply>(make_error(Errc::timeout, "connecting"))));
  CHECK(cache_looks_stale(Result<SoapReply>(make_error(Errc::internal, "HTTP status 404"))));
  CHECK_FALSE(cache_looks_stale(Result<SoapReply>(make_error(Errc::usage, "bad header"))));
  SoapReply fine;
  CHECK_FALSE(cache_looks_stale(Result<SoapReply>(fine)));
  SoapReply no_action;
  no_action.fault = 401;
  CHECK(cache_looks_stale(Result<SoapReply>(no_action)));
  SoapReply no_entry;
  no_entry.fault = kNoSuchEntry;  // the device's answer: the cache holds
  CHECK_FALSE(cache_looks_stale(Result<SoapReply>(no_entry)));
}

TEST_CASE("UPnP cache: a discovery is saved, and the next client sends no M-SEARCH",
          "[upnp][cache][fake_igd]") {
  Rig rig;
  {
    auto first = rig.client();
    REQUIRE(first.find(Transport::tcp, 40000, soon()).ok());
  }
  CHECK(rig.cache.loads == 1);
  REQUIRE(rig.cache.saves == 1);
  REQUIRE(rig.cache.entry);
  CHECK(rig.cache.entry->control_url.find("http://127.0.0.1:") == 0);
  CHECK(rig.cache.entry->location.find("/rootDesc.xml") != std::string::npos);
  CHECK(rig.cache.entry->udn == "uuid:fa4e0000-0000-4000-8000-000000000001");
  CHECK(rig.cache.entry->service_type == "urn:schemas-upnp-org:service:WANIPConnection:2");
  const auto searches = rig.igd.msearch_count();
  const auto requests = rig.igd.requests().size();

  auto second = rig.client();
  auto entry = second.find(Transport::tcp, 40000, soon());
  REQUIRE(entry.ok());
  CHECK_FALSE(entry->has_value());
  CHECK(rig.igd.msearch_count() == searches);
  // One request: the action itself, no description GET.
  auto after = rig.igd.requests();
  REQUIRE(after.size() == requests + 1);
  CHECK(after.back().action == "GetSpecificPortMappingEntry");
  CHECK(rig.cache.saves == 1);
  CHECK(rig.cache.forgets == 0);
  CHECK(rig.logged("(no SSDP)"));
}

TEST_CASE("UPnP cache: a cached URL that refuses the connection is forgotten at once",
          "[upnp][cache][fake_igd]") {
  Rig rig;
  UpnpCachedIgd stale;
  stale.gateway = ip("127.0.0.1");
  stale.local_ip = ip("127.0.0.1");
  const auto port = closed_port();
  stale.location = "http://127.0.0.1:" + std::to_string(port) + "/rootDesc.xml";
  stale.control_url = "http://127.0.0.1:" + std::to_string(port) + "/ctl/IPConn";
  stale.service_type = "urn:schemas-upnp-org:service:WANIPConnection:2";
  stale.udn = "uuid:an-older-router";
  rig.cache.entry = stale;

  auto client = rig.client();
  auto info = client.probe(soon());
  REQUIRE(info.ok());
  CHECK(info->external_ip == ip("203.0.113.7"));
  CHECK(rig.igd.msearch_count() >= 1);
  CHECK(rig.cache.forgets == 1);
  REQUIRE(rig.cache.saves == 1);
  CHECK(rig.cache.entry->control_url.find(":" + std::to_string(rig.igd.http_port()) + "/") !=
        std::string::npos);
  CHECK(rig.logged("cached IGD failed"));
  CHECK(rig.logged("another device now"));
}

TEST_CASE("UPnP cache: an entry pointing off the gateway is refused before anything is sent",
          "[upnp][cache][fake_igd]") {
  Rig rig;
  UpnpCachedIgd elsewhere;
  elsewhere.gateway = ip("127.0.0.1");
  elsewhere.local_ip = ip("127.0.0.1");
  elsewhere.location = "http://127.0.0.2:5000/rootDesc.xml";
  elsewhere.control_url = "http://127.0.0.2:5000/ctl/IPConn";
  elsewhere.service_type = "urn:schemas-upnp-org:service:WANIPConnection:2";
  rig.cache.entry = elsewhere;

  auto client = rig.client();
  REQUIRE(client.find(Transport::udp, 40001, soon()).ok());
  CHECK(rig.logged("cached IGD not used"));
  CHECK(rig.logged("is a loopback address, not the gateway"));
  CHECK(rig.cache.forgets == 1);
  CHECK(rig.igd.msearch_count() >= 1);
  REQUIRE(rig.cache.entry);
  CHECK(rig.cache.entry->location.find("127.0.0.1") != std::string::npos);
}

TEST_CASE("UPnP cache: 401 Invalid Action from the cached device means searching again",
          "[upnp][cache][fake_igd]") {
  Rig rig;
  {
    auto first = rig.client();
    REQUIRE(first.probe(soon()).ok());
  }
  const auto searches = rig.igd.msearch_count();
  rig.igd.fail_action("GetExternalIPAddress", 401);
  auto second = rig.client();
  auto info = second.probe(soon());
  CHECK(rig.igd.msearch_count() > searches);
  CHECK(rig.cache.forgets == 1);
  // The device found afresh answers 401 too: that answer stands.
  REQUIRE(info.ok());
  CHECK_FALSE(info->external_ip.has_value());
}

TEST_CASE("UPnP discovery: a device that answers only its own version is found in round two",
          "[upnp][ssdp][fake_igd]") {
  FakeIgd::Options strict;
  strict.answers_earlier_versions = false;  // IGD:2 and WANIPConnection:2 only
  FakeIgd igd(strict);
  std::vector<std::string> log;
  UpnpClient client(igd.gateway([&](LogLevel, std::string_view l) { log.emplace_back(l); }));
  auto info = client.probe(soon());
  REQUIRE(info.ok());
  CHECK(info->external_ip == ip("203.0.113.7"));
  // Round one (IGD:1, WANIPConnection:1) went unanswered; round two asked for :2 too.
  CHECK(igd.msearch_count() >= 3);
  CHECK(std::any_of(log.begin(), log.end(), [](const std::string& l) {
    return l.find("IGD:1, IGD:2, WANIPConnection:1, :2") != std::string::npos &&
           l.find("(round 2)") != std::string::npos;
  }));
}

TEST_CASE("punch: releasing the gateway mapping keeps to upnp_cache (--no-upnp-cache)",
          "[upnp][cache][punch]") {
  const bool use_cache = GENERATE(true, false);
  INFO("upnp_cache " << use_cache);
  FakeIgd igd;
  igd.add_entry({"UDP", 7400, "127.0.0.1", 7400, "porthole punch", 0});
  const std::string dir = temp_dir();
  PunchOptions options;
  options.gateway = ip("127.0.0.1");
  options.ssdp_port = igd.ssdp_port();
  options.pcp_port = closed_port();
  options.state_dir = dir;
  options.upnp_cache = use_cache;
  Mapping m;
  m.protocol = Protocol::upnp;
  m.transport = Transport::udp;
  m.internal_ip = ip("127.0.0.1");
  m.internal_port = 7400;
  m.external_port = 7400;
  REQUIRE(release_punch_mapping(options, m, 5s).ok());
  CHECK(igd.table().empty());
  // With the cache the discovery is remembered; without it nothing is written.
  struct stat st {};
  CHECK((::stat((dir + "/upnp-igd.json").c_str(), &st) == 0) == use_cache);
}
