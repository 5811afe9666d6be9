// The only file that includes <miniupnpc/...>.
//
// Discovery, the description fetch and the SOAP exchanges are ours (ssdp_discovery,
// http_request: bounded in size and time); miniupnpc's own HTTP reader, which has
// neither bound, is never used. miniupnpc parses what we bring back: the description
// (parserootdesc) and the SOAP answers (ParseNameValue, the parser its UPNP_* calls
// use). Every URL the device hands back is re-checked before we talk to it.
#include "proto/upnp_client.hpp"

#include <miniupnpc/miniupnpc.h>
#include <miniupnpc/upnperrors.h>
#include <miniupnpc/upnpreplyparse.h>

#include <charconv>
#include <cstring>
#include <ctime>
#include <limits>
#include <string>

#include <fmt/format.h>

#include "codec/ascii.hpp"
#include "codec/url_check.hpp"
#include "net/http_get.hpp"
#include "net/ipv4_class.hpp"
#include "net/route.hpp"
#include "proto/ssdp_discovery.hpp"

namespace porthole::detail {
namespace {

// SOAP error codes of the UPnP IGD WANIPConnection service (its specification's error
// table; 501 and 725 also from routers' observed answers).
constexpr int kSuccess = 0;
constexpr int kInvalidArgs = 402;
constexpr int kActionFailed = 501;
constexpr int kNotAuthorized = 606;
constexpr int kNoSuchEntry = 714;
constexpr int kConflict = 718;
constexpr int kOnlyPermanentLeases = 725;

// How far past the wanted port an IGDv1 router is asked when the port is taken.
constexpr int kV1PortSearch = 16;
// A table longer than this is not read to the end (a hostile or broken router).
constexpr int kMaxTableEntries = 4096;

const char* proto_text(Transport t) { return t == Transport::udp ? "UDP" : "TCP"; }

std::uint16_t to_port(std::string_view s) {
  unsigned v = 0;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || v > 65535) return 0;
  return static_cast<std::uint16_t>(v);
}

std::uint32_t to_u32(std::string_view s) {
  std::uint32_t v = 0;
  std::from_chars(s.data(), s.data() + s.size(), v);
  return v;
}

std::string soap_error_text(int code) {
  const char* s = ::strupnperror(code);
  return s ? fmt::format("{} ({})", s, code) : fmt::format("UPnP error {}", code);
}

// miniupnpc 2.2.4's XML parser (parsexml, under both parserootdesc and ParseNameValue)
// reads one byte past the end of its buffer when the document ends just after a ':' in
// an element name (a namespace prefix: "<a:"; found by fuzz_igd_description, seed
// fuzz/corpus/igd_description/crash_parsexml_reads_past_namespace_prefix_at_end).
// Whatever it reads there must be ours, not the next heap block (or an unmapped page):
// it parses a copy followed by NUL bytes that the size it is told leaves out.
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

// The value of a SOAP answer element as a C++ string ("" when absent).
std::string text_of(const SoapReply& reply, const std::string& name) {
  return reply.value(name).value_or(std::string());
}

}  // namespace

std::optional<std::string> SoapReply::value(const std::string& name) const {
  auto it = values.find(name);
  if (it == values.end()) return std::nullopt;
  return it->second;
}

