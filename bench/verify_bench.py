#!/usr/bin/python3
"""What `--verify` adds to `open`, side by side in one run, in the lab (real miniupnpd,
`porthole serve` in the fake internet on 198.51.100.12/.13 as the --stun server):

  porthole open N --via pcp           vs  porthole open N --via pcp --verify   (TCP)
  porthole open N/udp --via pcp       vs  porthole open N/udp --via pcp --verify (UDP)

(target: the median difference under 50 ms when the answers come). Each timed command
runs from LAN host lan1 through `ip netns exec`; the order alternates every run and
every timed command is preceded by its own untimed close, so each meets the router in
the same state. Prints medians, min/max, the added milliseconds; --json FILE writes them.

Usage: bench/verify_bench.py --porthole build/porthole [--runs 15] [--json out.json]
The lab must be up (tests/lab/lab.sh up) and the router otherwise idle; this script
starts and stops `porthole serve` itself (lab.sh serve-start / serve-stop).
"""

import os
import shutil
import sys
import tempfile
from pathlib import Path

from benchkit import arguments, labkit, print_medians, print_targets, write_json

SERVE = "198.51.100.12"


def timed(argv, ok_codes=(0,)):
    r = labkit.run("lan1", argv, timeout=30)
    if r.rc not in ok_codes or r.timed_out:
        raise RuntimeError(f"{' '.join(argv)} failed: {r}")
    return r.elapsed * 1000.0


def main() -> int:
    args, bin_ = arguments(__doc__, runs=15)
    os.environ["PORTHOLE_BIN"] = bin_
    r = labkit.lab("serve-start")
    if not r.ok:
        raise RuntimeError(f"lab.sh serve-start failed: {r}")
    state = Path(tempfile.mkdtemp(prefix="porthole-bench-"))
    ph = lambda *a: [bin_, *a, "--state-dir", str(state), "-q"]  # noqa: E731
    stun = ["--stun", SERVE]
    pairs = {
        "tcp": {"open": ph("open", "45101", "--via", "pcp"),
                "open --verify": ph("open", "45101", "--via", "pcp", "--verify", *stun)},
        "udp": {"open": ph("open", "45102/udp", "--via", "pcp"),
                "open --verify": ph("open", "45102/udp", "--via", "pcp", "--verify", *stun)},
    }
    undo = {"tcp": ph("close", "45101"), "udp": ph("close", "45102/udp")}
    samples = {f"{t} {n}": [] for t in pairs for n in pairs[t]}
    try:
        for run in range(args.runs):
            for t, group in pairs.items():
                names = list(group)
                if run % 2:
                    names.reverse()
                for name in names:
                    labkit.run("lan1", undo[t], timeout=30)
                    samples[f"{t} {name}"].append(timed(group[name]))
    finally:
        for u in undo.values():
            labkit.run("lan1", u, timeout=30)
        labkit.lab("serve-stop")
        shutil.rmtree(state, ignore_errors=True)

    med = print_medians(f"open vs open --verify in the lab, {args.runs} runs each (milliseconds)",
                        {f"porthole {n}": s for n, s in samples.items()}, width=32)
    med = {n: med[f"porthole {n}"] for n in samples}
    added = {t: med[f"{t} open --verify"] - med[f"{t} open"] for t in pairs}
    ratios = {t: med[f"{t} open --verify"] / med[f"{t} open"] for t in pairs}
    print()
    for t in pairs:
        print(f"--verify adds {added[t]:6.1f} ms to a {t} open ({ratios[t]:.2f}x)")
    targets = {f"{t}: --verify adds under 50 ms": added[t] < 50 for t in pairs}
    print_targets(targets)
    write_json(args.json, {"runs": args.runs, "samples_ms": samples, "median_ms": med,
                           "added_ms": added, "ratios": ratios, "targets": targets})
    return 0


if __name__ == "__main__":
    sys.exit(main())
