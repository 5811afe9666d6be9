#!/usr/bin/env bash
# porthole as a user gets it: installs the two .debs with dpkg -i (their Depends first,
# through scripts/install-deps.sh --debs), then checks the installed copy: --version,
# the man pages, the consumer built against the installed headers and library with
# find_package(porthole) and with pkg-config, porthole-lab up/down, the two fixture
# examples (CTest and pytest) against porthole-lab; then purges both packages and
# checks that no file of theirs is left. The packages are purged on failure too.
# Needs root. $1 = the directory holding the .debs, $2 = the version, $3 = the source
# tree, $4 = a scratch directory. Lab prefixes: ${PORTHOLE_LAB_PREFIX:-phpkg}{i,c,p}.
set -euo pipefail
dir=$1 version=$2 src=$3 scratch=$4
arch=$(dpkg --print-architecture)
cli=$dir/porthole_${version}_${arch}.deb
dev=$dir/libporthole-dev_${version}_${arch}.deb
base=${PORTHOLE_LAB_PREFIX:-phpkg}
[ "$(id -u)" -eq 0 ] || { echo "installed.sh: needs root (dpkg -i, the lab)" >&2; exit 1; }
# A package of ours already here (installed, or its conffiles left) would be purged.
for p in porthole libporthole-dev; do
  status=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
  case $status in
    ''|*not-installed) ;;
    *) echo "installed.sh: $p is on this machine ($status); this test would purge it" >&2
       exit 1 ;;
  esac
done
rm -rf "$scratch"; mkdir -p "$scratch"

# On any exit: labs down, packages purged. Nothing in here may stop it half-way.
cleanup() {
  local rc=$?
  set +e
  if [ -x /usr/bin/porthole-lab ]; then
    for sfx in i c p; do
      PORTHOLE_LAB_PREFIX=$base$sfx /usr/bin/porthole-lab down >/dev/null 2>&1
    done
  fi
  dpkg --purge libporthole-dev porthole >/dev/null 2>&1
  exit $rc
}
trap cleanup EXIT
step() { echo "== $*"; }

step "install"
"$src/scripts/install-deps.sh" --debs "$cli" "$dev"
dpkg -i "$cli" "$dev"
dpkg -L porthole libporthole-dev | sort -u >"$scratch/files"

step "porthole --version, man -w"
[ "$(command -v porthole)" = /usr/bin/porthole ]
porthole --version | tee "$scratch/version"
grep -q "$version" "$scratch/version"
[ "$(man -w porthole)" = /usr/share/man/man1/porthole.1.gz ]
[ "$(man -w porthole-lab)" = /usr/share/man/man1/porthole-lab.1.gz ]
systemd-analyze verify /usr/lib/systemd/system/porthole@.service 2>/dev/null ||
  grep -q '^ExecStart=/usr/bin/porthole hold %I' /usr/lib/systemd/system/porthole@.service

step "consumer with find_package(porthole), installed package only"
cmake -S "$src/tests/consumer" -B "$scratch/consumer-cmake" >/dev/null
cmake --build "$scratch/consumer-cmake" >/dev/null
grep -q "porthole_DIR:PATH=/usr/lib/.*/cmake/porthole" "$scratch/consumer-cmake/CMakeCache.txt"
"$scratch/consumer-cmake/consumer"

step "consumer with pkg-config --cflags --libs porthole"
pkg-config --cflags --libs porthole
# shellcheck disable=SC2046  # pkg-config's flags are words
c++ -std=c++20 -o "$scratch/consumer-pc" "$src/tests/consumer/main.cpp" \
    $(pkg-config --cflags --libs porthole)
"$scratch/consumer-pc"

step "porthole-lab from the installed copy"
porthole-lab --help | grep -q '^usage: porthole-lab COMMAND'
export PORTHOLE_LAB_PREFIX=${base}i
porthole-lab up
porthole-lab exec lan1 /usr/bin/porthole --gateway 192.168.1.1 --state-dir "$scratch/state" \
  open 40090 --via upnp --description package-test
porthole-lab upnp-table r1 | grep -qx 'TCP 40090 192.168.1.100 40090'
porthole-lab exec lan1 /usr/bin/porthole --gateway 192.168.1.1 --state-dir "$scratch/state" \
  close 40090
! porthole-lab upnp-table r1 | grep -q 'TCP 40090 '
porthole-lab down
ns_left=$(ip netns list | grep -c "^${base}i-" || true)
[ "$ns_left" -eq 0 ] || { echo "porthole-lab down left $ns_left namespaces" >&2; exit 1; }

step "examples/ctest-fixture against porthole-lab"
PORTHOLE_LAB_PREFIX=${base}c cmake -S "$src/examples/ctest-fixture" -B "$scratch/ctest-fixture" >/dev/null
PORTHOLE_LAB_PREFIX=${base}c ctest --test-dir "$scratch/ctest-fixture" --output-on-failure

step "examples/pytest-fixture against porthole-lab"
PORTHOLE_LAB_PREFIX=${base}p PYTHONDONTWRITEBYTECODE=1 \
  pytest-3 -q -p no:cacheprovider "$src/examples/pytest-fixture"

step "purge"
dpkg --purge libporthole-dev porthole
left=()
while read -r f; do
  [ -e "$f" ] || [ -L "$f" ] || continue
  # A directory stays rightly when another package owns it or it holds others' files
  # (dpkg removes the empty ones it made).
  if [ -d "$f" ] && ! [ -L "$f" ]; then
    dpkg -S "$f" >/dev/null 2>&1 && continue
    [ -n "$(ls -A "$f")" ] && continue
  fi
  left+=("$f")
done <"$scratch/files"
[ ${#left[@]} -eq 0 ] || { echo "left after purge: ${left[*]}" >&2; exit 1; }
echo "package installed ok: $(wc -l <"$scratch/files") paths installed and purged"
