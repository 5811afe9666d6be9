#!/usr/bin/python3
"""Mapping speed, side by side in one run, in the lab (real miniupnpd):

  porthole open --via upnp    vs  upnpc -i -a         (target: porthole >= 10x faster)
  porthole open --via natpmp  vs  natpmpc -a          (target: no slower)
  porthole probe (PCP + NAT-PMP + UPnP at once)       (target: median under 150 ms)

Each timed command runs from LAN host lan1 through `ip netns exec` (the same overhead
for every tool). Within a comparison the order alternates every run, and each timed
command is preceded by its own untimed undo, so every timed run creates its mapping
afresh on a router in the same state. upnpc needs -i
here: the lab router's external address is a documentation address (RFC 5737), which
miniupnpc calls "not connected" and otherwise refuses to use. Prints medians,
min/max and ratios; --json FILE also writes them.

Usage: bench/mapping_bench.py --porthole build/porthole [--runs 15] [--json out.json]
The lab must be up (tests/lab/lab.sh up) and the router otherwise idle.
"""

import shutil
import sys
import tempfile
from pathlib import Path

from benchkit import arguments, labkit, print_medians, print_targets, write_json

GATEWAY = "192.168.1.1"
LAN1 = "192.168.1.100"
ROOTDESC = f"http://{GATEWAY}:5000/rootDesc.xml"


def timed(argv, timeout=30.0):
    r = labkit.run("lan1", argv, timeout=timeout)
    if not r.ok:
        raise RuntimeError(f"{' '.join(argv)} failed: {r}")
    return r.elapsed


def main() -> int:
    args, bin_ = arguments(__doc__, runs=15)
    state = Path(tempfile.mkdtemp(prefix="porthole-bench-"))
    ph = lambda *a: [bin_, *a, "--state-dir", str(state)]  # noqa: E731

    # Comparisons run side by side: within a group the order alternates every run, and
    # every timed command is preceded by its own (untimed) undo, so each tool meets the
    # router in the same state (miniupnpd may still be busy after a different request).
    groups = [
        {
            "porthole open --via upnp": (ph("open", "45001", "--via", "upnp", "-q"),
                                         ph("close", "45001", "-q")),
            "upnpc -a": (["upnpc", "-i", "-e", "bench", "-a", LAN1, "45002", "45002", "TCP"],
                         ["upnpc", "-i", "-u", ROOTDESC, "-d", "45002", "TCP"]),
            "upnpc -u URL -a": (["upnpc", "-i", "-u", ROOTDESC, "-e", "bench", "-a", LAN1,
                                 "45003", "45003", "TCP"],
                                ["upnpc", "-i", "-u", ROOTDESC, "-d", "45003", "TCP"]),
        },
        {
            "porthole open --via natpmp": (ph("open", "45004/udp", "--via", "natpmp", "-q"),
                                           ph("close", "45004/udp", "-q")),
            # Neither tool is told the gateway: both read the default route.
            "natpmpc -a": (["natpmpc", "-a", "45005", "45005", "udp", "7200"],
                           ["natpmpc", "-a", "45005", "0", "udp", "0"]),
        },
        {
            "porthole open --via pcp": (ph("open", "45006", "--via", "pcp", "-q"),
                                        ph("close", "45006", "-q")),
            "porthole probe": (ph("probe", "-q"), None),
        },
    ]
    samples = {name: [] for g in groups for name in g}
    try:
        for run in range(args.runs):
            for group in groups:
                names = list(group)
                if run % 2:
                    names.reverse()
                for name in names:
                    cmd, undo = group[name]
                    if undo:
                        labkit.run("lan1", undo, timeout=30)  # may have nothing to undo
                    samples[name].append(timed(cmd) * 1000.0)
    finally:
        for group in groups:
            for cmd, undo in group.values():
                if undo:
                    labkit.run("lan1", undo, timeout=30)
        shutil.rmtree(state, ignore_errors=True)

    med = print_medians(f"mapping benchmark in the lab, {args.runs} runs each (milliseconds)",
                        samples)
    ratios = {
        "upnpc -a / porthole open --via upnp": med["upnpc -a"] / med["porthole open --via upnp"],
        "upnpc -u URL -a / porthole open --via upnp":
            med["upnpc -u URL -a"] / med["porthole open --via upnp"],
        "natpmpc -a / porthole open --via natpmp":
            med["natpmpc -a"] / med["porthole open --via natpmp"],
    }
    print()
    for n, v in ratios.items():
        print(f"{n:<45} {v:6.2f}x")
    targets = {
        "porthole upnp >= 10x faster than upnpc -a": ratios["upnpc -a / porthole open --via upnp"] >= 10,
        "porthole natpmp no slower than natpmpc -a":
            ratios["natpmpc -a / porthole open --via natpmp"] >= 1.0,
        "porthole probe median < 150 ms": med["porthole probe"] < 150,
    }
    print_targets(targets)
    write_json(args.json, {"runs": args.runs, "samples_ms": samples, "median_ms": med,
                           "ratios": ratios, "targets": targets})
    return 0


if __name__ == "__main__":
    sys.exit(main())
