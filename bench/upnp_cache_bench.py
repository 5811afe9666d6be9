#!/usr/bin/python3
"""UPnP opens with the IGD cache, in the lab (real miniupnpd), side by side in one run:

  porthole open --via upnp, warm cache  vs  upnpc -i -u URL -a  (target: no slower)
  porthole open --via upnp, cold cache  vs  upnpc -i -a         (target: >= 10x faster)

plus `porthole probe`'s UPnP time as it reports it (`probe --json`, protocols.upnp
.elapsed_ms: the SSDP search, the description and GetExternalIPAddress), and, to show
where a warm open's time goes beyond the router's, the same open with the state
directory on tmpfs (/dev/shm: the two state writes without the disk) and each tool's
bare start-up (`porthole --version`, `upnpc` without arguments, which prints its usage).

"Cold" removes upnp-igd.json (untimed) before the run, so porthole searches with SSDP
and writes the cache; "warm" finds it written. The runs are made as in mapping_bench.py
(lan1, alternating order, an untimed undo before each timed command, upnpc -i).

Usage: bench/upnp_cache_bench.py --porthole build/porthole [--runs 20] [--json out.json]
The lab must be up (tests/lab/lab.sh up) and the router otherwise idle.
"""

import json
import shutil
import statistics
import sys
import tempfile
from pathlib import Path

from benchkit import arguments, labkit, print_medians, print_targets, write_json
from mapping_bench import LAN1, ROOTDESC, timed


def main() -> int:
    args, bin_ = arguments(__doc__, runs=20)
    state = Path(tempfile.mkdtemp(prefix="porthole-bench-"))
    cache = state / "upnp-igd.json"
    ph = lambda *a: [bin_, *a, "--state-dir", str(state)]  # noqa: E731
    shm = Path(tempfile.mkdtemp(prefix="porthole-bench-", dir="/dev/shm"))
    ph_shm = lambda *a: [bin_, *a, "--state-dir", str(shm)]  # noqa: E731
    forget = lambda: cache.unlink(missing_ok=True)  # noqa: E731

    # name: (command, undo, before): `before` runs untimed after the undo.
    group = {
        "porthole open, warm cache": (ph("open", "45011", "--via", "upnp", "-q"),
                                      ph("close", "45011", "-q"), None),
        "porthole open, cold cache": (ph("open", "45012", "--via", "upnp", "-q"),
                                      ph("close", "45012", "-q"), forget),
        "upnpc -u URL -a": (["upnpc", "-i", "-u", ROOTDESC, "-e", "bench", "-a", LAN1,
                             "45013", "45013", "TCP"],
                            ["upnpc", "-i", "-u", ROOTDESC, "-d", "45013", "TCP"], None),
        "upnpc -a": (["upnpc", "-i", "-e", "bench", "-a", LAN1, "45014", "45014", "TCP"],
                     ["upnpc", "-i", "-u", ROOTDESC, "-d", "45014", "TCP"], None),
        "porthole open, warm, state on tmpfs": (ph_shm("open", "45015", "--via", "upnp", "-q"),
                                                ph_shm("close", "45015", "-q"), None),
        "start-up: porthole --version": ([bin_, "--version"], ["true"], None),
        "start-up: upnpc (usage)": (["upnpc"], ["true"], None),
    }
    samples = {name: [] for name in group}
    probe_upnp = []
    try:
        timed(ph("open", "45010", "--via", "upnp", "-q"))  # writes the cache
        timed(ph_shm("open", "45010", "--via", "upnp", "-q"))  # and the tmpfs one
        for run in range(args.runs):
            names = list(group)
            if run % 2:
                names.reverse()
            for name in names:
                cmd, undo, before = group[name]
                labkit.run("lan1", undo, timeout=30)  # may have nothing to undo
                if name == "porthole open, warm cache" and not cache.exists():
                    timed(ph("open", "45010", "--via", "upnp", "-q"))  # warm it again
                if before:
                    before()
                if name == "start-up: upnpc (usage)":  # exits 1 after its usage
                    samples[name].append(labkit.run("lan1", cmd, timeout=30).elapsed * 1000.0)
                else:
                    samples[name].append(timed(cmd) * 1000.0)
            r = labkit.run("lan1", ph("probe", "--json"), timeout=30)
            probe_upnp.append(float(json.loads(r.stdout)["protocols"]["upnp"]["elapsed_ms"]))
    finally:
        for cmd, undo, _ in group.values():
            labkit.run("lan1", undo, timeout=30)
        labkit.run("lan1", ph("close", "45010", "-q"), timeout=30)
        labkit.run("lan1", ph_shm("close", "45010", "-q"), timeout=30)
        shutil.rmtree(state, ignore_errors=True)
        shutil.rmtree(shm, ignore_errors=True)

    med = print_medians(f"UPnP cache benchmark in the lab, {args.runs} runs each (milliseconds)",
                        samples)
    probe_med = statistics.median(probe_upnp)
    print(f"{'porthole probe, UPnP elapsed_ms':<30} median {probe_med:8.1f}  "
          f"min {min(probe_upnp):8.1f}  max {max(probe_upnp):8.1f}")
    ratios = {
        "upnpc -u URL -a / porthole warm":
            med["upnpc -u URL -a"] / med["porthole open, warm cache"],
        "upnpc -a / porthole cold": med["upnpc -a"] / med["porthole open, cold cache"],
        "upnpc -a / porthole warm": med["upnpc -a"] / med["porthole open, warm cache"],
    }
    print()
    for n, v in ratios.items():
        print(f"{n:<45} {v:6.2f}x")
    targets = {
        "porthole warm no slower than upnpc -u URL -a":
            ratios["upnpc -u URL -a / porthole warm"] >= 1.0,
        "porthole cold >= 10x faster than upnpc -a": ratios["upnpc -a / porthole cold"] >= 10,
    }
    print_targets(targets)
    write_json(args.json, {"runs": args.runs, "samples_ms": samples, "median_ms": med,
                           "probe_upnp_ms": probe_upnp, "ratios": ratios, "targets": targets})
    return 0


if __name__ == "__main__":
    sys.exit(main())
