#!/usr/bin/python3
"""Resources of `porthole hold` in the lab (real miniupnpd): one process holding many
mappings for several minutes, renewing them on schedule.

Measured from /proc/PID of the holder: resident memory (VmRSS at the end, VmHWM the
peak), CPU time (utime + stime) while it holds, and voluntary context switches (about
one per wake-up); plus how long the first mapping of every port took and how long the
release at SIGTERM took. The claim under test: between due events the process sleeps
(CPU well under 1 % over the run, wake-ups in proportion to the renewals, not to time).
No other port-mapping tool keeps mappings alive by itself (upnpc and natpmpc map once
and exit), so there is nothing to run side by side; the figures are printed alone.

Usage: bench/hold_bench.py --porthole build/porthole [--ports 200] [--minutes 3]
       [--lifetime 120] [--via pcp] [--json out.json]
The lab must be up (tests/lab/lab.sh up) and the router otherwise idle. The lab
router's min_lifetime is 120 s, so with the defaults every port is renewed about once a
minute (PCP: at a random point in 1/2..5/8 of the lifetime).
"""

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests" / "lab"))
import labkit  # noqa: E402

TICKS = os.sysconf("SC_CLK_TCK")


def proc_cpu(pid: int) -> float:
    """utime + stime of pid in seconds (/proc/PID/stat fields 14 and 15)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


def proc_status(pid: int) -> dict:
    out = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        out[key] = value.strip()
    return out


def kib(value: str) -> int:
    return int(value.split()[0])


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--porthole", required=True, help="path to the porthole binary")
    ap.add_argument("--ports", type=int, default=200)
    ap.add_argument("--minutes", type=float, default=3.0,
                  help="how long to hold (several lifetimes: every port is renewed)")
    ap.add_argument("--lifetime", type=int, default=120)
    ap.add_argument("--via", default="pcp", choices=("pcp", "natpmp", "upnp", "auto"))
    ap.add_argument("--json", help="also write the figures to this file")
    args = ap.parse_args()
    labkit.require_lab()
    bin_ = str(Path(args.porthole).resolve())
    state = Path(tempfile.mkdtemp(prefix="porthole-hold-bench-"))
    ports = [f"{46000 + i}/{'udp' if i % 2 else 'tcp'}" for i in range(args.ports)]
    argv = [labkit.IP, "netns", "exec", labkit.ns_name("lan1"), bin_, "hold", *ports,
            "--via", args.via, "--lifetime", str(args.lifetime), "--timeout", "5", "--json",
            "--state-dir", str(state)]
    counts = {}
    ready = threading.Event()
    released = threading.Event()
    lock = threading.Lock()
    t0 = time.monotonic()
    proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL, text=True)

    def pump():
        for line in proc.stdout:
            kind = json.loads(line)["event"]
            with lock:
                counts[kind] = counts.get(kind, 0) + 1
                if kind == "ready":
                    ready.set()
                if kind == "released" and counts[kind] == args.ports:
                    released.set()

    threading.Thread(target=pump, daemon=True).start()
    try:
        if not ready.wait(120):
            raise RuntimeError("hold did not get ready within 120 s")
        t_ready = time.monotonic()
        cpu_ready = proc_cpu(proc.pid)
        csw_ready = int(proc_status(proc.pid)["voluntary_ctxt_switches"])
        with lock:
            mapped_at_ready = counts.get("mapped", 0)
        # The idle window: nothing is due before 1/2 of the lifetime, so the process
        # should not run at all here.
        idle_s = min(30.0, args.lifetime * 0.4)
        time.sleep(idle_s)
        cpu_idle = proc_cpu(proc.pid) - cpu_ready
        csw_idle = int(proc_status(proc.pid)["voluntary_ctxt_switches"]) - csw_ready
        time.sleep(max(0.0, args.minutes * 60 - idle_s))
        t_end = time.monotonic()
        cpu_end = proc_cpu(proc.pid)
        st = proc_status(proc.pid)
        csw_end = int(st["voluntary_ctxt_switches"])
        with lock:
            held = dict(counts)
        t_term = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        rc = proc.wait(120)
        released.wait(5)
        t_gone = time.monotonic()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    left = [m for m in labkit.upnp_table("r1") if 46000 <= m.ext_port < 46000 + args.ports]

    hold_s = t_end - t_ready
    cpu_s = cpu_end - cpu_ready
    renewals = held.get("renewed", 0)
    figures = {
        "ports": args.ports, "via": args.via, "lifetime_s": args.lifetime,
        "first_mapping_all_ports_s": round(t_ready - t0, 3),
        "mapped_at_ready": mapped_at_ready,
        "held_s": round(hold_s, 1),
        "renewals": renewals,
        "errors": held.get("error", 0), "lost": held.get("lost", 0),
        "cpu_s_while_holding": round(cpu_s, 3),
        "cpu_percent_while_holding": round(100 * cpu_s / hold_s, 4),
        "cpu_ms_per_renewal": round(1000 * cpu_s / renewals, 3) if renewals else None,
        "voluntary_context_switches": csw_end - csw_ready,
        "idle_window_s": idle_s, "idle_cpu_s": round(cpu_idle, 3),
        "idle_context_switches": csw_idle,
        "vm_rss_kib": kib(st["VmRSS"]), "vm_hwm_kib": kib(st["VmHWM"]),
        "release_s": round(t_gone - t_term, 3), "exit_status": rc,
        "released": counts.get("released", 0), "left_on_router": len(left),
    }
    print(f"porthole hold: {args.ports} ports via {args.via}, lifetime {args.lifetime} s, "
          f"held {hold_s:.0f} s")
    print(f"  first mapping of every port   {figures['first_mapping_all_ports_s']:.2f} s "
          f"({mapped_at_ready} mapped)")
    print(f"  renewals                      {renewals} (errors {figures['errors']}, "
          f"lost {figures['lost']})")
    print(f"  CPU while holding             {cpu_s:.3f} s = "
          f"{figures['cpu_percent_while_holding']:.4f} % of {hold_s:.0f} s"
          + (f", {figures['cpu_ms_per_renewal']:.2f} ms per renewal" if renewals else ""))
    print(f"  voluntary context switches    {figures['voluntary_context_switches']} "
          f"(wake-ups and blocking waits)")
    print(f"  idle window (nothing due)     {idle_s:.0f} s: CPU {cpu_idle:.3f} s, "
          f"{csw_idle} context switches")
    print(f"  memory                        VmRSS {figures['vm_rss_kib']} KiB, "
          f"VmHWM {figures['vm_hwm_kib']} KiB")
    print(f"  SIGTERM -> exit               {figures['release_s']:.2f} s, exit {rc}, "
          f"released {figures['released']}, left on the router {len(left)}")
    if args.json:
        Path(args.json).write_text(json.dumps(figures, indent=2) + "\n")
    # Figures from a run that did not hold what it was asked to are not figures.
    ok = (rc == 0 and not left and mapped_at_ready == args.ports and renewals >= args.ports
          and figures["cpu_percent_while_holding"] < 1.0)
    if not ok:
        print("FAILED: not every port was mapped and renewed, something was left on the "
              "router, or the CPU share was 1 % or more", file=sys.stderr)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
