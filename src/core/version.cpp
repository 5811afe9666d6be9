// porthole::library_versions (include/porthole/version.hpp). Each version comes from
// its library's adapter where the library can tell (codec/igd_xml.cpp for miniupnpc,
// codec/ed25519.cpp for GnuTLS); libnatpmp has no version macro or call, so CMake
// records the version of the package it built against (PORTHOLE_NATPMP_VERSION).
#include "porthole/version.hpp"

#include "codec/ed25519.hpp"
#include "codec/igd_xml.hpp"

#ifndef PORTHOLE_NATPMP_VERSION
#define PORTHOLE_NATPMP_VERSION "unknown"
#endif
#ifndef PORTHOLE_LIBRARY_VERSION
#define PORTHOLE_LIBRARY_VERSION "unknown"
#endif

namespace porthole {

std::string porthole_version() { return PORTHOLE_LIBRARY_VERSION; }

std::vector<ComponentVersion> library_versions() {
  std::vector<ComponentVersion> out;
  out.push_back({"miniupnpc", std::string(detail::miniupnpc_version()), "headers at build time"});
  out.push_back(
      {"libnatpmp", PORTHOLE_NATPMP_VERSION, "Debian package libnatpmp-dev at build time"});
  out.push_back(
      {"GnuTLS", std::string(detail::ed25519::tls_library_version()), "library at run time"});
  // A library added later (ngtcp2 with the QUIC tunnel) gets its line here, from the
  // adapter that includes its headers.
  return out;
}

}  // namespace porthole
