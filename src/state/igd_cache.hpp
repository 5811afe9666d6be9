// The UPnP IGD cache: what the last discovery found (control URL, service type, UDN,
// gateway, description URL), kept in the state directory as upnp-igd.json so that a
// later open, close or list goes straight to the control URL without SSDP. The cache
// only saves time: a file that is missing, unreadable or corrupt is no entry (the
// caller notes why in the -v log), never an error that stops an operation. It is
// written with replace_file (atomic rename), without the state lock: each write
// replaces the whole file, and the last writer wins.
#pragma once

#include <optional>
#include <string>

#include "porthole/error.hpp"
#include "proto/upnp_client.hpp"  // UpnpCachedIgd

namespace porthole::detail {

// The file's text, and back. parse() checks the form (version, fields, IPv4 addresses,
// bounded printable strings) but not the policy: UpnpClient re-checks the URLs against
// the gateway (cached_device) before it uses them. Errors: Errc::state naming the fault.
std::string serialize_igd_cache(const UpnpCachedIgd& entry);
Result<UpnpCachedIgd> parse_igd_cache(const std::string& text);

// The entry in dir's upnp-igd.json; nullopt when there is none. Errors (Errc::state):
// the directory cannot be used, the file is no regular file or is corrupt.
Result<std::optional<UpnpCachedIgd>> load_igd_cache(const std::string& dir);
Status save_igd_cache(const std::string& dir, const UpnpCachedIgd& entry);
// Removes the file (no error when there is none).
Status forget_igd_cache(const std::string& dir);

}  // namespace porthole::detail