Result<SoapReply> read_soap_reply(std::string_view body, int http_status) {
  if (body.size() > kMaxSoapReplyBytes)
    return make_error(Errc::internal, fmt::format("SOAP answer of {} bytes is more than the "
                                                  "{} allowed", body.size(), kMaxSoapReplyBytes));
  const std::string buffer = with_parser_slack(body);
  NameValueParserData data{};
  ::ParseNameValue(buffer.data(), static_cast<int>(body.size()), &data);
  SoapReply reply;
  // miniupnpc keeps the elements newest first, and looks names up from the head: the
  // first of each name here is the one its UPNP_* calls would have used.
  for (const NameValue* nv = data.l_head; nv != nullptr; nv = nv->l_next)
    reply.values.emplace(std::string(nv->name, ::strnlen(nv->name, sizeof(nv->name))),
                         std::string(nv->value, ::strnlen(nv->value, sizeof(nv->value))));
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

Result<IgdDescription> read_igd_description(std::string_view xml, std::string_view location,
                                            std::string_view gateway_ip,
                                            std::string_view local_ip, int prefix_len,
                                            bool allow_lan_subnet) {
  // http_get bounds the body far below this; parserootdesc takes an int.
  if (xml.size() > static_cast<std::size_t>(std::numeric_limits<int>::max()))
    return make_error(Errc::no_service, "the UPnP device description is too large");
  std::string buffer = with_parser_slack(xml);
  IGDdatas data{};
  ::parserootdesc(buffer.data(), static_cast<int>(xml.size()), &data);
  // miniupnpc fills fixed 128-byte fields and may leave them unterminated when it
  // truncates: read them as bounded strings only.
  auto field = [](const char (&text)[MINIUPNPC_URL_MAXSIZE]) {
    return std::string(text, ::strnlen(text, sizeof(text)));
  };
  const std::string service = field(data.first.servicetype);
  if (service.empty() || field(data.first.controlurl).empty())
    return make_error(Errc::no_service,
                      fmt::format("the UPnP device at {} has no WANIPConnection or "
                                  "WANPPPConnection service", printable_excerpt(location)));
  const std::string location_text(location);
  UPNPUrls urls{};
  ::GetUPNPUrls(&urls, &data, location_text.c_str(), 0);
  std::string control = urls.controlURL ? urls.controlURL : "";
  ::FreeUPNPUrls(&urls);
  if (control.empty())
    return make_error(Errc::no_service, "the UPnP device description has no control URL");
  // The controlURL is built from the description: the device chose it, so check it.
  auto ok = check_device_url(control, gateway_ip, allow_lan_subnet, local_ip, prefix_len,
                             "controlURL");
  if (!ok) return ok.error();
  IgdDescription out;
  out.service_type = service;
  out.control_url = std::move(control);
  out.control = std::move(*ok);
  out.v2 = service.size() > 2 && service.compare(service.size() - 2, 2, ":2") == 0;
  return out;
}

struct UpnpClient::Device {
  IgdDescription desc;
  std::string location;
  std::string ext_ip;
  bool ext_ip_known = false;
  bool v2() const { return desc.v2; }
};

UpnpClient::UpnpClient(GatewayInfo info) : info_(std::move(info)) {}
UpnpClient::~UpnpClient() = default;

Status UpnpClient::ensure_device(Deadline deadline) {
  if (dev_) return ok_status();
  auto found = discover_igd(info_, deadline);
  if (!found) return found.error();
  log_to(info_.log, LogLevel::debug,
         fmt::format("upnp <- IGD at {} ({}) after {} ms", found->location, found->st,
                     found->elapsed.count()));
  auto xml = http_get(found->url, deadline);
  if (!xml) return xml.error();

  auto desc = read_igd_description(*xml, found->location, info_.gateway_ip, info_.local_ip,
                                   prefix_length_of(info_.local_ip), info_.upnp_allow_lan);
  if (!desc) return desc.error();
  auto dev = std::make_unique<Device>();
  dev->desc = std::move(*desc);
  dev->location = found->location;
  log_to(info_.log, LogLevel::debug,
         fmt::format("upnp    control {} service {}", printable_excerpt(dev->desc.control_url),
                     printable_excerpt(dev->desc.service_type)));
  dev_ = std::move(dev);
  return ok_status();
}

Result<std::string> UpnpClient::external_ip(Deadline deadline) {
  if (auto st = ensure_device(deadline); !st) return st.error();
  if (dev_->ext_ip_known) return dev_->ext_ip;
  auto reply = soap("GetExternalIPAddress", {}, deadline);
  if (!reply) return reply.error();
  std::string ip = text_of(*reply, "NewExternalIPAddress");
  log_to(info_.log, LogLevel::debug,
         fmt::format("upnp <- GetExternalIPAddress: {} ({})",
                     ip.empty() ? "(empty)" : printable_excerpt(ip, 40), reply->fault));
  // miniupnpd without an external address answers 501 or an empty string: both mean
  // "no usable address", not "no UPnP". (The caller checks the address itself.)
  dev_->ext_ip = reply->fault == kSuccess ? ip : "";
  dev_->ext_ip_known = true;
  return dev_->ext_ip;
}

Result<SoapReply> UpnpClient::soap(std::string_view action,
                                   const std::vector<SoapArgument>& args, Deadline deadline) {
  auto request = build_soap_request(dev_->desc.service_type, action, args);
  if (!request) return request.error();
  HttpRequest post;
  post.method = "POST";
  post.headers = {{"Content-Type", "text/xml; charset=\"utf-8\""},
                  {"SOAPAction", request->soap_action}};
  post.body = request->body;
  post.read_500 = true;
  auto answer = http_request(dev_->desc.control, post, deadline, kMaxSoapReplyBytes);
  if (!answer) {
    Error e = std::move(answer).error();
    e.message = fmt::format("UPnP {}: {}", action, e.message);
    return e;
  }
  auto reply = read_soap_reply(answer->body, answer->status);
  if (!reply) {
    Error e = std::move(reply).error();
    e.message = fmt::format("UPnP {}: {}", action, e.message);
    return e;
  }
  return reply;
}

void UpnpClient::refresh_external_ip() {
  if (dev_) dev_->ext_ip_known = false;
}

Result<ProbeInfo> UpnpClient::probe(Deadline deadline) {
  auto ip = external_ip(deadline);
  if (!ip) return ip.error();
  ProbeInfo info;
  if (!is_unusable_external_ip(*ip)) info.external_ip = *ip;
  return info;
}

Result<std::optional<UpnpEntry>> UpnpClient::find(Transport transport,
                                                  std::uint16_t external_port,
                                                  Deadline deadline) {
  if (auto st = ensure_device(deadline); !st) return st.error();
  std::string ext = std::to_string(external_port);
  auto reply = soap("GetSpecificPortMappingEntry",
                    {{"NewRemoteHost", ""},
                     {"NewExternalPort", ext},
                     {"NewProtocol", proto_text(transport)}},
                    deadline);
  if (!reply) return reply.error();
  int r = reply->fault;
  if (r == kNoSuchEntry) return std::optional<UpnpEntry>{};
  if (r != kSuccess)
    return make_error(Errc::refused,
                      fmt::format("the router did not say what is on external {} port {}: {}",
                                  proto_text(transport), external_port, soap_error_text(r)),
                      r);
  // miniupnpc counts an answer without the internal client as a failed call.
  auto client = reply->value("NewInternalClient");
  if (!client)
    return make_error(Errc::internal,
                      fmt::format("the router's answer for external {} port {} names no "
                                  "internal client", proto_text(transport), external_port));
  UpnpEntry e;
  e.transport = transport;
  e.external_port = external_port;
  e.internal_ip = *client;
  e.internal_port = to_port(text_of(*reply, "NewInternalPort"));
  e.description = text_of(*reply, "NewPortMappingDescription");
  e.enabled = text_of(*reply, "NewEnabled") != "0";
  e.lease = to_u32(text_of(*reply, "NewLeaseDuration"));
  return std::optional<UpnpEntry>{std::move(e)};
}

Result<std::vector<UpnpEntry>> UpnpClient::list(Deadline deadline) {
  if (auto st = ensure_device(deadline); !st) return st.error();
  std::vector<UpnpEntry> out;
  for (int i = 0; i < kMaxTableEntries && !expired(deadline); ++i) {
    const std::string index = std::to_string(i);
    auto reply = soap("GetGenericPortMappingEntry", {{"NewPortMappingIndex", index}}, deadline);
    // 713 SpecifiedArrayIndexInvalid is the end of the table; any other fault, a row
    // without its external port (miniupnpc's test) or a failed exchange ends it too.
    if (!reply || reply->fault != kSuccess || !reply->value("NewExternalPort")) break;
    const std::string proto = text_of(*reply, "NewProtocol");
    UpnpEntry e;
    e.transport = (proto == "UDP" || proto == "udp") ? Transport::udp : Transport::tcp;
    e.external_port = to_port(text_of(*reply, "NewExternalPort"));
    e.internal_ip = text_of(*reply, "NewInternalClient");
    e.internal_port = to_port(text_of(*reply, "NewInternalPort"));
    e.description = text_of(*reply, "NewPortMappingDescription");
    e.enabled = text_of(*reply, "NewEnabled") != "0";
    e.lease = to_u32(text_of(*reply, "NewLeaseDuration"));
    out.push_back(std::move(e));
  }
  return out;
}

Result<MapOutcome> UpnpClient::map(const MapParams& params, Deadline deadline) {
  auto ext_ip = external_ip(deadline);
  if (!ext_ip) return ext_ip.error();
  MapOutcome out;
  bool no_external = is_unusable_external_ip(*ext_ip);

  const std::string in_port = std::to_string(params.internal_port);
  const char* proto = proto_text(params.transport);
  std::uint16_t want = params.suggested_external_port ? params.suggested_external_port
                                                      : params.internal_port;
  std::uint32_t lease = params.lifetime;

  auto is_ours = [&](const UpnpEntry& e) {
    return e.internal_ip == params.internal_ip && e.internal_port == params.internal_port;
  };

  // One AddPortMapping, with the lease fallbacks routers need: 725
  // OnlyPermanentLeasesSupported (WANIPConnection:1 routers), and 402 Invalid Args from
  // some routers when a lease is given.
  // The arguments of AddPortMapping and AddAnyPortMapping, in the SCPD's order.
  auto add_args = [&](const std::string& ext_s,
                      const std::string& lease_s) -> std::vector<SoapArgument> {
    return {{"NewRemoteHost", ""},
            {"NewExternalPort", ext_s},
            {"NewProtocol", proto},
            {"NewInternalPort", in_port},
            {"NewInternalClient", params.internal_ip},
            {"NewEnabled", "1"},
            {"NewPortMappingDescription", params.description},
            {"NewLeaseDuration", lease_s}};
  };

  // The fault code (0: added), or the error of an exchange that failed.
  auto add = [&](std::uint16_t ext) -> Result<int> {
    std::string ext_s = std::to_string(ext);
    for (int attempt = 0; attempt < 2; ++attempt) {
      std::string lease_s = std::to_string(lease);
      log_to(info_.log, LogLevel::debug,
             fmt::format("upnp -> AddPortMapping {} {} -> {}:{} lease {} \"{}\"", proto, ext_s,
                         params.internal_ip, in_port, lease_s, params.description));
      auto reply = soap("AddPortMapping", add_args(ext_s, lease_s), deadline);
      if (!reply) return reply.error();
      int r = reply->fault;
      log_to(info_.log, LogLevel::debug, fmt::format("upnp <- AddPortMapping: {}", r));
      if ((r == kOnlyPermanentLeases || r == kInvalidArgs) && lease != 0) {
        out.warnings.push_back(fmt::format(
            "the router refused a {} s lease ({}); the mapping is permanent instead: "
            "remove it with `porthole close`", lease, soap_error_text(r)));
        lease = 0;
        continue;
      }
      return r;
    }
    return kOnlyPermanentLeases;  // not reached: the second attempt has lease 0
  };

  // 718, or 501 from a router that has an external address (some use it for conflicts);
  // 501 without one means an upstream NAT, and no other port will do better.
  auto is_conflict = [&](int r) {
    return r == kConflict || (r == kActionFailed && !no_external);
  };

  auto refused = [&](int r, std::uint16_t ext) -> Error {
    if (r == kNotAuthorized)
      return make_error(Errc::refused,
                        fmt::format("the router refused {} {} -> {}:{}: {}; its rules forbid "
                                    "this port or host", proto, ext, params.internal_ip,
                                    params.internal_port, soap_error_text(r)), r);
    if (r == kActionFailed && no_external)
      return make_error(Errc::refused,
                        fmt::format("the router cannot forward ({}): it has no usable external "
                                    "address, so it probably sits behind another NAT "
                                    "(upstream NAT / CGNAT)", soap_error_text(r)), r);
    return make_error(Errc::refused,
                      fmt::format("the router refused {} {}: {}", proto, ext,
                                  soap_error_text(r)), r);
  };

  std::uint16_t granted = 0;
  int r = kConflict;
  // A router that will not look the port up gets the AddPortMapping: its answer decides.
  auto held = find(params.transport, want, deadline);
  bool taken = held && held->has_value() && !is_ours(**held);
  if (!taken) {
    auto added = add(want);
    if (!added) return added.error();
    r = *added;
    if (r == kSuccess) granted = want;
    else if (!is_conflict(r)) return refused(r, want);
  }
  if (granted == 0) {
    // Port held by someone else (718, or 501 on some routers). First re-use an entry
    // of ours on another port, so repeated runs never fill the router's table.
    auto table = list(deadline);
    if (table) {
      for (const auto& e : *table)
        if (e.transport == params.transport && is_ours(e) && e.external_port != want) {
          auto added = add(e.external_port);
          if (!added) return added.error();
          if (*added == kSuccess) granted = e.external_port;
          break;
        }
    }
  }
  if (granted == 0 && dev_->v2()) {
    std::string ext_s = std::to_string(want), lease_s = std::to_string(lease);
    log_to(info_.log, LogLevel::debug,
           fmt::format("upnp -> AddAnyPortMapping {} {} -> {}:{}", proto, ext_s,
                       params.internal_ip, in_port));
    auto reply = soap("AddAnyPortMapping", add_args(ext_s, lease_s), deadline);
    if (!reply) return reply.error();
    r = reply->fault;
    const std::string reserved = text_of(*reply, "NewReservedPort");
    log_to(info_.log, LogLevel::debug,
           fmt::format("upnp <- AddAnyPortMapping: {} port {}", r,
                       printable_excerpt(reserved, 16)));
    if (r == kSuccess) granted = to_port(reserved);
    else if (r == kActionFailed && no_external) return refused(r, want);
  }
  if (granted == 0) {
    // IGDv1 (or AddAnyPortMapping refused): walk a few ports up from the wanted one.
    for (int i = 1; i <= kV1PortSearch && granted == 0 && !expired(deadline); ++i) {
      int candidate = want + i;
      if (candidate > 65535) break;
      auto p = static_cast<std::uint16_t>(candidate);
      auto other = find(params.transport, p, deadline);
      if (other && other->has_value() && !is_ours(**other)) continue;
      auto added = add(p);
      if (!added) return added.error();
      r = *added;
      if (r == kSuccess) granted = p;
      else if (!is_conflict(r)) return refused(r, p);
    }
  }
  if (granted == 0)
    return make_error(Errc::refused,
                      fmt::format("external {} port {} is held by another host and the router "
                                  "offered no other port ({})", proto, want,
                                  soap_error_text(r == kSuccess ? kConflict : r)),
                      kConflict);

  // Read back what the router really granted (IGDv2 turns lease 0 into 604800).
  std::uint32_t granted_lease = lease;
  if (auto entry = find(params.transport, granted, deadline); entry && entry->has_value())
    granted_lease = (*entry)->lease;

  Mapping& m = out.mapping;
  m.protocol = Protocol::upnp;
  m.transport = params.transport;
  m.internal_ip = params.internal_ip;
  m.internal_port = params.internal_port;
  m.external_ip = no_external ? std::string() : *ext_ip;
  m.external_port = granted;
  m.lifetime = granted_lease;
  m.expires_at = granted_lease ? std::time(nullptr) + granted_lease : 0;
  m.description = params.description;
  return out;
}

Status UpnpClient::unmap(const Mapping& mapping, const Nonce& /*nonce*/, Deadline deadline) {
  auto entry = find(mapping.transport, mapping.external_port, deadline);
  if (!entry) return entry.error();
  if (!entry->has_value()) return ok_status();  // already gone
  if ((*entry)->internal_ip != info_.local_ip)
    return make_error(Errc::refused,
                      fmt::format("external {} port {} is mapped to another host ({}:{}); "
                                  "porthole only removes this host's mappings",
                                  proto_text(mapping.transport), mapping.external_port,
                                  (*entry)->internal_ip, (*entry)->internal_port));
  std::string ext = std::to_string(mapping.external_port);
  log_to(info_.log, LogLevel::debug,
         fmt::format("upnp -> DeletePortMapping {} {}", proto_text(mapping.transport), ext));
  auto reply = soap("DeletePortMapping",
                    {{"NewRemoteHost", ""},
                     {"NewExternalPort", ext},
                     {"NewProtocol", proto_text(mapping.transport)}},
                    deadline);
  if (!reply) return reply.error();
  int r = reply->fault;
  log_to(info_.log, LogLevel::debug, fmt::format("upnp <- DeletePortMapping: {}", r));
  if (r == kSuccess || r == kNoSuchEntry) return ok_status();
  return make_error(Errc::refused,
                    fmt::format("the router did not remove {} {}: {}",
                                proto_text(mapping.transport), ext, soap_error_text(r)), r);
}

}  // namespace porthole::detail
