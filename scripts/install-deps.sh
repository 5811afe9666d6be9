#!/usr/bin/env bash
# Installs every Debian package porthole needs to build, test and run its lab.
# libgnutls28-dev: GnuTLS for the identity keys; libunistring-dev: the libunistring.a
# GnuTLS's archive needs when the CLI links it statically. openssl: the lab's lying
# rendezvous signs with a key of its own (openssl pkeyutl). libnice-dev: the reference
# ICE client bench/punch_bench.py compiles. clang-format-14: scripts/format.sh and the
# build.format test. libngtcp2-dev, libngtcp2-crypto-gnutls-dev: QUIC for the tunnel
# (src/tunnel/quic_connection.cpp); the crypto package's -dev does not pull in
# libngtcp2-dev, so both are named. curl: the tunnel scenarios fetch files through
# `porthole connect`. iperf3, openssh-server/-client: bench/tunnel_bench.py compares the
# tunnel with `ssh -L` and plain TCP (sshd runs only inside a lab namespace, started by
# the bench).
# Idempotent: packages already present are skipped quickly.
#   scripts/install-deps.sh          everything (build, lab, bench)
#   scripts/install-deps.sh --build  only what building and the unit tests need
set -euo pipefail

build_pkgs=(cmake ninja-build g++ clang libclang-rt-14-dev pkg-config
            libminiupnpc-dev libnatpmp-dev libcli11-dev libfmt-dev catch2 nlohmann-json3-dev
            nettle-dev libgnutls28-dev libunistring-dev ccache clang-format-14
            libngtcp2-dev libngtcp2-crypto-gnutls-dev)
lab_pkgs=(iproute2 nftables conntrack miniupnpd miniupnpd-nftables miniupnpc natpmpc
          stun-server stun-client python3 procps psmisc openssl curl)
bench_pkgs=(hyperfine libnice-dev gcc iperf3 openssh-server openssh-client)

want=("${build_pkgs[@]}" "${lab_pkgs[@]}" "${bench_pkgs[@]}")
[ "${1:-}" = "--build" ] && want=("${build_pkgs[@]}")
missing=()
for p in "${want[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done

if [ ${#missing[@]} -eq 0 ]; then
  echo "install-deps: all ${#want[@]} packages present"
  exit 0
fi

if [ "$(id -u)" -ne 0 ]; then
  echo "install-deps: missing packages (${missing[*]}); run it as root" >&2
  exit 1
fi

echo "install-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
# miniupnpd's postinst asks debconf questions and may try to start the daemon: we
# run it ourselves inside the lab, never in the root namespace.
echo 'miniupnpd miniupnpd/start_daemon boolean false' | debconf-set-selections 2>/dev/null || true
echo 'iperf3 iperf3/start_daemon boolean false' | debconf-set-selections 2>/dev/null || true
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}"
