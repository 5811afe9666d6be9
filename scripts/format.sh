#!/usr/bin/env bash
# Formats every C and C++ file git tracks with clang-format-14 and .clang-format.
#   scripts/format.sh           rewrite the files in place
#   scripts/format.sh --check   change nothing; exit 1 and name each file that is off
# CI runs the check as the ctest build.format.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
fmt=${CLANG_FORMAT:-clang-format-14}
cd "$root"
if ! command -v "$fmt" >/dev/null; then
  echo "format.sh: $fmt not found: run scripts/install-deps.sh --build" >&2
  exit 2
fi
mapfile -t files < <(git ls-files '*.cpp' '*.hpp' '*.c' '*.h')
if [ "${1:-}" = "--check" ]; then
  off=()
  for f in "${files[@]}"; do
    "$fmt" --dry-run --Werror "$f" >/dev/null 2>&1 || off+=("$f")
  done
  if [ ${#off[@]} -ne 0 ]; then
    printf 'format.sh: not formatted: %s\n' "${off[@]}" >&2
    echo "format.sh: run scripts/format.sh to fix ${#off[@]} file(s)" >&2
    exit 1
  fi
  echo "format.sh: ${#files[@]} files formatted"
else
  "$fmt" -i "${files[@]}"
fi
