// The UPnP table: IGDv2 GetListOfPortMappings (read_port_listing on miniupnpd's own
// answers, and UpnpClient against FakeIgd), the row-by-row walk it falls back to, and
// a table cut short by the deadline, which must say so.
#include <catch2/catch.hpp>

#include <chrono>
#include <string>
#include <vector>

#include "codec/igd_xml.hpp"
#include "fake_igd.hpp"
#include "proto/upnp_client.hpp"

using namespace porthole;
using namespace porthole::detail;
using porthole::test::FakeIgd;
using namespace std::chrono_literals;

namespace {

// Answers of miniupnpd 2.3.1 in the lab (tests/lab, `lab.sh up`, IGDv2) to
// GetListOfPortMappings: TCP 1-65535 with two rows (one added by upnpc with a '<' in its
// description, which miniupnpd stored as empty); UDP with lan1b's row whose description
// upnpc sent as the bytes h \xff ESC [31mX \n Y; an empty range; start > end.
const std::string kLabTcpTwoRows =
    "<?xml version=\"1.0\"?>\r\n<s:Envelope xmlns:s=\"http://schemas.xmlsoap.org/soap/enve"
    "lope/\" s:encodingStyle=\"http://schemas.xmlsoap.org/soap/encoding/\"><s:Body><u:GetL"
    "istOfPortMappingsResponse xmlns:u=\"urn:schemas-upnp-org:service:WANIPConnection:2\">"
    "<NewPortListing><![CDATA[<p:PortMappingList xmlns:p=\"urn:schemas-upnp-org:gw:WANIPCo"
    "nnection\" xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\" xsi:schemaLocation"
    "=\"urn:schemas-upnp-org:gw:WANIPConnection http://www.upnp.org/schemas/gw/WANIPConnec"
    "tion-v2.xsd\"><p:PortMappingEntry><p:NewRemoteHost></p:NewRemoteHost><p:NewExternalPo"
    "rt>40003</p:NewExternalPort><p:NewProtocol>TCP</p:NewProtocol><p:NewInternalPort>4000"
    "3</p:NewInternalPort><p:NewInternalClient>192.168.1.101</p:NewInternalClient><p:NewEn"
    "abled>1</p:NewEnabled><p:NewDescription></p:NewDescription><p:NewLeaseTime>604782</p:"
    "NewLeaseTime></p:PortMappingEntry><p:PortMappingEntry><p:NewRemoteHost></p:NewRemoteH"
    "ost><p:NewExternalPort>40001</p:NewExternalPort><p:NewProtocol>TCP</p:NewProtocol><p:"
    "NewInternalPort>40001</p:NewInternalPort><p:NewInternalClient>192.168.1.101</p:NewInt"
    "ernalClient><p:NewEnabled>1</p:NewEnabled><p:NewDescription>hostile desc</p:NewDescri"
    "ption><p:NewLeaseTime>604774</p:NewLeaseTime></p:PortMappingEntry></p:PortMappingList"
    ">]]></NewPortListing></u:GetListOfPortMappingsResponse></s:Body></s:Envelope>\r\n";

const std::string kLabUdpHostileRow =
    "<?xml version=\"1.0\"?>\r\n<s:Envelope xmlns:s=\"http://schemas.xmlsoap.org/soap/enve"
    "lope/\" s:encodingStyle=\"http://schemas.xmlsoap.org/soap/encoding/\"><s:Body><u:GetL"
    "istOfPortMappingsResponse xmlns:u=\"urn:schemas-upnp-org:service:WANIPConnection:2\">"
    "<NewPortListing><![CDATA[<p:PortMappingList xmlns:p=\"urn:schemas-upnp-org:gw:WANIPCo"
    "nnection\" xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\" xsi:schemaLocation"
    "=\"urn:schemas-upnp-org:gw:WANIPConnection http://www.upnp.org/schemas/gw/WANIPConnec"
    "tion-v2.xsd\"><p:PortMappingEntry><p:NewRemoteHost></p:NewRemoteHost><p:NewExternalPo"
    "rt>40002</p:NewExternalPort><p:NewProtocol>UDP</p:NewProtocol><p:NewInternalPort>4000"
    "2</p:NewInternalPort><p:NewInternalClient>192.168.1.101</p:NewInternalClient><p:NewEn"
    "abled>1</p:NewEnabled><p:NewDescription>h\xff"
    "\x1b"
    "[31mX\nY</p:NewDescription><p:Ne"
    "wLeaseTime>604782</p:NewLeaseTime></p:PortMappingEntry></p:PortMappingList>]]></NewPo"
    "rtListing></u:GetListOfPortMappingsResponse></s:Body></s:Envelope>\r\n";

const std::string kLabEmptyRange =
    "<?xml version=\"1.0\"?>\r\n<s:Envelope xmlns:s=\"http://schemas.xmlsoap.org/soap/enve"
    "lope/\" s:encodingStyle=\"http://schemas.xmlsoap.org/soap/encoding/\"><s:Body><u:GetL"
    "istOfPortMappingsResponse xmlns:u=\"urn:schemas-upnp-org:service:WANIPConnection:2\">"
    "<NewPortListing><![CDATA[<p:PortMappingList xmlns:p=\"urn:schemas-upnp-org:gw:WANIPCo"
    "nnection\" xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\" xsi:schemaLocation"
    "=\"urn:schemas-upnp-org:gw:WANIPConnection http://www.upnp.org/schemas/gw/WANIPConnec"
    "tion-v2.xsd\"></p:PortMappingList>]]></NewPortListing></u:GetListOfPortMappingsRespon"
    "se></s:Body></s:Envelope>\r\n";

const std::string kLabFault733 =
    "<s:Envelope xmlns:s=\"http://schemas.xmlsoap.org/soap/envelope/\" s:encodingStyle=\"h"
    "ttp://schemas.xmlsoap.org/soap/encoding/\"><s:Body><s:Fault><faultcode>s:Client</faul"
    "tcode><faultstring>UPnPError</faultstring><detail><UPnPError xmlns=\"urn:schemas-upnp"
    "-org:control-1-0\"><errorCode>733</errorCode><errorDescription>InconsistentParameter<"
    "/errorDescription></UPnPError></detail></s:Fault></s:Body></s:Envelope>";

std::vector<UpnpEntry> listing_of(const std::string& body, int status = 200) {
  auto reply = read_soap_reply(body, status);
  REQUIRE(reply.ok());
  REQUIRE(reply->fault == 0);
  REQUIRE(reply->port_listing);
  auto rows = read_port_listing(*reply->port_listing);
  REQUIRE(rows.ok());
  return *rows;
}

std::vector<std::string> indexes_asked(const FakeIgd& igd) {
  std::vector<std::string> out;
  for (const auto& r : igd.requests("GetGenericPortMappingEntry"))
    out.push_back(r.arg("NewPortMappingIndex"));
  return out;
}

}  // namespace

