// build_soap_request: golden bytes (the layout miniupnpc's simpleUPnPcommand sent, which
// miniupnpd and the routers porthole met accept), escaping, and refusals.
#include <catch2/catch.hpp>

#include <string>

#include "codec/soap_envelope.hpp"

using namespace porthole;
using namespace porthole::detail;

namespace {
constexpr const char* kService = "urn:schemas-upnp-org:service:WANIPConnection:2";
}

TEST_CASE("SOAP request: AddPortMapping, golden bytes", "[soap]") {
  auto r = build_soap_request(kService, "AddPortMapping",
                              {{"NewRemoteHost", ""},
                               {"NewExternalPort", "8080"},
                               {"NewProtocol", "TCP"},
                               {"NewInternalPort", "8080"},
                               {"NewInternalClient", "192.168.1.100"},
                               {"NewEnabled", "1"},
                               {"NewPortMappingDescription", "porthole"},
                               {"NewLeaseDuration", "3600"}});
  REQUIRE(r.ok());
  CHECK(r->soap_action == "\"urn:schemas-upnp-org:service:WANIPConnection:2#AddPortMapping\"");
  CHECK(r->body ==
        "<?xml version=\"1.0\"?>\r\n"
        "<s:Envelope xmlns:s=\"http://schemas.xmlsoap.org/soap/envelope/\" "
        "s:encodingStyle=\"http://schemas.xmlsoap.org/soap/encoding/\">"
        "<s:Body>"
        "<u:AddPortMapping xmlns:u=\"urn:schemas-upnp-org:service:WANIPConnection:2\">"
        "<NewRemoteHost></NewRemoteHost>"
        "<NewExternalPort>8080</NewExternalPort>"
        "<NewProtocol>TCP</NewProtocol>"
        "<NewInternalPort>8080</NewInternalPort>"
        "<NewInternalClient>192.168.1.100</NewInternalClient>"
        "<NewEnabled>1</NewEnabled>"
        "<NewPortMappingDescription>porthole</NewPortMappingDescription>"
        "<NewLeaseDuration>3600</NewLeaseDuration>"
        "</u:AddPortMapping></s:Body></s:Envelope>\r\n");
}

TEST_CASE("SOAP request: an action without arguments", "[soap]") {
  auto r = build_soap_request(kService, "GetExternalIPAddress", {});
  REQUIRE(r.ok());
  CHECK(r->body ==
        "<?xml version=\"1.0\"?>\r\n"
        "<s:Envelope xmlns:s=\"http://schemas.xmlsoap.org/soap/envelope/\" "
        "s:encodingStyle=\"http://schemas.xmlsoap.org/soap/encoding/\">"
        "<s:Body>"
        "<u:GetExternalIPAddress xmlns:u=\"urn:schemas-upnp-org:service:WANIPConnection:2\">"
        "</u:GetExternalIPAddress></s:Body></s:Envelope>\r\n");
}

TEST_CASE("SOAP request: values and the service type are escaped", "[soap]") {
  auto r = build_soap_request("urn:x&y<z>'", "AddPortMapping",
                              {{"NewPortMappingDescription", "a<b>&\"c\"'d'</u:AddPortMapping>"}});
  REQUIRE(r.ok());
  CHECK(r->body.find("xmlns:u=\"urn:x&amp;y&lt;z&gt;&apos;\">") != std::string::npos);
  CHECK(r->body.find("<NewPortMappingDescription>a&lt;b&gt;&amp;&quot;c&quot;&apos;d&apos;"
                     "&lt;/u:AddPortMapping&gt;</NewPortMappingDescription>") != std::string::npos);
  CHECK(xml_escape("plain text 1.2.3.4") == "plain text 1.2.3.4");
}

TEST_CASE("SOAP request: what cannot go into a header or an element name is refused", "[soap]") {
  // The service type comes from the device: a CR LF in it would add header lines.
  for (const char* service :
       {"", "urn:a\r\nX-Evil: 1", "urn:\"quoted\"", "urn:\x7f", "urn:\xc3\xa9"}) {
    INFO(service);
    auto r = build_soap_request(service, "GetExternalIPAddress", {});
    REQUIRE_FALSE(r.ok());
    CHECK(r.error().code == Errc::usage);
  }
  for (const char* action : {"", "Get External", "Get#X", "a:b"}) {
    INFO(action);
    CHECK_FALSE(build_soap_request(kService, action, {}).ok());
  }
  CHECK_FALSE(build_soap_request(kService, "AddPortMapping", {{"New Port", "1"}}).ok());
  CHECK_FALSE(build_soap_request(kService, "AddPortMapping", {{"", "1"}}).ok());
}
