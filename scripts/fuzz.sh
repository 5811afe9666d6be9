#!/usr/bin/env bash
# Builds the libFuzzer targets of fuzz/ with clang into build-fuzz/ (or
# $PORTHOLE_FUZZ_BUILD_DIR) and runs each for $PORTHOLE_FUZZ_SECONDS seconds (default
# 20) on a copy of its seed corpus, under AddressSanitizer and UndefinedBehaviorSanitizer.
# Prints the executions per target. Exits non-zero when any target crashes, fails a
# property, leaks, hangs on one input (10 s) or exceeds 2 GB; the input that did it is
# kept in build-fuzz/artifacts/<target>/ and the log in build-fuzz/fuzz-run/<target>.log.
#
#   scripts/fuzz.sh                    all targets
#   scripts/fuzz.sh pcp_response ...   only these
#   PORTHOLE_FUZZ_SECONDS=300 scripts/fuzz.sh
#
# No network: the targets only parse bytes. Needs clang and libclang-rt-14-dev
# (Debian 12). Builds with $PORTHOLE_JOBS parallel jobs (default 2).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${PORTHOLE_FUZZ_BUILD_DIR:-$root/build-fuzz}
seconds=${PORTHOLE_FUZZ_SECONDS:-20}
jobs=${PORTHOLE_JOBS:-2}
# Every fuzz/fuzz_<name>.cpp (each also listed in fuzz/CMakeLists.txt, with its seeds
# in fuzz/corpus/<name>/), or the names given.
targets=()
for source in "$root"/fuzz/fuzz_*.cpp; do
  name=${source##*/fuzz_}
  targets+=("${name%.cpp}")
done
[ $# -gt 0 ] && targets=("$@")

# Per-target libFuzzer options beyond the common ones. The HTTP parser's header bound
# is 16 KiB: inputs must be allowed past it.
extra_options() {
  case $1 in
    http_response) echo -max_len=20000 ;;
    igd_description) echo -max_len=8192 ;;
  esac
}

command -v clang++ >/dev/null ||
  { echo "fuzz.sh: needs clang++ and libclang-rt-14-dev (Debian 12)" >&2; exit 2; }
# shellcheck source=scripts/cmake-args.sh
source "$root/scripts/cmake-args.sh"
if [ ! -f "$build/CMakeCache.txt" ]; then
  CC=clang CXX=clang++ cmake -S "$root" -B "$build" "${cmake_args[@]}" \
    -DCMAKE_BUILD_TYPE=RelWithDebInfo -DPORTHOLE_FUZZ=ON -DPORTHOLE_BUILD_TESTS=OFF \
    -DPORTHOLE_STATIC_CLI=OFF -DPORTHOLE_WERROR=ON
fi
cmake --build "$build" --target porthole_fuzzers -j"$jobs"

run_dir=$build/fuzz-run
rm -rf "$run_dir"
mkdir -p "$run_dir"
failed=()
summary=()
for t in "${targets[@]}"; do
  exe=$build/fuzz/fuzz_$t
  seeds=$root/fuzz/corpus/$t
  [ -x "$exe" ] || { echo "fuzz.sh: no target fuzz_$t" >&2; exit 2; }
  [ -d "$seeds" ] || { echo "fuzz.sh: no corpus $seeds" >&2; exit 2; }
  # A copy: what the fuzzer adds to the corpus stays out of the source tree.
  corpus=$run_dir/corpus/$t
  mkdir -p "$corpus" "$build/artifacts/$t"
  cp "$seeds"/* "$corpus"/
  options=(-max_total_time="$seconds" -print_final_stats=1 -timeout=10 -rss_limit_mb=2048
           -artifact_prefix="$build/artifacts/$t/")
  [ -f "$root/fuzz/dict/$t.dict" ] && options+=(-dict="$root/fuzz/dict/$t.dict")
  read -r -a more <<<"$(extra_options "$t")"
  options+=("${more[@]}")
  log=$run_dir/$t.log
  echo "== fuzz_$t: ${seconds} s on $(find "$seeds" -type f | wc -l) seeds"
  rc=0
  "$exe" "${options[@]}" "$corpus" >"$log" 2>&1 || rc=$?
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
  if [ "$rc" -ne 0 ] || [ -z "$execs" ]; then
    failed+=("$t")
    summary+=("$(printf '%-16s %12s  FAILED (exit %s), log %s' "$t" "${execs:-?}" "$rc" "$log")")
    # The sanitizer's or the property's report, and the artifact's name.
    grep -E -m 20 'ERROR: |SUMMARY: |property violated|Test unit written to|deadly signal' \
      "$log" >&2 || tail -n 20 "$log" >&2
  else
    summary+=("$(printf '%-16s %12s  ok' "$t" "$execs")")
  fi
done

echo
printf '%-16s %12s\n' target executions
printf '%s\n' "${summary[@]}"
if [ ${#failed[@]} -gt 0 ]; then
  echo "fuzz.sh: failures in: ${failed[*]} (inputs in $build/artifacts/)" >&2
  exit 1
fi