TEST_CASE("read_port_listing: miniupnpd's PortMappingList, in document order", "[upnp][soap]") {
  auto rows = listing_of(kLabTcpTwoRows);
  REQUIRE(rows.size() == 2);
  CHECK(rows[0].external_port == 40003);
  CHECK(rows[0].description.empty());
  CHECK(rows[1].transport == Transport::tcp);
  CHECK(rows[1].external_port == 40001);
  CHECK(rows[1].internal_port == 40001);
  CHECK(rows[1].internal_ip == "192.168.1.101");
  CHECK(rows[1].description == "hostile desc");
  CHECK(rows[1].lease == 604774);
  CHECK(rows[1].enabled);
}

TEST_CASE("read_port_listing keeps a hostile description's bytes as they came", "[upnp][soap]") {
  auto rows = listing_of(kLabUdpHostileRow);
  REQUIRE(rows.size() == 1);
  CHECK(rows[0].transport == Transport::udp);
  CHECK(rows[0].external_port == 40002);
  CHECK(rows[0].description == "h\xff\x1b[31mX\nY");  // escaping is the printer's job
}

TEST_CASE("read_port_listing: an empty range, a fault, entities, and no listing at all",
          "[upnp][soap]") {
  CHECK(listing_of(kLabEmptyRange).empty());
  auto fault = read_soap_reply(kLabFault733, 500);
  REQUIRE(fault.ok());
  CHECK(fault->fault == 733);
  // Written with entities instead of CDATA, as the IGDv2 specification's example does.
  auto escaped = read_port_listing(
      "&lt;p:PortMappingList xmlns:p=\"urn:schemas-upnp-org:gw:WANIPConnection\"&gt;"
      "&lt;p:PortMappingEntry&gt;&lt;p:NewExternalPort&gt;7000&lt;/p:NewExternalPort&gt;"
      "&lt;p:NewProtocol&gt;UDP&lt;/p:NewProtocol&gt;&lt;p:NewInternalPort&gt;7001"
      "&lt;/p:NewInternalPort&gt;&lt;p:NewInternalClient&gt;10.0.0.9&lt;/p:NewInternalClient&gt;"
      "&lt;p:NewDescription&gt;R&amp;amp;D&lt;/p:NewDescription&gt;"
      "&lt;/p:PortMappingEntry&gt;&lt;/p:PortMappingList&gt;");
  REQUIRE(escaped.ok());
  REQUIRE(escaped->size() == 1);
  CHECK((*escaped)[0].external_port == 7000);
  CHECK((*escaped)[0].internal_port == 7001);
  CHECK((*escaped)[0].transport == Transport::udp);
  CHECK((*escaped)[0].description == "R&amp;D");  // one level of entities, no more
  auto junk = read_port_listing("not a listing");
  REQUIRE_FALSE(junk.ok());
  CHECK(junk.error().code == Errc::internal);
  CHECK_FALSE(read_port_listing(std::string(kMaxSoapReplyBytes + 1, 'x')).ok());
  // Cut anywhere, the listing never makes the parser read past its bytes (ASan build).
  const auto whole = *read_soap_reply(kLabTcpTwoRows, 200)->port_listing;
  for (std::size_t n = 0; n < whole.size(); n += 7) (void)read_port_listing(whole.substr(0, n));
}

