#!/usr/bin/env bash
# Installs every Debian package porthole needs to build, test and run its lab.
# libgnutls28-dev: GnuTLS for the identity keys; libunistring-dev: the libunistring.a
# GnuTLS's archive needs when the CLI links it statically. openssl: the lab's lying
# rendezvous signs with a key of its own (openssl pkeyutl). libnice-dev: the reference
# ICE client bench/punch_bench.py compiles. clang-format-14: scripts/format.sh and the
# build.format test. coturn: the lab's TURN relay (lab.sh turn-start). strace: the
# cli.version test (GnuTLS stays uninitialised).
# python3-pytest: the pytest fixture example (examples/pytest-fixture). lintian, man-db
# (man -w) and dpkg-dev (dpkg-buildflags, dpkg-shlibdeps): scripts/package.sh and the
# package tests. libngtcp2-dev, libngtcp2-crypto-gnutls-dev: QUIC for the tunnel
# (src/tunnel/quic_connection.cpp); the crypto package's -dev does not pull in
# libngtcp2-dev, so both are named. curl: the tunnel scenarios fetch files through
# `porthole connect`. iperf3, openssh-server/-client: bench/tunnel_bench.py compares the
# tunnel with `ssh -L` and plain TCP (sshd runs only inside a lab namespace, started by
# the bench).
# Idempotent: packages already present are skipped quickly.
#   scripts/install-deps.sh            everything (build, lab, bench, packaging)
#   scripts/install-deps.sh --build    only what building and the unit tests need
#   scripts/install-deps.sh --package  what building and checking the .debs needs
#   scripts/install-deps.sh --debs DEB...  the Depends of these .deb files (before dpkg -i)
# As root; otherwise through sudo when sudo is installed.
set -euo pipefail

build_pkgs=(cmake ninja-build g++ clang libclang-rt-14-dev pkg-config
            libminiupnpc-dev libnatpmp-dev libcli11-dev libfmt-dev catch2 nlohmann-json3-dev
            nettle-dev libgnutls28-dev libunistring-dev ccache clang-format-14 strace
            libngtcp2-dev libngtcp2-crypto-gnutls-dev)
lab_pkgs=(iproute2 nftables conntrack miniupnpd miniupnpd-nftables miniupnpc natpmpc
          stun-server stun-client python3 procps psmisc openssl python3-pytest coturn curl)
bench_pkgs=(hyperfine libnice-dev gcc iperf3 openssh-server openssh-client)
package_pkgs=(dpkg-dev lintian man-db)

# The package names in a .deb's Depends, without versions; of alternatives the first.
deb_depends() {
  dpkg-deb -f "$1" Depends | tr ',' '\n' | sed 's/|.*//; s/(.*)//; s/:any//; s/[[:space:]]//g' |
    grep -v '^$' || true
}

want=("${build_pkgs[@]}" "${lab_pkgs[@]}" "${bench_pkgs[@]}" "${package_pkgs[@]}")
case ${1:-} in
  --build) want=("${build_pkgs[@]}") ;;
  --package) want=("${build_pkgs[@]}" "${package_pkgs[@]}") ;;
  --debs)
    shift
    [ $# -gt 0 ] || { echo "install-deps: --debs needs .deb files" >&2; exit 2; }
    want=()
    for deb in "$@"; do
      [ -f "$deb" ] || { echo "install-deps: no such file: $deb" >&2; exit 2; }
      mapfile -t -O "${#want[@]}" want < <(deb_depends "$deb")
    done ;;
  '') ;;
  *) echo "install-deps: unknown option $1 (--build, --package, --debs DEB...)" >&2; exit 2 ;;
esac
missing=()
for p in "${want[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done

if [ ${#missing[@]} -eq 0 ]; then
  echo "install-deps: all ${#want[@]} packages present"
  exit 0
fi

as_root=()
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null; then
    as_root=(sudo)
  else
    echo "install-deps: missing packages (${missing[*]}); run it as root" >&2
    exit 1
  fi
fi

echo "install-deps: installing ${missing[*]}"
# miniupnpd's postinst asks debconf questions and may try to start the daemon: we
# run it ourselves inside the lab, never in the root namespace.
echo 'miniupnpd miniupnpd/start_daemon boolean false' |
  "${as_root[@]}" debconf-set-selections 2>/dev/null || true
echo 'iperf3 iperf3/start_daemon boolean false' |
  "${as_root[@]}" debconf-set-selections 2>/dev/null || true
"${as_root[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -qq
"${as_root[@]}" env DEBIAN_FRONTEND=noninteractive \
  apt-get install -y -qq --no-install-recommends "${missing[@]}"
