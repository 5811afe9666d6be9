// The only file that includes <miniupnpc/...>.
//
// miniupnpc parses what porthole's own bounded HTTP brings back: the description
// (parserootdesc), the SOAP answers (ParseNameValue, the parser its UPNP_* calls use)
// and the IGDv2 port listing (ParsePortListing). Its HTTP reader, which has no bound
// in size or time, is never used.
#include "codec/igd_xml.hpp"

// miniupnpctypes.h picks UNSIGNED_INTEGER by __STDC_VERSION__, which a C++ compiler does
// not define: C++ would read struct PortMapping with a 4-byte leaseTime where the C
// library (C99) wrote 8 bytes, and every field after it at the wrong offset (the ports
// came out 0). Give C++ the library's layout before portlistingparse.h uses it.
#include <miniupnpc/miniupnpctypes.h>
#undef UNSIGNED_INTEGER
#define UNSIGNED_INTEGER unsigned long long

#include <miniupnpc/miniupnpc.h>
#include <miniupnpc/portlistingparse.h>
#include <miniupnpc/upnperrors.h>
#include <miniupnpc/upnpreplyparse.h>

#include <algorithm>
#include <charconv>
#include <cstring>
#include <limits>

#include <fmt/format.h>

#include "codec/ascii.hpp"

