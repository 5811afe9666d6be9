#!/usr/bin/python3
"""`porthole expose` / `porthole connect`, lab test 5: r1 reboots under an idle tunnel.
miniupnpd runs on r1, so the tunnel runs over expose's mapping (both routers eim).
`lab.sh router-reboot r1` stops miniupnpd, flushes its rules, leases and r1's connection
tracking (the mapping and every NAT binding are gone), and starts it again.

- before: curl through the tunnel gets the file;
- after the reboot connect reports the break (path-lost), then finds the path again by
  itself (reconnected), and expose maps its port again;
- a new curl gets the file with the same SHA-256, with both sides still the processes
  started before the reboot (nothing restarted);
- SIGTERM: both exit 0, nothing of ours left on r1.
"""

import time

from porthole_lab import LAN1, cleanup, finish
from tunnel_lab import (PATH_KINDS, EventTimeout, FileServer, connect, connected, curl,
                        expose, lab_ready, lab_restore, ours_on_r1, peer_id, started, stopped)
import labkit  # noqa: E402

SERVICE, LOCAL, TUNNEL_PORT = 8080, 18080, 41030
NAME = "file.bin"

c = labkit.Checker("tunnel_reboot")
cleanup("lan1")
www = ex = co = None
try:
    lab_ready(c, miniupnpd={"r1": True, "r2": False})
    ids = {ns: peer_id(ns) for ns in ("lan1", "lan2")}
    c.check(all(ids.values()), "porthole id --json: an ID for each host", ids)
    www = FileServer("lan1", SERVICE, {NAME: 1000 * 1000})
    try:
        ex = expose("lan1", [str(SERVICE)], [ids["lan2"]], "--port", str(TUNNEL_PORT))
        started(ex)
        co = connect("lan2", ids["lan1"], [f"{LOCAL}:{SERVICE}"], "--no-map")
        ev = connected(co)
        c.check(ev.get("path") in PATH_KINDS, f"connected ({ev.get('path')})", ev)
        r, digest = curl("lan2", LOCAL, NAME)
        c.check(r.ok and digest == www.files[NAME], "before the reboot: curl gets the file", r)
        pids = (ex.pid, co.pid)

        # Idle for a moment: the mapping is a few seconds old (RFC 6887 s8.5 slack for
        # an epoch that restarts), and no stream is open.
        time.sleep(3)
        t_reboot = time.monotonic()
        res = labkit.lab("router-reboot", "r1")
        c.check(res.ok, "lab.sh router-reboot r1", res)
        lost = co.has("path-lost", 60, since=t_reboot)
        c.check(lost is not None, "connect reports the break (path-lost)", co.summary())
        back = co.has("reconnected", 60, since=t_reboot)
        c.check(back is not None and back.get("path") in PATH_KINDS,
                f"connect reports it reconnected ({(back or {}).get('path')})", co.summary())
        c.check(ex.has("mapping", 30, since=t_reboot,
                       pred=lambda e: e.get("what") in ("mapped", "renewed")) is not None,
                "expose mapped its port again after the reboot", ex.summary())
        r, digest = curl("lan2", LOCAL, NAME)
        c.check(r.ok and digest == www.files[NAME],
                "after the reboot: a new curl gets the file with the same SHA-256", r)
        c.check(ex.alive() and co.alive() and (ex.pid, co.pid) == pids,
                "both sides are still the processes started before the reboot")
    except EventTimeout as e:
        c.check(False, "expose and connect up", e)
    finally:
        stopped(c, co, ex)
    left = ours_on_r1()
    c.check(not left, f"after SIGTERM: nothing of ours left on r1 for {LAN1}", left)
finally:
    lab_restore(c, www)
    cleanup("lan1")
finish(c)
