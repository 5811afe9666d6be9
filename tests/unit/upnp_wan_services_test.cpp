// Routers whose WAN connection services are not the single UPnP Forum one porthole
// finds on miniupnpd: services typed in the DSL Forum's namespace (TR-064,
// urn:dslforum-org:service:..., as some Huawei routers publish them), and devices with
// several WAN connections of which only some are up (multi-WAN routers, PPP beside
// IP). The descriptions are written here, modelled on those routers; FakeIgd answers
// each service at its own control URL and only in its own SOAP namespace.
#include <catch2/catch.hpp>

#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <string>
#include <vector>

#include "codec/igd_xml.hpp"
#include "fake_igd.hpp"
#include "ip_literal.hpp"
#include "porthole/porthole.hpp"
#include "proto/upnp_client.hpp"

using porthole::test::fake_igd_options;
using porthole::test::FakeIgd;
using porthole::test::fresh_test_dir;
using porthole::test::ip;
using porthole::test::read_text;
using porthole::test::tcp_via_upnp;

using namespace porthole;
using namespace porthole::detail;
using namespace std::chrono_literals;

namespace {

Deadline soon() { return Clock::now() + 10s; }

constexpr const char* kDslPpp = "urn:dslforum-org:service:WANPPPConnection:1";
constexpr const char* kDslIp = "urn:dslforum-org:service:WANIPConnection:1";
constexpr const char* kUpnpIp = "urn:schemas-upnp-org:service:WANIPConnection:1";
constexpr const char* kUpnpPpp = "urn:schemas-upnp-org:service:WANPPPConnection:1";

std::string service_xml(std::string_view type, std::string_view id, std::string_view control) {
  return fmt::format(
      "<service><serviceType>{}</serviceType><serviceId>{}</serviceId>"
      "<controlURL>{}</controlURL><eventSubURL>{}/evt</eventSubURL>"
      "<SCPDURL>{}/scpd.xml</SCPDURL></service>",
      type, id, control, control, control);
}

// A TR-064 device tree as a DSL router writes it: every device and service in the DSL
// Forum's namespace, management services beside the WAN ones, a WANConnectionDevice
// with the PPP session (and, when `with_ip`, a bridged IP connection after it).
std::string dslforum_description(bool with_ip) {
  std::string wan = service_xml(kDslPpp, "urn:WANPPPConnection-com:serviceId:WANPPPConnection1",
                                "/upnp/control/WANPPPConn1");
  if (with_ip)
    wan += service_xml(kDslIp, "urn:WANIPConnection-com:serviceId:WANIPConnection1",
                       "/upnp/control/WANIPConn1");
  return "<?xml version=\"1.0\"?>\n<root xmlns=\"urn:dslforum-org:device-1-0\">"
         "<specVersion><major>1</major><minor>0</minor></specVersion><device>"
         "<deviceType>urn:dslforum-org:device:InternetGatewayDevice:1</deviceType>"
         "<friendlyName>HG8245H</friendlyName><manufacturer>Huawei Technologies Co., Ltd."
         "</manufacturer><modelName>HG8245H</modelName>"
         "<UDN>uuid:3f1b2c4d-0000-1000-8000-00e0fc000001</UDN><serviceList>" +
         service_xml("urn:dslforum-org:service:DeviceInfo:1",
                     "urn:DeviceInfo-com:serviceId:DeviceInfo1", "/upnp/control/DeviceInfo") +
         service_xml("urn:dslforum-org:service:Layer3Forwarding:1",
                     "urn:Layer3Forwarding-com:serviceId:Layer3Forwarding1",
                     "/upnp/control/Layer3Forwarding") +
         "</serviceList><deviceList>"
         "<device><deviceType>urn:dslforum-org:device:LANDevice:1</deviceType><serviceList>" +
         service_xml("urn:dslforum-org:service:LANHostConfigManagement:1",
                     "urn:LANHCfgMgm-com:serviceId:LANHostConfigManagement1",
                     "/upnp/control/LANHostConfigManagement") +
         "</serviceList></device>"
         "<device><deviceType>urn:dslforum-org:device:WANDevice:1</deviceType><serviceList>" +
         service_xml("urn:dslforum-org:service:WANCommonInterfaceConfig:1",
                     "urn:WANCIfCfg-com:serviceId:WANCommonInterfaceConfig1",
                     "/upnp/control/WANCommonIFC1") +
         "</serviceList><deviceList><device>"
         "<deviceType>urn:dslforum-org:device:WANConnectionDevice:1</deviceType>"
         "<serviceList>" +
         wan + "</serviceList></device></deviceList></device></deviceList></device></root>\n";
}

// A multi-WAN router: one WANDevice with a WANConnectionDevice per uplink, in the UPnP
// Forum's namespace, controls named per interface. `first` and `second` are the two
// connection services' types; `url_base` adds a <URLBase> when not empty.
std::string multi_wan_description(std::string_view first, std::string_view second,
                                  std::string_view url_base = "") {
  auto connection = [](std::string_view type, std::string_view control) {
    return "<device><deviceType>urn:schemas-upnp-org:device:WANConnectionDevice:1</deviceType>"
           "<friendlyName>WAN Connection Device</friendlyName><serviceList>" +
           service_xml(type, "urn:upnp-org:serviceId:WANIPConn1", control) +
           "</serviceList></device>";
  };
  return "<?xml version=\"1.0\"?>\n<root xmlns=\"urn:schemas-upnp-org:device-1-0\">"
         "<specVersion><major>1</major><minor>0</minor></specVersion>" +
         (url_base.empty() ? std::string() : fmt::format("<URLBase>{}</URLBase>", url_base)) +
         "<device><deviceType>urn:schemas-upnp-org:device:InternetGatewayDevice:1</deviceType>"
         "<friendlyName>router</friendlyName><manufacturer>example</manufacturer>"
         "<UDN>uuid:0a0b0c0d-1111-4222-8333-000000000002</UDN>"
         "<deviceList><device>"
         "<deviceType>urn:schemas-upnp-org:device:WANDevice:1</deviceType><serviceList>" +
         service_xml("urn:schemas-upnp-org:service:WANCommonInterfaceConfig:1",
                     "urn:upnp-org:serviceId:WANCommonIFC1", "/upnp/control/common") +
         "</serviceList><deviceList>" + connection(first, "/upnp/control/ether1/wanconn") +
         connection(second, "/upnp/control/ether2/wanconn") +
         "</deviceList></device></deviceList></device></root>\n";
}

// The fake serving `description`, with these services behind it.
FakeIgd::Options with(std::string description, std::vector<FakeIgd::Options::Service> services) {
  FakeIgd::Options o;
  o.description = std::move(description);
  o.services = std::move(services);
  return o;
}

FakeIgd::Options::Service service(std::string type, std::string path, bool connected,
                                  std::string external_ip) {
  FakeIgd::Options::Service s;
  s.type = std::move(type);
  s.control_path = std::move(path);
  s.connected = connected;
  s.external_ip = std::move(external_ip);
  return s;
}

// A fake IGD and the clients of it, whose log lines it keeps.
struct Rig {
  explicit Rig(FakeIgd::Options options) : igd(std::move(options)) {}

