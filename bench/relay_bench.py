#!/usr/bin/python3
"""A relayed path against a direct one in the lab, in one run:

  direct:  lan1 behind r1 (eim) <-> lan2 behind r2 (eim), `porthole punch`
  relayed: both routers symmetric, `porthole punch --turn` through coturn in inet
           (tests/lab/lab.sh turn-start), where no direct path exists

Figures per kind (median over --runs): the time to a path (the later side's JSON
elapsed_ms), and the throughput of a UDP blast through --exec: lan1 sends 1200-byte
datagrams for 2 s as fast as its socket takes them, lan2 counts what arrives (Mbit/s
of payload between its first and last datagram, and the share of datagrams lost).
miniupnpd is stopped on both routers (no mapping helps either kind); `porthole serve`
is the rendezvous. Everything is put back at the end (eim, routers started, coturn and
serve stopped).

Usage: bench/relay_bench.py --porthole build/porthole [--runs 5] [--json out.json]
The lab must be up (tests/lab/lab.sh up) and otherwise idle.
"""

import json
import os
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

from benchkit import arguments, communicate_all, in_ns, labkit, write_json

RENDEZVOUS = "198.51.100.12:3478"
TURN = "turn:198.51.100.14:3478"
TIMEOUT = 30  # seconds: a bound for one run, never a figure

# lan1 waits for lan2's "ready", then blasts for 2 s and says "end"; lan2 reports.
BLAST = r"""
import json, socket, sys, time
role = sys.argv[1]
s = socket.socket(fileno=3)
payload = b"x" * 1200
if role == "send":
    s.settimeout(0.05)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            if s.recv(2048).startswith(b"ready"):
                break
        except (socket.timeout, OSError):
            pass
    s.setblocking(False)
    sent, end = 0, time.monotonic() + 2.0
    while time.monotonic() < end:
        try:
            s.send(payload)
            sent += 1
        except BlockingIOError:
            time.sleep(0.0005)
        except OSError:
            time.sleep(0.001)
    s.setblocking(True)
    for _ in range(20):
        try:
            s.send(b"end %d" % sent)
        except OSError:
            pass
        time.sleep(0.01)
    print("blast: " + json.dumps({"sent": sent}), flush=True)
else:
    s.settimeout(0.05)
    got, first, last, sent = 0, None, None, None
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline and sent is None:
        if first is None:
            try:
                s.send(b"ready")
            except OSError:
                pass
        try:
            data = s.recv(4096)
        except (socket.timeout, OSError):
            continue
        if data.startswith(b"end "):
            sent = int(data.split()[1])
        elif len(data) == 1200:
            now = time.monotonic()
            first = first or now
            last = now
            got += 1
    print("blast: " + json.dumps({"got": got, "sent": sent,
                                  "seconds": (last - first) if first and last else 0}),
          flush=True)
"""


def peer_id(bin_: str, ns: str, state: str) -> str:
    r = subprocess.run(in_ns(ns, [bin_, "id", "--json", "--state-dir", state]),
                       capture_output=True, text=True, timeout=10)
    return json.loads(r.stdout)["id"]


def modes(m: str) -> None:
    for r in ("r1", "r2"):
        labkit.lab("nat-mode", r, m)


def run_pair(bin_, ids, states, blast, turn: bool):
    """Both punches with the blast program; (elapsed_ms, Mbit/s, loss) or an error."""
    procs = {}
    env = dict(os.environ)
    for ns, other, role in (("lan1", "lan2", "send"), ("lan2", "lan1", "recv")):
        argv = [bin_, "punch", ids[other], "--rendezvous", RENDEZVOUS, "--json", "--no-map",
                "--state-dir", states[ns], "--exec", f"exec python3 {blast} {role}"]
        if turn:
            argv += ["--turn", TURN]
        procs[ns] = subprocess.Popen(in_ns(ns, argv), stdin=subprocess.DEVNULL, env=env,
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    outs = communicate_all(procs, TIMEOUT)
    elapsed, blast_out = [], {}
    for ns, p in procs.items():
        lines = outs[ns][0].splitlines()
        if p.returncode != 0:
            return None, f"{ns}: exit {p.returncode}: {outs[ns][1].strip()[-300:]}"
        try:
            j = json.loads("\n".join(ln for ln in lines if not ln.startswith("blast: ")))
            blast_out[ns] = json.loads(next(ln for ln in lines if ln.startswith("blast: "))[7:])
        except (StopIteration, ValueError):
            return None, f"{ns}: no result: {outs[ns][0][-300:]}"
        want = "relayed" if turn else None
        if want and j.get("path") != want or not want and j.get("path") == "relayed":
            return None, f"{ns}: path {j.get('path')}"
        elapsed.append(float(j.get("elapsed_ms", 0)))
    r = blast_out["lan2"]
    if not r.get("seconds") or not r.get("sent"):
        return None, f"blast: {r}"
    mbit = r["got"] * 1200 * 8 / r["seconds"] / 1e6
    loss = 1 - r["got"] / r["sent"]
    return (max(elapsed), mbit, loss), None


def main() -> int:
    args, bin_ = arguments(__doc__, 5, "runs per kind")
    tmp = Path(tempfile.mkdtemp(prefix="porthole-relay-bench-"))
    blast = tmp / "blast.py"
    blast.write_text(BLAST)
    states = {ns: str(tmp / ns) for ns in ("lan1", "lan2")}
    env = labkit.lab_env()
    os.environ["PORTHOLE_TURN"] = env["LAB_TURN_CREDENTIALS"]
    os.environ["PORTHOLE_BIN"] = bin_
    samples = {"direct": [], "relayed": []}
    try:
        for r in ("r1", "r2"):
            labkit.lab("router-stop", r)
        labkit.lab("serve-start")
        labkit.lab("turn-start")
        ids = {ns: peer_id(bin_, ns, states[ns]) for ns in ("lan1", "lan2")}
        for _ in range(args.runs):
            for kind, mode, turn in (("direct", "eim", False), ("relayed", "symmetric", True)):
                modes(mode)
                got, err = run_pair(bin_, ids, states, blast, turn)
                if err:
                    print(f"{kind}: run left out: {err}")
                    continue
                samples[kind].append(got)
                time.sleep(0.2)
    finally:
        modes("eim")
        for r in ("r1", "r2"):
            labkit.lab("router-start", r)
        labkit.lab("turn-stop")
        labkit.lab("serve-stop")
    figures = {}
    print(f"{'path':<10} {'runs':>4} {'to path ms':>11} {'Mbit/s':>9} {'loss':>7}")
    for kind, s in samples.items():
        if not s:
            print(f"{kind:<10} {0:>4}  (no successful run)")
            continue
        f = {"runs": len(s), "elapsed_ms": statistics.median(x[0] for x in s),
             "mbit_s": statistics.median(x[1] for x in s),
             "loss": statistics.median(x[2] for x in s)}
        figures[kind] = f
        print(f"{kind:<10} {f['runs']:>4} {f['elapsed_ms']:>11.0f} {f['mbit_s']:>9.1f} "
              f"{f['loss'] * 100:>6.1f}%")
    if args.json:
        write_json(args.json, figures)
    return 0 if samples["direct"] and samples["relayed"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
