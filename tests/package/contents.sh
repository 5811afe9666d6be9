#!/usr/bin/env bash
# Checks the two .debs scripts/package.sh made: control fields, conffiles, and the
# files each must (and must not) ship. $1 = the directory holding them, $2 = the
# version they must carry, $3 = the source tree (optional files are checked only when
# their source is there).
set -euo pipefail
dir=$1 version=$2 src=$3
arch=$(dpkg --print-architecture)
cli=$dir/porthole_${version}_${arch}.deb
dev=$dir/libporthole-dev_${version}_${arch}.deb
fail=0
bad() { echo "FAIL: $*" >&2; fail=1; }
for deb in "$cli" "$dev"; do [ -f "$deb" ] || { echo "FAIL: no $deb" >&2; exit 1; }; done

field() { dpkg-deb -f "$1" "$2"; }
check_field() {  # DEB FIELD EXPECTED
  local got; got=$(field "$1" "$2")
  [ "$got" = "$3" ] || bad "$(basename "$1"): $2 is '$got', want '$3'"
}
check_field "$cli" Package porthole
check_field "$dev" Package libporthole-dev
for deb in "$cli" "$dev"; do
  check_field "$deb" Version "$version"
  check_field "$deb" Architecture "$arch"
  [ -n "$(field "$deb" Depends)" ] || bad "$(basename "$deb"): Depends is empty"
  [ -n "$(field "$deb" Maintainer)" ] || bad "$(basename "$deb"): no Maintainer"
  [ -n "$(field "$deb" Section)" ] || bad "$(basename "$deb"): no Section"
done
# dpkg-shlibdeps found the executable's shared libraries: glibc at least.
field "$cli" Depends | grep -Eq '(^|, )libc6 \(>= ' || bad "porthole: Depends lacks libc6 (>= ...): $(field "$cli" Depends)"
field "$cli" Recommends | grep -q miniupnpd || bad "porthole: Recommends lacks miniupnpd (porthole-lab)"
field "$dev" Depends | grep -q libminiupnpc-dev || bad "libporthole-dev: Depends lacks libminiupnpc-dev"

# Control members: conffiles list exactly the files under /etc; no maintainer scripts.
ctl=$(mktemp -d); trap 'rm -rf "$ctl"' EXIT
dpkg-deb -e "$cli" "$ctl/cli"; dpkg-deb -e "$dev" "$ctl/dev"
want_conf=/etc/default/porthole
want_conf+=$'\n'/etc/porthole/porthole.conf
got_conf=$(sort "$ctl/cli/conffiles" 2>/dev/null || true)
[ "$got_conf" = "$(sort <<<"$want_conf")" ] || bad "porthole: conffiles are '$got_conf', want '$want_conf'"
for s in preinst postinst prerm postrm; do
  [ ! -e "$ctl/cli/$s" ] || bad "porthole: has a $s maintainer script"
  [ ! -e "$ctl/dev/$s" ] || bad "libporthole-dev: has a $s maintainer script"
done
[ ! -e "$ctl/dev/conffiles" ] || bad "libporthole-dev: has conffiles"

# Files (dpkg-deb -c prints "MODE OWNER SIZE DATE TIME ./PATH").
list() { dpkg-deb -c "$1" | awk '{print $1, $2, $6}'; }
list "$cli" >"$ctl/cli.list"; list "$dev" >"$ctl/dev.list"
has() {  # LIST MODE PATH: PATH is shipped with that mode, owned by root
  grep -qxF -- "$2 root/root ./${3#/}" "$1" || bad "$(basename "$1" .list): no '$2 root/root $3'"
}
multiarch=$(dpkg-architecture -qDEB_HOST_MULTIARCH)
has "$ctl/cli.list" -rwxr-xr-x /usr/bin/porthole
has "$ctl/cli.list" -rwxr-xr-x /usr/bin/porthole-lab
has "$ctl/cli.list" -rwxr-xr-x /usr/share/porthole/lab/lab.sh
has "$ctl/cli.list" -rw-r--r-- /usr/share/porthole/lab/labkit.py
has "$ctl/cli.list" -rw-r--r-- /usr/share/man/man1/porthole.1.gz
has "$ctl/cli.list" -rw-r--r-- /usr/share/man/man1/porthole-lab.1.gz
has "$ctl/cli.list" -rw-r--r-- /usr/lib/systemd/system/porthole@.service
has "$ctl/cli.list" -rw-r--r-- /etc/default/porthole
has "$ctl/cli.list" -rw-r--r-- /usr/share/doc/porthole/copyright
has "$ctl/cli.list" -rw-r--r-- /usr/share/doc/porthole/changelog.gz
has "$ctl/cli.list" -rw-r--r-- /usr/share/bash-completion/completions/porthole
has "$ctl/cli.list" -rw-r--r-- /usr/share/bash-completion/completions/porthole-lab
has "$ctl/cli.list" -rw-r--r-- /etc/porthole/porthole.conf
has "$ctl/dev.list" -rw-r--r-- /usr/include/porthole/porthole.hpp
has "$ctl/dev.list" -rw-r--r-- "/usr/lib/$multiarch/libporthole.a"
has "$ctl/dev.list" -rw-r--r-- "/usr/lib/$multiarch/pkgconfig/porthole.pc"
has "$ctl/dev.list" -rw-r--r-- "/usr/lib/$multiarch/cmake/porthole/portholeConfig.cmake"
has "$ctl/dev.list" -rw-r--r-- "/usr/lib/$multiarch/cmake/porthole/portholeTargets.cmake"
has "$ctl/dev.list" -rw-r--r-- /usr/share/doc/libporthole-dev/copyright
# Every public header is in the -dev package.
for h in "$src"/include/porthole/*.hpp; do
  has "$ctl/dev.list" -rw-r--r-- "/usr/include/porthole/$(basename "$h")"
done
# Nothing of one package in the other, nothing outside the places a package may use,
# everything owned by root.
files() { awk '$1 !~ /^d/ {print $3}' "$1" | sed 's|^\./|/|'; }
both=$(comm -12 <(files "$ctl/cli.list" | sort) <(files "$ctl/dev.list" | sort))
[ -z "$both" ] || bad "in both packages: $both"
stray=$(cat <(files "$ctl/cli.list") <(files "$ctl/dev.list") |
        grep -Ev '^/(usr/(bin|include|lib|share)|etc)/' || true)
[ -z "$stray" ] || bad "files outside /usr/{bin,include,lib,share} and /etc: $stray"
owners=$(cat "$ctl/cli.list" "$ctl/dev.list" | awk '$2 != "root/root"')
[ -z "$owners" ] || bad "not owned by root: $owners"
# The .pc names the multiarch libdir and links the library.
dpkg-deb --fsys-tarfile "$dev" | tar -xO "./usr/lib/$multiarch/pkgconfig/porthole.pc" >"$ctl/porthole.pc"
grep -qx "libdir=\${prefix}/lib/$multiarch" "$ctl/porthole.pc" || bad "porthole.pc: libdir: $(grep libdir= "$ctl/porthole.pc")"
grep -q '^Libs: -L${libdir} -lporthole ' "$ctl/porthole.pc" || bad "porthole.pc: Libs: $(grep Libs: "$ctl/porthole.pc")"
grep -qx "Version: $version" "$ctl/porthole.pc" || bad "porthole.pc: Version"

[ $fail -eq 0 ] && echo "package contents ok: $(basename "$cli") $(basename "$dev")"
exit $fail
