#include <catch2/catch.hpp>

#include <string>

#include "codec/ssdp_codec.hpp"

using namespace porthole;
using namespace porthole::detail;

namespace {

// miniupnpd 2.3.1's answer to an M-SEARCH for IGD:1 (IGDv2 build, so it answers with
// its own version), as captured in the lab: CRLF line ends, upper-case names.
const std::string kMiniupnpdReply =
    "HTTP/1.1 200 OK\r\n"
    "CACHE-CONTROL: max-age=120\r\n"
    "ST: urn:schemas-upnp-org:device:InternetGatewayDevice:2\r\n"
    "USN: uuid:aabbccdd-1111-2222-3333-444455556666::urn:schemas-upnp-org:device:"
    "InternetGatewayDevice:2\r\n"
    "EXT:\r\n"
    "SERVER: Debian/12 UPnP/1.1 MiniUPnPd/2.3.1\r\n"
    "LOCATION: http://192.168.1.1:5000/rootDesc.xml\r\n"
    "OPT: \"http://schemas.upnp.org/upnp/1/0/\"; ns=01\r\n"
    "01-NLS: 1\r\n"
    "BOOTID.UPNP.ORG: 1\r\n"
    "CONFIGID.UPNP.ORG: 1337\r\n"
    "\r\n";

}  // namespace

TEST_CASE("build_msearch produces the UDA 1.1 request", "[ssdp]") {
  CHECK(ssdp::build_msearch(ssdp::kIgd1, 1) ==
        "M-SEARCH * HTTP/1.1\r\n"
        "HOST: 239.255.255.250:1900\r\n"
        "MAN: \"ssdp:discover\"\r\n"
        "MX: 1\r\n"
        "ST: urn:schemas-upnp-org:device:InternetGatewayDevice:1\r\n"
        "\r\n");
}

TEST_CASE("build_msearch clamps MX to 1..5", "[ssdp]") {
  CHECK_THAT(ssdp::build_msearch("ssdp:all", 0), Catch::Contains("\r\nMX: 1\r\n"));
  CHECK_THAT(ssdp::build_msearch("ssdp:all", -7), Catch::Contains("\r\nMX: 1\r\n"));
  CHECK_THAT(ssdp::build_msearch("ssdp:all", 3), Catch::Contains("\r\nMX: 3\r\n"));
  CHECK_THAT(ssdp::build_msearch("ssdp:all", 120), Catch::Contains("\r\nMX: 5\r\n"));
}

TEST_CASE("build_msearch cannot be split into extra headers", "[ssdp]") {
  std::string req = ssdp::build_msearch("ssdp:all\r\nMAN: evil\r\n", 1);
  CHECK_THAT(req, Catch::Contains("ST: ssdp:allMAN: evil\r\n"));
  CHECK(req.find("\r\nMAN: evil") == std::string::npos);
}

TEST_CASE("a real miniupnpd answer parses", "[ssdp]") {
  auto r = ssdp::parse_search_response(kMiniupnpdReply);
  REQUIRE(r.ok());
  CHECK(r->location == "http://192.168.1.1:5000/rootDesc.xml");
  CHECK(r->st == "urn:schemas-upnp-org:device:InternetGatewayDevice:2");
  CHECK(r->usn ==
        "uuid:aabbccdd-1111-2222-3333-444455556666::urn:schemas-upnp-org:device:"
        "InternetGatewayDevice:2");
  CHECK(r->server == "Debian/12 UPnP/1.1 MiniUPnPd/2.3.1");
  CHECK(ssdp::denotes_igd(*r));
}

TEST_CASE("the byte-span overload parses the same datagram", "[ssdp]") {
  std::vector<std::uint8_t> bytes(kMiniupnpdReply.begin(), kMiniupnpdReply.end());
  auto r = ssdp::parse_search_response(std::span<const std::uint8_t>(bytes));
  REQUIRE(r.ok());
  CHECK(r->location == "http://192.168.1.1:5000/rootDesc.xml");
}

TEST_CASE("LF-only line ends, mixed-case names and odd blanks are tolerated", "[ssdp]") {
  const std::string reply =
      "HTTP/1.1 200 OK\n"
      "Cache-Control: max-age=1800\n"
      "Location:http://192.168.0.1:49152/gatedesc.xml  \n"
      "sErVeR: Linux/2.6 UPnP/1.0 Fritz!Box/1.0\n"
      "st:\turn:schemas-upnp-org:service:WANIPConnection:1\n"
      "Usn: uuid:1234::urn:schemas-upnp-org:service:WANIPConnection:1\n"
      "\n";
  auto r = ssdp::parse_search_response(reply);
  REQUIRE(r.ok());
  CHECK(r->location == "http://192.168.0.1:49152/gatedesc.xml");
  CHECK(r->st == "urn:schemas-upnp-org:service:WANIPConnection:1");
  CHECK(r->server == "Linux/2.6 UPnP/1.0 Fritz!Box/1.0");
  CHECK(ssdp::denotes_igd(*r));
}

