#!/usr/bin/env bash
# Installs the built project into a scratch prefix, then builds and runs the consumer
# against it. $1 = porthole's build dir, $2 = scratch dir.
set -euo pipefail
build=$1 scratch=$2
here=$(cd "$(dirname "$0")" && pwd)
rm -rf "$scratch"
cmake --install "$build" --prefix "$scratch/prefix" >/dev/null
cmake -S "$here" -B "$scratch/build" -DCMAKE_PREFIX_PATH="$scratch/prefix" >/dev/null
cmake --build "$scratch/build" >/dev/null
"$scratch/build/consumer"
test -f "$scratch/prefix/share/man/man1/porthole.1"
test -x "$scratch/prefix/bin/porthole"
"$scratch/prefix/bin/porthole" --version
"$scratch/prefix/bin/porthole-lab" --help | grep -q "^usage: porthole-lab COMMAND"