  UpnpClient client() {
    return UpnpClient(igd.gateway([this](LogLevel, std::string_view l) { log.emplace_back(l); }));
  }

  // The control paths the SOAP actions named `action` went to, in order.
  std::vector<std::string> paths(std::string_view action) const {
    std::vector<std::string> out;
    for (const auto& r : igd.requests(action)) out.push_back(r.path);
    return out;
  }

  FakeIgd igd;
  std::vector<std::string> log;
};

MapParams wanted(std::uint16_t port) { return porthole::test::loopback_map_request(port); }

using Strings = std::vector<std::string>;

// Two uplinks, the first down; the second up with external address `second_ip`.
FakeIgd::Options two_wan_first_down(std::string second_ip) {
  return with(multi_wan_description(kUpnpIp, kUpnpIp),
              {service(kUpnpIp, "/upnp/control/ether1/wanconn", false, "0.0.0.0"),
               service(kUpnpIp, "/upnp/control/ether2/wanconn", true, std::move(second_ip))});
}

}  // namespace

TEST_CASE("IGD description: DSL Forum WAN connection services are found", "[upnp][dslforum]") {
  auto d = read_igd_description(dslforum_description(true), "http://192.168.1.1:37215/desc.xml",
                                "192.168.1.1", "192.168.1.100", 24);
  REQUIRE(d.ok());
  CHECK(d->service_type == kDslPpp);
  CHECK(d->control_url == "http://192.168.1.1:37215/upnp/control/WANPPPConn1");
  CHECK_FALSE(d->v2);
  CHECK(d->udn == "uuid:3f1b2c4d-0000-1000-8000-00e0fc000001");
  REQUIRE(d->services.size() == 2);
  CHECK(d->services[0].service_type == kDslPpp);
  CHECK(d->services[1].service_type == kDslIp);
  CHECK(d->services[1].control_url == "http://192.168.1.1:37215/upnp/control/WANIPConn1");
}

