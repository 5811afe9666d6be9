#!/usr/bin/env bash
# Runs clang-tidy-14 with .clang-tidy over src/ and cli/, using the compile commands of
# the build directory (build/, or $PORTHOLE_BUILD_DIR; scripts/build.sh makes it).
# Exits non-zero when there is a finding. Not part of CI: on 2 cores it takes minutes.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${PORTHOLE_BUILD_DIR:-$root/build}
tidy=${CLANG_TIDY:-clang-tidy-14}
if [ ! -f "$build/compile_commands.json" ]; then
  echo "tidy.sh: no $build/compile_commands.json: run scripts/build.sh first" >&2
  exit 2
fi
cd "$root"
mapfile -t files < <(git ls-files 'src/*.cpp' 'cli/*.cpp')
log=$(mktemp)
trap 'rm -f "$log"' EXIT
status=0
"$tidy" -p "$build" --quiet "${files[@]}" >"$log" 2>/dev/null || status=$?
findings=$(grep -cE '^[^ ].*: (warning|error): ' "$log" || true)
cat "$log"
echo "tidy.sh: $findings finding(s) in ${#files[@]} files"
if [ "$findings" -ne 0 ] || [ "$status" -ne 0 ]; then exit 1; fi
