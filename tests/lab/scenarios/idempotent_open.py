#!/usr/bin/python3
"""Lab test 2: `open` twice refreshes: same external port, one router entry, for every
protocol (what cron does every half hour)."""

import shutil
from pathlib import Path

from porthole_lab import LAN1, cleanup, entries_for, finish, porthole, porthole_json
import labkit  # noqa: E402  (porthole_lab puts it on sys.path)

c = labkit.Checker("idempotent_open")
cleanup()
for i, via in enumerate(("pcp", "natpmp", "upnp", "auto")):
    port = 42001 + i
    r1, j1 = porthole_json("lan1", "open", str(port), "--via", via)
    if not c.check(r1.rc == 0 and j1, f"{via}: first open", r1):
        continue
    r2, j2 = porthole_json("lan1", "open", str(port), "--via", via)
    if not c.check(r2.rc == 0 and j2, f"{via}: second open", r2):
        continue
    c.check(j2["external_port"] == j1["external_port"], f"{via}: same external port",
            (j1, j2))
    c.check(j2["refreshed"] is True, f"{via}: second run says refreshed", j2)
    c.check(len(entries_for(LAN1, port)) == 1, f"{via}: exactly one router entry",
            entries_for(LAN1, port))
    # A third time with the state directory gone (a fresh machine, a wiped /var/lib):
    # UPnP and NAT-PMP still refresh the same entry instead of adding another.
    if via in ("upnp", "natpmp"):
        fresh = Path(f"/tmp/porthole-lab-nostate-{port}")
        r3, j3 = porthole_json("lan1", "open", str(port), "--via", via, state=fresh)
        shutil.rmtree(fresh, ignore_errors=True)
        c.check(r3.rc == 0 and j3 and j3["external_port"] == j1["external_port"],
                f"{via}: without state, still the same external port", r3)
        c.check(len(entries_for(LAN1, port)) == 1, f"{via}: still one router entry",
                entries_for(LAN1, port))
    r = porthole("lan1", "close", str(port))
    c.check(r.rc == 0 and not entries_for(LAN1, port), f"{via}: closed", r)
cleanup()
finish(c)
