#!/usr/bin/python3
"""NAT behaviour discovery speed, side by side in one run, in the lab:

  porthole nat --stun 198.51.100.10   vs   stun 198.51.100.10 (Debian's stun-client)

(target: porthole >= 5x faster, median), against the same stund on the same router, in
each of the lab's four NAT modes (lab.sh nat-mode r1 eim|symmetric|fullcone|restricted).
Every run of both tools must reach the verdict the mode is built for, or the benchmark
fails: speed only counts for a right answer. Each timed command runs from LAN host lan1
through `ip netns exec` (the same overhead for both); the order alternates every run.
r1 is put back in eim mode at the end. Prints medians, min/max and ratios; --json FILE
also writes them.

Usage: bench/nat_bench.py --porthole build/porthole [--runs 9] [--json out.json]
The lab must be up (tests/lab/lab.sh up) and otherwise idle.
"""

import json
import statistics
import sys
import tempfile

from benchkit import arguments, labkit, print_targets, write_json

STUN = "198.51.100.10"
# mode -> (porthole's nat_type, the words of `stun`'s verdict line)
MODES = {
    "eim": ("port-restricted-cone", "Independent Mapping, Port Dependent Filter"),
    "symmetric": ("symmetric", "Dependent Mapping"),
    "fullcone": ("full-cone", "Independent Mapping, Independent Filter"),
    "restricted": ("restricted-cone", "Independent Mapping, Address Dependent Filter"),
}


def verdict_line(text: str) -> str:
    return next((l.strip() for l in text.splitlines() if l.startswith("Primary:")), "")


def main() -> int:
    args, bin_ = arguments(__doc__, runs=9, runs_help="runs per tool and mode")
    state = tempfile.mkdtemp(prefix="porthole-nat-bench-")
    tools = {
        "porthole nat": [bin_, "nat", "--json", "--stun", STUN, "--state-dir", state],
        "stun": ["stun", STUN],
    }
    samples = {mode: {t: [] for t in tools} for mode in MODES}
    wrong = []
    try:
        for mode, (nat_type, stun_says) in MODES.items():
            r = labkit.lab("nat-mode", "r1", mode)
            if not r.ok:
                raise RuntimeError(f"lab.sh nat-mode r1 {mode} failed: {r}")
            for run in range(args.runs):
                names = list(tools) if run % 2 == 0 else list(reversed(tools))
                for name in names:
                    r = labkit.run("lan1", tools[name], timeout=30)
                    if name == "stun":
                        # stun exits with a bit field of its verdict, never 0.
                        ok = not r.timed_out and stun_says in verdict_line(r.stdout)
                        got = verdict_line(r.stdout)
                    else:
                        try:
                            got = json.loads(r.stdout)["nat_type"] if r.ok else r.stderr
                        except (ValueError, KeyError):
                            got = r.stdout
                        ok = got == nat_type
                    if not ok:
                        wrong.append(f"{mode}: {name} said {got!r}")
                    samples[mode][name].append(r.elapsed * 1000.0)
    finally:
        labkit.lab("nat-mode", "r1", "eim")

    print(f"NAT discovery benchmark in the lab, {args.runs} runs per tool and mode (milliseconds)")
    print(f"{'mode':<11} {'tool':<14} {'median':>9} {'min':>9} {'max':>9}")
    med = {}
    for mode in MODES:
        for name, s in samples[mode].items():
            med[f"{mode} {name}"] = statistics.median(s)
            print(f"{mode:<11} {name:<14} {statistics.median(s):>9.1f} {min(s):>9.1f} {max(s):>9.1f}")
    all_ph = [x for m in MODES for x in samples[m]["porthole nat"]]
    all_stun = [x for m in MODES for x in samples[m]["stun"]]
    overall = {"porthole nat": statistics.median(all_ph), "stun": statistics.median(all_stun)}
    ratios = {mode: med[f"{mode} stun"] / med[f"{mode} porthole nat"] for mode in MODES}
    ratios["all modes"] = overall["stun"] / overall["porthole nat"]
    print()
    for n, v in ratios.items():
        print(f"stun / porthole nat, {n:<11} {v:6.2f}x")
    targets = {
        "same verdict as the mode, every run, both tools": not wrong,
        "porthole nat >= 5x faster than stun (median, all modes)": ratios["all modes"] >= 5,
    }
    print_targets(targets)
    for w in wrong:
        print(f"wrong verdict: {w}")
    write_json(args.json, {"runs": args.runs, "samples_ms": samples, "median_ms": med,
                           "overall_median_ms": overall, "ratios": ratios,
                           "targets": targets, "wrong": wrong})
    return 0 if not wrong else 1


if __name__ == "__main__":
    sys.exit(main())