TEST_CASE("a datagram without the final empty line still parses", "[ssdp]") {
  auto r = ssdp::parse_search_response(
      "HTTP/1.1 200 OK\r\nST: urn:schemas-upnp-org:device:InternetGatewayDevice:1\r\n"
      "LOCATION: http://10.0.0.1:80/igd.xml");
  REQUIRE(r.ok());
  CHECK(r->location == "http://10.0.0.1:80/igd.xml");
}

TEST_CASE("a body after the header block is ignored", "[ssdp]") {
  auto r = ssdp::parse_search_response(
      "HTTP/1.1 200 OK\r\nLOCATION: http://10.0.0.1/a.xml\r\n\r\nLOCATION: http://127.0.0.1/");
  REQUIRE(r.ok());
  CHECK(r->location == "http://10.0.0.1/a.xml");
}

TEST_CASE("answers without LOCATION are refused", "[ssdp]") {
  auto r = ssdp::parse_search_response(
      "HTTP/1.1 200 OK\r\nST: urn:schemas-upnp-org:device:InternetGatewayDevice:1\r\n\r\n");
  REQUIRE_FALSE(r.ok());
  CHECK(r.error().code == Errc::internal);
  CHECK_THAT(r.error().message, Catch::Contains("no LOCATION"));
  CHECK_FALSE(ssdp::parse_search_response("HTTP/1.1 200 OK\r\nLOCATION:   \r\n\r\n").ok());
}

TEST_CASE("anything but an HTTP/1.1 200 status line is refused", "[ssdp]") {
  const char* const kBad[] = {
      "HTTP/1.1 404 Not Found\r\nLOCATION: http://10.0.0.1/a.xml\r\n\r\n",
      "HTTP/1.0 200 OK\r\nLOCATION: http://10.0.0.1/a.xml\r\n\r\n",
      "HTTP/1.1 2000 OK\r\nLOCATION: http://10.0.0.1/a.xml\r\n\r\n",
      "NOTIFY * HTTP/1.1\r\nHOST: 239.255.255.250:1900\r\nLOCATION: http://10.0.0.1/a.xml\r\n",
      "M-SEARCH * HTTP/1.1\r\nHOST: 239.255.255.250:1900\r\nST: ssdp:all\r\n\r\n",
      "\r\nHTTP/1.1 200 OK\r\nLOCATION: http://10.0.0.1/a.xml\r\n\r\n",
      "",
  };
  for (const char* text : kBad) {
    INFO(text);
    CHECK_FALSE(ssdp::parse_search_response(text).ok());
  }
  // The reason phrase is not checked.
  CHECK(ssdp::parse_search_response("HTTP/1.1 200\r\nLOCATION: http://10.0.0.1/a.xml\r\n").ok());
}

TEST_CASE("oversized datagrams and lines are refused", "[ssdp]") {
  std::string head = "HTTP/1.1 200 OK\r\nLOCATION: http://10.0.0.1/a.xml\r\n";
  // Many short headers: the datagram as a whole is over the limit.
  std::string big = head;
  while (big.size() <= ssdp::kMaxDatagram) big += "X-Filler: 0123456789012345678901234567\r\n";
  big += "\r\n";
  auto r = ssdp::parse_search_response(big);
  REQUIRE_FALSE(r.ok());
  CHECK_THAT(r.error().message, Catch::Contains("more than 2048"));

  // One line over the line limit, in a datagram under the datagram limit.
  std::string long_line = head + "X-Long: " + std::string(ssdp::kMaxLine, 'a') + "\r\n\r\n";
  REQUIRE(long_line.size() <= ssdp::kMaxDatagram);
  auto l = ssdp::parse_search_response(long_line);
  REQUIRE_FALSE(l.ok());
  CHECK_THAT(l.error().message, Catch::Contains("line"));

  // At the line limit exactly: accepted.
  std::string at_limit = head + "X-Long: " + std::string(ssdp::kMaxLine - 8, 'a') + "\r\n\r\n";
  CHECK(ssdp::parse_search_response(at_limit).ok());
}

TEST_CASE("NUL and control bytes are refused", "[ssdp]") {
  std::string with_nul = "HTTP/1.1 200 OK\r\nLOCATION: http://10.0.0.1/a.xml";
  with_nul.push_back('\0');
  with_nul += "http://127.0.0.1/\r\n\r\n";
  CHECK_FALSE(ssdp::parse_search_response(with_nul).ok());
  CHECK_FALSE(ssdp::parse_search_response(
                  "HTTP/1.1 200 OK\r\nSERVER: x\x1b[31mred\r\nLOCATION: http://10.0.0.1/\r\n")
                  .ok());
  // A lone CR inside a line is a control byte too (it could hide a second header).
  CHECK_FALSE(
      ssdp::parse_search_response("HTTP/1.1 200 OK\r\nLOCATION: http://10.0.0.1/\rST: x\r\n\r\n")
          .ok());
}

