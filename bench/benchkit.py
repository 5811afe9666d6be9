"""What every benchmark in bench/ shares: its command line, the median table, the
targets and the --json file. The measuring itself stays in each benchmark."""

import argparse
import json
import statistics
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests" / "lab"))
import labkit  # noqa: E402,F401  (re-exported for the benchmarks)


def arguments(doc: str, runs: int, runs_help: str = "runs per comparison"):
    """--porthole BIN --runs N --json FILE; checks the lab is up. Returns (args, the
    porthole binary's absolute path)."""
    ap = argparse.ArgumentParser(description=doc.splitlines()[0])
    ap.add_argument("--porthole", required=True, help="path to the porthole binary")
    ap.add_argument("--runs", type=int, default=runs, help=runs_help)
    ap.add_argument("--json", help="also write the figures to this file")
    args = ap.parse_args()
    labkit.require_lab()
    return args, str(Path(args.porthole).resolve())


def print_medians(title: str, samples: dict, width: int = 30) -> dict:
    """A row per sample list: median, min and max in milliseconds. Returns the medians."""
    med = {n: statistics.median(s) for n, s in samples.items()}
    print(title)
    print(f"{'command':<{width}} {'median':>9} {'min':>9} {'max':>9}")
    for n, s in samples.items():
        print(f"{n:<{width}} {med[n]:>9.1f} {min(s):>9.1f} {max(s):>9.1f}")
    return med


def print_targets(targets: dict) -> None:
    print()
    for n, ok in targets.items():
        print(f"target {'met    ' if ok else 'MISSED '} {n}")


def write_json(path, figures: dict) -> None:
    """The figures to --json FILE, when one was given."""
    if path:
        Path(path).write_text(json.dumps(figures, indent=2))


def in_ns(ns: str, argv) -> list:
    """argv run inside the lab namespace ns (lan1, r1, ...)."""
    return [labkit.IP, "netns", "exec", labkit.ns_name(ns), *argv]


def communicate_all(procs: dict, timeout: float) -> dict:
    """(stdout, stderr) of each process in procs, keyed alike; one still running after
    timeout seconds is killed and what it wrote so far is kept."""
    outs = {}
    for name, p in procs.items():
        try:
            outs[name] = p.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            p.kill()
            outs[name] = p.communicate()
    return outs
