#!/usr/bin/env bash
# bash completion (dist/bash-completion/porthole and porthole-lab), driven as bash does:
# COMP_WORDS/COMP_CWORD set, the completion function called, COMPREPLY checked.
# Every long option of every command's --help must be offered: a command or option
# added later that completion misses fails here.
#   completion_test.sh BUILD_DIR SOURCE_DIR
set -uo pipefail
build=$1 src=$2
export PATH="$build:$PATH"
# The machine's own config files must not change what porthole says.
export PORTHOLE_SYSTEM_CONFIG="" XDG_CONFIG_HOME=/nonexistent/porthole-completion-test
# shellcheck source=/dev/null
source "$src/dist/bash-completion/porthole"
# shellcheck source=/dev/null
source "$src/dist/bash-completion/porthole-lab"
failures=0

# complete FUNCTION WORD... : COMPREPLY for the last word, one per line, sorted.
complete_words() {
  local fn=$1; shift
  COMP_WORDS=("$@")
  COMP_CWORD=$((${#COMP_WORDS[@]} - 1))
  COMP_LINE="$*"
  COMPREPLY=()
  "$fn"
  printf '%s\n' "${COMPREPLY[@]}" | sort
}

expect() {  # expect WHAT "WANTED (lines)" FUNCTION WORD...
  local what=$1 wanted=$2; shift 2
  local got
  got=$(complete_words "$@")
  if [ "$got" != "$(printf '%s\n' "$wanted" | sort)" ]; then
    echo "FAIL: $what: got [$got] wanted [$wanted]"
    failures=$((failures + 1))
  else
    echo "ok: $what"
  fi
}

expect_has() {  # expect_has WHAT WORD FUNCTION WORD...
  local what=$1 word=$2; shift 2
  if ! complete_words "$@" | grep -qx -- "$word"; then
    echo "FAIL: $what: '$word' not offered for: ${*:2}"
    failures=$((failures + 1))
  fi
}

# Commands: every one porthole --help lists.
commands=$(porthole --help | sed -n '/^Subcommands:/,/^$/s/^  \([a-z][a-z0-9-]*\) .*/\1/p')
[ -n "$commands" ] || { echo "FAIL: no commands in porthole --help"; exit 1; }
expect "the commands" "$commands" _porthole porthole ""
expect "commands starting with p" "$(printf '%s\n' $commands | grep '^p')" _porthole porthole p

# Every option of every command, as its --help lists it (the global ones are in the
# table of porthole --help), and the global ones after any command.
for cmd in $commands; do
  # The option table's rows ("  -v,--verbose  ..."), not the examples in the footers.
  opts=$(porthole "$cmd" --help | sed -nE 's/^ +(-[a-zA-Z],)?(--[a-z][a-z0-9-]*).*/\2/p' | sort -u)
  n=0
  for o in $opts; do
    expect_has "porthole $cmd option" "$o" _porthole porthole "$cmd" --
    n=$((n + 1))
  done
  echo "ok: porthole $cmd: $n options offered"
done
expect_has "a global option before the command" --gateway _porthole porthole --
for o in $(porthole --help | sed -nE 's/^ +(-[a-zA-Z],)?(--[a-z][a-z0-9-]*).*/\2/p' | sort -u); do
  expect_has "global option after a command" "$o" _porthole porthole open 8080 --
done
expect "open's options starting with --l" "--lifetime" _porthole porthole open 8080 --l

# Values.
expect "--via values" "$(printf 'auto\npcp\nnatpmp\nupnp')" _porthole porthole open 8080 --via ""
expect "close --via values starting with n" natpmp _porthole porthole close --via n
expect "--via=VALUE" "$(printf 'auto\npcp\nnatpmp\nupnp')" _porthole porthole open --via = ""
expect "--via=u" upnp _porthole porthole open --via = u
scratch=$(mktemp -d)
mkdir "$scratch/statedir" && touch "$scratch/some.conf"
expect "--state-dir completes directories" "$scratch/statedir" _porthole porthole --state-dir "$scratch/s"
expect "--config completes files" "$scratch/some.conf" _porthole porthole --config "$scratch/so"
rm -rf "$scratch"
expect "--json takes no value: commands follow" "$commands" _porthole porthole --json ""

# porthole-lab: its commands from its own usage, nat-mode R MODE.
lab="$src/tests/lab/lab.sh"
lab_cmds=$("$lab" help | sed -n 's/^  \([a-z][a-z0-9-]*\) .*/\1/p')
expect_has "lab commands" nat-mode _porthole_lab "$lab" ""
expect_has "lab commands" up _porthole_lab "$lab" ""
for c in $lab_cmds; do expect_has "lab command $c" "$c" _porthole_lab "$lab" ""; done
expect "nat-mode routers" "$(printf 'r1\nr2')" _porthole_lab "$lab" nat-mode ""
# The behaviours lab.sh nat-mode accepts (its own case pattern).
modes=$(sed -n 's/.*case \$mode in \([a-z|-]*\)).*/\1/p' "$lab" | head -1 | tr '|' '\n')
[ -n "$modes" ] || { echo "FAIL: nat-mode's words not found in lab.sh"; failures=$((failures + 1)); }
expect "nat-mode words" "$modes" _porthole_lab "$lab" nat-mode r1 ""
expect "nat-mode words starting with s" "$(printf 'symmetric\nsymmetric-seq')" _porthole_lab "$lab" nat-mode r2 s

if [ $failures -gt 0 ]; then
  echo "$failures failure(s)"
  exit 1
fi
echo "all completion checks passed"