TEST_CASE("malformed or ambiguous header lines are refused", "[ssdp]") {
  CHECK_FALSE(
      ssdp::parse_search_response("HTTP/1.1 200 OK\r\nLOCATION http://10.0.0.1/a.xml\r\n\r\n")
          .ok());
  CHECK_FALSE(
      ssdp::parse_search_response("HTTP/1.1 200 OK\r\n: http://10.0.0.1/a.xml\r\n\r\n").ok());
  CHECK_FALSE(ssdp::parse_search_response(
                  "HTTP/1.1 200 OK\r\nLOCATION: http://10.0.0.1/a.xml\r\n  folded\r\n\r\n")
                  .ok());
  auto two = ssdp::parse_search_response(
      "HTTP/1.1 200 OK\r\nLOCATION: http://10.0.0.1/a.xml\r\nlocation: http://127.0.0.1/\r\n\r\n");
  REQUIRE_FALSE(two.ok());
  CHECK_THAT(two.error().message, Catch::Contains("two different"));
  // The same value twice is merely redundant.
  CHECK(ssdp::parse_search_response("HTTP/1.1 200 OK\r\nLOCATION: "
                                    "http://10.0.0.1/a.xml\r\nLOCATION: http://10.0.0.1/a.xml\r\n")
            .ok());
}

TEST_CASE("classify_target knows the IGD types, v1 and v2", "[ssdp]") {
  using ssdp::TargetKind;
  CHECK(ssdp::classify_target(ssdp::kIgd1) == TargetKind::igd_device);
  CHECK(ssdp::classify_target(ssdp::kIgd2) == TargetKind::igd_device);
  CHECK(ssdp::classify_target(ssdp::kWanIp1) == TargetKind::wan_ip_service);
  CHECK(ssdp::classify_target(ssdp::kWanIp2) == TargetKind::wan_ip_service);
  CHECK(ssdp::classify_target("urn:schemas-upnp-org:service:WANPPPConnection:1") ==
        TargetKind::wan_ppp_service);
  CHECK(ssdp::classify_target("URN:SCHEMAS-UPNP-ORG:DEVICE:INTERNETGATEWAYDEVICE:1") ==
        TargetKind::igd_device);
  CHECK(ssdp::classify_target("uuid:x::urn:schemas-upnp-org:device:InternetGatewayDevice:2") ==
        TargetKind::igd_device);
  CHECK(ssdp::classify_target("urn:dslforum-org:device:InternetGatewayDevice:1") ==
        TargetKind::igd_device);
  CHECK(ssdp::classify_target("urn:dslforum-org:service:WANIPConnection:1") ==
        TargetKind::wan_ip_service);
  CHECK(ssdp::classify_target("urn:dslforum-org:service:WANPPPConnection:1") ==
        TargetKind::wan_ppp_service);
  CHECK(ssdp::classify_target("urn:dslforum-org:device:LANDevice:1") == TargetKind::other);

  CHECK(ssdp::classify_target("urn:schemas-upnp-org:device:InternetGatewayDevice:3") ==
        TargetKind::other);
  CHECK(ssdp::classify_target("urn:schemas-upnp-org:service:WANIPConnection:10") ==
        TargetKind::other);
  CHECK(ssdp::classify_target("urn:schemas-upnp-org:device:InternetGatewayDevice:") ==
        TargetKind::other);
  CHECK(ssdp::classify_target("urn:schemas-upnp-org:device:MediaRenderer:1") == TargetKind::other);
  CHECK(ssdp::classify_target("upnp:rootdevice") == TargetKind::other);
  CHECK(ssdp::classify_target("ssdp:all") == TargetKind::other);
  CHECK(ssdp::classify_target("uuid:aabbccdd-1111") == TargetKind::other);
  CHECK(ssdp::classify_target("") == TargetKind::other);
}

TEST_CASE("devices answering with another type are not IGDs", "[ssdp]") {
  // A TV answering ssdp:all with its own type.
  auto tv = ssdp::parse_search_response(
      "HTTP/1.1 200 OK\r\n"
      "ST: urn:schemas-upnp-org:device:MediaRenderer:1\r\n"
      "USN: uuid:tv-1::urn:schemas-upnp-org:device:MediaRenderer:1\r\n"
      "LOCATION: http://192.168.1.50:8080/dmr.xml\r\n\r\n");
  REQUIRE(tv.ok());
  CHECK_FALSE(ssdp::denotes_igd(*tv));

  // ST decides when present, even if the USN claims otherwise.
  ssdp::SearchResponse root{"http://192.168.1.1/", "upnp:rootdevice",
                            "uuid:x::urn:schemas-upnp-org:device:InternetGatewayDevice:1", ""};
  CHECK_FALSE(ssdp::denotes_igd(root));

  // Without ST, the USN's type is used.
  ssdp::SearchResponse no_st{"http://192.168.1.1/", "",
                             "uuid:x::urn:schemas-upnp-org:service:WANPPPConnection:1", ""};
  CHECK(ssdp::denotes_igd(no_st));
  ssdp::SearchResponse nothing{"http://192.168.1.1/", "", "uuid:x", ""};
  CHECK_FALSE(ssdp::denotes_igd(nothing));
}
