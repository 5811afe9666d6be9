#!/usr/bin/python3
"""The state file under load: 50 parallel `open`s of new ports from one host and one
state directory (cron jobs firing together), then 50 parallel refreshes, then 50
parallel `close`s. Every command must exit 0, and after each round the state file must
say exactly what the router's table says."""

import json
from concurrent.futures import ThreadPoolExecutor

from porthole_lab import LAN1, cleanup, finish, porthole, state_dir
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
            lambda p: (p, porthole("lan1", *args, str(p), "--timeout", "20", timeout=60)),
            PORTS))


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