TEST_CASE("IGD description: every WAN connection service, in description order, URLBase kept",
          "[upnp][dslforum]") {
  auto d = read_igd_description(multi_wan_description(kUpnpIp, kUpnpIp, "http://127.0.0.1/"),
                                "http://192.168.88.1:2828/gateway.xml", "127.0.0.1",
                                "192.168.88.10", 24);
  // URLBase names 127.0.0.1: the controls are resolved against it, not the LOCATION.
  REQUIRE(d.ok());
  REQUIRE(d->services.size() == 2);
  CHECK(d->services[0].control_url == "http://127.0.0.1/upnp/control/ether1/wanconn");
  CHECK(d->services[1].control_url == "http://127.0.0.1/upnp/control/ether2/wanconn");
  CHECK(d->control_url == d->services[0].control_url);
}

TEST_CASE("IGD description: a control URL off the gateway drops only that service",
          "[upnp][dslforum]") {
  std::string xml = multi_wan_description(kUpnpPpp, kUpnpIp, "http://127.0.0.1/");
  const std::string first = "<controlURL>/upnp/control/ether1/wanconn</controlURL>";
  xml.replace(xml.find(first), first.size(),
              "<controlURL>http://10.9.9.9/upnp/control/ether1/wanconn</controlURL>");
  auto d = read_igd_description(xml, "http://127.0.0.1:2828/gateway.xml", "127.0.0.1", "127.0.0.1",
                                8);
  REQUIRE(d.ok());
  REQUIRE(d->services.size() == 1);
  CHECK(d->service_type == kUpnpIp);
  CHECK(d->control_url == "http://127.0.0.1/upnp/control/ether2/wanconn");
}

TEST_CASE("UPnP: a DSL Forum WANPPPConnection maps, lists, finds and deletes in its namespace",
          "[upnp][dslforum][fake_igd]") {
  Rig rig(with(dslforum_description(false),
               {service(kDslPpp, "/upnp/control/WANPPPConn1", true, "198.51.100.23")}));
  UpnpClient client = rig.client();
  auto probe = client.probe(soon());
  REQUIRE(probe.ok());
  CHECK(probe->external_ip == ip("198.51.100.23"));
  auto out = client.map(wanted(6100), soon());
  REQUIRE(out.ok());
  CHECK(out->mapping.external_port == 6100);
  CHECK(out->mapping.external_ip == ip("198.51.100.23"));
  auto table = client.list(soon());
  REQUIRE(table.ok());
  REQUIRE(table->entries.size() == 1);
  CHECK(table->entries[0].external_port == 6100);
  REQUIRE(client.unmap(out->mapping, Nonce{}, soon()).ok());
  CHECK(rig.igd.table().empty());
  // FakeIgd answers 401 to an action in another namespace: each went to the PPP
  // service, in the DSL Forum's namespace, and nothing asked for a status (one service).
  CHECK(rig.paths("AddPortMapping") == Strings{"/upnp/control/WANPPPConn1"});
  CHECK(rig.paths("DeletePortMapping") == Strings{"/upnp/control/WANPPPConn1"});
  CHECK(rig.igd.requests("GetStatusInfo").empty());
}

