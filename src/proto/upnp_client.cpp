// The only file that includes <miniupnpc/...>.
//
// Discovery and the description fetch are ours (ssdp_discovery, http_get: bounded in
// size and time); miniupnpc parses the description and makes the SOAP calls. Every URL
// the device hands back is re-checked before we talk to it.
#include "proto/upnp_client.hpp"

#include <miniupnpc/miniupnpc.h>
#include <miniupnpc/upnpcommands.h>
#include <miniupnpc/upnperrors.h>

#include <charconv>
#include <cstring>
#include <ctime>
#include <limits>
#include <string>

#include <fmt/format.h>

#include "codec/url_check.hpp"
#include "net/http_get.hpp"
#include "net/ipv4_class.hpp"
#include "net/route.hpp"
#include "proto/ssdp_discovery.hpp"

namespace porthole::detail {
namespace {

// SOAP error codes (UPnP IGD WANIPConnection, PROTOCOLS.md).
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

std::uint16_t to_port(const char* s) {
  unsigned v = 0;
  auto [p, ec] = std::from_chars(s, s + std::strlen(s), v);
  if (ec != std::errc() || v > 65535) return 0;
  return static_cast<std::uint16_t>(v);
}

std::uint32_t to_u32(const char* s) {
  std::uint32_t v = 0;
  std::from_chars(s, s + std::strlen(s), v);
  return v;
}

std::string soap_error_text(int code) {
  const char* s = ::strupnperror(code);
  return s ? fmt::format("{} ({})", s, code) : fmt::format("UPnP error {}", code);
}

}  // namespace

Result<IgdDescription> read_igd_description(std::string_view xml, std::string_view location,
                                            std::string_view gateway_ip,
                                            std::string_view local_ip, int prefix_len) {
  // http_get bounds the body far below this; parserootdesc takes an int.
  if (xml.size() > static_cast<std::size_t>(std::numeric_limits<int>::max()))
    return make_error(Errc::no_service, "the UPnP device description is too large");
  // miniupnpc 2.2.4's XML parser reads one byte past the end of its buffer when the
  // document ends just after a ':' in an element name (a namespace prefix: "<a:"; found
  // by fuzz_igd_description, issue 5). Whatever it reads there must be ours, not the
  // next heap block (or an unmapped page): it parses a copy followed by kParserSlack
  // NUL bytes that the size it is told leaves out.
  constexpr std::size_t kParserSlack = 16;
  std::string buffer;
  buffer.reserve(xml.size() + kParserSlack);
  buffer.append(xml);
  buffer.append(kParserSlack, '\0');
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
  auto ok = check_device_url(control, gateway_ip, false, local_ip, prefix_len, "controlURL");
  if (!ok) return ok.error();
  IgdDescription out;
  out.service_type = service;
  out.control_url = std::move(control);
  out.v2 = service.size() > 2 && service.compare(service.size() - 2, 2, ":2") == 0;
  return out;
}

struct UpnpClient::Device {
  IgdDescription desc;
  std::string location;
  std::string ext_ip;
  bool ext_ip_known = false;
  bool v2() const { return desc.v2; }
  const char* control() const { return desc.control_url.c_str(); }
  const char* service() const { return desc.service_type.c_str(); }
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
                                   prefix_length_of(info_.local_ip));
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
  char ip[64] = {};
  int r = ::UPNP_GetExternalIPAddress(dev_->control(), dev_->service(), ip);
  log_to(info_.log, LogLevel::debug,
         fmt::format("upnp <- GetExternalIPAddress: {} ({})", ip[0] ? ip : "(empty)", r));
  // miniupnpd without an external address answers 501 or an empty string: both mean
  // "no usable address", not "no UPnP".
  dev_->ext_ip = (r == UPNPCOMMAND_SUCCESS) ? ip : "";
  dev_->ext_ip_known = true;
  return dev_->ext_ip;
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
  char client[64] = {}, port[16] = {}, desc[256] = {}, enabled[16] = {}, lease[32] = {};
  std::string ext = std::to_string(external_port);
  int r = ::UPNP_GetSpecificPortMappingEntry(dev_->control(), dev_->service(), ext.c_str(),
                                             proto_text(transport), nullptr, client, port,
                                             desc, enabled, lease);
  if (r == kNoSuchEntry) return std::optional<UpnpEntry>{};
  if (r != UPNPCOMMAND_SUCCESS)
    return make_error(r < 0 ? Errc::timeout : Errc::refused,
                      fmt::format("the router did not say what is on external {} port {}: {}",
                                  proto_text(transport), external_port, soap_error_text(r)),
                      r);
  UpnpEntry e;
  e.transport = transport;
  e.external_port = external_port;
  e.internal_ip = client;
  e.internal_port = to_port(port);
  e.description = desc;
  e.enabled = std::strcmp(enabled, "0") != 0;
  e.lease = to_u32(lease);
  return std::optional<UpnpEntry>{std::move(e)};
}

