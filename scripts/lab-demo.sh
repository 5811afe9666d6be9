#!/usr/bin/env bash
# The main job, on a fresh machine: install what is needed, build, start the network
# lab (a real miniupnpd router in network namespaces), open a port on it from a LAN
# host, and show a connection from the lab's internet reaching the LAN host; then punch a
# direct UDP path between two LAN hosts behind different routers. Needs root.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${PORTHOLE_BUILD_DIR:-$root/build}
"$root/scripts/install-deps.sh"
"$root/scripts/build.sh"
# A prefix of its own, so the demo never touches a lab someone else has up.
export PORTHOLE_LAB_PREFIX=${PORTHOLE_LAB_PREFIX:-phdemo}
trap '"$root/tests/lab/lab.sh" down >/dev/null 2>&1 || true' EXIT
"$root/tests/lab/lab.sh" up
# porthole's own public-side server (STUN + connect-back) on 198.51.100.12/.13, for
# `nat` and `open --verify`.
PORTHOLE_BIN="$build/porthole" "$root/tests/lab/lab.sh" serve-start
/usr/bin/python3 "$root/scripts/lab_demo.py" "$build/porthole"
