#!/usr/bin/env bash
# lintian over both .debs: any error fails, and so does lintian failing to run.
# Warnings are printed, not fatal (there were none when this was written; a new one
# is worth a look). $1 = directory of the .debs, $2 = version.
set -euo pipefail
dir=$1 version=$2
arch=$(dpkg --print-architecture)
debs=("$dir/porthole_${version}_${arch}.deb" "$dir/libporthole-dev_${version}_${arch}.deb")
# Exit status: 0 no error, 2 errors (--fail-on error), else it did not run.
# Its note on stderr that it would rather not run as root is not a finding.
rc=0
out=$(lintian --no-cfg --fail-on error --display-level ">=warning" "${debs[@]}" 2>&1) || rc=$?
out=$(grep -v '^running with root privileges is not recommended' <<<"$out" || true)
[ -z "$out" ] || printf '%s\n' "$out"
case $rc in
  0) echo "lintian: no errors ($(grep -c '^W: ' <<<"$out" || true) warnings)" ;;
  2) echo "lintian: errors above" >&2; exit 1 ;;
  *) echo "lintian did not run (exit $rc)" >&2; exit 1 ;;
esac