Result<std::vector<UpnpEntry>> UpnpClient::list(Deadline deadline) {
  if (auto st = ensure_device(deadline); !st) return st.error();
  std::vector<UpnpEntry> out;
  for (int i = 0; i < kMaxTableEntries && !expired(deadline); ++i) {
    char index[16], ext[16] = {}, client[64] = {}, port[16] = {}, proto[8] = {},
        desc[256] = {}, enabled[16] = {}, rhost[128] = {}, lease[32] = {};
    std::snprintf(index, sizeof(index), "%d", i);
    int r = ::UPNP_GetGenericPortMappingEntry(dev_->control(), dev_->service(), index, ext,
                                              client, port, proto, desc, enabled, rhost,
                                              lease);
    if (r != UPNPCOMMAND_SUCCESS) break;  // 713 SpecifiedArrayIndexInvalid: end of table
    UpnpEntry e;
    e.transport = (std::strcmp(proto, "UDP") == 0 || std::strcmp(proto, "udp") == 0)
                      ? Transport::udp : Transport::tcp;
    e.external_port = to_port(ext);
    e.internal_ip = client;
    e.internal_port = to_port(port);
    e.description = desc;
    e.enabled = std::strcmp(enabled, "0") != 0;
    e.lease = to_u32(lease);
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

  // One AddPortMapping, with the lease fallbacks routers need (PROTOCOLS.md: 725
  // OnlyPermanentLeasesSupported, and 402 from some routers when a lease is given).
  auto add = [&](std::uint16_t ext) -> int {
    std::string ext_s = std::to_string(ext);
    for (int attempt = 0; attempt < 2; ++attempt) {
      std::string lease_s = std::to_string(lease);
      log_to(info_.log, LogLevel::debug,
             fmt::format("upnp -> AddPortMapping {} {} -> {}:{} lease {} \"{}\"", proto, ext_s,
                         params.internal_ip, in_port, lease_s, params.description));
      int r = ::UPNP_AddPortMapping(dev_->control(), dev_->service(), ext_s.c_str(),
                                    in_port.c_str(), params.internal_ip.c_str(),
                                    params.description.c_str(), proto, nullptr,
                                    lease_s.c_str());
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
    return UPNPCOMMAND_UNKNOWN_ERROR;
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
    if (r < 0)
      return make_error(Errc::timeout, fmt::format("UPnP request failed ({})", r), r);
    return make_error(Errc::refused,
                      fmt::format("the router refused {} {}: {}", proto, ext,
                                  soap_error_text(r)), r);
  };

  std::uint16_t granted = 0;
  int r = UPNPCOMMAND_UNKNOWN_ERROR;
  // A router that will not look the port up gets the AddPortMapping: its answer decides.
  auto held = find(params.transport, want, deadline);
  bool taken = held && held->has_value() && !is_ours(**held);
  if (!taken) {
    r = add(want);
    if (r == UPNPCOMMAND_SUCCESS) granted = want;
    else if (!is_conflict(r)) return refused(r, want);
  }
  if (granted == 0) {
    // Port held by someone else (718, or 501 on some routers). First re-use an entry
    // of ours on another port, so repeated runs never fill the table (PROTOCOLS.md).
    auto table = list(deadline);
    if (table) {
      for (const auto& e : *table)
        if (e.transport == params.transport && is_ours(e) && e.external_port != want) {
          if (add(e.external_port) == UPNPCOMMAND_SUCCESS) granted = e.external_port;
          break;
        }
    }
  }
  if (granted == 0 && dev_->v2()) {
    char reserved[16] = {};
    std::string ext_s = std::to_string(want), lease_s = std::to_string(lease);
    log_to(info_.log, LogLevel::debug,
           fmt::format("upnp -> AddAnyPortMapping {} {} -> {}:{}", proto, ext_s,
                       params.internal_ip, in_port));
    r = ::UPNP_AddAnyPortMapping(dev_->control(), dev_->service(), ext_s.c_str(),
                                 in_port.c_str(), params.internal_ip.c_str(),
                                 params.description.c_str(), proto, nullptr, lease_s.c_str(),
                                 reserved);
    log_to(info_.log, LogLevel::debug,
           fmt::format("upnp <- AddAnyPortMapping: {} port {}", r, reserved));
    if (r == UPNPCOMMAND_SUCCESS) granted = to_port(reserved);
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
      r = add(p);
      if (r == UPNPCOMMAND_SUCCESS) granted = p;
      else if (!is_conflict(r)) return refused(r, p);
    }
  }
  if (granted == 0)
    return make_error(Errc::refused,
                      fmt::format("external {} port {} is held by another host and the router "
                                  "offered no other port ({})", proto, want,
                                  soap_error_text(r == UPNPCOMMAND_SUCCESS ? kConflict : r)),
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
  int r = ::UPNP_DeletePortMapping(dev_->control(), dev_->service(), ext.c_str(),
                                   proto_text(mapping.transport), nullptr);
  log_to(info_.log, LogLevel::debug, fmt::format("upnp <- DeletePortMapping: {}", r));
  if (r == UPNPCOMMAND_SUCCESS || r == kNoSuchEntry) return ok_status();
  return make_error(r < 0 ? Errc::timeout : Errc::refused,
                    fmt::format("the router did not remove {} {}: {}",
                                proto_text(mapping.transport), ext, soap_error_text(r)), r);
}

}  // namespace porthole::detail