TEST_CASE("UPnP IGDv2: list takes the table in one GetListOfPortMappings per protocol",
          "[upnp][fake_igd]") {
  FakeIgd igd;
  igd.add_entry({"TCP", 5000, "127.0.0.1", 5000, "porthole test", 3600});
  igd.add_entry({"UDP", 5001, "10.0.0.9", 27015, "game", 0});
  igd.add_entry({"TCP", 8080, "10.0.0.9", 80, "web", 0});
  UpnpClient client(igd.gateway());
  auto table = client.list(Clock::now() + 10s);
  REQUIRE(table.ok());
  CHECK(table->complete);
  REQUIRE(table->entries.size() == 3);
  CHECK(table->entries[0].external_port == 5000);
  CHECK(table->entries[0].description == "porthole test");
  CHECK(table->entries[0].lease == 3600);
  CHECK(table->entries[1].external_port == 8080);
  CHECK(table->entries[2].transport == Transport::udp);
  CHECK(table->entries[2].internal_port == 27015);
  const auto pages = igd.requests("GetListOfPortMappings");
  REQUIRE(pages.size() == 2);
  CHECK(pages[0].arg("NewProtocol") == "TCP");
  CHECK(pages[1].arg("NewProtocol") == "UDP");
  CHECK(pages[0].arg("NewStartPort") == "1");
  CHECK(pages[0].arg("NewEndPort") == "65535");
  // One look at row 128 (is the table small enough?), no row-by-row walk.
  CHECK(indexes_asked(igd) == std::vector<std::string>{"128"});
}

TEST_CASE("UPnP IGDv2: a table of exactly 128 rows is listed in one answer", "[upnp][fake_igd]") {
  FakeIgd igd;
  for (std::uint16_t i = 0; i < 128; ++i)
    igd.add_entry({"TCP", static_cast<std::uint16_t>(20000 + i), "10.0.0.9", 80, "x", 0});
  UpnpClient client(igd.gateway());
  auto table = client.list(Clock::now() + 10s);
  REQUIRE(table.ok());
  CHECK(table->complete);
  CHECK(table->entries.size() == 128);
  CHECK(igd.requests("GetListOfPortMappings").size() == 2);
  CHECK(indexes_asked(igd) == std::vector<std::string>{"128"});
}

TEST_CASE("UPnP IGDv2: a table of more than 128 rows is read row by row, never listed",
          "[upnp][fake_igd]") {
  // miniupnpd 2.3.1 dies when the listed range holds more than 128 mappings.
  FakeIgd igd;
  for (std::uint16_t i = 0; i < 130; ++i)
    igd.add_entry({"TCP", static_cast<std::uint16_t>(20000 + i), "10.0.0.9", 80, "x", 0});
  UpnpClient client(igd.gateway());
  auto table = client.list(Clock::now() + 10s);
  REQUIRE(table.ok());
  CHECK(table->complete);
  CHECK(table->entries.size() == 130);
  CHECK(table->entries.back().external_port == 20129);
  CHECK(igd.requests("GetListOfPortMappings").empty());
}

TEST_CASE("UPnP IGDv2: a router without GetListOfPortMappings is read row by row",
          "[upnp][fake_igd]") {
  FakeIgd igd;
  igd.fail_action("GetListOfPortMappings", GENERATE(401, 602, 501));
  igd.add_entry({"TCP", 5000, "10.0.0.9", 5000, "a", 0});
  igd.add_entry({"UDP", 5000, "10.0.0.9", 5000, "b", 0});
  UpnpClient client(igd.gateway());
  auto table = client.list(Clock::now() + 10s);
  REQUIRE(table.ok());
  CHECK(table->complete);
  REQUIRE(table->entries.size() == 2);
  CHECK(table->entries[1].description == "b");
  CHECK(indexes_asked(igd) == std::vector<std::string>{"128", "0", "1", "2"});
}

TEST_CASE("UPnP: a table cut short by the deadline says so, with what it read",
          "[upnp][fake_igd]") {
  FakeIgd::Options o;
  o.igd_version = 1;
  FakeIgd igd(o);
  igd.add_entry({"TCP", 5000, "10.0.0.9", 5000, "a", 0});
  UpnpClient client(igd.gateway());
  // Discovery and the description first, then a router that answers no table row.
  REQUIRE(client.probe(Clock::now() + 10s).ok());
  igd.misbehave("GetGenericPortMappingEntry", FakeIgd::Hostile::drip);
  auto table = client.list(Clock::now() + 300ms);
  REQUIRE(table.ok());
  CHECK_FALSE(table->complete);
  REQUIRE(table->stopped);
  CHECK(table->stopped->code == Errc::timeout);
  CHECK(table->entries.empty());
}