namespace porthole::detail {
namespace {

// miniupnpc 2.2.4's XML parser (parsexml, under parserootdesc, ParseNameValue and
// ParsePortListing) reads one byte past the end of its buffer when the document ends
// just after a ':' in an element name (a namespace prefix: "<a:"; found by
// fuzz_igd_description). Whatever it reads there must be ours, not the next heap block
// (or an unmapped page): it parses a copy followed by NUL bytes that the size it is
// told leaves out.
std::string with_parser_slack(std::string_view xml) {
  constexpr std::size_t kParserSlack = 16;
  std::string buffer;
  buffer.reserve(xml.size() + kParserSlack);
  buffer.append(xml);
  buffer.append(kParserSlack, '\0');
  return buffer;
}

// An errorCode as UPnP writes it: a decimal number, 1..9999 (UDA 1.1 s3.2.2 gives
// 401..899; vendors use more), blanks around it tolerated.
std::optional<int> parse_error_code(std::string_view text) {
  text = trim_xml_space(text);
  int v = 0;
  auto [p, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (text.empty() || ec != std::errc() || p != text.data() + text.size() || v < 1 || v > 9999)
    return std::nullopt;
  return v;
}

// The five entities XML predefines (XML 1.0 s4.6); anything else is left as it is.
std::string unescape_xml(std::string_view s) {
  static constexpr std::pair<std::string_view, char> kEntities[] = {
      {"&lt;", '<'}, {"&gt;", '>'}, {"&amp;", '&'}, {"&quot;", '"'}, {"&apos;", '\''}};
  std::string out;
  out.reserve(s.size());
  for (std::size_t i = 0; i < s.size();) {
    bool replaced = false;
    if (s[i] == '&')
      for (const auto& [name, c] : kEntities)
        if (s.compare(i, name.size(), name) == 0) {
          out.push_back(c);
          i += name.size();
          replaced = true;
          break;
        }
    if (!replaced) out.push_back(s[i++]);
  }
  return out;
}

template <std::size_t N>
std::string bounded(const char (&text)[N]) {
  return std::string(text, ::strnlen(text, N));
}

// The text of the first element <name> in `block`, blanks trimmed ("" when none).
std::string_view element_text(std::string_view block, std::string_view name) {
  const std::string open = fmt::format("<{}>", name);
  const auto start = block.find(open);
  if (start == std::string_view::npos) return {};
  const auto from = start + open.size();
  const auto end = block.find('<', from);
  if (end == std::string_view::npos) return {};
  return trim_xml_space(block.substr(from, end - from));
}

struct ServiceElement {
  std::string type;
  std::string control_url;  // as written: relative or absolute
};

// The WAN connection services of a description, in document order (UDA 1.1 s2.3: each
// <service> of a <serviceList> names its serviceType and controlURL), at most
// kMaxWanServices. Entries whose texts miniupnpc's fixed fields could not hold are left
// out: GetUPNPUrls would resolve a cut-off URL.
std::vector<ServiceElement> wan_service_elements(std::string_view xml) {
  constexpr std::string_view kOpen = "<service>";
  constexpr std::string_view kClose = "</service>";
  std::vector<ServiceElement> out;
  std::size_t pos = 0;
  while (out.size() < kMaxWanServices) {
    const auto start = xml.find(kOpen, pos);
    if (start == std::string_view::npos) break;
    auto end = xml.find(kClose, start);
    if (end == std::string_view::npos) end = xml.size();
    // A <service> left open ends where the next one starts.
    const auto next = xml.find(kOpen, start + kOpen.size());
    if (next != std::string_view::npos && next < end) end = next;
    const std::string_view block = xml.substr(start, end - start);
    pos = end;
    const std::string_view type = element_text(block, "serviceType");
    const std::string_view control = element_text(block, "controlURL");
    if (!is_wan_connection_service(type) || control.empty() ||
        control.size() >= MINIUPNPC_URL_MAXSIZE)
      continue;
    out.push_back({std::string(type), std::string(control)});
  }
  return out;
}

// `control_url` resolved as miniupnpc resolves the control URL of the first service it
// keeps (against URLBase, else the LOCATION): `data` is a copy whose first service is
// replaced. "" when it yields none.
std::string resolve_control_url(IGDdatas data, std::string_view control_url,
                                const std::string& location) {
  std::memset(data.first.controlurl, 0, sizeof(data.first.controlurl));
  std::memcpy(data.first.controlurl, control_url.data(),
              std::min(control_url.size(), sizeof(data.first.controlurl) - 1));
  UPNPUrls urls{};
  ::GetUPNPUrls(&urls, &data, location.c_str(), 0);
  std::string control = urls.controlURL ? urls.controlURL : "";
  ::FreeUPNPUrls(&urls);
  return control;
}

bool is_v2_service(std::string_view service_type) {
  return service_type.size() > 2 && service_type.compare(service_type.size() - 2, 2, ":2") == 0;
}

}  // namespace

std::optional<std::string> SoapReply::value(const std::string& name) const {
  auto it = values.find(name);
  if (it == values.end()) return std::nullopt;
  return it->second;
}

std::string upnp_error_text(int code) {
  const char* s = ::strupnperror(code);
  return s ? fmt::format("{} ({})", s, code) : fmt::format("UPnP error {}", code);
}

Result<SoapReply> read_soap_reply(std::string_view body, int http_status) {
  if (body.size() > kMaxSoapReplyBytes)
    return make_error(Errc::internal, fmt::format("SOAP answer of {} bytes is more than the "
                                                  "{} allowed",
                                                  body.size(), kMaxSoapReplyBytes));
  const std::string buffer = with_parser_slack(body);
  NameValueParserData data{};
  ::ParseNameValue(buffer.data(), static_cast<int>(body.size()), &data);
  SoapReply reply;
  // miniupnpc keeps the elements newest first, and looks names up from the head: the
  // first of each name here is the one its UPNP_* calls would have used.
  for (const NameValue* nv = data.l_head; nv != nullptr; nv = nv->l_next)
    reply.values.emplace(bounded(nv->name), bounded(nv->value));
  if (data.portListing != nullptr && data.portListingLength >= 0)
    reply.port_listing.emplace(data.portListing, static_cast<std::size_t>(data.portListingLength));
  ::ClearNameValueList(&data);

  auto code = reply.value("errorCode");
  if (code) {
    auto parsed = parse_error_code(*code);
    if (!parsed)
      return make_error(Errc::internal, fmt::format("SOAP fault with an errorCode that is not "
                                                    "a UPnP error code: '{}'",
                                                    printable_excerpt(*code, 40)));
    reply.fault = *parsed;
  } else if (http_status != 200) {
    return make_error(Errc::internal,
                      fmt::format("HTTP status {} without a UPnP errorCode in the answer",
                                  http_status),
                      http_status);
  }
  return reply;
}

Result<std::vector<UpnpEntry>> read_port_listing(std::string_view document) {
  if (document.size() > kMaxSoapReplyBytes)
    return make_error(Errc::internal, "the port listing is larger than a SOAP answer may be");
  std::string text(trim_xml_space(document));
  if (text.rfind("&lt;", 0) == 0) text = unescape_xml(text);
  if (text.find("PortMappingList") == std::string::npos)
    return make_error(Errc::internal,
                      fmt::format("the port listing is no PortMappingList document: '{}'",
                                  printable_excerpt(text, 60)));
  const std::string buffer = with_parser_slack(text);
  PortMappingParserData data{};
  ::ParsePortListing(buffer.data(), static_cast<int>(text.size()), &data);
  std::vector<UpnpEntry> out;
  // miniupnpc puts each new row at the head of its list: walk it, then reverse.
  for (const PortMapping* pm = data.l_head; pm != nullptr; pm = pm->l_next) {
    if (pm->externalPort == 0) continue;
    UpnpEntry e;
    const std::string proto = bounded(pm->protocol);
    e.transport = ascii_iequals(proto, "UDP") ? Transport::udp : Transport::tcp;
    e.external_port = pm->externalPort;
    e.internal_ip = bounded(pm->internalClient);
    e.internal_port = pm->internalPort;
    e.description = bounded(pm->description);
    e.enabled = pm->enabled != 0;
    e.lease = static_cast<std::uint32_t>(
        std::min<UNSIGNED_INTEGER>(pm->leaseTime, std::numeric_limits<std::uint32_t>::max()));
    out.push_back(std::move(e));
  }
  ::FreePortListing(&data);
  std::reverse(out.begin(), out.end());
  return out;
}

bool is_wan_connection_service(std::string_view service_type) {
  for (std::string_view ns : {"urn:schemas-upnp-org:service:", "urn:dslforum-org:service:"}) {
    if (service_type.substr(0, ns.size()) != ns) continue;
    const std::string_view rest = service_type.substr(ns.size());
    return rest == "WANIPConnection:1" || rest == "WANIPConnection:2" ||
           rest == "WANPPPConnection:1";
  }
  return false;
}

std::optional<std::string> read_udn(std::string_view xml) {
  constexpr std::string_view kOpen = "<UDN>";
  const auto start = xml.find(kOpen);
  if (start == std::string_view::npos) return std::nullopt;
  const auto from = start + kOpen.size();
  const auto end = xml.find('<', from);
  if (end == std::string_view::npos) return std::nullopt;
  const std::string_view text = trim_xml_space(xml.substr(from, end - from));
  if (text.empty() || text.size() > kMaxUdnLength) return std::nullopt;
  for (char c : text)
    if (c < 0x21 || c > 0x7e) return std::nullopt;
  return std::string(text);
}

Result<IgdDescription> read_igd_description(std::string_view xml, std::string_view location,
                                            std::string_view gateway_ip, std::string_view local_ip,
                                            int prefix_len, bool allow_lan_subnet) {
  // http_get bounds the body far below this; parserootdesc takes an int.
  if (xml.size() > static_cast<std::size_t>(std::numeric_limits<int>::max()))
    return make_error(Errc::no_service, "the UPnP device description is too large");
  std::string buffer = with_parser_slack(xml);
  IGDdatas data{};
  ::parserootdesc(buffer.data(), static_cast<int>(xml.size()), &data);
  std::vector<ServiceElement> elements = wan_service_elements(xml);
  // miniupnpc fills fixed 128-byte fields and may leave them unterminated when it
  // truncates: read them as bounded strings only. What it found stands in when our
  // reading finds nothing (element names with a namespace prefix).
  if (elements.empty() && !bounded(data.first.servicetype).empty() &&
      !bounded(data.first.controlurl).empty())
    elements.push_back({bounded(data.first.servicetype), bounded(data.first.controlurl)});
  if (elements.empty())
    return make_error(Errc::no_service,
                      fmt::format("the UPnP device at {} has no WANIPConnection or "
                                  "WANPPPConnection service",
                                  printable_excerpt(location)));
  const std::string location_text(location);
  IgdDescription out;
  std::optional<Error> refused;
  for (const ServiceElement& e : elements) {
    std::string control = resolve_control_url(data, e.control_url, location_text);
    if (control.empty()) {
      if (!refused)
        refused = make_error(Errc::no_service, "the UPnP device description has no control URL");
      continue;
    }
    // The controlURL is built from the description: the device chose it, so check it.
    auto ok = check_device_url(control, gateway_ip, allow_lan_subnet, local_ip, prefix_len,
                               "controlURL");
    if (!ok) {
      if (!refused) refused = ok.error();
      continue;
    }
    IgdService service;
    service.service_type = e.type;
    service.control_url = std::move(control);
    service.control = std::move(*ok);
    service.v2 = is_v2_service(e.type);
    out.services.push_back(std::move(service));
  }
  if (out.services.empty()) return *refused;
  static_cast<IgdService&>(out) = out.services.front();
  out.udn = read_udn(xml).value_or(std::string());
  return out;
}

std::string_view miniupnpc_version() noexcept { return MINIUPNPC_VERSION; }

}  // namespace porthole::detail
