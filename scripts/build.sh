#!/usr/bin/env bash
# Configures and builds porthole into ./build (or $PORTHOLE_BUILD_DIR).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${PORTHOLE_BUILD_DIR:-$root/build}
# shellcheck source=scripts/cmake-args.sh
source "$root/scripts/cmake-args.sh"
if [ ! -f "$build/CMakeCache.txt" ]; then
  cmake -S "$root" -B "$build" "${cmake_args[@]}" -DCMAKE_BUILD_TYPE=RelWithDebInfo \
        -DPORTHOLE_WERROR=ON "$@"
fi
cmake --build "$build" -j"$(nproc)"
