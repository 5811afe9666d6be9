#!/usr/bin/python3
"""Hole-punching speed in the lab, side by side in one run:

  porthole punch (lan1 behind r1 <-> lan2 behind r2, rendezvous: porthole serve)
  vs nice_punch (bench/nice_punch.c, a small reference ICE client on libnice)

per NAT pairing (lab.sh nat-mode r1 X, nat-mode r2 Y): the 13 of the 16 pairings of the
lab's four modes that a direct punch can serve (not symmetric with symmetric or with
eim, which is port-restricted). Both processes start at once (through `ip netns exec`,
the same for both tools); the figure is the time to a checked path on each tool's own
clock, the later of the two sides:
- porthole: the JSON elapsed_ms of `porthole punch` (from the punch's start to the
  checks proving the path), both exiting 0, each naming the other's public address;
- libnice: nice_punch's SELECTED time (from its start to libnice's
  "new-selected-pair-full": a nominated pair that passed its check), the remote naming
  the other's public address.
Two wall-clock columns on the bench's clock come with it: until both `porthole punch`
processes exited (that includes the 0.5 s both keep answering the peer's last checks and
the removal of the gateway mapping), and until both libnice components were READY
(component-state-changed), which libnice reports only once every pair of higher
priority has failed (here the unreachable host pair, after its retransmissions).
A run whose path is wrong or missing is reported and left out of the medians.

Then porthole alone behind carrier-grade NAT (`lab.sh cgnat-start`): lanc behind rc
behind the ISP's NAT box isp, against lan2 behind r2 (eim), for isp eim / symmetric x
rc eim / symmetric (--no-cgnat leaves them out), with the lab's stund as a second STUN
server. A last table has every pairing run:
pair, the strategy and path kind porthole used (the most frequent over the runs), the
median time to connected (the later JSON elapsed_ms) and the median packets_sent (both
sides: probes and extra sockets' checks beyond the plain ICE checks).

Why the signalling is a fair equivalent of the rendezvous: porthole registers at
`porthole serve` (two round trips: challenge, signed registration; they also give it
its server-reflexive address) and exchanges offer and answer through it (one relayed
hop each way). nice_punch asks the same server, as a STUN server, for its
server-reflexive address (one round trip to 198.51.100.12:3478), connects to a relay on
198.51.100.23 (one round trip) and exchanges its SDP through it (one relayed hop each
way). Both then run ICE checks from the socket they gathered on. libnice runs UDP only,
no TURN, and without its UPnP IGD client (which would hold gathering until its own
timeout); porthole runs as a user would, mapping its port when the gateway offers (PCP
/ NAT-PMP / UPnP), unless --no-map is given here.

Usage: bench/punch_bench.py --porthole build/porthole [--runs 3] [--json out.json]
                            [--pairings eim-eim,fullcone-restricted,...] [--no-map]
                            [--no-cgnat]
The lab must be up (tests/lab/lab.sh up) and otherwise idle; gcc and libnice-dev
(scripts/install-deps.sh) build nice_punch into a temporary directory. r1 and r2 are
put back in eim mode, `porthole serve` is stopped and the CGNAT corner removed at the end.
"""

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from benchkit import communicate_all, in_ns, labkit, write_json

MODES = ("eim", "symmetric", "fullcone", "restricted")
HARD = {("symmetric", "symmetric"), ("symmetric", "eim"), ("eim", "symmetric")}
PAIRINGS = [(a, b) for a in MODES for b in MODES if (a, b) not in HARD]
RENDEZVOUS = "198.51.100.12:3478"
# Both tools' STUN server is the rendezvous' own (porthole serve, RFC 8489): the lab's
# stund (198.51.100.10) is an RFC 3489 server, whose answers libnice decodes into a
# wrong server-reflexive address (no magic cookie).
STUN_IP, STUN_PORT = "198.51.100.12", 3478
RELAY_IP, RELAY_PORT = "198.51.100.23", 3480
WAN = {"lan1": "203.0.113.2", "lan2": "203.0.113.130", "lanc": "203.0.113.50"}
OTHER = {"lan1": "lan2", "lan2": "lan1"}
# Behind carrier-grade NAT: (isp mode, rc mode), lanc against lan2 with r2 in eim.
CGNAT = [(i, h) for i in ("eim", "symmetric") for h in ("eim", "symmetric")]
# porthole alone there, so it also gets the lab's stund: a second view of the mapping,
# without which it cannot tell a symmetric NAT (and picks no birthday punch).
CGNAT_STUN = "198.51.100.10:3478"
TIMEOUT = 15  # seconds: a bound for one run, never a figure

