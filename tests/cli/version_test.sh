#!/usr/bin/env bash
# `porthole --version` names the libraries and does not initialise GnuTLS: GnuTLS's
# global init reads its system priority file (/etc/gnutls/config, whether it exists or
# not), which strace sees; `porthole id`, which signs, is the control that it does.
#   version_test.sh PORTHOLE
set -euo pipefail
bin=$1
export PORTHOLE_SYSTEM_CONFIG="" XDG_CONFIG_HOME=/nonexistent/porthole-version-test
fail() { echo "FAIL: $*"; exit 1; }

text=$("$bin" --version)
echo "$text"
head -1 <<<"$text" | grep -Eq '^porthole [0-9]+\.[0-9]+\.[0-9]+$' || fail "first line"
for lib in miniupnpc libnatpmp GnuTLS; do
  grep -Eq "^  $lib [0-9][^ ]* \(" <<<"$text" || fail "no version of $lib"
done
# The GnuTLS line is the library running, as gnutls-cli would say it is.
json=$("$bin" --version --json)
python3 - "$json" <<'PY' || fail "--version --json"
import json, sys
j = json.loads(sys.argv[1])
assert j["version"].count(".") == 2, j
names = [l["name"] for l in j["libraries"]]
assert names[:3] == ["miniupnpc", "libnatpmp", "GnuTLS"], names
for l in j["libraries"]:
    assert l["version"] and l["version"] != "unknown", l
    assert l["source"], l
PY

command -v strace >/dev/null || fail "strace is missing (scripts/install-deps.sh installs it)"
trace=$(mktemp)
scratch=$(mktemp -d)
trap 'rm -rf "$trace" "$scratch"' EXIT
strace -f -qq -e trace=file -o "$trace" "$bin" --version >/dev/null
if grep -q 'gnutls/config' "$trace"; then fail "--version initialised GnuTLS"; fi
strace -f -qq -e trace=file -o "$trace" "$bin" id --state-dir "$scratch/id" >/dev/null
grep -q 'gnutls/config' "$trace" || fail "the control (porthole id) did not initialise GnuTLS: the check sees nothing"
echo "ok: --version does not initialise GnuTLS; porthole id does"
