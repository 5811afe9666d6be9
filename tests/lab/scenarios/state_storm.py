#!/usr/bin/python3
"""The state file under load: 50 parallel `open`s of new ports from one host and one
state directory (cron jobs firing together), then 50 parallel refreshes, then 50
parallel `close`s. Every command must exit 0, and after each round the state file must
say exactly what the router's table says. First, a slow exchange (PCP MAP requests
dropped, so one `open` waits out its whole deadline) must not make the others wait:
the state lock is never held across the network."""

import json
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor

from porthole_lab import BIN, LAN1, RouterFilter, cleanup, finish, porthole, state_dir
import labkit  # noqa: E402  (porthole_lab puts it on sys.path)

N = 50
BASE = 44000
PORTS = range(BASE, BASE + N)

c = labkit.Checker("state_storm")
cleanup()


def state_rows():
    """(external port, internal port) of every record in lan1's state file."""
    path = state_dir("lan1") / "mappings.json"
    if not path.exists():
        return set(), []
    doc = json.loads(path.read_text())
    rows = {(m["external_port"], m["internal_port"]) for m in doc["mappings"]
            if m["transport"] == "tcp"}
    return rows, [m for m in doc["mappings"] if m.get("pending")]


def router_rows():
    return {(m.ext_port, m.int_port) for m in labkit.upnp_table("r1")
            if m.int_ip == LAN1 and m.proto == "TCP" and m.int_port in PORTS}


def storm(*args):
    with ThreadPoolExecutor(max_workers=N) as pool:
        return list(pool.map(
            lambda p: (p, porthole("lan1", *args, str(p), timeout=60)),
            PORTS))


SLOW = 44100
QUICK = range(44101, 44111)
with RouterFilter("pcp-map"):
    slow = subprocess.Popen([labkit.IP, "netns", "exec", labkit.ns_name("lan1"), BIN, "open",
                             str(SLOW), "--via", "pcp", "--timeout", "8",
                             "--state-dir", str(state_dir("lan1"))],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    time.sleep(1)  # sequencing only: let it get into its exchange first
    with ThreadPoolExecutor(max_workers=len(QUICK)) as pool:
        quick = list(pool.map(lambda p: (p, porthole("lan1", "open", str(p), "--via", "upnp")),
                              QUICK))
    slow_err = slow.communicate(timeout=60)[1]
failed = [(p, r) for p, r in quick if r.rc != 0]
c.check(not failed, f"while one open waits on a silent router, {len(QUICK)} others exit 0 "
        f"({len(QUICK) - len(failed)} did)", "\n".join(f"{p}: {r}" for p, r in failed[:3]))
c.check(slow.returncode in (3, 5), "the silent one exits 3 or 5, not 8", (slow.returncode, slow_err))
rows, pending = state_rows()
c.check(rows == {(p, p) for p in QUICK} and not pending,
        "afterwards the state holds exactly the others, nothing pending", (rows, pending))
for p in QUICK:
    porthole("lan1", "close", str(p))

for round_name, args, present in (("open", ("open",), True),
                                  ("refresh", ("open",), True),
                                  ("close", ("close",), False)):
    results = storm(*args)
    failed = [(p, r) for p, r in results if r.rc != 0]
    c.check(not failed, f"{round_name}: all {N} exit 0 ({N - len(failed)} did)",
            "\n".join(f"{p}: {r}" for p, r in failed[:3]))
    rows, pending = state_rows()
    routed = router_rows()
    c.check(rows == routed, f"{round_name}: the state equals the router's table",
            f"state only: {sorted(rows - routed)[:5]}\nrouter only: {sorted(routed - rows)[:5]}")
    c.check(not pending, f"{round_name}: no record left unconfirmed", pending[:3])
    c.check(len(routed) == (N if present else 0),
            f"{round_name}: the router holds {N if present else 0} of ours", len(routed))

cleanup()
finish(c)
