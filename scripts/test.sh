#!/usr/bin/env bash
# The whole test suite on a fresh machine: install what is needed, build, run every
# test. Needs root (the lab's network namespaces). In order:
#   1. unit tests and the lab scenarios against real miniupnpd (g++, -Werror)
#   2. the same unit tests and lab scenarios built with clang 14 under ASan+UBSan
#   3. every decoder's libFuzzer target for $PORTHOLE_FUZZ_SECONDS (default 20) each
# Extra arguments go to the first ctest run.
#
#   scripts/test.sh --unit [CTEST ARGS]   the fast path: build, then only the unit tests
#                                         and the layering check (build.layering); no
#                                         root, no lab, no apt when the packages are there
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${PORTHOLE_BUILD_DIR:-$root/build}
if [ "${1:-}" = "--unit" ]; then
  shift
  "$root/scripts/install-deps.sh" --build
  "$root/scripts/build.sh"
  cd "$build"
  exec ctest -R '^(unit|build)\.' --output-on-failure -j2 "$@"
fi
"$root/scripts/install-deps.sh"
"$root/scripts/build.sh"

# The lab gets a prefix of its own, so a test run never tears down a lab someone has up.
export PORTHOLE_LAB_PREFIX=${PORTHOLE_LAB_PREFIX:-phtest}
echo "== unit tests and lab scenarios"
(cd "$build" && ctest --output-on-failure -j2 "$@")

echo "== under AddressSanitizer and UndefinedBehaviorSanitizer (clang 14)"
"$root/scripts/sanitize.sh"
# Exit code 99 for a sanitizer report, so it cannot pass for one of porthole's statuses.
ASAN_OPTIONS=detect_leaks=1:exitcode=99 \
UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1:exitcode=99 \
PORTHOLE_LAB_PREFIX=${PORTHOLE_LAB_PREFIX}_asan \
  ctest --test-dir "${PORTHOLE_ASAN_BUILD_DIR:-$root/build-asan}" -R '^lab\.' --output-on-failure

echo "== fuzzing every decoder"
"$root/scripts/fuzz.sh"
