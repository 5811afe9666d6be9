// UPnP IGD actions over ssdp_discovery and http_request (bounded in size and time);
// the answers are parsed in codec/igd_xml.cpp. Every URL the device hands back is
// re-checked before we talk to it.
#include "proto/upnp_client.hpp"

#include <algorithm>
#include <charconv>
#include <condition_variable>
#include <ctime>
#include <limits>
#include <mutex>
#include <string>
#include <thread>

#include <fmt/format.h>

#include "codec/ascii.hpp"
#include "codec/ip_address_format.hpp"
#include "codec/url_check.hpp"
#include "net/http_get.hpp"
#include "net/ipv4_class.hpp"
#include "net/route.hpp"
#include "proto/ssdp_discovery.hpp"

namespace porthole::detail {
namespace {

// A table longer than this is not read to the end (a hostile or broken router).
constexpr int kMaxTableEntries = 4096;
// GetListOfPortMappings is asked only of a table with at most this many rows, for all
// of them at once. miniupnpd 2.3.1 (nftables) corrupts its heap and dies when the
// asked port range holds more than 128 mappings, whatever NewNumberOfPorts says (seen
// in the lab: "realloc(): invalid next size"); GetGenericPortMappingEntry at this index
// tells whether the table is that small.
constexpr int kMaxListedRows = 128;
constexpr int kPortMappingNotFound = 730;  // GetListOfPortMappings: nothing in the range

// NewExternalIPAddress as an address, or none when it is not one anybody could reach
// (empty, 0.0.0.0, loopback, multicast: routers without a WAN address send those).
std::optional<IpAddress> usable_external_ip(std::string_view text) {
  auto ip = IpAddress::parse(text);
  if (!ip || is_unusable_external_ip(*ip)) return std::nullopt;
  return *ip;
}

constexpr int kInvalidAction = 401;  // UDA 1.1 s3.2.2: no such action on this service

// One SOAP action on `service` sent, its reply not yet read (HttpExchange): the request
// is on its way, or the error that stopped it.
struct SentSoap {
  std::string action;
  Result<HttpExchange> exchange;
};

// Sends one SOAP action on `service` (bounded by the deadline; with connect_by, the
// connection must be up by then).
SentSoap soap_send(const IgdService& service, std::string_view action,
                   const std::vector<SoapArgument>& args, Deadline deadline,
                   std::optional<Deadline> connect_by) {
  auto request = build_soap_request(service.service_type, action, args);
  if (!request) return {std::string(action), request.error()};
  HttpRequest post;
  post.method = "POST";
  post.headers = {{"Content-Type", "text/xml; charset=\"utf-8\""},
                  {"SOAPAction", request->soap_action}};
  post.body = request->body;
  post.read_500 = true;
  post.connect_by = connect_by;
  return {std::string(action), HttpExchange::send(service.control, post, deadline)};
}

// The reply to a sent action, bounded by the deadline and kMaxSoapReplyBytes.
Result<SoapReply> soap_reply(SentSoap& sent, Deadline deadline) {
  auto prefixed = [&](Error e) {
    e.message = fmt::format("UPnP {}: {}", sent.action, e.message);
    return e;
  };
  if (!sent.exchange) return prefixed(sent.exchange.error());
  auto answer = sent.exchange->answer(deadline, kMaxSoapReplyBytes);
  if (!answer) return prefixed(std::move(answer).error());
  auto reply = read_soap_reply(answer->body, answer->status);
  if (!reply) return prefixed(std::move(reply).error());
  return reply;
}

// One SOAP action on `service`, sent and answered.
Result<SoapReply> soap_exchange(const IgdService& service, std::string_view action,
                                const std::vector<SoapArgument>& args, Deadline deadline,
                                std::optional<Deadline> connect_by) {
  SentSoap sent = soap_send(service, action, args, deadline, connect_by);
  return soap_reply(sent, deadline);
}

// What identifies a request sent ahead: the action and its arguments.
std::string soap_key(std::string_view action, const std::vector<SoapArgument>& args) {
  std::string key(action);
  for (const auto& a : args) key.append("\n").append(a.first).append("=").append(a.second);
  return key;
}

// The request sent ahead under `key`, or ahead.end().
using SentAhead = std::vector<std::pair<std::string, SentSoap>>;
SentAhead::iterator find_sent(SentAhead& ahead, const std::string& key) {
  return std::find_if(ahead.begin(), ahead.end(), [&](const auto& e) { return e.first == key; });
}

// The arguments naming one entry, as GetSpecificPortMappingEntry and DeletePortMapping
// take them. The views point into external_port.
std::vector<SoapArgument> entry_args(const std::string& external_port, Transport transport) {
  return {{"NewRemoteHost", ""},
          {"NewExternalPort", external_port},
          {"NewProtocol", proto_text(transport)}};
}

// How long the WAN connection services of a device with several get to say whether
// they are up, all at once (a LAN answer takes milliseconds); what is left of the
// deadline goes to the action itself.
constexpr std::chrono::milliseconds kServiceCheckBudget{2000};

// What one WAN connection service says about itself: GetStatusInfo and
// GetExternalIPAddress (WANIPConnection:2 s2.5.12, s2.5.17).
struct ServiceCheck {
  bool done = false;            // false: no full answer within kServiceCheckBudget
  std::optional<Error> failed;  // an exchange failed (no SOAP answer)
  int status_fault = kSuccess;
  std::string status;  // NewConnectionStatus
  int ip_fault = kSuccess;
  std::string external_ip;  // NewExternalIPAddress; "" after a fault
};

ServiceCheck check_service(const IgdService& service, Deadline deadline) {
  ServiceCheck c;
  auto status = soap_exchange(service, "GetStatusInfo", {}, deadline, std::nullopt);
  if (!status) {
    c.failed = std::move(status).error();
    return c;
  }
  c.status_fault = status->fault;
  c.status = text_of(*status, "NewConnectionStatus");
  auto ip = soap_exchange(service, "GetExternalIPAddress", {}, deadline, std::nullopt);
  if (!ip) {
    c.failed = std::move(ip).error();
    return c;
  }
  c.ip_fault = ip->fault;
  if (ip->fault == kSuccess) c.external_ip = text_of(*ip, "NewExternalIPAddress");
  return c;
}

// How good a service is to map through, lower is better: 0 connected with a usable
// external address; 1 no connection status (the action failed or says nothing) but a
// usable address; 2 connected without a usable address (the mapping core then says
// what that means). nullopt: not to be used (down, or it did not answer).
std::optional<int> service_rank(const ServiceCheck& c) {
  if (!c.done || c.failed) return std::nullopt;
  const bool usable = usable_external_ip(c.external_ip).has_value();
  const bool unknown = c.status_fault != kSuccess || c.status.empty();
  const bool connected = !unknown && ascii_iequals(c.status, "Connected");
  if (connected && usable) return 0;
  if (unknown && usable) return 1;
  if (connected) return 2;
  return std::nullopt;
}

// What a service said, for the log and the error naming every service.
std::string describe_check(const ServiceCheck& c) {
  if (!c.done) return "no answer in time";
  if (c.failed) return c.failed->message;
  std::string status = c.status_fault != kSuccess
                           ? fmt::format("GetStatusInfo {}", upnp_error_text(c.status_fault))
                       : c.status.empty() ? std::string("no connection status")
                                          : printable_excerpt(c.status, 40);
  std::string ip = c.ip_fault != kSuccess
                       ? fmt::format("GetExternalIPAddress {}", upnp_error_text(c.ip_fault))
                   : c.external_ip.empty()
                       ? std::string("no external address")
                       : fmt::format("external address {}", printable_excerpt(c.external_ip, 40));
  return fmt::format("{}, {}", status, ip);
}

// Every service's check, filled in by one thread each.
struct ServiceChecks {
  std::mutex mu;
  std::condition_variable cv;
  std::vector<ServiceCheck> checks;
};

// Whether the choice is made: the first service in description order that is connected
// with a usable address is taken once every one before it has answered; else all must
// have answered (or the budget ends, see choose_service).
bool choice_made(const std::vector<ServiceCheck>& checks) {
  for (const ServiceCheck& c : checks) {
    if (!c.done) return false;
    if (service_rank(c) == 0) return true;
  }
  return true;
}

}  // namespace

Result<IgdDescription> cached_device(const UpnpCachedIgd& cached, const GatewayInfo& gw) {
  if (cached.gateway != gw.gateway_ip)
    return make_error(Errc::no_service, fmt::format("the gateway changed (cached {}, now {})",
                                                    cached.gateway, gw.gateway_ip));
  if (cached.local_ip != gw.local_ip)
    return make_error(Errc::no_service,
                      fmt::format("this host's address changed (cached {}, now {})",
                                  cached.local_ip, gw.local_ip));
  if (!is_wan_connection_service(cached.service_type))
    return make_error(Errc::no_service,
                      fmt::format("cached service type '{}' is no WAN connection service",
                                  printable_excerpt(cached.service_type, 80)));
  const std::string gateway = gw.gateway_ip.to_string();
  const std::string local = gw.local_ip.to_string();
  const int prefix = gw.upnp_allow_lan ? prefix_length_of(gw.local_ip) : 0;
  auto location = check_device_url(cached.location, gateway, gw.upnp_allow_lan, local, prefix,
                                   "LOCATION");
  if (!location) return location.error();
  auto control = check_device_url(cached.control_url, gateway, gw.upnp_allow_lan, local, prefix,
                                  "controlURL");
  if (!control) return control.error();
  IgdDescription desc;
  desc.service_type = cached.service_type;
  desc.control_url = cached.control_url;
  desc.control = std::move(*control);
  desc.v2 = cached.service_type.size() > 2 &&
            cached.service_type.compare(cached.service_type.size() - 2, 2, ":2") == 0;
  desc.udn = cached.udn;
  return desc;
}

bool cache_looks_stale(const Result<SoapReply>& reply) {
  if (!reply) return reply.error().code != Errc::usage;
  return reply->fault == kInvalidAction;
}

struct UpnpClient::Device {
  IgdDescription desc;
  std::string location;
  std::string ext_ip;
  bool ext_ip_known = false;
  // Taken from the cache and not yet answered: the first exchange decides whether the
  // cache still holds (see soap()).
  bool unconfirmed_cache = false;
  // Taken from the cache of a device with several WAN connection services, and its
  // external address not yet asked (see external_ip()).
  bool cached_of_several = false;
  // Actions sent ahead (ask_ahead), by soap_key, until soap_once reads their answer.
  SentAhead ahead;
  bool v2() const { return desc.v2; }
};

UpnpClient::UpnpClient(GatewayInfo info, UpnpCache cache)
    : info_(std::move(info)), cache_(std::move(cache)) {}
UpnpClient::~UpnpClient() = default;

Status UpnpClient::ensure_device(Deadline deadline) {
  if (dev_) return ok_status();
  if (use_cached_device()) return ok_status();
  return discover_device(deadline);
}

bool UpnpClient::use_cached_device() {
  if (!cache_.load || cached_) return false;  // no cache, or already tried in this client
  cached_ = cache_.load();
  if (!cached_) return false;
  auto desc = cached_device(*cached_, info_);
  if (!desc) {
    log_to(info_.log, LogLevel::debug,
           fmt::format("upnp    cached IGD not used: {}", desc.error().message));
    if (cache_.forget) cache_.forget();
    return false;
  }
  auto dev = std::make_unique<Device>();
  dev->desc = std::move(*desc);
  dev->location = cached_->location;
  dev->unconfirmed_cache = true;
  dev->cached_of_several = cached_->wan_services > 1;
  log_to(info_.log, LogLevel::debug,
         fmt::format("upnp    cached IGD {}: control {} service {} (no SSDP)",
                     printable_excerpt(dev->desc.udn.empty() ? "(no UDN)" : dev->desc.udn),
                     printable_excerpt(dev->desc.control_url),
                     printable_excerpt(dev->desc.service_type)));
  dev_ = std::move(dev);
  return true;
}

Status UpnpClient::discover_device(Deadline deadline) {
  auto found = discover_igd(info_, deadline);
  if (!found) return found.error();
  log_to(info_.log, LogLevel::debug,
         fmt::format("upnp <- IGD at {} ({}) after {} ms", found->location, found->st,
                     found->elapsed.count()));
  auto xml = http_get(found->url, deadline);
  if (!xml) return xml.error();

  auto desc = read_igd_description(*xml, found->location, info_.gateway_ip.to_string(),
                                   info_.local_ip.to_string(), prefix_length_of(info_.local_ip),
                                   info_.upnp_allow_lan);
  if (!desc) return desc.error();
  auto dev = std::make_unique<Device>();
  dev->desc = std::move(*desc);
  dev->location = found->location;
  if (dev->desc.services.size() > 1) {
    if (auto st = choose_service(*dev, deadline); !st) return st.error();
  }
  log_to(info_.log, LogLevel::debug,
         fmt::format("upnp    control {} service {}", printable_excerpt(dev->desc.control_url),
                     printable_excerpt(dev->desc.service_type)));
  if (cached_ && !cached_->udn.empty() && !dev->desc.udn.empty() && cached_->udn != dev->desc.udn)
    log_to(info_.log, LogLevel::debug,
           fmt::format("upnp    the gateway's IGD is another device now ({}, cached {})",
                       printable_excerpt(dev->desc.udn), printable_excerpt(cached_->udn)));
  if (cache_.save) {
    UpnpCachedIgd entry;
    entry.gateway = info_.gateway_ip;
    entry.local_ip = info_.local_ip;
    entry.location = dev->location;
    entry.control_url = dev->desc.control_url;
    entry.service_type = dev->desc.service_type;
    entry.udn = dev->desc.udn;
    entry.wan_services = static_cast<int>(std::max<std::size_t>(dev->desc.services.size(), 1));
    cache_.save(entry);
  }
  dev_ = std::move(dev);
  return ok_status();
}

// A device with several WAN connection services (multi-WAN, or PPP beside IP) may have
// only some of them up: every one is asked at once whether it is connected and which
// external address it has, and the best by service_rank, the first in description
// order among equals, becomes the device's service (its address is kept, so the action
// that follows is the only further round trip).
Status UpnpClient::choose_service(Device& dev, Deadline deadline) const {
  const std::vector<IgdService>& services = dev.desc.services;
  const Deadline until = std::min(deadline, Clock::now() + kServiceCheckBudget);
  auto shared = std::make_shared<ServiceChecks>();
  shared->checks.resize(services.size());
  for (std::size_t i = 0; i < services.size(); ++i) {
    // Detached: it owns what it touches, and its exchanges end by `until`, so the
    // choice need not wait for a service after the one it takes.
    std::thread([shared, service = services[i], i, until] {
      ServiceCheck c = check_service(service, until);
      c.done = true;
      std::lock_guard lock(shared->mu);
      shared->checks[i] = std::move(c);
      shared->cv.notify_all();
    }).detach();
  }
  std::vector<ServiceCheck> checks;
  {
    std::unique_lock lock(shared->mu);
    shared->cv.wait_until(lock, until, [&] { return choice_made(shared->checks); });
    checks = shared->checks;
  }
  std::optional<std::size_t> best;
  std::string said;
  for (std::size_t i = 0; i < checks.size(); ++i) {
    const std::string what = fmt::format("{} at {}: {}",
                                         printable_excerpt(services[i].service_type),
                                         printable_excerpt(services[i].control_url),
                                         describe_check(checks[i]));
    log_to(info_.log, LogLevel::debug, fmt::format("upnp <- service {}", what));
    said += fmt::format("{}{}", said.empty() ? "" : "; ", what);
    auto rank = service_rank(checks[i]);
    if (rank && (!best || *rank < *service_rank(checks[*best]))) best = i;
  }
  if (!best) {
    // Nothing answered at all: that error (a timeout, no service) says it best.
    const bool none_answered = std::all_of(checks.begin(), checks.end(), [](const ServiceCheck& c) {
      return !c.done || c.failed;
    });
    Error e = none_answered && checks.front().failed
                  ? *checks.front().failed
                  : make_error(none_answered ? Errc::timeout : Errc::refused, "");
    e.message = fmt::format(
        "none of the UPnP device's {} WAN connection services is connected "
        "({})",
        services.size(), said);
    return e;
  }
  static_cast<IgdService&>(dev.desc) = services[*best];
  dev.ext_ip = checks[*best].external_ip;
  dev.ext_ip_known = true;
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
  // The cached service of several was the connected one when it was chosen; without a
  // usable address now another may have taken over (a failover): choose again.
  if (dev_->cached_of_several && !usable_external_ip(dev_->ext_ip) && !expired(deadline)) {
    log_to(info_.log, LogLevel::debug,
           "upnp    the cached WAN connection service has no usable external address: "
           "asking every service of the device again");
    if (cache_.forget) cache_.forget();
    dev_.reset();
    if (auto st = discover_device(deadline); !st) {
      lost_ = st.error();
      return st.error();
    }
    return external_ip(deadline);
  }
  dev_->cached_of_several = false;
  return dev_->ext_ip;
}

// Over a device taken from the cache, the first exchange also tests the cache: when it
// fails as a stale entry would (cache_looks_stale), the entry is forgotten and the
// action goes to a freshly discovered device instead, within the same deadline. The
// cached UDN is not checked on success (that would cost a description GET on every
// run); a device that answers there is the gateway's (the URL passed the gateway
// policy) and did what was asked. On the way to a new device the UDNs are compared,
// for the log.
Result<SoapReply> UpnpClient::soap(std::string_view action, const std::vector<SoapArgument>& args,
                                   Deadline deadline) {
  if (!dev_) return lost_;  // the cached device failed and discovery found none
  if (!dev_->unconfirmed_cache) return soap_once(action, args, deadline);
  auto reply = soap_once(action, args, deadline);
  if (!cache_looks_stale(reply) || expired(deadline)) {
    dev_->unconfirmed_cache = false;
    return reply;
  }
  log_to(info_.log, LogLevel::debug,
         fmt::format("upnp    cached IGD failed ({}): looking for it afresh",
                     reply ? upnp_error_text(reply->fault) : reply.error().message));
  if (cache_.forget) cache_.forget();
  dev_.reset();
  if (auto st = discover_device(deadline); !st) {
    lost_ = st.error();
    return st.error();
  }
  return soap_once(action, args, deadline);
}

std::optional<Deadline> UpnpClient::connect_by() const {
  if (!dev_->unconfirmed_cache) return std::nullopt;
  return Clock::now() + kCachedConnectBudget;
}

Result<SoapReply> UpnpClient::soap_once(std::string_view action,
                                        const std::vector<SoapArgument>& args, Deadline deadline) {
  if (!dev_->ahead.empty())
    if (auto it = find_sent(dev_->ahead, soap_key(action, args)); it != dev_->ahead.end()) {
      SentSoap sent = std::move(it->second);
      dev_->ahead.erase(it);
      return soap_reply(sent, deadline);
    }
  return soap_exchange(dev_->desc, action, args, deadline, connect_by());
}

bool UpnpClient::send_ahead(std::string_view action, const std::vector<SoapArgument>& args,
                            Deadline deadline) {
  std::string key = soap_key(action, args);
  if (auto it = find_sent(dev_->ahead, key); it != dev_->ahead.end())
    return static_cast<bool>(it->second.exchange);  // on its way already
  std::string shown(action);
  for (const auto& a : args)
    if (!a.second.empty()) shown += fmt::format(" {}", a.second);
  log_to(info_.log, LogLevel::debug,
         fmt::format("upnp -> {} (sent ahead, its answer read when needed)", shown));
  dev_->ahead.emplace_back(std::move(key),
                           soap_send(dev_->desc, action, args, deadline, connect_by()));
  return static_cast<bool>(dev_->ahead.back().second.exchange);
}

void UpnpClient::ask_ahead(const MapParams& params, Deadline deadline) {
  // Only a device already known (cached or found): a discovery waits for map(), so the
  // caller's state lock is not held through an SSDP search.
  if (!dev_ && !use_cached_device()) return;
  // A device that does not take the first (a stale cache) is not asked the second.
  if (!dev_->ext_ip_known && !send_ahead("GetExternalIPAddress", {}, deadline)) return;
  const std::string port = std::to_string(upnp_wanted_port(params));
  send_ahead("GetSpecificPortMappingEntry", entry_args(port, params.transport), deadline);
}

void UpnpClient::find_ahead(Transport transport, std::uint16_t external_port, Deadline deadline) {
  if (!dev_) return;
  const std::string port = std::to_string(external_port);
  send_ahead("GetSpecificPortMappingEntry", entry_args(port, transport), deadline);
}

void UpnpClient::refresh_external_ip() {
  if (dev_) dev_->ext_ip_known = false;
}

Result<ProbeInfo> UpnpClient::probe(Deadline deadline) {
  auto ip = external_ip(deadline);
  if (!ip) return ip.error();
  ProbeInfo info;
  info.external_ip = usable_external_ip(*ip);
  return info;
}

Result<std::optional<UpnpEntry>> UpnpClient::find(Transport transport, std::uint16_t external_port,
                                                  Deadline deadline) {
  if (auto st = ensure_device(deadline); !st) return st.error();
  std::string ext = std::to_string(external_port);
  auto reply = soap("GetSpecificPortMappingEntry", entry_args(ext, transport), deadline);
  if (!reply) return reply.error();
  int r = reply->fault;
  if (r == kNoSuchEntry) return std::optional<UpnpEntry>{};
  if (r != kSuccess)
    return make_error(Errc::refused,
                      fmt::format("the router did not say what is on external {} port {}: {}",
                                  proto_text(transport), external_port, upnp_error_text(r)),
                      r);
  // miniupnpc counts an answer without the internal client as a failed call.
  auto client = reply->value("NewInternalClient");
  if (!client)
    return make_error(Errc::internal,
                      fmt::format("the router's answer for external {} port {} names no "
                                  "internal client",
                                  proto_text(transport), external_port));
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

Result<UpnpTable> UpnpClient::list(Deadline deadline) {
  if (auto st = ensure_device(deadline); !st) return st.error();
  if (dev_->v2()) {
    auto paged = list_in_pages(deadline);
    if (paged) return paged;
    if (!dev_) return lost_;  // the cached device failed and discovery found none
    log_to(info_.log, LogLevel::debug,
           fmt::format("upnp    no GetListOfPortMappings ({}): reading the table row by row",
                       paged.error().message));
  }
  UpnpTable table = list_by_index(deadline);
  if (!dev_) return lost_;
  return table;
}

// IGDv2 GetListOfPortMappings (WANIPConnection:2 s2.5.20): every row of one protocol in
// one answer, for a table of at most kMaxListedRows rows. An error means "read it row
// by row instead".
Result<UpnpTable> UpnpClient::list_in_pages(Deadline deadline) {
  auto probe = soap("GetGenericPortMappingEntry",
                    {{"NewPortMappingIndex", std::to_string(kMaxListedRows)}}, deadline);
  if (!probe) return probe.error();
  if (probe->fault == kSuccess)
    return make_error(Errc::refused,
                      fmt::format("the table has more than {} rows", kMaxListedRows));
  UpnpTable table;
  for (Transport t : {Transport::tcp, Transport::udp}) {
    auto reply = soap("GetListOfPortMappings",
                      {{"NewStartPort", "1"},
                       {"NewEndPort", "65535"},
                       {"NewProtocol", proto_text(t)},
                       {"NewManage", "1"},
                       {"NewNumberOfPorts", std::to_string(kMaxListedRows + 1)}},
                      deadline);
    if (!reply) return reply.error();
    if (reply->fault == kPortMappingNotFound) continue;
    if (reply->fault != kSuccess)
      return make_error(Errc::refused, upnp_error_text(reply->fault), reply->fault);
    if (!reply->port_listing) return make_error(Errc::internal, "the answer has no NewPortListing");
    auto rows = read_port_listing(*reply->port_listing);
    if (!rows) return rows.error();
    log_to(info_.log, LogLevel::debug,
           fmt::format("upnp <- GetListOfPortMappings {}: {} rows", proto_text(t), rows->size()));
    // Row 128 was not there: more rows than that means the table grew meanwhile, and
    // this answer may not hold them all.
    if (rows->size() > static_cast<std::size_t>(kMaxListedRows))
      return make_error(Errc::refused, "the table grew past the rows it had");
    for (auto& e : *rows) {
      e.transport = t;  // the protocol asked for, whatever the row says
      table.entries.push_back(std::move(e));
    }
  }
  return table;
}

// GetGenericPortMappingEntry for index 0, 1, ... until the router says there is no such
// row. Rows read before a failed exchange or the deadline are kept, marked incomplete.
UpnpTable UpnpClient::list_by_index(Deadline deadline) {
  UpnpTable table;
  auto stop = [&](Error why) {
    table.complete = false;
    table.stopped = std::move(why);
    return table;
  };
  auto out_of_time = [&] {
    return make_error(Errc::timeout,
                      fmt::format("the deadline ran out after {} rows of the router's table",
                                  table.entries.size()));
  };
  for (int i = 0; i < kMaxTableEntries; ++i) {
    if (expired(deadline)) return stop(out_of_time());
    const std::string index = std::to_string(i);
    auto reply = soap("GetGenericPortMappingEntry", {{"NewPortMappingIndex", index}}, deadline);
    if (!reply) return stop(expired(deadline) ? out_of_time() : std::move(reply).error());
    // 713 SpecifiedArrayIndexInvalid is the end of the table; any other fault, or a row
    // without its external port (miniupnpc's test), ends it too.
    if (reply->fault != kSuccess || !reply->value("NewExternalPort")) return table;
    const std::string proto = text_of(*reply, "NewProtocol");
    UpnpEntry e;
    e.transport = (proto == "UDP" || proto == "udp") ? Transport::udp : Transport::tcp;
    e.external_port = to_port(text_of(*reply, "NewExternalPort"));
    e.internal_ip = text_of(*reply, "NewInternalClient");
    e.internal_port = to_port(text_of(*reply, "NewInternalPort"));
    e.description = text_of(*reply, "NewPortMappingDescription");
    e.enabled = text_of(*reply, "NewEnabled") != "0";
    e.lease = to_u32(text_of(*reply, "NewLeaseDuration"));
    table.entries.push_back(std::move(e));
  }
  return stop(
      make_error(Errc::refused, fmt::format("the router's table has more than {} rows; porthole "
                                            "reads no further",
                                            kMaxTableEntries)));
}

Result<MapOutcome> UpnpClient::map(const MapParams& params, Deadline deadline) {
  auto ext_ip = external_ip(deadline);
  if (!ext_ip) return ext_ip.error();
  MapOutcome out;
  const std::optional<IpAddress> usable = usable_external_ip(*ext_ip);
  const bool no_external = !usable;

  auto grant = choose_upnp_port(*this, params, dev_->v2(), no_external, deadline, info_.log);
  if (!grant) return grant.error();
  out.warnings = std::move(grant->warnings);
  const std::uint16_t granted = grant->external_port;
  const std::uint32_t granted_lease = grant->lease;
  out.lease_unconfirmed = grant->lease_unconfirmed;

  Mapping& m = out.mapping;
  m.protocol = Protocol::upnp;
  m.transport = params.transport;
  m.internal_ip = params.internal_ip;
  m.internal_port = params.internal_port;
  m.external_ip = usable;
  m.external_port = granted;
  m.lifetime = granted_lease;
  m.expires_at = granted_lease ? std::time(nullptr) + granted_lease : 0;
  m.description = params.description;
  return out;
}

Result<SoapReply> UpnpClient::add_mapping(std::string_view action,
                                          const std::vector<SoapArgument>& args,
                                          Deadline deadline) {
  return soap(action, args, deadline);
}

Status UpnpClient::unmap(const Mapping& mapping, const Nonce& /*nonce*/, Deadline deadline) {
  auto entry = find(mapping.transport, mapping.external_port, deadline);
  if (!entry) return entry.error();
  if (!entry->has_value()) return ok_status();  // already gone
  if ((*entry)->internal_ip != info_.local_ip.to_string())
    return make_error(Errc::refused,
                      fmt::format("external {} port {} is mapped to another host ({}:{}); "
                                  "porthole only removes this host's mappings",
                                  proto_text(mapping.transport), mapping.external_port,
                                  (*entry)->internal_ip, (*entry)->internal_port));
  std::string ext = std::to_string(mapping.external_port);
  log_to(info_.log, LogLevel::debug,
         fmt::format("upnp -> DeletePortMapping {} {}", proto_text(mapping.transport), ext));
  auto reply = soap("DeletePortMapping", entry_args(ext, mapping.transport), deadline);
  if (!reply) return reply.error();
  int r = reply->fault;
  log_to(info_.log, LogLevel::debug, fmt::format("upnp <- DeletePortMapping: {}", r));
  if (r == kSuccess || r == kNoSuchEntry) return ok_status();
  return make_error(Errc::refused,
                    fmt::format("the router did not remove {} {}: {}",
                                proto_text(mapping.transport), ext, upnp_error_text(r)),
                    r);
}

}  // namespace porthole::detail
