#!/usr/bin/env bash
# The whole test suite on a fresh machine: install what is needed, build, run every
# test (unit tests and the network lab against real miniupnpd). Needs root for the lab.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${PORTHOLE_BUILD_DIR:-$root/build}
"$root/scripts/install-deps.sh"
"$root/scripts/build.sh"
# The lab gets a prefix of its own, so a test run never tears down a lab someone has up.
export PORTHOLE_LAB_PREFIX=${PORTHOLE_LAB_PREFIX:-phtest}
cd "$build"
# Lab tests change one router's state: they serialise on resource locks; unit tests
# run alongside them.
ctest --output-on-failure -j2 "$@"
