// libFuzzer target: read_igd_description, porthole's wrapper around miniupnpc's
// description parser: bytes -> parserootdesc -> GetUPNPUrls -> check_device_url of the
// control URL. It must never crash, leak or read out of bounds, whatever the XML
// (truncated, CDATA at the end, element names over 128 bytes, "<a:", ...).
// Properties: an accepted description names a WANIPConnection or WANPPPConnection
// service (the UPnP Forum's, or the DSL Forum's), the first of at most kMaxWanServices
// candidates, and every control URL is an http:// URL on the gateway, whatever URLBase
// or controlURL the device wrote.
//
// miniupnpc itself comes from the system (Debian's libminiupnpc, not instrumented):
// AddressSanitizer sees its memcpy/strlen/malloc through its interceptors, not its own
// loads and stores.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "codec/igd_xml.hpp"
#include "codec/url_check.hpp"
#include "fuzz_check.hpp"

using namespace porthole;
using namespace porthole::detail;

namespace {

constexpr const char* kGateway = "192.168.1.1";
constexpr const char* kLocal = "192.168.1.100";
constexpr const char* kLocation = "http://192.168.1.1:5000/rootDesc.xml";

bool starts_with(std::string_view text, std::string_view prefix) {
  return text.substr(0, prefix.size()) == prefix;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view xml(reinterpret_cast<const char*>(data), size);
  auto desc = read_igd_description(xml, kLocation, kGateway, kLocal, 24);
  if (!desc) {
    PORTHOLE_FUZZ_CHECK(desc.error().code == Errc::no_service);
    return 0;
  }
  PORTHOLE_FUZZ_CHECK(!desc->services.empty() && desc->services.size() <= kMaxWanServices);
  PORTHOLE_FUZZ_CHECK(desc->service_type == desc->services.front().service_type &&
                      desc->control_url == desc->services.front().control_url);
  for (const IgdService& s : desc->services) {
    const std::string_view service = s.service_type;
    PORTHOLE_FUZZ_CHECK(is_wan_connection_service(service) ||
                        starts_with(service, "urn:schemas-upnp-org:service:WANIPConnection:") ||
                        starts_with(service, "urn:schemas-upnp-org:service:WANPPPConnection:"));
    auto url = check_device_url(s.control_url, kGateway, false, kLocal, 24, "controlURL");
    PORTHOLE_FUZZ_CHECK(url.ok() && url->host == kGateway);
  }
  return 0;
}
