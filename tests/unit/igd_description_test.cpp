// read_igd_description: miniupnpc's description parser behind porthole's checks. The
// base case is the description miniupnpd 2.3.1 serves in the lab (trimmed to the
// devices that matter); the hostile ones are malformed or malicious descriptions a
// router or a LAN host could serve.
#include <catch2/catch.hpp>

#include <sys/mman.h>
#include <unistd.h>

#include <cstring>
#include <string>

#include "codec/igd_xml.hpp"

using namespace porthole;
using namespace porthole::detail;

namespace {

constexpr const char* kLocation = "http://192.168.1.1:5000/rootDesc.xml";

// An IGD whose WANConnectionDevice offers `service` at `control_url`; `url_base` adds
// a <URLBase> when not empty.
std::string description(std::string_view service, std::string_view control_url,
                        std::string_view url_base = "") {
  std::string base = url_base.empty() ? "" : "<URLBase>" + std::string(url_base) + "</URLBase>";
  return "<?xml version=\"1.0\"?>\n"
         "<root xmlns=\"urn:schemas-upnp-org:device-1-0\" configId=\"1337\">"
         "<specVersion><major>1</major><minor>1</minor></specVersion>" +
         base +
         "<device><deviceType>urn:schemas-upnp-org:device:InternetGatewayDevice:2</deviceType>"
         "<serviceList><service>"
         "<serviceType>urn:schemas-upnp-org:service:Layer3Forwarding:1</serviceType>"
         "<controlURL>/ctl/L3F</controlURL></service></serviceList>"
         "<deviceList><device>"
         "<deviceType>urn:schemas-upnp-org:device:WANDevice:2</deviceType>"
         "<serviceList><service>"
         "<serviceType>urn:schemas-upnp-org:service:WANCommonInterfaceConfig:1</serviceType>"
         "<controlURL>/ctl/CmnIfCfg</controlURL></service></serviceList>"
         "<deviceList><device>"
         "<deviceType>urn:schemas-upnp-org:device:WANConnectionDevice:2</deviceType>"
         "<serviceList><service><serviceType>" +
         std::string(service) +
         "</serviceType>"
         "<SCPDURL>/WANIPCn.xml</SCPDURL><controlURL>" +
         std::string(control_url) +
         "</controlURL><eventSubURL>/evt/IPConn</eventSubURL></service></serviceList>"
         "</device></deviceList></device></deviceList>"
         "<presentationURL>http://192.168.1.1/</presentationURL></device></root>";
}

Result<IgdDescription> read(std::string_view xml) {
  return read_igd_description(xml, kLocation, "192.168.1.1", "192.168.1.100", 24);
}

}  // namespace

TEST_CASE("read_igd_description: miniupnpd's IGDv2 description", "[upnp]") {
  auto d = read(description("urn:schemas-upnp-org:service:WANIPConnection:2", "/ctl/IPConn"));
  REQUIRE(d.ok());
  CHECK(d->service_type == "urn:schemas-upnp-org:service:WANIPConnection:2");
  CHECK(d->control_url == "http://192.168.1.1:5000/ctl/IPConn");
  CHECK(d->v2);

  auto v1 = read(description("urn:schemas-upnp-org:service:WANPPPConnection:1",
                             "http://192.168.1.1:49000/ppp"));
  REQUIRE(v1.ok());
  CHECK(v1->control_url == "http://192.168.1.1:49000/ppp");
  CHECK_FALSE(v1->v2);
}

TEST_CASE("read_igd_description refuses control URLs off the gateway", "[upnp]") {
  const char* const kWanIp = "urn:schemas-upnp-org:service:WANIPConnection:1";
  struct Case {
    std::string xml;
    const char* why;
  };
  const Case kCases[] = {
      {description(kWanIp, "http://127.0.0.1:5000/ctl/IPConn"), "loopback"},
      {description(kWanIp, "http://169.254.169.254/latest"), "link-local"},
      {description(kWanIp, "http://router.example/ctl"), "not an IPv4 literal"},
      {description(kWanIp, "http://198.51.100.7/ctl"), "not on the gateway"},
      {description(kWanIp, "/ctl/IPConn", "http://127.0.0.1:80/"), "loopback"},
      {description(kWanIp, "/ctl/IPConn", "http://198.51.100.7:80/"), "not on the gateway"},
  };
  for (const auto& c : kCases) {
    INFO(c.why);
    auto d = read(c.xml);
    REQUIRE_FALSE(d.ok());
    CHECK(d.error().code == Errc::no_service);
    CHECK_THAT(d.error().message, Catch::StartsWith("controlURL "));
    CHECK_THAT(d.error().message, Catch::Contains(c.why));
  }
}