TEST_CASE("UPnP: of a DSL Forum PPP connection that is down and its IP connection, the IP one",
          "[upnp][dslforum][fake_igd]") {
  Rig rig(with(dslforum_description(true),
               {service(kDslPpp, "/upnp/control/WANPPPConn1", false, "0.0.0.0"),
                service(kDslIp, "/upnp/control/WANIPConn1", true, "198.51.100.24")}));
  UpnpClient client = rig.client();
  auto out = client.map(wanted(6101), soon());
  REQUIRE(out.ok());
  CHECK(out->mapping.external_ip == ip("198.51.100.24"));
  CHECK(rig.paths("AddPortMapping") == Strings{"/upnp/control/WANIPConn1"});
}

TEST_CASE("UPnP: the first connected WAN service is used, the down ones before it are not",
          "[upnp][multiwan][fake_igd]") {
  struct Case {
    const char* name;
    const char* first_type;
    std::string first_ip;  // what the down service says its address is
  };
  const Case c = GENERATE(Case{"WANIPConnection down, 0.0.0.0", kUpnpIp, "0.0.0.0"},
                          Case{"WANIPConnection down, empty address", kUpnpIp, ""},
                          Case{"WANPPPConnection down", kUpnpPpp, "0.0.0.0"});
  INFO(c.name);
  Rig rig(with(multi_wan_description(c.first_type, kUpnpIp),
               {service(c.first_type, "/upnp/control/ether1/wanconn", false, c.first_ip),
                service(kUpnpIp, "/upnp/control/ether2/wanconn", true, "203.0.113.40")}));
  UpnpClient client = rig.client();
  auto out = client.map(wanted(6200), soon());
  REQUIRE(out.ok());
  CHECK(out->mapping.external_ip == ip("203.0.113.40"));
  // Both were asked, once each; the mapping went to the second only.
  CHECK(rig.paths("GetStatusInfo").size() == 2);
  CHECK(rig.igd.requests("GetExternalIPAddress").size() == 2);
  CHECK(rig.paths("AddPortMapping") == Strings{"/upnp/control/ether2/wanconn"});
  auto table = rig.igd.table();
  REQUIRE(table.size() == 1);
  CHECK(table[0].external_port == 6200);

  // probe, list and close (another client each, as separate commands) choose alike.
  auto probe = rig.client().probe(soon());
  REQUIRE(probe.ok());
  CHECK(probe->external_ip == ip("203.0.113.40"));
  auto listed = rig.client().list(soon());
  REQUIRE(listed.ok());
  CHECK(listed->entries.size() == 1);
  REQUIRE(rig.client().unmap(out->mapping, Nonce{}, soon()).ok());
  CHECK(rig.igd.table().empty());
  CHECK(rig.paths("DeletePortMapping") == Strings{"/upnp/control/ether2/wanconn"});
  for (const auto& r : rig.igd.requests("GetGenericPortMappingEntry"))
    CHECK(r.path == "/upnp/control/ether2/wanconn");
}

TEST_CASE("UPnP: when both WAN services are up, the first in description order",
          "[upnp][multiwan][fake_igd]") {
  Rig rig(with(multi_wan_description(kUpnpIp, kUpnpIp),
               {service(kUpnpIp, "/upnp/control/ether1/wanconn", true, "203.0.113.41"),
                service(kUpnpIp, "/upnp/control/ether2/wanconn", true, "203.0.113.42")}));
  UpnpClient client = rig.client();
  auto out = client.map(wanted(6201), soon());
  REQUIRE(out.ok());
  CHECK(out->mapping.external_ip == ip("203.0.113.41"));
  CHECK(rig.paths("AddPortMapping") == Strings{"/upnp/control/ether1/wanconn"});
}

