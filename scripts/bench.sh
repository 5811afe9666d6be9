#!/usr/bin/env bash
# The speed benchmark in the lab: porthole side by side with upnpc and natpmpc against
# the same real miniupnpd, `porthole nat` with Debian's `stun` against the same
# stund, open vs open --verify, and porthole punch next to a libnice reference client per
# NAT pairing, and the expose/connect tunnel next to ssh -L and plain TCP. Prints medians
# and ratios. Needs root. Extra
# arguments go to
# bench/mapping_bench.py (e.g. --runs 30 --json bench.json).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${PORTHOLE_BUILD_DIR:-$root/build}
"$root/scripts/install-deps.sh"
"$root/scripts/build.sh"
export PORTHOLE_LAB_PREFIX=${PORTHOLE_LAB_PREFIX:-phbench}
trap '"$root/tests/lab/lab.sh" down >/dev/null 2>&1 || true' EXIT
"$root/tests/lab/lab.sh" up
/usr/bin/python3 "$root/bench/mapping_bench.py" --porthole "$build/porthole" "$@"
# porthole nat vs Debian's stun client, in each of the lab's four NAT modes.
/usr/bin/python3 "$root/bench/nat_bench.py" --porthole "$build/porthole"
/usr/bin/python3 "$root/bench/verify_bench.py" --porthole "$build/porthole"
# porthole punch vs bench/nice_punch.c (libnice) across the lab's direct NAT pairings.
/usr/bin/python3 "$root/bench/punch_bench.py" --porthole "$build/porthole"
# porthole connect/expose vs ssh -L vs plain TCP (iperf3), CPU per GiB, RSS, first byte.
/usr/bin/python3 "$root/bench/tunnel_bench.py" --porthole "$build/porthole"
