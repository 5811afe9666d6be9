#!/usr/bin/env bash
# Builds the Debian packages with CPack: porthole_VERSION_ARCH.deb (the CLI, man pages,
# systemd unit, porthole-lab) and libporthole-dev_VERSION_ARCH.deb (headers, static
# library, CMake package, porthole.pc). A Release build of its own, prefix /usr, tests
# not built. Prints the paths of the two .debs, one a line, on stdout.
#   scripts/package.sh [OUTPUT_DIR]   default: build-package/debs
# Env: PORTHOLE_PACKAGE_BUILD_DIR (default build-package). Needs the build packages
# (scripts/install-deps.sh --build) and dpkg-dev (dpkg-buildflags,
# dpkg-shlibdeps).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${PORTHOLE_PACKAGE_BUILD_DIR:-$root/build-package}
out=${1:-$build/debs}
command -v dpkg-shlibdeps >/dev/null && command -v dpkg-buildflags >/dev/null ||
  { echo "package.sh: dpkg-shlibdeps not found; run scripts/install-deps.sh --package" >&2; exit 1; }
# shellcheck source=scripts/cmake-args.sh
source "$root/scripts/cmake-args.sh"
# The compile flags of scripts/build.sh (-O2 -g, -Werror; what CI builds warning-free),
# under the build type Release, so ccache serves the objects an earlier build compiled
# and a package build after it takes seconds, not minutes; the linker adds Debian's
# relro and now hardening (dpkg-buildflags), the package's binaries are stripped.
# PORTHOLE_PACKAGE_DEBIAN_FLAGS=1: all of dpkg-buildflags instead (fortify,
# stack protector; a full compile), warnings not fatal. The executable is linked
# against the shared libraries (cmake/Packaging.cmake says why).
ldflags="$(dpkg-buildflags --get LDFLAGS) -Wl,-z,now"
flags=(-DCMAKE_CXX_FLAGS_RELEASE="-O2 -g -DNDEBUG" -DPORTHOLE_WERROR=ON)
if [ "${PORTHOLE_PACKAGE_DEBIAN_FLAGS:-0}" = 1 ]; then
  flags=(-DCMAKE_CXX_FLAGS="$(dpkg-buildflags --get CPPFLAGS) $(dpkg-buildflags --get CXXFLAGS)"
         -DCMAKE_CXX_FLAGS_RELEASE=-DNDEBUG -DPORTHOLE_WERROR=OFF)
fi
# A fresh configure each time (the objects stay): the libraries found by an earlier
# configure with other options must not linger in the cache.
rm -f "$build/CMakeCache.txt"
cmake -S "$root" -B "$build" "${cmake_args[@]}" -DCMAKE_BUILD_TYPE=Release "${flags[@]}" \
      -DCMAKE_EXE_LINKER_FLAGS="$ldflags" -DCMAKE_INSTALL_PREFIX=/usr \
      -DPORTHOLE_STATIC_CLI=OFF -DPORTHOLE_GZIP_MAN=ON -DPORTHOLE_BUILD_TESTS=OFF >&2
cmake --build "$build" -j"$(nproc)" >&2
mkdir -p "$out"
out=$(cd "$out" && pwd)
rm -f "$out"/porthole_*.deb "$out"/libporthole-dev_*.deb
(cd "$build" && cpack -G DEB -B "$out" >&2)
# CPack leaves its staging tree next to the packages.
rm -rf "$out/_CPack_Packages"
ls "$out"/porthole_*.deb "$out"/libporthole-dev_*.deb