TEST_CASE("UPnP: no connected WAN service is a refusal naming what each said",
          "[upnp][multiwan][fake_igd]") {
  Rig rig(with(multi_wan_description(kUpnpPpp, kUpnpIp),
               {service(kUpnpPpp, "/upnp/control/ether1/wanconn", false, "0.0.0.0"),
                service(kUpnpIp, "/upnp/control/ether2/wanconn", false, "")}));
  UpnpClient client = rig.client();
  auto out = client.map(wanted(6202), soon());
  REQUIRE_FALSE(out.ok());
  CHECK(out.error().code == Errc::refused);
  CHECK(static_cast<int>(out.error().code) == 4);  // the exit status (README: EXIT STATUS)
  const std::string& m = out.error().message;
  CHECK_THAT(m, Catch::Contains("none of the UPnP device's 2 WAN connection services is "
                                "connected"));
  CHECK_THAT(m, Catch::Contains(std::string(kUpnpPpp) + " at http://127.0.0.1:") &&
                    Catch::Contains("/upnp/control/ether1/wanconn: Disconnected, external "
                                    "address 0.0.0.0"));
  CHECK_THAT(m, Catch::Contains("/upnp/control/ether2/wanconn: Disconnected, no external "
                                "address"));
  CHECK(rig.igd.requests("AddPortMapping").empty());
  CHECK(rig.igd.table().empty());
}

TEST_CASE("porthole open: the chosen WAN service is cached, and a warm open goes straight to it",
          "[upnp][multiwan][fake_igd]") {
  Rig rig(two_wan_first_down("203.0.113.43"));
  const std::string dir = fresh_test_dir();
  const Options options = fake_igd_options(rig.igd, dir);
  OpenRequest request = tcp_via_upnp(6300);

  auto cold = porthole::open(options, request);
  REQUIRE(cold.ok());
  CHECK(cold->mapping.external_ip == ip("203.0.113.43"));
  const std::string cache = read_text(dir + "/upnp-igd.json");
  CHECK_THAT(cache, Catch::Contains("/upnp/control/ether2/wanconn") && Catch::Contains(kUpnpIp) &&
                        !Catch::Contains("/upnp/control/ether1/wanconn"));

  const std::size_t before = rig.igd.requests().size();
  const std::size_t searches = rig.igd.msearch_count();
  auto warm = porthole::open(options, request);
  REQUIRE(warm.ok());
  CHECK(warm->refreshed);
  // No search, no description, no status questions: straight to the cached service.
  CHECK(rig.igd.msearch_count() == searches);
  const auto all = rig.igd.requests();
  for (std::size_t i = before; i < all.size(); ++i) {
    INFO(all[i].action);
    CHECK(all[i].action != "GET");
    CHECK(all[i].action != "GetStatusInfo");
    CHECK(all[i].path == "/upnp/control/ether2/wanconn");
  }
  CHECK(rig.paths("AddPortMapping") ==
        Strings{"/upnp/control/ether2/wanconn", "/upnp/control/ether2/wanconn"});
}

TEST_CASE("porthole open: a cached WAN service gone down makes the device be asked again",
          "[upnp][multiwan][fake_igd]") {
  Rig rig(two_wan_first_down("203.0.113.45"));
  const std::string dir = fresh_test_dir();
  const Options options = fake_igd_options(rig.igd, dir);
  OpenRequest request = tcp_via_upnp(6310);
  REQUIRE(porthole::open(options, request).ok());
  const std::string cache_file = dir + "/upnp-igd.json";
  CHECK_THAT(read_text(cache_file), Catch::Contains("/upnp/control/ether2/wanconn") &&
                                        Catch::Contains("\"wan_services\": 2"));

  // The uplinks fail over: the cached service has no address now, the other one has.
  rig.igd.set_service("/upnp/control/ether2/wanconn", false, "0.0.0.0");
  rig.igd.set_service("/upnp/control/ether1/wanconn", true, "203.0.113.46");
  request.port = PortSpec{6311, Transport::tcp};
  auto moved = porthole::open(options, request);
  REQUIRE(moved.ok());
  CHECK(moved->mapping.external_ip == ip("203.0.113.46"));
  CHECK(rig.paths("AddPortMapping") ==
        Strings{"/upnp/control/ether2/wanconn", "/upnp/control/ether1/wanconn"});
  CHECK_THAT(read_text(cache_file), Catch::Contains("/upnp/control/ether1/wanconn") &&
                                        !Catch::Contains("/upnp/control/ether2/wanconn"));
}