# The signalling relay, in inet: each client sends "NAME PEER\n" and its blob up to a
# line "."; once both halves of a pair are in, each gets the other's blob.
_RELAY = r"""
import socket, sys, threading
ip, port = sys.argv[1], int(sys.argv[2])
blobs, cv = {}, threading.Condition()
def serve(c):
    with c:
        data = b""
        while b"\n.\n" not in data:
            chunk = c.recv(4096)
            if not chunk:
                return
            data += chunk
        head, _, blob = data.partition(b"\n")
        me, other = head.decode().split()
        with cv:
            blobs[me] = blob
            cv.notify_all()
            ok = cv.wait_for(lambda: other in blobs, timeout=30)
            theirs = blobs.get(other)
        if ok:
            c.sendall(theirs)
            c.recv(1)  # until the client closes
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind((ip, port))
s.listen(16)
print("READY", flush=True)
while True:
    c, _ = s.accept()
    threading.Thread(target=serve, args=(c,), daemon=True).start()
"""


def porthole_run(bin_: str, ids: dict, states: dict, no_map: bool, pair=("lan1", "lan2"),
                 extra=()):
    """One punch from both sides of pair; ((ms until both exited, max JSON elapsed_ms),
    {strategy, path, packets}) or (None, an error)."""
    procs, other = {}, {pair[0]: pair[1], pair[1]: pair[0]}
    t0 = time.monotonic()
    for ns in pair:
        argv = [bin_, "punch", ids[other[ns]], "--rendezvous", RENDEZVOUS, "--json",
                "--state-dir", states[ns], *extra]
        if no_map:
            argv.append("--no-map")
        procs[ns] = subprocess.Popen(in_ns(ns, argv), stdin=subprocess.DEVNULL,
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    outs = communicate_all(procs, TIMEOUT)
    wall = (time.monotonic() - t0) * 1000.0
    elapsed, paths, packets, strategy = [], [], 0, ""
    for ns, p in procs.items():
        try:
            j = json.loads(outs[ns][0])
        except ValueError:
            j = None
        if p.returncode != 0 or not isinstance(j, dict):
            return None, f"porthole on {ns}: exit {p.returncode}: {outs[ns][1].strip()[-300:]}"
        if j.get("peer", "").rpartition(":")[0] != WAN[other[ns]]:
            return None, f"porthole on {ns}: peer {j.get('peer')}, not {WAN[other[ns]]}"
        elapsed.append(float(j.get("elapsed_ms", 0)))
        paths.append(str(j.get("path", "-")))
        packets += int(j.get("packets_sent") or 0)
        strategy = strategy or str(j.get("strategy", "-"))
    return ((wall, max(elapsed)),
            {"strategy": strategy, "path": " / ".join(paths), "packets": packets}), None


def nice_run(exe: str, run_id: str):
    """One ICE session from both sides; (the later of the two SELECTED times, each on
    nice_punch's own clock from its start; ms until both printed READY on the bench's
    clock), or an error."""
    procs, seen, lines = {}, {}, {}
    t0 = time.monotonic()
    for ns, me, controlling in (("lan1", "a", 1), ("lan2", "b", 0)):
        other = "b" if me == "a" else "a"
        argv = [exe, f"{run_id}{me}", f"{run_id}{other}", RELAY_IP, str(RELAY_PORT), STUN_IP,
                str(STUN_PORT), str(controlling), str(TIMEOUT)]
        procs[ns] = subprocess.Popen(in_ns(ns, argv), stdin=subprocess.DEVNULL,
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    def pump(ns):
        for line in procs[ns].stdout:
            word = line.split()[0] if line.split() else ""
            lines.setdefault(ns, []).append(line.strip())
            seen.setdefault((ns, word), time.monotonic())

    threads = [threading.Thread(target=pump, args=(ns,), daemon=True) for ns in procs]
    for t in threads:
        t.start()
    for ns, p in procs.items():
        try:
            p.wait(timeout=TIMEOUT + 5)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()
    for t in threads:
        t.join(5)
    for ns, p in procs.items():
        for word in ("SELECTED", "READY"):
            got = next((l for l in lines.get(ns, []) if l.startswith(word)), None)
            if p.returncode != 0 or got is None:
                return None, f"nice_punch on {ns}: exit {p.returncode}: {lines.get(ns)} " \
                             f"{p.stderr.read().strip()[-300:]}"
            remote = got.split()[3]
            if remote.rpartition(":")[0] != WAN[OTHER[ns]]:
                return None, f"nice_punch on {ns}: {word} remote {remote}, not {WAN[OTHER[ns]]}"
    # Its own clock (from main()) to the later SELECTED; the bench's clock to both READY.
    own = max(float(next(l for l in lines[ns] if l.startswith("SELECTED")).split()[1])
              for ns in procs)
    return (own, (max(seen[(ns, "READY")] for ns in procs) - t0) * 1000.0), None


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--porthole", required=True, help="path to the porthole binary")
    ap.add_argument("--runs", type=int, default=3, help="runs per tool and pairing")
    ap.add_argument("--json", help="also write the figures to this file")
    ap.add_argument("--pairings", help="comma-separated R1MODE-R2MODE (default: all 13)")
    ap.add_argument("--no-map", action="store_true", help="run porthole punch with --no-map")
    ap.add_argument("--no-cgnat", action="store_true",
                    help="leave out the pairings behind carrier-grade NAT (lab.sh cgnat-start)")
    args = ap.parse_args()
    labkit.require_lab()
    bin_ = str(Path(args.porthole).resolve())
    pairings = PAIRINGS
    if args.pairings:
        pairings = [tuple(p.split("-", 1)) for p in args.pairings.split(",")]
        bad = [p for p in pairings if p not in PAIRINGS]
        if bad:
            ap.error(f"not a direct pairing: {bad}; one of {PAIRINGS}")
    tmp = Path(tempfile.mkdtemp(prefix="porthole-punch-bench-"))
    exe = str(tmp / "nice_punch")
    cc = subprocess.run(["sh", "-c", f"gcc -O2 -o {exe} {Path(__file__).parent / 'nice_punch.c'} "
                         "$(pkg-config --cflags --libs nice)"], capture_output=True, text=True)
    if cc.returncode != 0:
        print(f"building nice_punch failed (scripts/install-deps.sh installs libnice-dev):\n"
              f"{cc.stderr}", file=sys.stderr)
        return 1
    os.environ["PORTHOLE_BIN"] = bin_
    cgnat = [] if args.no_cgnat else CGNAT
    hosts = ("lan1", "lan2", "lanc") if cgnat else ("lan1", "lan2")
    if cgnat:
        r = labkit.lab("cgnat-start")
        if not r.ok:
            print(f"lab.sh cgnat-start failed: {r}", file=sys.stderr)
            return 1
    states = {ns: str(tmp / f"state-{ns}") for ns in hosts}
    ids = {}
    for ns in states:
        r = labkit.run(ns, [bin_, "id", "--state-dir", states[ns]])
        if not r.ok:
            print(f"porthole id failed on {ns}: {r}", file=sys.stderr)
            return 1
        ids[ns] = r.stdout.strip()
    relay = subprocess.Popen(in_ns("inet", [labkit.PYTHON, "-u", "-c", _RELAY, RELAY_IP,
                                            str(RELAY_PORT)]),
                             stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, text=True)
    samples, failures, info = {}, [], {}
    try:
        if relay.stdout.readline().strip() != "READY":
            raise RuntimeError("the signalling relay did not start")
        r = labkit.lab("serve-start")
        if not r.ok:
            raise RuntimeError(f"lab.sh serve-start failed: {r}")
        for a, b in pairings:
            for router, mode in (("r1", a), ("r2", b)):
                r = labkit.lab("nat-mode", router, mode)
                if not r.ok:
                    raise RuntimeError(f"lab.sh nat-mode {router} {mode} failed: {r}")
            key = f"{a}-{b}"
            s = samples[key] = {"porthole_exit": [], "porthole_elapsed": [], "libnice": [],
                                "libnice_ready": []}
            for run in range(args.runs):
                tools = ["porthole", "libnice"] if run % 2 == 0 else ["libnice", "porthole"]
                for tool in tools:
                    if tool == "porthole":
                        got, err = porthole_run(bin_, ids, states, args.no_map)
                        if got:
                            s["porthole_exit"].append(got[0][0])
                            s["porthole_elapsed"].append(got[0][1])
                            info.setdefault(f"{a} <-> {b}", []).append(got)
                    else:
                        got, err = nice_run(exe, f"{key}-{run}-")
                        if got:
                            s["libnice"].append(got[0])
                            s["libnice_ready"].append(got[1])
                    if err:
                        failures.append(f"{key} run {run}: {err}")
        for router, mode in (("r1", "eim"), ("r2", "eim")):
            labkit.lab("nat-mode", router, mode)
        for isp_mode, home in cgnat:
            for cmd in (("cgnat-start", isp_mode), ("nat-mode", "rc", home)):
                r = labkit.lab(*cmd)
                if not r.ok:
                    raise RuntimeError(f"lab.sh {' '.join(cmd)} failed: {r}")
            key = f"lanc({isp_mode}+{home}) <-> lan2(eim)"
            for run in range(args.runs):
                got, err = porthole_run(bin_, ids, states, args.no_map, ("lanc", "lan2"),
                                        ("--stun", CGNAT_STUN))
                if got:
                    info.setdefault(key, []).append(got)
                if err:
                    failures.append(f"{key} run {run}: {err}")
    finally:
        for router in ("r1", "r2"):
            labkit.lab("nat-mode", router, "eim")
        labkit.lab("serve-stop")
        if cgnat:
            labkit.lab("cgnat-stop")
        relay.terminate()
        relay.wait(5)
        shutil.rmtree(tmp, ignore_errors=True)

    def med(xs):
        return statistics.median(xs) if xs else float("nan")

    flag = " (porthole --no-map)" if args.no_map else ""
    print(f"Punch benchmark in the lab{flag}, {args.runs} runs per tool and pairing "
          "(medians, milliseconds)")
    print(f"{'r1 <-> r2':<24} {'porthole':>9} {'libnice':>9} {'libnice/porthole':>17} "
          f"{'porthole exit':>14} {'libnice READY':>14}")
    medians = {}

    def row(name, m):
        print(f"{name:<24} {m['porthole_elapsed']:>9.1f} {m['libnice']:>9.1f} "
              f"{m['ratio']:>16.2f}x {m['porthole_exit']:>14.1f} {m['libnice_ready']:>14.1f}")

    for key, s in samples.items():
        m = {n: med(v) for n, v in s.items()}
        m["ratio"] = m["libnice"] / m["porthole_elapsed"] \
            if s["porthole_elapsed"] and s["libnice"] else float("nan")
        medians[key] = m
        row(key.replace("-", " <-> "), m)
    every = {n: [x for s in samples.values() for x in s[n]]
             for n in ("porthole_exit", "porthole_elapsed", "libnice", "libnice_ready")}
    overall = {n: med(v) for n, v in every.items()}
    overall["ratio"] = overall["libnice"] / overall["porthole_elapsed"] \
        if every["porthole_elapsed"] and every["libnice"] else float("nan")
    row("all pairings", overall)
    print("porthole: the later of the two JSON elapsed_ms (punch start -> path proved); "
          "libnice: the later of the two SELECTED times (process start -> nominated pair)")
    print("porthole exit: both started -> both exited 0 (includes the 0.5 s linger and the "
          "mapping's removal); libnice READY: both started -> both components READY")
    print()
    print(f"porthole per pairing{flag}: most frequent strategy and path kind (lan side / "
          f"other side), medians of {args.runs} runs")
    print(f"{'pair':<40} {'strategy':<9} {'path kind':<36} {'connected ms':>12} {'packets':>8}")
    table = {}
    for key, runs in info.items():
        def most(name):
            return statistics.mode(x[1][name] for x in runs)
        table[key] = {"strategy": most("strategy"), "path": most("path"),
                      "connected_ms": med([x[0][1] for x in runs]),
                      "packets": med([x[1]["packets"] for x in runs])}
        t = table[key]
        print(f"{key:<40} {t['strategy']:<9} {t['path']:<36} {t['connected_ms']:>12.1f} "
              f"{t['packets']:>8.0f}")
    print("connected ms: the later JSON elapsed_ms; packets: packets_sent of both sides "
          "(probes and extra sockets' checks beyond the plain ICE checks)")
    for f in failures:
        print(f"failed: {f}")
    write_json(args.json, {"runs": args.runs, "no_map": args.no_map, "samples_ms": samples,
                           "median_ms": medians, "overall_median_ms": overall,
                           "pairings": table, "failures": failures})
    return 0 if not failures else 1


if __name__ == "__main__":
    sys.exit(main())
