// The version of porthole and of the libraries it was built with, for `porthole
// --version`. Reading them initialises nothing (GnuTLS is asked its version only).
#pragma once

#include <string>
#include <vector>

namespace porthole {

struct ComponentVersion {
  std::string name;     // "miniupnpc", "libnatpmp", "GnuTLS"
  std::string version;  // "2.2.4"; "unknown" when the build could not tell
  std::string source;   // where the version comes from: "headers at build time", ...
};

// The project version (CMake project(VERSION)).
std::string porthole_version();
// miniupnpc, libnatpmp, GnuTLS (and every further library linked in), in that order.
std::vector<ComponentVersion> library_versions();

}  // namespace porthole