TEST_CASE("read_igd_description: a control URL elsewhere on the LAN only when allowed", "[upnp]") {
  const char* const kWanIp = "urn:schemas-upnp-org:service:WANIPConnection:1";
  auto xml = description(kWanIp, "http://192.168.1.7:5000/ctl/IPConn");
  auto strict = read(xml);
  REQUIRE_FALSE(strict.ok());
  CHECK_THAT(strict.error().message, Catch::Contains("not on the gateway"));
  auto lan = read_igd_description(xml, kLocation, "192.168.1.1", "192.168.1.100", 24, true);
  REQUIRE(lan.ok());
  CHECK(lan->control_url == "http://192.168.1.7:5000/ctl/IPConn");
  // Allowed means the LAN subnet, nothing beyond it: other networks, loopback and this
  // host itself stay refused.
  for (const char* url : {"http://192.168.2.7:5000/ctl", "http://127.0.0.1:5000/ctl",
                          "http://192.168.1.100:5000/ctl", "http://192.168.1.255:5000/ctl"}) {
    INFO(url);
    auto d = read_igd_description(description(kWanIp, url), kLocation, "192.168.1.1",
                                  "192.168.1.100", 24, true);
    CHECK_FALSE(d.ok());
  }
}

TEST_CASE("read_igd_description: no WAN connection service, or broken XML", "[upnp]") {
  const std::string good = description("urn:schemas-upnp-org:service:WANIPConnection:2",
                                       "/ctl/IPConn");
  const std::string kBroken[] = {
      description("urn:schemas-upnp-org:service:Layer3Forwarding:1", "/ctl/L3F"),
      "",
      "<a:",
      good.substr(0, good.find("<controlURL>/ctl/IPConn")) + "<![CDATA[",
      "<root><" + std::string(300, 'n') + ">" + std::string(300, 'v') + "</" +
          std::string(300, 'n') + "></root>",
      good.substr(0, 700),
  };
  for (const auto& xml : kBroken) {
    INFO(xml.substr(0, 120));
    auto d = read(xml);
    REQUIRE_FALSE(d.ok());
    CHECK(d.error().code == Errc::no_service);
  }
}

TEST_CASE("read_igd_description keeps miniupnpc inside the description's bytes", "[upnp]") {
  // miniupnpc 2.2.4 reads one byte past a document that ends in "<a:" (found by
  // fuzz_igd_description). Put such documents right before a page that is not mapped:
  // a read past their end would fault here.
  const long page = ::sysconf(_SC_PAGESIZE);
  REQUIRE(page > 0);
  const std::size_t page_size = static_cast<std::size_t>(page);
  void* mem = ::mmap(nullptr, 2 * page_size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
                     -1, 0);
  REQUIRE(mem != MAP_FAILED);
  char* base = static_cast<char*>(mem);
  REQUIRE(::mprotect(base + page_size, page_size, PROT_NONE) == 0);
  const std::string kDocuments[] = {
      "<a:",
      "<root><device><serviceList><service><serviceType>x</serviceType><b:",
      "<root><![CDATA[",
      "<root><!-- ",
      "<root a=\"",
      description("urn:schemas-upnp-org:service:WANIPConnection:2", "/ctl/IPConn"),
  };
  for (const auto& doc : kDocuments) {
    INFO(doc.substr(0, 80));
    REQUIRE(doc.size() <= page_size);
    char* at = base + page_size - doc.size();
    std::memcpy(at, doc.data(), doc.size());
    auto d = read(std::string_view(at, doc.size()));
    CHECK(d.ok() == (doc.size() > 100));  // only the real description is usable
  }
  ::munmap(mem, 2 * page_size);
}
