// The UPnP port-choice policy (proto/upnp_port_policy.hpp).
#include "proto/upnp_port_policy.hpp"

#include <fmt/format.h>

#include "codec/ip_address_format.hpp"

namespace porthole::detail {
namespace {

// How far past the wanted port an IGDv1 router is asked when the port is taken.
constexpr int kV1PortSearch = 16;

}  // namespace

Result<UpnpGrant> choose_upnp_port(UpnpPortActions& router, const MapParams& params, bool v2,
                                   bool no_external, Deadline deadline, const LogFn& log) {
  UpnpGrant grant;
  const std::string in_port = std::to_string(params.internal_port);
  // SoapArgument holds views: the texts they point at must outlive every request.
  const std::string in_client = params.internal_ip.to_string();
  const char* proto = proto_text(params.transport);
  std::uint16_t want = upnp_wanted_port(params);
  std::uint32_t lease = params.lifetime;

  auto is_ours = [&](const UpnpEntry& e) {
    return e.internal_ip == in_client && e.internal_port == params.internal_port;
  };

  // One AddPortMapping, with the lease fallbacks routers need (725
  // OnlyPermanentLeasesSupported, and 402 from some routers when a lease is given).
  // The arguments of AddPortMapping and AddAnyPortMapping, in the SCPD's order.
  auto add_args = [&](const std::string& ext_s,
                      const std::string& lease_s) -> std::vector<SoapArgument> {
    return {{"NewRemoteHost", ""},
            {"NewExternalPort", ext_s},
            {"NewProtocol", proto},
            {"NewInternalPort", in_port},
            {"NewInternalClient", in_client},
            {"NewEnabled", "1"},
            {"NewPortMappingDescription", params.description},
            {"NewLeaseDuration", lease_s}};
  };

  // The fault code (0: added), or the error of an exchange that failed.
  auto add = [&](std::uint16_t ext) -> Result<int> {
    std::string ext_s = std::to_string(ext);
    for (int attempt = 0; attempt < 2; ++attempt) {
      std::string lease_s = std::to_string(lease);
      log_to(log, LogLevel::debug,
             fmt::format("upnp -> AddPortMapping {} {} -> {}:{} lease {} \"{}\"", proto, ext_s,
                         params.internal_ip, in_port, lease_s, params.description));
      auto reply = router.add_mapping("AddPortMapping", add_args(ext_s, lease_s), deadline);
      if (!reply) return reply.error();
      int r = reply->fault;
      log_to(log, LogLevel::debug, fmt::format("upnp <- AddPortMapping: {}", r));
      if ((r == kOnlyPermanentLeases || r == kInvalidArgs) && lease != 0) {
        grant.warnings.push_back(
            fmt::format("the router refused a {} s lease ({}); the mapping is permanent instead: "
                        "remove it with `porthole close`",
                        lease, upnp_error_text(r)));
        lease = 0;
        continue;
      }
      return r;
    }
    return kOnlyPermanentLeases;  // not reached: the second attempt has lease 0
  };

  // 718, or 501 from a router that has an external address (some use it for conflicts);
  // 501 without one means an upstream NAT, and no other port will do better.
  auto is_conflict = [&](int r) { return r == kConflict || (r == kActionFailed && !no_external); };

  auto refused = [&](int r, std::uint16_t ext) -> Error {
    if (r == kNotAuthorized)
      return make_error(Errc::refused,
                        fmt::format("the router refused {} {} -> {}:{}: {}; its rules forbid "
                                    "this port or host",
                                    proto, ext, params.internal_ip, params.internal_port,
                                    upnp_error_text(r)),
                        r);
    if (r == kActionFailed && no_external)
      return make_error(Errc::refused,
                        fmt::format("the router cannot forward ({}): it has no usable external "
                                    "address, so it probably sits behind another NAT "
                                    "(upstream NAT / CGNAT)",
                                    upnp_error_text(r)),
                        r);
    return make_error(Errc::refused,
                      fmt::format("the router refused {} {}: {}", proto, ext, upnp_error_text(r)),
                      r);
  };

  std::uint16_t granted = 0;
  int r = kConflict;
  // A router that will not look the port up gets the AddPortMapping: its answer decides.
  auto held = router.find(params.transport, want, deadline);
  bool taken = held && held->has_value() && !is_ours(**held);
  if (!taken) {
    auto added = add(want);
    if (!added) return added.error();
    r = *added;
    if (r == kSuccess)
      granted = want;
    else if (!is_conflict(r))
      return refused(r, want);
  }
  if (granted == 0) {
    // Port held by someone else (718, or 501 on some routers). First re-use an entry
    // of ours on another port, so repeated runs never fill the table.
    auto table = router.list(deadline);
    if (table) {
      for (const auto& e : table->entries)
        if (e.transport == params.transport && is_ours(e) && e.external_port != want) {
          auto added = add(e.external_port);
          if (!added) return added.error();
          if (*added == kSuccess) granted = e.external_port;
          break;
        }
    }
  }
  if (granted == 0 && v2) {
    std::string ext_s = std::to_string(want), lease_s = std::to_string(lease);
    log_to(log, LogLevel::debug,
           fmt::format("upnp -> AddAnyPortMapping {} {} -> {}:{}", proto, ext_s, params.internal_ip,
                       in_port));
    auto reply = router.add_mapping("AddAnyPortMapping", add_args(ext_s, lease_s), deadline);
    if (!reply) return reply.error();
    r = reply->fault;
    const std::string reserved = text_of(*reply, "NewReservedPort");
    log_to(log, LogLevel::debug,
           fmt::format("upnp <- AddAnyPortMapping: {} port {}", r,
                       printable_excerpt(reserved, 16)));
    if (r == kSuccess)
      granted = to_port(reserved);
    else if (r == kActionFailed && no_external)
      return refused(r, want);
  }
  if (granted == 0) {
    // IGDv1 (or AddAnyPortMapping refused): walk a few ports up from the wanted one.
    for (int i = 1; i <= kV1PortSearch && granted == 0 && !expired(deadline); ++i) {
      int candidate = want + i;
      if (candidate > 65535) break;
      auto p = static_cast<std::uint16_t>(candidate);
      auto other = router.find(params.transport, p, deadline);
      if (other && other->has_value() && !is_ours(**other)) continue;
      auto added = add(p);
      if (!added) return added.error();
      r = *added;
      if (r == kSuccess)
        granted = p;
      else if (!is_conflict(r))
        return refused(r, p);
    }
  }
  if (granted == 0)
    return make_error(Errc::refused,
                      fmt::format("external {} port {} is held by another host and the router "
                                  "offered no other port ({})",
                                  proto, want, upnp_error_text(r == kSuccess ? kConflict : r)),
                      kConflict);

  // Read back what the router really granted (IGDv2 turns lease 0 into 604800), or
  // have the question sent for the caller to read (caller_reads_lease).
  grant.external_port = granted;
  grant.lease = lease;
  if (params.caller_reads_lease) {
    router.find_ahead(params.transport, granted, deadline);
    grant.lease_unconfirmed = true;
  } else if (auto entry = router.find(params.transport, granted, deadline);
             entry && entry->has_value()) {
    grant.lease = (*entry)->lease;
  }
  return grant;
}

}  // namespace porthole::detail
